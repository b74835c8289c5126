/**
 * Frames that do not fit, and storage that fails (issue 11, findings 1, 2 and 20): pages and
 * uploads are cut to the receiver's frame limit, so a member behind a channel of long messages,
 * or a host that wrote them offline, keeps its link; a full disk answers E_STORAGE_FULL and the
 * server keeps serving; a page never holds more than `limit` messages while an outbox drains.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import { createTestnet, rawSession, signIn, waitFor, peerLog as log, tempDir } from '../testnet.js';
import { SqliteServerStore } from '../../src/store/server-store.js';
import { mallorysChannel, sign } from './kit.js';

/** 4,000 control characters: 24,000 bytes once escaped in JSON, the worst text there is. */
const WORST = '\u0001'.repeat(4000);

describe('every page and batch fits the receiver (finding 1)', () => {
  it('a member far behind a channel of the longest messages catches up without losing its link', async () => {
    const net = await createTestnet({ peers: 1 });
    const bob = net.peers[0]!;
    await signIn(bob, 'bob');
    const { raw, mallory, ch } = await mallorysChannel(net, bob, 'long');
    await bob.call('PUT', '/api/status', { status: 'offline' });
    const now = Date.now();
    for (let i = 0; i < 300; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, k) =>
          raw.request('post', {
            message: sign(mallory, {
              channelId: ch,
              text: `${i + k}${WORST}`.slice(0, 4000),
              ts: now,
              lc: i + k,
            }),
          }),
        ),
      );
    }
    const closesBefore = log(bob).filter((r) => r.ev === 'close' && r.peer === 'server').length;
    await bob.call('PUT', '/api/status', { status: 'online' });
    await waitFor(() => bob.node.store.cursor(ch) === 300, 30_000, 'bob holds all 300');
    const closes = log(bob).filter((r) => r.ev === 'close' && r.peer === 'server');
    expect(closes.length - closesBefore).toBe(0);
    // A page of the newest 500 is cut to fit, and says that more remains.
    const page = await raw.request('history', { channelId: ch, limit: 500 });
    expect(page.messages.length).toBeGreaterThan(10);
    expect(page.messages.length).toBeLessThan(300);
    expect(page.hasMore).toBe(true);
  });

  it('a host that wrote long messages offline uploads them all in batches that fit', async () => {
    const net = await createTestnet({ peers: 1 });
    const alice = net.peers[0]!;
    await signIn(alice, 'alice');
    const ch = (await alice.call('POST', '/api/channels', { name: 'mine', allowVisitors: false }))
      .body.id as string;
    await alice.call('PUT', '/api/status', { status: 'offline' });
    for (let i = 0; i < 120; i++) {
      const r = await alice.call('POST', `/api/channels/${ch}/messages`, {
        text: `${i}${WORST}`.slice(0, 4000),
      });
      expect(r.status).toBe(201);
    }
    await alice.call('PUT', '/api/status', { status: 'online' });
    await waitFor(
      async () => (await net.server.store.lastSeq(ch)) === 120,
      30_000,
      () => 'the server to hold 120',
    );
    expect(log(alice).filter((r) => r.ev === 'close' && r.reason === 'E_FRAME_TOO_LARGE')).toEqual(
      [],
    );
  });
});

describe('storage errors never end a process (finding 2)', () => {
  it('a full disk answers E_STORAGE_FULL to posts and the server keeps serving', async () => {
    const dir = tempDir('hchat-full-');
    const store = new SqliteServerStore(path.join(dir, 'server.db'));
    const db = (store as unknown as { db: import('better-sqlite3').Database }).db;
    const net = await createTestnet({ peers: 0, server: { store } });
    const raw = await net.rawLink();
    await raw.request('register', { username: 'alice', password: 'alice-pw' });
    const alice = await rawSession(raw, { username: 'alice', password: 'alice-pw' });
    const ch = (
      await raw.request('channel_create', { id: uuidv7(), name: 'full', allowVisitors: false })
    ).id;
    const pages = db.pragma('page_count', { simple: true }) as number;
    db.pragma(`max_page_count = ${pages + 4}`);
    const answers = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) =>
        raw.request('post', {
          message: sign(alice, { channelId: ch, text: `${i}${WORST}`.slice(0, 4000), lc: i }),
        }),
      ),
    );
    const full = answers.filter(
      (a) => a.status === 'rejected' && (a.reason as { code: string }).code === 'E_STORAGE_FULL',
    );
    expect(full.length).toBeGreaterThan(0);
    // Still serving, on the same link; what was stored is intact.
    const stored = await net.server.store.lastSeq(ch);
    expect((await raw.request('history', { channelId: ch, limit: 50 })).messages).toHaveLength(
      stored,
    );
    // Room again: the next post goes in.
    db.pragma('max_page_count = 1073741823');
    await expect(
      raw.request('post', { message: sign(alice, { channelId: ch, text: 'room again' }) }),
    ).resolves.toMatchObject({ seq: stored + 1 });
  });
});

describe('a page holds at most `limit` messages while an outbox drains (finding 20)', () => {
  it('GET messages?limit=50 answers 50 however many wait in the outbox', async () => {
    const net = await createTestnet({ peers: 1, server: { postsPerSecond: 2, postBurst: 2 } });
    const bob = net.peers[0]!;
    await signIn(bob, 'bob');
    // carol's channel, hosted by nobody online: bob's outbox drains to the server, slowly.
    const raw = await net.rawLink();
    await raw.request('register', { username: 'carol', password: 'carol-pw' });
    await rawSession(raw, { username: 'carol', password: 'carol-pw' });
    const theirs = (
      await raw.request('channel_create', { id: uuidv7(), name: 'theirs', allowVisitors: true })
    ).id;
    await bob.call('POST', `/api/channels/${theirs}/join`);
    await bob.call('PUT', '/api/status', { status: 'offline' });
    for (let i = 0; i < 200; i++)
      await bob.call('POST', `/api/channels/${theirs}/messages`, { text: `queued ${i}` });
    await bob.call('PUT', '/api/status', { status: 'online' });
    await waitFor(async () => (await bob.call('GET', '/api/me')).body.connection === 'connected');
    const page = await bob.call('GET', `/api/channels/${theirs}/messages?limit=50`);
    expect(page.status).toBe(200);
    expect(page.body.messages).toHaveLength(50);
    expect(
      page.body.hasMore,
      JSON.stringify({ ...page.body, messages: page.body.messages.length }),
    ).toBe(true);
    expect(page.body.messages.at(-1).text).toBe('queued 199');
  });
});
