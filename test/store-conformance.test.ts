/**
 * One suite, both server stores: every method of ServerStore behaves alike on SQLite and on
 * PostgreSQL (each PostgreSQL run in a database of its own, dropped after).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HchatError } from '../src/protocol/errors.js';
import type { NewMessage } from '../src/protocol/common.js';
import type { InsertResult, ServerStore } from '../src/store/server-store.js';
import { SqliteServerStore } from '../src/store/sqlite-server-store.js';
import { PostgresServerStore } from '../src/store/pg/pg-server-store.js';
import { searchWords } from '../src/shared/search-text.js';
import { createTestDatabase } from './pg-kit.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-conformance-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** A fresh store, and `another`: a second store object on the same data (another instance). */
interface Opened {
  store: ServerStore;
  another: () => Promise<ServerStore>;
  done: () => Promise<void>;
}

const STORES: [string, () => Promise<Opened>][] = [
  [
    'sqlite',
    async () => {
      const file = path.join(dir, `s${n++}.db`);
      const store = new SqliteServerStore(file);
      const others: ServerStore[] = [];
      return {
        store,
        another: async () => (others.push(new SqliteServerStore(file)), others.at(-1)!),
        done: async () => {
          for (const o of others) await o.close();
          await store.close();
        },
      };
    },
  ],
  [
    'postgres',
    async () => {
      const db = await createTestDatabase();
      const store = await PostgresServerStore.open(db.url);
      const others: ServerStore[] = [];
      return {
        store,
        another: async () => (others.push(await PostgresServerStore.open(db.url)), others.at(-1)!),
        done: async () => {
          for (const o of others) await o.close();
          await store.close();
          await db.drop();
        },
      };
    },
  ],
];

const C1 = '00000000-0000-4000-8000-000000000001';
const C2 = '00000000-0000-4000-8000-000000000002';
let clock = 1000;

function item(id: string, fields: Partial<NewMessage> = {}, channelId = C1): NewMessage {
  return { id, channelId, ts: clock++, lc: 0, sig: 's', cert: 'c', ...fields } as NewMessage;
}

const ok = (r: InsertResult | HchatError): InsertResult => {
  if (r instanceof HchatError) throw r;
  return r;
};

describe.each(STORES)('ServerStore conformance: %s', (_name, open) => {
  let store: ServerStore;
  let another: () => Promise<ServerStore>;
  let done: () => Promise<void>;
  beforeEach(async () => {
    ({ store, another, done } = await open());
    await store.createChannel({
      id: C1,
      name: 'general',
      owner: 'Alice',
      allowVisitors: false,
      createdAt: 10,
    });
  });
  afterEach(async () => done());

  it('users: created once whatever the case, looked up case-blind, listed; ping answers', async () => {
    await store.ping();
    await store.createUser({ username: 'Alice', passHash: 'h1' });
    await expect(store.createUser({ username: 'alice', passHash: 'h2' })).rejects.toMatchObject({
      code: 'E_USERNAME_TAKEN',
    });
    expect(await store.getUser('ALICE')).toEqual({ username: 'Alice', passHash: 'h1' });
    expect(await store.getUser('bob')).toBeUndefined();
    await store.createUser({ username: 'bob', passHash: 'h3' });
    expect((await store.usernames()).sort()).toEqual(['Alice', 'bob']);
  });

  it('users: a look-alike of an account is refused by the store, also from two objects at once', async () => {
    await store.createUser({ username: 'alice', passHash: 'h' });
    for (const n of ['aIice', 'ALICE', '\u0430lice']) {
      await expect(store.createUser({ username: n, passHash: 'h' }), n).rejects.toMatchObject({
        code: 'E_USERNAME_TAKEN',
      });
    }
    const stores = [store, await another()];
    for (let round = 0; round < 4; round++) {
      const names = [`mallet${round}`, `MALLET${round}`, `rnallet${round}`, `ma11et${round}`];
      const rs = await Promise.allSettled(
        names.map((n, i) => stores[i % 2]!.createUser({ username: n, passHash: 'h' })),
      );
      expect(
        rs.filter((r) => r.status === 'fulfilled'),
        names.join('/'),
      ).toHaveLength(1);
    }
    expect((await store.usernames()).sort()).toHaveLength(5);
  });

  it('sessions: live ones oldest first, a revocation once with its time', async () => {
    const base = { username: 'alice', role: 'user' as const, publicKey: 'pk' };
    await store.createSession({ ...base, sessionId: 's2', createdAt: 2 });
    await store.createSession({ ...base, sessionId: 's1', createdAt: 1 });
    await store.createSession({ ...base, sessionId: 'v1', createdAt: 3, role: 'visitor' });
    expect((await store.liveSessions('alice', 'user')).map((s) => s.sessionId)).toEqual([
      's1',
      's2',
    ]);
    const t0 = Date.now();
    await store.revokeSession('s1');
    const s1 = (await store.getSession('s1'))!;
    expect(s1).toMatchObject({ sessionId: 's1', revoked: true, publicKey: 'pk', createdAt: 1 });
    expect(s1.revokedAt).toBeGreaterThanOrEqual(t0);
    await store.revokeSession('s1'); // again: the first time stays
    expect((await store.getSession('s1'))!.revokedAt).toBe(s1.revokedAt);
    expect((await store.liveSessions('alice', 'user')).map((s) => s.sessionId)).toEqual(['s2']);
    expect(await store.getSession('s2')).toEqual({
      ...base,
      sessionId: 's2',
      createdAt: 2,
      revoked: false,
    });
    expect(await store.getSession('nope')).toBeUndefined();
  });

  it('channels and members: unique ids, owner a member, directory pages, counts', async () => {
    await expect(
      store.createChannel({ id: C1, name: 'x', owner: 'bob', allowVisitors: true, createdAt: 1 }),
    ).rejects.toMatchObject({ code: 'E_CHANNEL_EXISTS' });
    await store.createChannel({
      id: C2,
      name: 'open',
      owner: 'bob',
      allowVisitors: true,
      createdAt: 10,
    });
    expect(await store.getChannel(C1)).toEqual({
      id: C1,
      name: 'general',
      owner: 'Alice',
      allowVisitors: false,
      createdAt: 10,
    });
    expect(await store.getChannel('missing')).toBeUndefined();
    const all = await store.listChannels({ limit: 10, visitorsOnly: false });
    expect(all.map((c) => c.id)).toEqual([C1, C2]);
    const after = await store.listChannels({
      after: { createdAt: 10, id: C1 },
      limit: 10,
      visitorsOnly: false,
    });
    expect(after.map((c) => c.id)).toEqual([C2]);
    expect((await store.listChannels({ limit: 10, visitorsOnly: true })).map((c) => c.id)).toEqual([
      C2,
    ]);
    expect((await store.listChannels({ limit: 1, visitorsOnly: false })).length).toBe(1);
    expect(await store.ownedChannels('alice')).toBe(1);
    expect(await store.isMember(C1, 'ALICE')).toBe(true);
    await store.addMember(C1, 'Carol');
    await store.addMember(C1, 'carol'); // already: nothing changes
    expect((await store.members(C1)).sort()).toEqual(['Alice', 'Carol']);
    expect(await store.memberships('carol')).toBe(1);
    expect((await store.channelsOf('CAROL')).map((c) => c.id)).toEqual([C1]);
    await store.removeMember(C1, 'CAROL');
    expect(await store.isMember(C1, 'carol')).toBe(false);
    expect(await store.isRemoved(C1, 'carol')).toBe(false); // leaving is not being removed
  });

  it('directory pages leave out the channels whose owner removed one of the accounts named (any case)', async () => {
    await store.createChannel({
      id: C2,
      name: 'open',
      owner: 'Alice',
      allowVisitors: true,
      createdAt: 11,
    });
    await store.insertMessages([
      { message: item('rm', { kind: 'channel', change: { remove: 'Bob' } }), author: 'Alice' },
    ]);
    const ids = async (removedOf?: string[], visitorsOnly = false, limit = 10) =>
      (await store.listChannels({ limit, visitorsOnly, removedOf })).map((c) => c.id);
    expect(await ids()).toEqual([C1, C2]);
    expect(await ids(['BOB'])).toEqual([C2]);
    expect(await ids(['bobbot', 'bob'])).toEqual([C2]); // a bot, and its owner
    expect(await ids(['carol'])).toEqual([C1, C2]);
    expect(await ids(['bob'], false, 1)).toEqual([C2]); // the page is full of what it shows
    expect(await ids(['bob'], true)).toEqual([C2]);
  });

  it('insert batches: 1, 2, 3… per channel; duplicates and conflicts; unknown channels', async () => {
    await store.createChannel({
      id: C2,
      name: 'b',
      owner: 'bob',
      allowVisitors: false,
      createdAt: 11,
    });
    const a = item('a', { text: 'one' });
    const r1 = await store.insertMessages([
      { message: a, author: 'alice' },
      { message: item('b', { text: 'two' }), author: 'alice' },
      { message: item('x', { text: 'other' }, C2), author: 'bob' },
      { message: item('m', { text: 'lost' }, 'missing'), author: 'bob' },
      { message: a, author: 'alice' }, // the same again in one batch
    ]);
    expect(r1.slice(0, 3).map((r) => ok(r).seq)).toEqual([1, 2, 1]);
    expect(r1[3]).toMatchObject({ code: 'E_CHANNEL_NOT_FOUND' });
    expect(ok(r1[4]!)).toMatchObject({ seq: 1, duplicate: true });
    const r2 = await store.insertMessages([
      { message: a, author: 'alice' },
      { message: { ...a, text: 'forged' }, author: 'alice' },
      { message: item('c', { text: 'three' }), author: 'alice' },
    ]);
    expect(ok(r2[0]!)).toMatchObject({ seq: 1, duplicate: true, stored: { text: 'one' } });
    expect(r2[1]).toMatchObject({ code: 'E_MESSAGE_CONFLICT' });
    expect(ok(r2[2]!)).toMatchObject({ seq: 3, duplicate: false });
    expect(await store.lastSeq(C1)).toBe(3);
    expect(await store.lastSeq('missing')).toBe(0);
    expect((await store.since(C1, 1, 10)).map((m) => m.id)).toEqual(['b', 'c']);
    expect((await store.since(C1, 0, 2)).map((m) => m.seq)).toEqual([1, 2]);
    expect(await store.getItem('a')).toEqual({ ...a, author: 'alice', seq: 1 });
  });

  it('insert batches: an item whose posting session is revoked in the store is refused', async () => {
    const other = await another();
    for (const id of ['s-live', 's-gone'])
      await store.createSession({
        sessionId: id,
        username: 'Alice',
        role: 'user',
        createdAt: 1,
        publicKey: 'k',
      });
    await other.revokeSession('s-gone'); // logged out through another instance
    const r = await store.insertMessages([
      { message: item('p1', { text: 'a' }), author: 'Alice', session: 's-gone' },
      { message: item('p2', { text: 'b' }), author: 'Alice', session: 's-live' },
      { message: item('p3', { text: 'c' }), author: 'Alice' },
    ]);
    expect(r[0]).toMatchObject({ code: 'E_SESSION_INVALID' });
    expect([ok(r[1]!).seq, ok(r[2]!).seq]).toEqual([1, 2]);
    expect(await store.getItem('p1')).toBeUndefined();
  });

  it('history pages newest first in channel order; before, hasMore; only messages; related', async () => {
    const ids = ['h1', 'h2', 'h3', 'h4', 'h5'];
    await store.insertMessages(
      ids.map((id) => ({ message: item(id, { text: id }), author: 'alice' })),
    );
    const react = (id: string, target: string) => ({
      message: item(id, { kind: 'react', target, emoji: '👍' }),
      author: 'alice',
    });
    await store.insertMessages([react('r1', 'h5'), react('r2', 'h4'), react('r3', 'h5')]);
    await store.insertMessages([
      react('r4', 'h3'),
      { message: item('e1', { kind: 'edit', target: 'h1', text: 'h1 again' }), author: 'alice' },
    ]);
    const p1 = await store.history(C1, 2);
    expect(p1.messages.map((m) => m.id)).toEqual(['h4', 'h5']);
    expect(p1.hasMore).toBe(true);
    // Message by message (the page's oldest first), each one's items in HLC order; none of h3.
    expect(p1.related.map((m) => m.id)).toEqual(['r2', 'r1', 'r3']);
    const p2 = await store.history(C1, 10, 'h4');
    expect(p2).toMatchObject({ hasMore: false });
    expect(p2.messages.map((m) => m.id)).toEqual(['h1', 'h2', 'h3']);
    expect(p2.related.map((m) => m.id)).toEqual(['e1', 'r4']);
    expect(await store.history(C1, 10, 'h1')).toEqual({
      messages: [],
      hasMore: false,
      related: [],
    });
    await expect(store.history(C1, 10, 'nope')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await store.createChannel({
      id: C2,
      name: 'other',
      owner: 'Alice',
      allowVisitors: false,
      createdAt: 11,
    });
    await store.insertMessages([{ message: item('x1', { text: 'x1' }, C2), author: 'alice' }]);
    await expect(store.history(C1, 10, 'x1')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    expect((await store.related(['h5', 'h1'])).map((m) => m.id)).toEqual(['r1', 'r3', 'e1']);
  });

  it('item rules: edits by their author, deletes erase, tombstones, channel changes, removal', async () => {
    await store.addMember(C1, 'bob');
    const m = item('m1', { text: 'hello harbour' });
    await store.insertMessages([{ message: m, author: 'bob' }]);
    const refused = await store.insertMessages([
      { message: item('e0', { kind: 'edit', target: 'm1', text: 'by alice' }), author: 'carol' },
      { message: item('e1', { kind: 'edit', target: 'nope', text: 'x' }), author: 'bob' },
      { message: item('ch0', { kind: 'channel', change: { name: 'mine' } }), author: 'bob' },
    ]);
    expect(refused.map((r) => (r as HchatError).code)).toEqual([
      'E_FORBIDDEN',
      'E_NOT_FOUND',
      'E_FORBIDDEN',
    ]);
    const edit = item('e2', { kind: 'edit', target: 'm1', text: 'hello lighthouse' });
    await store.insertMessages([{ message: edit, author: 'bob' }]);
    expect((await store.search(searchWords('lightho'), [C1], 10)).map((x) => x.id)).toEqual(['m1']);
    expect(await store.search(searchWords('harbour'), [C1], 10)).toEqual([]);
    // The owner deletes it: the message and its edit lose their text.
    const del = item('d1', { kind: 'delete', target: 'm1' });
    const [d] = await store.insertMessages([{ message: del, author: 'alice' }]);
    expect(ok(d!).seq).toBe(3);
    expect((await store.getItem('m1'))!.text).toBeUndefined();
    expect((await store.getItem('m1'))!.digest).toBeDefined();
    expect((await store.getItem('e2'))!.digest).toBeDefined();
    expect(await store.search(searchWords('lighthouse'), [C1], 10)).toEqual([]);
    // An edit arriving after its delete is stored as a tombstone.
    const late = item('e3', { kind: 'edit', target: 'm1', text: 'too late' });
    const [l] = await store.insertMessages([{ message: late, author: 'bob' }]);
    expect(ok(l!).stored.digest).toBeDefined();
    expect(ok(l!).stored.text).toBeUndefined();
    // The owner renames the channel and removes bob; bob's bot leaves in the same insert (its
    // `leavers`), another account stays, and the owner never leaves.
    await store.addMember(C1, 'bobbot', 1000);
    await store.addMember(C1, 'carlbot', 1000);
    await store.insertMessages([
      {
        message: item('c1', { kind: 'channel', change: { name: 'lobby', topic: 'hi' } }),
        author: 'alice',
      },
      {
        message: item('c2', { kind: 'channel', change: { remove: 'BOB' } }),
        author: 'alice',
        leavers: ['BobBot', 'Alice'],
      },
    ]);
    expect(await store.getChannel(C1)).toMatchObject({ name: 'lobby', topic: 'hi' });
    expect(await store.isMember(C1, 'bob')).toBe(false);
    expect(await store.isMember(C1, 'bobbot')).toBe(false);
    expect(await store.isMember(C1, 'carlbot')).toBe(true);
    expect(await store.isMember(C1, 'alice')).toBe(true);
    expect(await store.isRemoved(C1, 'Bob')).toBe(true);
    // Deleted: the channel and all in it are gone; later items find no channel.
    const r = await store.insertMessages([
      { message: item('c3', { kind: 'channel', change: { deleted: true } }), author: 'alice' },
      { message: item('after', { text: 'x' }), author: 'alice' },
    ]);
    expect(ok(r[0]!).duplicate).toBe(false);
    expect(r[1]).toMatchObject({ code: 'E_CHANNEL_NOT_FOUND' });
    expect(await store.getChannel(C1)).toBeUndefined();
    expect(await store.since(C1, 0, 100)).toEqual([]);
    expect(await store.members(C1)).toEqual([]);
  });

  it('search: prefixes of every word, any case and accents, newest first, before, channels', async () => {
    await store.createChannel({
      id: C2,
      name: 'b',
      owner: 'bob',
      allowVisitors: false,
      createdAt: 11,
    });
    await store.insertMessages([
      { message: item('s1', { text: 'Café au lait at the Harbour' }), author: 'alice' },
      { message: item('s2', { text: 'harbour-master meeting' }), author: 'alice' },
      { message: item('s3', { text: 'the harbour elsewhere' }, C2), author: 'bob' },
      { message: item('s4', { text: 'nothing here' }), author: 'alice' },
    ]);
    const ids = async (q: string, ch = [C1], before?: string) =>
      (await store.search(searchWords(q), ch, 10, before)).map((m) => m.id);
    expect(await ids('HARB')).toEqual(['s2', 's1']);
    expect(await ids('cafe harb')).toEqual(['s1']);
    expect(await ids('CAFÉ')).toEqual(['s1']);
    expect(await ids('master')).toEqual(['s2']);
    expect(await ids('arbour')).toEqual([]);
    expect(await ids('harbour', [C1, C2])).toEqual(['s3', 's2', 's1']);
    expect(await ids('harbour', [C1, C2], 's3')).toEqual(['s2', 's1']);
    expect(await ids('harbour', [C1], 'nope')).toEqual([]);
    // `before` of a channel not searched answers as an unknown id: it tells nothing of where, or
    // whether, that message is (test/outsider/search-punch.test.ts: an existence oracle).
    expect(await ids('harbour', [C1], 's3')).toEqual([]);
    expect(await ids('harbour', [])).toEqual([]);
    expect(await store.search([], [C1], 10)).toEqual([]);
    expect((await store.search(searchWords('harbour'), [C1], 1)).map((m) => m.id)).toEqual(['s2']);
  });

  const BACKOFF = { backoffBaseMs: 1000, backoffMaxMs: 5000, forgetAfterMs: 10_000 };
  const SWEEP = { forgetAfterMs: 10_000, registrationWindowMs: 3600_000, max: 1000 };

  it('login budgets: counted, locked with doubling backoff up to the cap, forgotten, cleared, swept', async () => {
    expect(await store.loginBudgets(['a', 'b'], 0, 10_000)).toEqual(new Map());
    const fail = (now: number) =>
      store.addLoginFailures(
        [
          { key: 'b', limit: 3 },
          { key: 'a', limit: 2 },
        ],
        now,
        BACKOFF,
      );
    expect(await fail(100)).toEqual([
      { failures: 1, lockedUntil: 0, lastFailure: 100 },
      { failures: 1, lockedUntil: 0, lastFailure: 100 },
    ]);
    expect(await fail(200)).toEqual([
      { failures: 2, lockedUntil: 0, lastFailure: 200 },
      { failures: 2, lockedUntil: 1200, lastFailure: 200 },
    ]);
    const after = await fail(300);
    expect(after.map((b) => b.lockedUntil)).toEqual([1300, 2300]);
    for (let t = 400; t < 1000; t += 100) await fail(t);
    expect((await fail(1000))[1]).toEqual({ failures: 10, lockedUntil: 6000, lastFailure: 1000 });
    expect(await store.loginBudgets(['a', 'b', 'c'], 1000, 10_000)).toEqual(
      new Map([
        ['a', { failures: 10, lockedUntil: 6000, lastFailure: 1000 }],
        ['b', { failures: 10, lockedUntil: 6000, lastFailure: 1000 }],
      ]),
    );
    // Idle and unlocked for longer than forgetAfterMs: as good as absent, and counted from 1.
    expect(await store.loginBudgets(['a'], 11_001, 10_000)).toEqual(new Map());
    expect(await store.addLoginFailures([{ key: 'a', limit: 2 }], 11_001, BACKOFF)).toEqual([
      { failures: 1, lockedUntil: 0, lastFailure: 11_001 },
    ]);
    await store.clearLoginBudget('a');
    expect((await store.loginBudgets(['a', 'b'], 11_002, 10_000)).has('a')).toBe(false);
    // The sweep deletes what is forgotten, at most `max` at a time; a locked budget stays.
    for (let i = 0; i < 5; i++)
      await store.addLoginFailures([{ key: `old${i}`, limit: 9 }], 20_000, BACKOFF);
    await store.addLoginFailures([{ key: 'locked', limit: 1 }], 20_000, {
      ...BACKOFF,
      backoffBaseMs: 60_000,
      backoffMaxMs: 60_000,
    });
    expect(await store.sweepLimits(30_001, { ...SWEEP, max: 3 })).toBe(3);
    expect(await store.sweepLimits(30_001, SWEEP)).toBe(3); // two old ones and 'b'
    expect(await store.sweepLimits(30_001, SWEEP)).toBe(0);
    expect((await store.loginBudgets(['locked'], 30_001, 10_000)).get('locked')?.failures).toBe(1);
  });

  it('known login prefixes: newest first, the newest `keep` kept, refreshed', async () => {
    expect(await store.knownLoginPrefixes('alice')).toEqual([]);
    for (let i = 0; i < 4; i++) await store.rememberLoginPrefix('alice', `p${i}`, 100 + i, 3);
    await store.rememberLoginPrefix('bob', 'p0', 50, 3);
    expect(await store.knownLoginPrefixes('alice')).toEqual([
      { prefix: 'p3', lastAt: 103 },
      { prefix: 'p2', lastAt: 102 },
      { prefix: 'p1', lastAt: 101 },
    ]);
    await store.rememberLoginPrefix('alice', 'p1', 200, 3);
    await store.rememberLoginPrefix('alice', 'p9', 201, 3);
    expect((await store.knownLoginPrefixes('alice')).map((p) => p.prefix)).toEqual([
      'p9',
      'p1',
      'p3',
    ]);
    expect(await store.knownLoginPrefixes('bob')).toEqual([{ prefix: 'p0', lastAt: 50 }]);
  });

  it('registrations: `limit` per window and address prefix, given back, swept', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const t = await store.takeRegistration('10.0.0.0/24', 1000 + i, 3, 60_000);
      if (!('id' in t)) throw new Error('refused');
      ids.push(t.id);
    }
    expect(await store.takeRegistration('10.0.0.0/24', 2000, 3, 60_000)).toEqual({
      retryAfterMs: 1000 + 60_000 - 2000,
    });
    expect(await store.takeRegistration('10.0.1.0/24', 2000, 3, 60_000)).toHaveProperty('id');
    await store.releaseRegistration(ids[2]!);
    expect(await store.takeRegistration('10.0.0.0/24', 2000, 3, 60_000)).toHaveProperty('id');
    expect(await store.takeRegistration('10.0.0.0/24', 61_000, 3, 60_000)).toHaveProperty('id');
    // Out of the window (four rows, at 1000 to 2000): swept at most `max` at a time.
    const sweep = { ...SWEEP, registrationWindowMs: 60_000 };
    expect(await store.sweepLimits(62_000, { ...sweep, max: 1 })).toBe(1);
    expect(await store.sweepLimits(62_000, sweep)).toBe(3);
    expect(await store.sweepLimits(62_000, sweep)).toBe(0);
    for (let i = 0; i < 2; i++)
      expect(await store.takeRegistration('10.0.0.0/24', 62_000, 3, 60_000)).toHaveProperty('id');
    expect(await store.takeRegistration('10.0.0.0/24', 62_000, 3, 60_000)).toEqual({
      retryAfterMs: 61_000 + 60_000 - 62_000,
    });
  });

  it('visitor names: held by one session at a time, all keys or none, renewed, released, expired', async () => {
    const lease = (keys: string[], sessionId: string, instance: string, expiresAt = 1000) => ({
      keys,
      sessionId,
      instance,
      expiresAt,
    });
    expect(await store.claimVisitorName(lease(['rover'], 'v1', 'A'), 0)).toBe(true);
    // Another session, any instance: refused while the lease runs; the same session: taken again.
    expect(await store.claimVisitorName(lease(['rover'], 'v2', 'B'), 10)).toBe(false);
    expect(await store.visitorNameHolder('v1', 10)).toBe('A');
    expect(await store.claimVisitorName(lease(['rover'], 'v1', 'B', 2000), 10)).toBe(true);
    // The holder is where the session was taken last (a resume moves it), while its lease runs.
    expect(await store.visitorNameHolder('v1', 10)).toBe('B');
    expect(await store.visitorNameHolder('v1', 2000)).toBeUndefined();
    expect(await store.visitorNameHolder('nobody', 10)).toBeUndefined();
    // All keys or none: 'x' stays free when 'rover' is refused.
    expect(await store.claimVisitorName(lease(['x', 'rover'], 'v3', 'A'), 10)).toBe(false);
    expect(await store.claimVisitorName(lease(['x'], 'v4', 'A'), 10)).toBe(true);
    // Only the instance holding a session's keys renews or releases them (v1 moved to B); the
    // renewal answers the sessions it holds fewer keys of than given (v1: none here any more).
    expect(
      await store.renewVisitorNames(
        'A',
        [
          { sessionId: 'v1', keys: ['rover'] },
          { sessionId: 'v4', keys: ['x'] },
        ],
        20,
        1500,
      ),
    ).toEqual(['v1']);
    await store.releaseVisitorName('v1', 'A');
    expect(await store.claimVisitorName(lease(['rover'], 'v2', 'B'), 1600)).toBe(false);
    expect(await store.claimVisitorName(lease(['x'], 'v2', 'B'), 1400)).toBe(false);
    expect(await store.claimVisitorName(lease(['x'], 'v2', 'B'), 1500)).toBe(true); // ran out
    await store.releaseVisitorName('v1', 'B');
    expect(await store.claimVisitorName(lease(['rover'], 'v5', 'A'), 1600)).toBe(true);
    // A lease that ran out is forgotten by a renewal (any instance's), and its instance's next
    // renewal answers it short, each key counted: what it would claim again.
    expect(await store.claimVisitorName(lease(['p', 'q'], 'v6', 'C', 3000), 1600)).toBe(true);
    expect(await store.claimVisitorName(lease(['r'], 'v7', 'C', 3000), 1600)).toBe(true);
    expect(await store.renewVisitorNames('A', [], 3000, 4000)).toEqual([]);
    expect(await store.visitorNameHolder('v6', 2000)).toBeUndefined();
    expect(await store.claimVisitorName(lease(['q'], 'v8', 'D', 6000), 3000)).toBe(true);
    expect(
      (
        await store.renewVisitorNames(
          'C',
          [
            { sessionId: 'v6', keys: ['p', 'q'] },
            { sessionId: 'v7', keys: ['r'] },
          ],
          3000,
          6000,
        )
      ).sort(),
    ).toEqual(['v6', 'v7']);
    // Claimed again: v7 gets its key back; v6 cannot, 'q' is v8's now.
    expect(await store.claimVisitorName(lease(['r'], 'v7', 'C', 6000), 3000)).toBe(true);
    expect(await store.claimVisitorName(lease(['p', 'q'], 'v6', 'C', 6000), 3000)).toBe(false);
    expect(
      await store.renewVisitorNames(
        'C',
        [
          { sessionId: 'v6', keys: ['p', 'q'] },
          { sessionId: 'v7', keys: ['r'] },
        ],
        3000,
        6000,
      ),
    ).toEqual(['v6']);
    // Claims at once for the same key: exactly one wins.
    const at = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        store.claimVisitorName(lease(['k' + (i % 2), 'same'], `w${i}`, `I${i}`, 9000), 5000),
      ),
    );
    expect(at.filter(Boolean)).toHaveLength(1);
  });

  it('unheld visitor sessions: live visitor sessions whose name no unexpired lease holds', async () => {
    const session = (sessionId: string, role: 'user' | 'visitor') =>
      store.createSession({ sessionId, username: sessionId, role, createdAt: 1, publicKey: 'k' });
    for (const id of ['held', 'lapsed', 'never', 'gone']) await session('uv-' + id, 'visitor');
    await session('uv-user', 'user');
    await store.revokeSession('uv-gone');
    const lease = (key: string, sessionId: string, expiresAt: number) => ({
      keys: [key],
      sessionId,
      instance: 'A',
      expiresAt,
    });
    expect(await store.claimVisitorName(lease('uvheld', 'uv-held', 5000), 0)).toBe(true);
    expect(await store.claimVisitorName(lease('uvlapsed', 'uv-lapsed', 1000), 0)).toBe(true);
    // Users and revoked sessions never; a visitor whose lease runs only until it has run out.
    const unheld = async (now: number) =>
      (await store.unheldVisitorSessions(now, 100)).filter((id) => id.startsWith('uv-')).sort();
    expect(await unheld(500)).toEqual(['uv-never']);
    expect(await unheld(1000)).toEqual(['uv-lapsed', 'uv-never']);
    expect(await unheld(5000)).toEqual(['uv-held', 'uv-lapsed', 'uv-never']);
    expect(await store.unheldVisitorSessions(5000, 1)).toHaveLength(1);
  });

  it('two store objects counting at once: every failure counts once, no registration past the limit', async () => {
    const other = await another();
    const stores = [store, other];
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        stores[i % 2]!.addLoginFailures(
          [
            { key: 'pair|victim|p', limit: 40 },
            { key: 'addr|p', limit: 100 },
          ],
          5000,
          BACKOFF,
        ),
      ),
    );
    // Each failure saw the count its own increment made: 1..40, each once.
    expect(results.map((r) => r[0]!.failures).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 40 }, (_, i) => i + 1),
    );
    expect(results.filter((r) => r[0]!.lockedUntil > 0)).toHaveLength(1);
    expect((await other.loginBudgets(['addr|p'], 5000, 10_000)).get('addr|p')?.failures).toBe(40);
    const tickets = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        stores[i % 2]!.takeRegistration('10.9.9.0/24', 5000, 10, 60_000),
      ),
    );
    expect(tickets.filter((t) => 'id' in t)).toHaveLength(10);
  });

  it('two store objects adding channels and memberships at once never pass the caps', async () => {
    const stores = [store, await another()];
    const caps = { owned: 4, memberships: 6 };
    const created = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) =>
        stores[i % 2]!.createChannel(
          { id: `cap-${i}`, name: 'c', owner: 'mallory', allowVisitors: false, createdAt: i },
          caps,
        ),
      ),
    );
    expect(created.filter((r) => r.status === 'fulfilled')).toHaveLength(4);
    for (const r of created)
      if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'E_FORBIDDEN' });
    expect(await store.ownedChannels('Mallory')).toBe(4);
    for (let i = 0; i < 6; i++)
      await store.createChannel({
        id: `open-${i}`,
        name: 'o',
        owner: 'Alice',
        allowVisitors: true,
        createdAt: 100 + i,
      });
    const joined = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => stores[i % 2]!.addMember(`open-${i}`, 'MALLORY', 6)),
    );
    expect(joined.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
    expect(await store.memberships('mallory')).toBe(6);
    // Joining a channel one is a member of again is no new membership, even at the cap: one of
    // those mallory made (which four of the twelve did is the race's to say).
    const owned = created.findIndex((r) => r.status === 'fulfilled');
    await store.addMember(`cap-${owned}`, 'mallory', 6);
    // At the memberships cap, an account may not own one more either.
    await expect(
      store.createChannel(
        { id: 'cap-x', name: 'c', owner: 'mallory', allowVisitors: false, createdAt: 1 },
        { owned: 10, memberships: 6 },
      ),
    ).rejects.toMatchObject({ code: 'E_FORBIDDEN' });
  });
});
