/**
 * Attack 7: `forward` (PROTOCOL.md §3.3), the host's upload of its channel's items, judged per
 * item. An owner forwards, in her own channel, items whose `target` is a message of another
 * channel, or that §2.2 lets nobody write: the server must judge them as `post` does (§2.2
 * "The server and a host … MUST refuse an item that breaks the table").
 */
import { describe, expect, it } from 'vitest';
import { createTestnet, rawSession } from '../testnet.js';
import { sign } from '../hostile/kit.js';
import { v7 as uuidv7 } from 'uuid';

describe('attack7: forward judges each item as post does', () => {
  it('an owner forwarding a delete or reaction aimed at another channel’s message, or an edit of someone else’s, changes nothing', async () => {
    const net = await createTestnet({ peers: 0 });
    const login = async (u: string) => {
      const l = await net.rawLink();
      await l.request('register', { username: u, password: `${u}-pw-1` });
      return { l, s: await rawSession(l, { username: u, password: `${u}-pw-1` }) };
    };
    const carol = await login('carol');
    const mallory = await login('mallory');
    const other = (
      await carol.l.request('channel_create', {
        id: uuidv7(),
        name: 'carols',
        allowVisitors: false,
      })
    ).id;
    const victim = sign(carol.s, { channelId: other, text: 'keep me' });
    await carol.l.request('post', { message: victim });
    const mine = (
      await mallory.l.request('channel_create', {
        id: uuidv7(),
        name: 'trap',
        allowVisitors: false,
      })
    ).id;
    await carol.l.request('channel_join', { channelId: mine });
    const inMine = sign(carol.s, { channelId: mine, text: 'carol in the trap' });
    await carol.l.request('post', { message: inMine });

    const items = {
      'delete of another channel’s message': sign(mallory.s, {
        channelId: mine,
        kind: 'delete',
        target: victim.id,
      }),
      'reaction to another channel’s message': sign(mallory.s, {
        channelId: mine,
        kind: 'react',
        target: victim.id,
        emoji: '💀',
      }),
      'edit of someone else’s message': sign(mallory.s, {
        channelId: mine,
        kind: 'edit',
        target: inMine.id,
        text: 'carol says mallory is great',
      }),
      'edit of a message not held': sign(mallory.s, {
        channelId: mine,
        kind: 'edit',
        target: uuidv7(),
        text: 'ghost',
      }),
    };
    const r = await mallory.l.request('forward', {
      messages: Object.values(items).map((m) => ({ ...m, author: 'mallory' })),
    });
    const names = Object.keys(items);
    const want = ['E_NOT_FOUND', 'E_NOT_FOUND', 'E_FORBIDDEN', 'E_NOT_FOUND'];
    r.results.forEach((x: any, i: number) =>
      expect(x.error?.code, `${names[i]}: ${JSON.stringify(x)}`).toBe(want[i]),
    );
    // carol's message in her channel is whole, with no reaction; mallory's channel holds none of them.
    const page = await carol.l.request('history', { channelId: other, limit: 10 });
    const kept = page.messages.find((m: any) => m.id === victim.id)!;
    expect(kept.text).toBe('keep me');
    expect(kept.digest).toBeUndefined();
    expect(page.related ?? []).toEqual([]);
    const sync = await carol.l.request('sync', { channelId: mine, since: 0, limit: 100 });
    expect(sync.messages.map((m: any) => m.id)).toEqual([inMine.id]);
  }, 30000);
});
