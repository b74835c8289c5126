/**
 * A hostile member against typing indicators (docs/PROTOCOL.md §3.3, §4.2 `typing`), written
 * from the protocol document: a flood of `typing` frames reaches the other members at most once
 * per 2 s, at the host and at the server; a non-member's typing and one for a channel that does
 * not exist are refused by both; a malformed channel id is a bad request.
 */
import { describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import {
  collectEvents,
  createTestnet,
  rawHostLink,
  rawSession,
  signIn,
  waitFor,
  type TestPeer,
} from '../testnet.js';
import { announce } from './kit.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * alice hosts "general" on her peer; carol (an honest peer) reads it from her; bob is a raw
 * member with an online tracker entry; a second raw link, "watcher", is a member subscribed at
 * the server and counts the `typing` pushes it gets there.
 */
async function stage() {
  const net = await createTestnet({ peers: 2 });
  const [alice, carol] = net.peers as [TestPeer, TestPeer];
  await signIn(alice, 'alice');
  await signIn(carol, 'carol');
  const ch = (await alice.call('POST', '/api/channels', { name: 'general', allowVisitors: false }))
    .body.id as string;
  await carol.call('POST', `/api/channels/${ch}/join`);
  await waitFor(() => carol.node.sourceOf(ch) === 'host');
  const raw = await net.rawLink();
  await raw.request('register', { username: 'bob', password: 'bob-pw-1' });
  const bob = await rawSession(raw, { username: 'bob', password: 'bob-pw-1' });
  await raw.request('channel_join', { channelId: ch });
  await announce(raw, 9, []);
  const watcherLink = await net.rawLink();
  await watcherLink.request('register', { username: 'watcher', password: 'watcher-pw' });
  await rawSession(watcherLink, { username: 'watcher', password: 'watcher-pw' });
  await watcherLink.request('channel_join', { channelId: ch });
  const atServer: any[] = [];
  watcherLink.on('event', (name: string, body: unknown) => {
    if (name === 'typing') atServer.push(body);
  });
  // alice's peer sees bob online (it passes on typing only from sessions it sees online).
  await waitFor(async () =>
    ((await alice.call('GET', '/api/peers')).body as any[]).some((p) => p.username === 'bob'),
  );
  const entry = (await raw.request('get_list', {})).peers.find((e) => e.username === 'alice')!;
  const seen = collectEvents(carol.uiUrl);
  await seen.ready;
  const typingAtCarol = () => seen.events.filter((e) => e.event === 'typing').map((e) => e.data);
  return { net, alice, carol, ch, raw, bob, entry, atServer, typingAtCarol };
}

describe('typing flood', () => {
  it('a member flooding typing over P2P reaches the others at most once per 2 s', async () => {
    const { ch, bob, entry, typingAtCarol } = await stage();
    const link = rawHostLink(entry, bob);
    await link.start();
    const start = Date.now();
    let answered = 0;
    // 100 frames over ~3 s: each is answered {} (dropped quietly), the link stays open.
    for (let i = 0; i < 100; i++) {
      await link.request('typing', { channelId: ch });
      answered++;
      await sleep(30);
    }
    const elapsed = Date.now() - start;
    await sleep(300);
    const got = typingAtCarol();
    expect(answered).toBe(100);
    expect(got.length).toBeGreaterThanOrEqual(1);
    expect(got.length).toBeLessThanOrEqual(Math.floor(elapsed / 2000) + 1);
    expect(got.every((t) => t.username === 'bob' && t.channelId === ch)).toBe(true);
  });

  it('a member flooding typing at the server reaches the others at most once per 2 s', async () => {
    const { ch, raw, atServer } = await stage();
    const start = Date.now();
    // Pipelined: 200 at once, then 50 more a second later.
    await Promise.all(Array.from({ length: 200 }, () => raw.request('typing', { channelId: ch })));
    await sleep(1000);
    await Promise.all(Array.from({ length: 50 }, () => raw.request('typing', { channelId: ch })));
    const elapsed = Date.now() - start;
    await sleep(300);
    expect(atServer.length).toBeGreaterThanOrEqual(1);
    expect(atServer.length).toBeLessThanOrEqual(Math.floor(elapsed / 2000) + 1);
    expect(atServer[0]).toMatchObject({ channelId: ch, username: 'bob' });
  });
});

describe('typing where one may not', () => {
  it("a non-member's typing is refused by the host and the server, and reaches nobody", async () => {
    const { net, ch, entry, atServer, typingAtCarol } = await stage();
    const raw = await net.rawLink();
    await raw.request('register', { username: 'mallory', password: 'mallory-pw' });
    const mallory = await rawSession(raw, { username: 'mallory', password: 'mallory-pw' });
    await announce(raw, 9, []);
    await expect(raw.request('typing', { channelId: ch })).rejects.toMatchObject({
      code: 'E_NOT_MEMBER',
    });
    // The host's address is no secret: mallory dials it with her own certificate.
    const link = rawHostLink(entry, mallory);
    await link.start();
    await expect(link.request('typing', { channelId: ch })).rejects.toMatchObject({
      code: 'E_NOT_MEMBER',
    });
    await sleep(300);
    expect(atServer).toEqual([]);
    expect(typingAtCarol()).toEqual([]);
  });

  it('typing for a channel that does not exist, or with a malformed id, is refused by both', async () => {
    const { ch, raw, bob, entry, atServer, typingAtCarol } = await stage();
    const link = rawHostLink(entry, bob);
    await link.start();
    const bogus = uuidv7();
    await expect(raw.request('typing', { channelId: bogus })).rejects.toMatchObject({
      code: 'E_CHANNEL_NOT_FOUND',
    });
    await expect(link.request('typing', { channelId: bogus })).rejects.toMatchObject({
      code: 'E_CHANNEL_NOT_FOUND',
    });
    for (const channelId of ['general', '', `${ch}x`, 42]) {
      await expect(raw.request('typing', { channelId } as any)).rejects.toMatchObject({
        code: 'E_BAD_REQUEST',
      });
      await expect(link.request('typing', { channelId } as any)).rejects.toMatchObject({
        code: 'E_BAD_REQUEST',
      });
    }
    await sleep(300);
    expect(atServer).toEqual([]);
    expect(typingAtCarol()).toEqual([]);
  });
});
