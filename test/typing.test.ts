/**
 * Typing indicators (issue 13 item 5) end to end: alice hosts a channel, bob and carol are
 * members. bob's typing reaches carol's event stream through the host while it is online and
 * through the server while it is not, expires, is never echoed to bob, is never sent or shown
 * for an invisible user, and a visitor cannot type.
 */
import { describe, expect, it } from 'vitest';
import {
  collectEvents,
  createTestnet,
  rawHostLink,
  rawSession,
  signIn,
  waitFor,
  type TestPeer,
} from './testnet.js';
import { TYPING_LIMITS } from '../src/shared/limits.js';

type Collected = ReturnType<typeof collectEvents>['events'];

const typingOf = (events: Collected, ch: string) =>
  events.filter((e) => e.event === 'typing' && e.data.channelId === ch).map((e) => e.data);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** alice hosts "general" (visitors allowed or not); bob and carol joined and read from her. */
async function trio(allowVisitors = false) {
  const net = await createTestnet({ peers: 3 });
  const [alice, bob, carol] = net.peers as [TestPeer, TestPeer, TestPeer];
  await signIn(alice, 'alice');
  await signIn(bob, 'bob');
  await signIn(carol, 'carol');
  const ch = (await alice.call('POST', '/api/channels', { name: 'general', allowVisitors })).body
    .id as string;
  for (const p of [bob, carol]) {
    expect((await p.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
    await waitFor(() => p.node.sourceOf(ch) === 'host', 10_000, 'reading from the host');
  }
  const seen = {
    alice: collectEvents(alice.uiUrl),
    bob: collectEvents(bob.uiUrl),
    carol: collectEvents(carol.uiUrl),
  };
  await Promise.all(Object.values(seen).map((s) => s.ready));
  return { net, alice, bob, carol, ch, seen };
}

describe('typing indicators', () => {
  it("bob's typing reaches carol and alice through the host, with an expiry, and is not echoed to bob", async () => {
    const { bob, ch, seen } = await trio();
    const before = Date.now();
    expect((await bob.call('POST', `/api/channels/${ch}/typing`)).status).toBe(204);
    const t = await waitFor(() => typingOf(seen.carol.events, ch)[0]);
    expect(t).toMatchObject({ channelId: ch, username: 'bob' });
    // It ends TYPING_LIMITS.ttlMs (6 s) after it arrived, unless refreshed.
    expect(t.expiresAt).toBeGreaterThanOrEqual(before + TYPING_LIMITS.ttlMs);
    expect(t.expiresAt).toBeLessThanOrEqual(Date.now() + TYPING_LIMITS.ttlMs);
    // The host's own user sees it too (alice's peer passed it on).
    await waitFor(() => typingOf(seen.alice.events, ch).length === 1);
    // Typing again after the interval refreshes it: a later expiry.
    await sleep(TYPING_LIMITS.intervalMs + 100);
    await bob.call('POST', `/api/channels/${ch}/typing`);
    const again = await waitFor(() => typingOf(seen.carol.events, ch)[1]);
    expect(again.expiresAt).toBeGreaterThan(t.expiresAt + TYPING_LIMITS.intervalMs);
    // Never echoed to the typist.
    expect(typingOf(seen.bob.events, ch)).toEqual([]);
  });

  it("bob's typing reaches carol through the server while the host is offline", async () => {
    const { alice, bob, carol, ch, seen } = await trio();
    await alice.call('PUT', '/api/status', { status: 'offline' });
    for (const p of [bob, carol])
      await waitFor(() => p.node.sourceOf(ch) === 'server', 10_000, 'reading from the server');
    // carol subscribed at the server again (she reads there): then bob's typing reaches her.
    await waitFor(async () => {
      await bob.call('POST', `/api/channels/${ch}/typing`);
      await sleep(300);
      return typingOf(seen.carol.events, ch).length > 0;
    });
    expect(typingOf(seen.carol.events, ch)[0]).toMatchObject({ channelId: ch, username: 'bob' });
    expect(typingOf(seen.bob.events, ch)).toEqual([]);
    expect(typingOf(seen.alice.events, ch)).toEqual([]);
  });

  it('an invisible user sends no typing, and neither the host nor the server reveals one', async () => {
    const { net, alice, bob, ch, seen } = await trio();
    await bob.call('PUT', '/api/status', { status: 'invisible' });
    await waitFor(async () =>
      ((await alice.call('GET', '/api/peers')).body as any[]).every((p) => p.username !== 'bob'),
    );
    // bob's own peer: answered 204, nothing sent (the host hears of no typing at all).
    const heard: string[] = [];
    const fromMember = alice.node.typing.fromMember.bind(alice.node.typing);
    alice.node.typing.fromMember = (who, id) => {
      heard.push(who.sessionId);
      fromMember(who, id);
    };
    expect((await bob.call('POST', `/api/channels/${ch}/typing`)).status).toBe(204);
    await sleep(300);
    expect(heard).toEqual([]);
    // A client that sends anyway from an invisible session: the host and the server drop it.
    const raw = await net.rawLink();
    const bob2 = await rawSession(raw, { username: 'bob', password: 'bob-pw' });
    await raw.request('submit_info', {
      ip: '127.0.0.1',
      port: 9,
      udpPort: 9,
      status: 'invisible',
    });
    const entry = (await raw.request('get_list', {})).peers.find((e) => e.username === 'alice')!;
    const link = rawHostLink(entry, bob2);
    await link.start();
    await expect(link.request('typing', { channelId: ch })).resolves.toEqual({});
    expect(heard).toEqual([bob2.sessionId]);
    await expect(raw.request('typing', { channelId: ch })).resolves.toEqual({});
    await sleep(1000);
    expect(typingOf(seen.carol.events, ch)).toEqual([]);
    expect(typingOf(seen.alice.events, ch)).toEqual([]);
    // Once visible again, bob's typing is shown: nothing else held it back.
    await bob.call('PUT', '/api/status', { status: 'online' });
    await waitFor(async () => {
      await bob.call('POST', `/api/channels/${ch}/typing`);
      await sleep(300);
      return typingOf(seen.carol.events, ch).length > 0;
    });
  });

  it('a visitor cannot type: refused by its peer, the host and the server', async () => {
    const { net, alice, ch, seen } = await trio(true);
    const viewer = await net.addPeer('viewer');
    expect((await viewer.call('POST', '/api/visitor', { name: 'vera' })).status).toBe(200);
    expect((await viewer.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
    const local = await viewer.call('POST', `/api/channels/${ch}/typing`);
    expect(local).toMatchObject({ status: 403, body: { error: { code: 'E_VISITOR_READ_ONLY' } } });
    const raw = await net.rawLink();
    const vera = await rawSession(raw, { name: 'vic' });
    await raw.request('channel_join', { channelId: ch });
    await expect(raw.request('typing', { channelId: ch })).rejects.toMatchObject({
      code: 'E_VISITOR_READ_ONLY',
    });
    const entry = (await raw.request('get_list', {})).peers.find((e) => e.username === 'alice')!;
    const link = rawHostLink(entry, vera);
    await link.start();
    await expect(link.request('typing', { channelId: ch })).rejects.toMatchObject({
      code: 'E_VISITOR_READ_ONLY',
    });
    await sleep(300);
    expect(typingOf(seen.carol.events, ch)).toEqual([]);
    expect(typingOf(seen.alice.events, ch)).toEqual([]);
    void alice;
  });
});
