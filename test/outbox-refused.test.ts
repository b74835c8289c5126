/**
 * A message written offline in a channel its author may no longer write to when it comes back
 * (the owner removed it, or deleted the channel, meanwhile): the outbox item ends `failed`, with
 * the replica's reason, and stays readable (`GET /api/outbox`) although the channel left the
 * author's list; the user is told (event `refused`). Nothing of it reaches a replica.
 */
import { describe, expect, it } from 'vitest';
import {
  collectEvents,
  createTestnet,
  peerLog,
  signIn,
  waitFor,
  type TestPeer,
} from './testnet.js';

/** alice hosts "general"; bob joins it, goes offline and writes there. */
async function offlinePost(): Promise<{
  net: Awaited<ReturnType<typeof createTestnet>>;
  alice: TestPeer;
  bob: TestPeer;
  ch: string;
  id: string;
}> {
  const net = await createTestnet({ peers: 2 });
  const [alice, bob] = net.peers as [TestPeer, TestPeer];
  await signIn(alice, 'alice');
  await signIn(bob, 'bob');
  const ch = (await alice.call('POST', '/api/channels', { name: 'general', allowVisitors: false }))
    .body.id as string;
  expect((await bob.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
  expect((await bob.call('PUT', '/api/status', { status: 'offline' })).status).toBe(200);
  const r = await bob.call('POST', `/api/channels/${ch}/messages`, { text: 'written offline' });
  expect(r).toMatchObject({ status: 201, body: { state: 'pending' } });
  return { net, alice, bob, ch, id: r.body.id as string };
}

/** Bob comes back; his outbox settles: the message is failed, kept, and he is told why. */
async function backOnline(
  bob: TestPeer,
  ch: string,
  id: string,
  code: string,
  reason: string,
): Promise<void> {
  const seen = collectEvents(bob.uiUrl);
  await seen.ready;
  expect((await bob.call('PUT', '/api/status', { status: 'online' })).status).toBe(200);
  await waitFor(
    async () => (await bob.call('GET', '/api/me')).body.pending === 0,
    15_000,
    'the outbox settles',
  );
  await waitFor(
    async () => !((await bob.call('GET', '/api/channels')).body as any[]).some((c) => c.id === ch),
    10_000,
    'the channel leaves his list',
  );
  // Kept in his store, failed, with the reason a replica gave.
  const held = bob.node.store.getMessage(id);
  expect(held).toMatchObject({ state: 'failed', text: 'written offline' });
  expect(held!.error).toBe(`${code}: ${reason}`);
  // Readable through the local API although the channel is gone from his list.
  const outbox = (await bob.call('GET', '/api/outbox')).body.messages as any[];
  expect(outbox).toHaveLength(1);
  expect(outbox[0]).toMatchObject({ id, channelId: ch, text: 'written offline', state: 'failed' });
  expect(outbox[0].error).toBe(`${code}: ${reason}`);
  // The channel's page is not his to read any more: the outbox is where it shows.
  expect((await bob.call('GET', `/api/channels/${ch}/messages`)).status).toBeGreaterThanOrEqual(
    400,
  );
  await waitFor(
    () =>
      seen.events.find(
        (e) => e.event === 'refused' && e.data.id === id && e.data.from === 'outbox',
      ),
    5000,
    'event refused for it',
  );
  const refused = seen.events.find((e) => e.event === 'refused' && e.data.id === id)!;
  expect(refused.data).toMatchObject({ channelId: ch, code, reason });
  // Its connection log says which replica refused it, as every `refused` record does (§6).
  const record = await waitFor(
    () => peerLog(bob).find((r) => r.ev === 'refused' && r.msg === id),
    5000,
    'the refused record',
  );
  expect(record).toMatchObject({
    channel: ch,
    code,
    from: expect.stringMatching(/^(server|host:alice@127\.0\.0\.1:\d+)$/),
  });
  // Dismissed by the user, it goes.
  expect((await bob.call('DELETE', `/api/outbox/${id}`)).status).toBe(204);
  expect((await bob.call('GET', '/api/outbox')).body.messages).toEqual([]);
  expect(bob.node.store.getMessage(id)).toBeUndefined();
}

describe('a message written offline where its author may no longer write', () => {
  it('the owner removed its author meanwhile: it ends failed ("removed"), kept and readable, never delivered', async () => {
    const { net, alice, bob, ch, id } = await offlinePost();
    expect((await alice.call('DELETE', `/api/channels/${ch}/members/bob`)).status).toBe(200);
    await waitFor(
      async () => await net.server.store.isRemoved(ch, 'bob'),
      10_000,
      'the server stores the removal',
    );
    await backOnline(bob, ch, id, 'E_NOT_MEMBER', 'removed from this channel by its owner');
    expect(await net.server.store.getItem(id)).toBeUndefined();
    expect(alice.node.store.getMessage(id)).toBeUndefined();
  });

  it('the owner deleted the channel meanwhile: it ends failed ("no such channel"), kept and readable', async () => {
    const { net, alice, bob, ch, id } = await offlinePost();
    expect((await alice.call('DELETE', `/api/channels/${ch}`)).status).toBe(200);
    await waitFor(
      async () => (await net.server.store.getChannel(ch)) === undefined,
      10_000,
      'the server drops the channel',
    );
    await backOnline(bob, ch, id, 'E_CHANNEL_NOT_FOUND', 'no such channel');
    expect(await net.server.store.getItem(id)).toBeUndefined();
    expect(alice.node.store.getMessage(id)).toBeUndefined();
  });
});
