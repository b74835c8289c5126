/**
 * Lists longer than a frame (PROTOCOL.md §3.3 `my_channels`, `members`): a user in 1,000 channels
 * with long names and topics, or a channel of 31,000 members, is more than the 1 MiB a peer takes
 * in one frame. The server answers a page at a time (`next`) and the peer reads the whole list:
 * before, the answer was E_FRAME_TOO_LARGE, and the peer could neither list its channels nor
 * show (or, hosting, admit) the members. The lists are written into the server's store, as an
 * old deployment would hold them, before anyone asks.
 */
import { v7 as uuidv7 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';
import { Raw } from './outsider/lib.js';

/** A name of 64 characters of 3 UTF-8 bytes each, and a topic of 256: long channel entries. */
const longName = (i: number) => `${i}`.padStart(4, '0') + 'あ'.repeat(60);
const longTopic = 'い'.repeat(256);

async function rawLogin(net: { serverPort: number }, username: string, maxFrame: number) {
  const c = new Raw('127.0.0.1', net.serverPort);
  await c.connected();
  const sizes: number[] = [];
  c.onFrame = (_f, bytes) => sizes.push(bytes);
  c.send({ t: 'hello', v: 4, role: 'peer', agent: 'list-pages', maxFrame });
  await c.nextFrame();
  const key = (await import('./outsider/lib.js')).newKey();
  const l = await c.req('login', { username, password: `${username}-pw`, publicKey: key.pk });
  if (!l.body) throw new Error(JSON.stringify(l));
  return { c, sizes };
}

describe('lists longer than a frame come a page at a time', () => {
  it('1,000 channels of a user: paged at the server, listed whole by the peer', async () => {
    const net = await createTestnet({ peers: 1 });
    const [alice] = net.peers as [TestPeer];
    await signIn(alice, 'alice');
    const store = net.server.store;
    const ids: string[] = [];
    const t0 = Date.now() - 1_000_000;
    for (let i = 0; i < 999; i++) {
      const id = uuidv7();
      ids.push(id);
      await store.createChannel({
        id,
        name: longName(i),
        owner: `owner${Math.floor(i / 200)}`,
        allowVisitors: false,
        createdAt: t0 + Math.floor(i / 3), // some share a time: the cursor takes the id too
      });
      await store.addMember(id, 'alice');
    }
    // Their owners set long topics (a signed `channel` item each, in use): written as its effect.
    const db = (
      store as unknown as { db: { prepare(sql: string): { run(...a: unknown[]): void } } }
    ).db;
    const setTopic = db.prepare('UPDATE channels SET topic = ? WHERE id = ?');
    for (const id of ids) setTopic.run(longTopic, id);
    // A raw client that takes 64 KiB frames: pages, none over its frame, none repeated.
    const { c, sizes } = await rawLogin(net, 'alice', 65_536);
    const got: string[] = [];
    let after: string | undefined;
    let pages = 0;
    for (;;) {
      const r = await c.req('my_channels', after ? { after } : {});
      expect(r.error, JSON.stringify(r.error)).toBeUndefined();
      got.push(...r.body.channels.map((ch: { id: string }) => ch.id));
      pages++;
      if (!r.body.next) break;
      after = r.body.next;
    }
    expect(pages).toBeGreaterThan(15);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(65_536);
    expect(new Set(got).size).toBe(got.length);
    expect(new Set(got)).toEqual(new Set(ids));
    // A cursor no server gave is a clear error, the link stays.
    expect((await c.req('my_channels', { after: 'nonsense' })).error?.code).toBe('E_BAD_REQUEST');
    expect((await c.req('my_channels', {})).error).toBeUndefined();
    // The peer (1 MiB frames) lists them all once it reads its channels (a restart).
    const back = await net.restartPeer(alice);
    await waitFor(
      async () => (await back.call('GET', '/api/channels')).body.length >= ids.length,
      20_000,
      'the peer to list every channel',
    );
    const listed = (await back.call('GET', '/api/channels')).body as { id: string }[];
    expect(new Set(listed.map((ch) => ch.id))).toEqual(new Set(ids));
  });

  it('a channel of 31,000 members: paged at the server, listed whole by the peer', async () => {
    const net = await createTestnet({ peers: 1 });
    const [alice] = net.peers as [TestPeer];
    await signIn(alice, 'alice');
    const ch = (await alice.call('POST', '/api/channels', { name: 'crowd' })).body.id as string;
    const store = net.server.store;
    const names = Array.from({ length: 31_000 }, (_, i) => `member-${i}`.padEnd(32, 'x'));
    for (const n of names) await store.addMember(ch, n);
    const { c, sizes } = await rawLogin(net, 'alice', 65_536);
    const got: string[] = [];
    let after: string | undefined;
    for (;;) {
      const r = await c.req('members', { channelId: ch, ...(after ? { after } : {}) });
      expect(r.error, JSON.stringify(r.error)).toBeUndefined();
      got.push(...r.body.members);
      if (!r.body.next) break;
      after = r.body.next;
    }
    expect(Math.max(...sizes)).toBeLessThanOrEqual(65_536);
    expect(got).toEqual([...names, 'alice'].sort());
    // The peer's member list (and its host's own list, read the same way) has every one.
    const listed = await alice.call('GET', `/api/channels/${ch}/members`);
    expect(listed.status, JSON.stringify(listed.body).slice(0, 200)).toBe(200);
    expect(listed.body).toHaveLength(31_001);
    const back = await net.restartPeer(alice);
    await waitFor(
      async () => back.node.store.isMember(ch, names[30_999]!),
      20_000,
      'the host to hold the last member',
    );
  });
});
