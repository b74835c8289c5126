/**
 * Attack 7: items of one channel that name (`target`) a message of another channel
 * (PROTOCOL.md §2.2: "`target` is … the message (an item of kind `message`) **of the same
 * channel**"). Mallory owns and hosts a channel alice joined; alice is also a member of carol's
 * channel. Mallory's host pushes, in her own channel, a delete (she is that channel's owner) and
 * a reaction whose `target` is carol's message in the other channel: alice's peer must not take
 * them for changes of carol's message.
 */
import { describe, expect, it } from 'vitest';
import { createTestnet, peerLog, signIn, waitFor } from '../testnet.js';
import { announce, hostileHost, mallorysChannel, quietHost, sign } from '../hostile/kit.js';
import { sleep } from './lib.js';

describe('attack7: an item of one channel never changes a message of another', () => {
  it('a channel owner’s delete and a stranger’s reaction aimed at another channel’s message change nothing there', async () => {
    const net = await createTestnet({ peers: 2 });
    const [alice, carol] = net.peers as [any, any];
    await signIn(alice, 'alice');
    await signIn(carol, 'carol');
    const other = (
      await carol.call('POST', '/api/channels', { name: 'carols', allowVisitors: false })
    ).body.id as string;
    expect((await alice.call('POST', `/api/channels/${other}/join`)).status).toBe(200);
    const posted = await carol.call('POST', `/api/channels/${other}/messages`, { text: 'keep me' });
    const victim = posted.body.id as string;
    const seen = async () =>
      ((await alice.call('GET', `/api/channels/${other}/messages`)).body.messages ?? []).find(
        (m: any) => m.id === victim,
      );
    await waitFor(async () => (await seen())?.text === 'keep me', 10000, 'alice holds it');

    const { raw, mallory, ch } = await mallorysChannel(net, alice);
    // Both genuinely signed by mallory, for her own channel: only the target is foreign.
    const del = sign(mallory, { channelId: ch, kind: 'delete', target: victim });
    const react = sign(mallory, { channelId: ch, kind: 'react', target: victim, emoji: '💀' });
    // A marker after both: once alice shows it, she has handled the two items before it.
    const marker = sign(mallory, { channelId: ch, text: 'marker' });
    const items = [react, del, marker].map((m, i) => ({ ...m, author: 'mallory', seq: i + 1 }));
    // The server refuses them (the target is no message of this channel).
    for (const item of [del, react])
      await expect(raw.request('post', { message: item })).rejects.toMatchObject({
        code: 'E_NOT_FOUND',
      });
    const host = await hostileHost(
      mallory,
      quietHost({
        sync: (b) => ({ messages: items.filter((m) => m.seq > b.since), lastSeq: items.length }),
        history: () => ({ messages: items, hasMore: false, related: [] }),
      }),
    );
    await announce(raw, host.port, [ch]);
    await waitFor(
      () =>
        host.conns.some((c) => c.frames.some((f: any) => f.t === 'req' && f.op === 'subscribe')),
      15000,
      'alice subscribes at mallory’s host',
    );
    const conn = host.conns.find((c) =>
      c.frames.some((f: any) => f.t === 'req' && f.op === 'subscribe'),
    )!;
    for (const m of items) conn.push('message', { channelId: ch, message: m });
    await waitFor(
      async () =>
        ((await alice.call('GET', `/api/channels/${ch}/messages`)).body.messages ?? []).some(
          (m: any) => m.id === marker.id,
        ),
      10000,
      () => 'alice took the marker ' + JSON.stringify(peerLog(alice).slice(-15)),
    );
    await sleep(300);
    const now = await seen();
    expect(now?.deleted ?? false, 'carol’s message is not deleted').toBe(false);
    expect(now?.text).toBe('keep me');
    expect(now?.reactions ?? []).toEqual([]);
    // Its own copy says the same (a page read locally, around the message).
    const page = await alice.call('GET', `/api/channels/${other}/messages?around=${victim}`);
    const again = page.body.messages.find((m: any) => m.id === victim);
    expect(again.text).toBe('keep me');
    expect(again.reactions).toEqual([]);
  }, 60000);
});
