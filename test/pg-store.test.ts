/**
 * The PostgreSQL store with several server instances on one database: each instance is a store
 * with its own pool. Posts into one channel from all at once are numbered 1..N without gap or
 * repeat, and instances starting at once on a fresh database apply each migration once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { HchatError } from '../src/protocol/errors.js';
import { PostgresServerStore } from '../src/store/pg/pg-server-store.js';
import { PG_MIGRATIONS } from '../src/store/pg/migrations.js';
import { createTestDatabase } from './pg-kit.js';

const C = '00000000-0000-4000-8000-00000000000c';
let db: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => db?.drop());

describe('PostgreSQL store, several instances', () => {
  it('two instances opening a fresh database at once apply each migration once', async () => {
    const stores = await Promise.all([1, 2, 3].map(() => PostgresServerStore.open(db.url)));
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    const r = await c.query('SELECT version FROM schema_migrations ORDER BY version');
    await c.end();
    expect(r.rows.map((x) => x.version)).toEqual(PG_MIGRATIONS.map((_, i) => i + 1));
    await Promise.all(stores.map((s) => s.close()));
  });

  it('instances inserting into one channel at once: seqs 1..N, no gap, no repeat', async () => {
    const [a, b] = await Promise.all([
      PostgresServerStore.open(db.url),
      PostgresServerStore.open(db.url),
    ]);
    try {
      await a.createChannel({
        id: C,
        name: 'busy',
        owner: 'o',
        allowVisitors: false,
        createdAt: 1,
      });
      const BATCHES = 40;
      const PER = 5;
      const batch = (who: string, k: number) =>
        Array.from({ length: PER }, (_, i) => ({
          author: who,
          message: {
            id: `${who}-${k}-${i}`,
            channelId: C,
            ts: 1000 + k,
            lc: i,
            text: `${who} ${k} ${i}`,
            sig: 's',
            cert: 'c',
          },
        }));
      // Each instance sends its batches concurrently (its pool has 10 connections).
      const results = await Promise.all(
        ['a', 'b'].flatMap((who) =>
          Array.from({ length: BATCHES }, (_, k) =>
            (who === 'a' ? a : b).insertMessages(batch(who, k)),
          ),
        ),
      );
      const seqs = results.flat().map((r) => {
        if (r instanceof HchatError) throw r;
        expect(r.duplicate).toBe(false);
        return r.seq;
      });
      const N = 2 * BATCHES * PER;
      expect([...seqs].sort((x, y) => x - y)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
      expect(await b.lastSeq(C)).toBe(N);
      const all = await a.since(C, 0, N + 10);
      expect(all.map((m) => m.seq)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
      // Each batch's items got consecutive numbers (one transaction each).
      for (const r of results) {
        const s = r.map((x) => (x as { seq: number }).seq);
        expect(s).toEqual(s.map((_, i) => s[0]! + i));
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
