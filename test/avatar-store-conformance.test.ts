/**
 * One suite, both avatar stores (issue 16): the newest record wins, names are case-blind, the
 * record comes back as it was set, on SQLite and on PostgreSQL (a database of its own each run).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteAvatarStore, type AvatarStore } from '../src/store/avatar-store.js';
import { PostgresAvatarStore } from '../src/store/pg/pg-avatar-store.js';
import { avatarHash } from '../src/shared/avatar-sig.js';
import { createTestDatabase } from './pg-kit.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-avatar-conformance-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;

const STORES: [string, () => Promise<{ store: AvatarStore; done: () => Promise<void> }>][] = [
  [
    'sqlite',
    async () => {
      const store = new SqliteAvatarStore(path.join(dir, `s${n++}`));
      return { store, done: () => store.close() };
    },
  ],
  [
    'postgres',
    async () => {
      const db = await createTestDatabase();
      const store = await PostgresAvatarStore.open(db.url);
      return {
        store,
        done: async () => {
          await store.close();
          await db.drop();
        },
      };
    },
  ],
];

const record = (username: string, fill: number, ts: number) => ({
  username,
  type: 'image/png' as const,
  data: Buffer.alloc(100, fill).toString('base64'),
  ts,
  sig: `sig${fill}`,
  cert: `cert${fill}`,
});

describe.each(STORES)('AvatarStore conformance: %s', (_name, open) => {
  let store: AvatarStore;
  let done: () => Promise<void>;
  beforeEach(async () => {
    ({ store, done } = await open());
  });
  afterEach(async () => {
    await done();
  });

  it('keeps the newest record per user, case-blind, and gives it back as set', async () => {
    expect(await store.info('erin')).toBeUndefined();
    expect(await store.get('erin')).toBeUndefined();
    const hash = avatarHash(Buffer.alloc(100, 1));
    expect(await store.put(record('Erin', 1, 10))).toEqual({ username: 'Erin', hash, ts: 10 });
    // Older: ignored; the answer is what is held.
    expect(await store.put(record('erin', 2, 5))).toEqual({ username: 'Erin', hash, ts: 10 });
    expect(await store.get('ERIN')).toEqual(record('Erin', 1, 10));
    const newer = await store.put(record('erin', 3, 11));
    expect(newer).toEqual({ username: 'erin', hash: avatarHash(Buffer.alloc(100, 3)), ts: 11 });
    expect(await store.info('Erin')).toEqual(newer);
    expect(await store.get('erin')).toEqual(record('erin', 3, 11));
  });
});
