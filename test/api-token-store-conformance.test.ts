/**
 * One suite, both API token stores (issue 17): bots and tokens behave alike on SQLite and on
 * PostgreSQL (each PostgreSQL run in a database of its own, dropped after): every field round
 * trips, usernames compare without regard to case, the caps count only what they should,
 * revocation changes only what it may; and on PostgreSQL two store objects (two server
 * instances) adding at once never pass a cap, and one's revocation is the other's next read.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ApiTokenRecord, ApiTokenStore, BotRecord } from '../src/store/api-token-store.js';
import { SqliteApiTokenStore } from '../src/store/sqlite-api-token-store.js';
import { PostgresApiTokenStore } from '../src/store/pg/pg-api-token-store.js';
import { createTestDatabase } from './pg-kit.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-token-conformance-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** A store, how to open it again on the same data, and how to end it. */
interface Opened {
  store: ApiTokenStore;
  reopen: () => Promise<ApiTokenStore>;
  done: () => Promise<void>;
}

const STORES: [string, () => Promise<Opened>][] = [
  [
    'sqlite',
    async () => {
      const d = path.join(dir, `s${n++}`);
      fs.mkdirSync(d);
      const o: Opened = {
        store: new SqliteApiTokenStore(d),
        reopen: async () => {
          await o.store.close();
          o.store = new SqliteApiTokenStore(d);
          return o.store;
        },
        done: () => o.store.close(),
      };
      return o;
    },
  ],
  [
    'postgres',
    async () => {
      const db = await createTestDatabase();
      const o: Opened = {
        store: await PostgresApiTokenStore.open(db.url),
        reopen: async () => {
          await o.store.close();
          o.store = await PostgresApiTokenStore.open(db.url);
          return o.store;
        },
        done: async () => {
          await o.store.close();
          await db.drop();
        },
      };
      return o;
    },
  ],
];

let made = 0;

/** A token of `owner` acting as `account`, made at `createdAt` (a distinct id and hash each). */
function token(owner: string, over: Partial<ApiTokenRecord> = {}): ApiTokenRecord {
  const i = made++;
  return {
    id: `tok_${crypto.randomBytes(16).toString('base64url')}`,
    account: owner,
    owner,
    name: `token ${i}`,
    secretHash: crypto.createHash('sha256').update(`secret ${i}`).digest('base64url'),
    scopes: ['read'],
    channels: null,
    createdAt: 1000 + i,
    expiresAt: null,
    revokedAt: null,
    ...over,
  };
}

const bot = (username: string, owner: string, createdAt: number): BotRecord => ({
  username,
  owner,
  createdAt,
});

describe.each(STORES)('ApiTokenStore conformance: %s', (_name, open) => {
  let o: Opened;
  let store: ApiTokenStore;
  beforeEach(async () => {
    o = await open();
    store = o.store;
  });
  afterEach(async () => {
    await o.done();
  });

  it('round-trips every field of a token, and keeps them when opened again', async () => {
    const all: ApiTokenRecord = token('Alice', {
      account: 'HelperBot',
      name: 'deploy ✓ (CI)',
      scopes: ['read', 'write'],
      channels: ['c_one', 'c-Two', 'c "three", {x}'],
      createdAt: 1_700_000_000_123,
      expiresAt: 1_800_000_000_456,
    });
    const bare = token('alice', { channels: null, expiresAt: null });
    const none = token('alice', { channels: [], scopes: ['write'] });
    const revoked = token('alice', { revokedAt: 1_700_000_000_999 });
    await store.ping();
    for (const t of [all, bare, none, revoked]) expect(await store.addToken(t, 10, 0)).toBe(true);
    expect(await store.getToken(all.id)).toEqual(all);
    expect(await store.getToken(bare.id)).toEqual(bare);
    expect(await store.getToken(none.id)).toEqual(none);
    expect(await store.getToken(revoked.id)).toEqual(revoked);
    expect((await store.getToken(bare.id))?.channels).toBeNull();
    expect((await store.getToken(bare.id))?.expiresAt).toBeNull();
    expect(await store.getToken('tok_unknown')).toBeUndefined();
    // Ids are compared exactly: another spelling is another (unknown) id.
    expect(await store.getToken(all.id.toUpperCase())).toBeUndefined();
    const again = await o.reopen();
    await again.ping();
    expect(await again.getToken(all.id)).toEqual(all);
    expect(await again.tokensOf('ALICE')).toEqual([all, revoked, none, bare]);
  });

  it('keeps bots by name without regard to case, oldest first, up to the cap', async () => {
    expect(await store.addBot(bot('Later', 'Alice', 30), 3)).toBe(true);
    expect(await store.addBot(bot('Earlier', 'alice', 10), 3)).toBe(true);
    expect(await store.addBot(bot('other', 'bob', 5), 3)).toBe(true);
    expect(await store.getBot('earlier')).toEqual(bot('Earlier', 'alice', 10));
    expect(await store.getBot('LATER')).toEqual(bot('Later', 'Alice', 30));
    expect(await store.getBot('nobody')).toBeUndefined();
    expect(await store.botsOf('ALICE')).toEqual([
      bot('Earlier', 'alice', 10),
      bot('Later', 'Alice', 30),
    ]);
    expect(await store.botsOf('nobody')).toEqual([]);
    // The cap counts the owner's bots, however the owner is spelled, and no one else's.
    expect(await store.addBot(bot('Third', 'aLiCe', 40), 3)).toBe(true);
    expect(await store.addBot(bot('Fourth', 'ALICE', 50), 3)).toBe(false);
    expect(await store.getBot('fourth')).toBeUndefined();
    expect((await store.botsOf('alice')).map((b) => b.username)).toEqual([
      'Earlier',
      'Later',
      'Third',
    ]);
    expect(await store.addBot(bot('second', 'bob', 6), 3)).toBe(true);
    // A name is one bot's, whatever its case: a second one is refused, the first kept.
    await expect(store.addBot(bot('OTHER', 'carol', 7), 3)).rejects.toThrow();
    expect(await store.getBot('other')).toEqual(bot('other', 'bob', 5));
    expect(await store.botsOf('carol')).toEqual([]);
  });

  it('lists an owner’s tokens newest first, revoked and bots’ ones too, whatever the case', async () => {
    const a = token('Alice', { createdAt: 10 });
    const c = token('alice', { account: 'HelperBot', createdAt: 30 });
    const b = token('ALICE', { createdAt: 20, revokedAt: 25 });
    const other = token('bob', { createdAt: 40 });
    for (const t of [a, c, b, other]) expect(await store.addToken(t, 10, 0)).toBe(true);
    expect(await store.tokensOf('alice')).toEqual([c, b, a]);
    expect(await store.tokensOf('aLICE')).toEqual([c, b, a]);
    expect(await store.tokensOf('Bob')).toEqual([other]);
    expect(await store.tokensOf('helperbot')).toEqual([]);
    expect(await store.tokensOf('nobody')).toEqual([]);
    // Made in the same millisecond: the larger id (bytewise) first, on either store.
    const lower = token('dora', { id: 'tok_aaaaaaaaaaaaaaaaaaaaaa', createdAt: 50 });
    const upper = token('dora', { id: 'tok_Aaaaaaaaaaaaaaaaaaaaaa', createdAt: 50 });
    const digit = token('dora', { id: 'tok_0aaaaaaaaaaaaaaaaaaaaa', createdAt: 50 });
    for (const t of [upper, digit, lower]) expect(await store.addToken(t, 10, 0)).toBe(true);
    expect((await store.tokensOf('dora')).map((t) => t.id)).toEqual([lower.id, upper.id, digit.id]);
  });

  it('caps an owner’s live tokens: revoked and expired ones do not count', async () => {
    const now = 5000;
    const live1 = token('alice', { expiresAt: null });
    const live2 = token('Alice', { account: 'HelperBot', expiresAt: now + 1 });
    const expired = token('alice', { expiresAt: now - 1 });
    const expiresNow = token('alice', { expiresAt: now });
    const revoked = token('alice', { revokedAt: 100 });
    for (const t of [live1, live2, expired, expiresNow, revoked])
      expect(await store.addToken(t, 10, 0)).toBe(true);
    expect(await store.addToken(token('bob'), 10, 0)).toBe(true);
    // Two live at `now`, whatever the owner's spelling: a third is allowed under 3, not under 2.
    const refused = token('ALICE');
    expect(await store.addToken(refused, 2, now)).toBe(false);
    expect(await store.getToken(refused.id)).toBeUndefined();
    expect((await store.tokensOf('alice')).length).toBe(5);
    const third = token('ALICE', { account: 'OtherBot' });
    expect(await store.addToken(third, 3, now)).toBe(true);
    expect(await store.addToken(token('alice'), 3, now)).toBe(false);
    // Revoking one frees a place; so does time passing live2's expiry.
    expect(await store.revokeToken(live1.id, 'alice', now)).toBe(true);
    const fourth = token('alice');
    expect(await store.addToken(fourth, 3, now)).toBe(true);
    expect(await store.addToken(token('alice'), 3, now)).toBe(false);
    expect(await store.addToken(token('alice'), 3, now + 1)).toBe(true);
    // At time 0 the expired ones were live: the cap is judged at the `now` given.
    expect(await store.addToken(token('alice'), 6, 0)).toBe(false);
    expect((await store.tokensOf('alice')).length).toBe(8);
  });

  it('revokes only an owner’s own live token, once', async () => {
    const mine = token('Alice', { account: 'HelperBot' });
    const theirs = token('bob');
    for (const t of [mine, theirs]) expect(await store.addToken(t, 10, 0)).toBe(true);
    // Someone else's, or unknown: false, nothing changes.
    expect(await store.revokeToken(theirs.id, 'alice', 200)).toBe(false);
    expect(await store.revokeToken(mine.id, 'bob', 200)).toBe(false);
    expect(await store.revokeToken(mine.id, 'HelperBot', 200)).toBe(false);
    expect(await store.revokeToken('tok_unknown', 'alice', 200)).toBe(false);
    expect(await store.getToken(theirs.id)).toEqual(theirs);
    expect(await store.getToken(mine.id)).toEqual(mine);
    // The owner, however spelled: true, stamped with `now`.
    expect(await store.revokeToken(mine.id, 'ALICE', 300)).toBe(true);
    expect(await store.getToken(mine.id)).toEqual({ ...mine, revokedAt: 300 });
    // Revoked already: false, and the first revocation's time stays.
    expect(await store.revokeToken(mine.id, 'alice', 400)).toBe(false);
    expect(await store.getToken(mine.id)).toEqual({ ...mine, revokedAt: 300 });
    expect(await store.tokensOf('alice')).toEqual([{ ...mine, revokedAt: 300 }]);
    expect(await store.getToken(theirs.id)).toEqual(theirs);
  });

  it('revokes every token acting as an account, counting only those it revoked', async () => {
    const t1 = token('alice', { account: 'HelperBot' });
    const t2 = token('carol', { account: 'helperbot' });
    const before = token('alice', { account: 'HELPERBOT', revokedAt: 50 });
    const own = token('alice');
    const other = token('alice', { account: 'OtherBot' });
    for (const t of [t1, t2, before, own, other]) expect(await store.addToken(t, 10, 0)).toBe(true);
    expect(await store.revokeTokensOf('helperBot', 500)).toBe(2);
    expect(await store.getToken(t1.id)).toEqual({ ...t1, revokedAt: 500 });
    expect(await store.getToken(t2.id)).toEqual({ ...t2, revokedAt: 500 });
    expect(await store.getToken(before.id)).toEqual(before);
    expect(await store.getToken(own.id)).toEqual(own);
    expect(await store.getToken(other.id)).toEqual(other);
    expect(await store.revokeTokensOf('HelperBot', 600)).toBe(0);
    expect(await store.getToken(t1.id)).toEqual({ ...t1, revokedAt: 500 });
    expect(await store.revokeTokensOf('nobody', 600)).toBe(0);
  });
});

describe('PostgresApiTokenStore: two instances at once', () => {
  let drop: () => Promise<void>;
  let stores: PostgresApiTokenStore[] = [];
  beforeEach(async () => {
    let url: string;
    ({ url, drop } = await createTestDatabase());
    stores = await Promise.all([PostgresApiTokenStore.open(url), PostgresApiTokenStore.open(url)]);
  });
  afterEach(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await drop();
  });

  it('never passes an owner’s token cap, however many add at once', async () => {
    const [a, b] = stores as [PostgresApiTokenStore, PostgresApiTokenStore];
    const spellings = ['alice', 'Alice', 'ALICE', 'aLiCe'];
    const adds = Array.from({ length: 24 }, (_, i) =>
      (i % 2 ? a : b).addToken(token(spellings[i % 4]!, { account: `bot${i % 3}` }), 5, 0),
    );
    const ok = (await Promise.all(adds)).filter((x) => x).length;
    expect(ok).toBe(5);
    expect((await a.tokensOf('alice')).length).toBe(5);
    expect((await b.tokensOf('ALICE')).length).toBe(5);
  });

  it('never passes an owner’s bot cap, however many add at once', async () => {
    const [a, b] = stores as [PostgresApiTokenStore, PostgresApiTokenStore];
    const adds = Array.from({ length: 20 }, (_, i) =>
      (i % 2 ? a : b).addBot(bot(`bot${i}`, i % 2 ? 'alice' : 'ALICE', i), 3),
    );
    const ok = (await Promise.all(adds)).filter((x) => x).length;
    expect(ok).toBe(3);
    expect((await b.botsOf('Alice')).length).toBe(3);
  });

  it('shows one instance’s revocation to the other’s next read', async () => {
    const [a, b] = stores as [PostgresApiTokenStore, PostgresApiTokenStore];
    const t = token('alice', { account: 'HelperBot' });
    const u = token('alice');
    expect(await a.addToken(t, 5, 0)).toBe(true);
    expect(await a.addToken(u, 5, 0)).toBe(true);
    expect(await b.getToken(t.id)).toEqual(t);
    expect(await a.revokeToken(t.id, 'alice', 700)).toBe(true);
    expect((await b.getToken(t.id))?.revokedAt).toBe(700);
    expect(await b.revokeToken(t.id, 'alice', 800)).toBe(false);
    expect(await b.revokeTokensOf('alice', 900)).toBe(1);
    expect((await a.getToken(u.id))?.revokedAt).toBe(900);
    expect((await a.getToken(t.id))?.revokedAt).toBe(700);
  });
});
