/**
 * The PostgreSQL store with several server instances on one database: each instance is a store
 * with its own pool. Posts into one channel from all at once are numbered 1..N without gap or
 * repeat, so are batches mixing channels and kinds (the set-based runs of new messages and the
 * items decided alone), and instances starting at once on a fresh database apply each
 * migration once.
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

  it('migration 7 gives the accounts there are their look-alike keys, oldest first', async () => {
    const old = await createTestDatabase();
    try {
      const c = new pg.Client({ connectionString: old.url });
      await c.connect();
      await c.query(`CREATE TABLE schema_migrations (
        version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`);
      for (let v = 0; v < 6; v++) {
        await c.query(PG_MIGRATIONS[v] as string);
        await c.query('INSERT INTO schema_migrations (version) VALUES ($1)', [v + 1]);
      }
      // Two look-alikes registered before the keys existed: the older keeps the key.
      for (const [name, at] of [
        ['alice', 1],
        ['rnallory', 2],
        ['mallory', 3],
      ] as const)
        await c.query('INSERT INTO users (username, pass_hash, created_at) VALUES ($1, $2, $3)', [
          name,
          'h',
          at,
        ]);
      await c.end();
      const store = await PostgresServerStore.open(old.url);
      try {
        for (const n of ['aIice', 'ma11ory', 'rnaIlory'])
          await expect(store.createUser({ username: n, passHash: 'h' }), n).rejects.toMatchObject({
            code: 'E_USERNAME_TAKEN',
          });
        await store.createUser({ username: 'bob', passHash: 'h' });
      } finally {
        await store.close();
      }
    } finally {
      await old.drop();
    }
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

  it('an id stored into another channel while a batch waits to insert it: the batch is decided again, no gap', async () => {
    const store = await PostgresServerStore.open(db.url);
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    const [c1, c2] = [
      '00000000-0000-4000-8000-0000000000e1',
      '00000000-0000-4000-8000-0000000000e2',
    ];
    try {
      for (const id of [c1, c2])
        await store.createChannel({ id, name: id, owner: 'o', allowVisitors: false, createdAt: 1 });
      const msg = (id: string, channelId: string) => ({
        author: 'o',
        message: { id, channelId, ts: 3000, lc: 0, text: id, sig: 's', cert: 'c' },
      });
      // Another instance's transaction holds 'contested' in c2, not yet committed: the batch's
      // lookup does not see it, and its insert waits on the unique index.
      await other.query('BEGIN');
      await other.query('SELECT id FROM channels WHERE id = $1 FOR UPDATE', [c2]);
      await other.query(
        `INSERT INTO messages (id, channel_id, seq, author, ts, lc, text, sig, cert, kind, received_at)
         VALUES ('contested', $1, 1, 'o', 1, 0, 'theirs', 's', 'c', 'message', 1)`,
        [c2],
      );
      const pending = store.insertMessages([
        msg('first', c1),
        msg('contested', c1),
        msg('last', c1),
      ]);
      for (let waited = 0; ; waited += 20) {
        const r = await other.query(
          "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        );
        if (r.rows.length > 0) break;
        if (waited > 10_000) throw new Error('the batch never waited on the contested id');
        await new Promise((r) => setTimeout(r, 20));
      }
      await other.query('UPDATE channels SET last_seq = 1 WHERE id = $1', [c2]);
      await other.query('COMMIT');
      const results = await pending;
      expect(results[1]).toMatchObject({ code: 'E_MESSAGE_CONFLICT' });
      expect(
        results.filter((r) => !(r instanceof HchatError)).map((r) => (r as { seq: number }).seq),
      ).toEqual([1, 2]);
      expect((await store.since(c1, 0, 10)).map((m) => [m.id, m.seq])).toEqual([
        ['first', 1],
        ['last', 2],
      ]);
      expect(await store.lastSeq(c1)).toBe(2);
    } finally {
      await other.end();
      await store.close();
    }
  });

  it('batches at once over several channels, mixed items, one id raced into two channels: numbers 1..N per channel, every answer stored once', async () => {
    const [a, b] = await Promise.all([
      PostgresServerStore.open(db.url),
      PostgresServerStore.open(db.url),
    ]);
    const chans = ['1', '2', '3'].map((n) => `00000000-0000-4000-8000-0000000000d${n}`);
    try {
      for (const id of chans)
        await a.createChannel({ id, name: id, owner: 'o', allowVisitors: false, createdAt: 1 });
      const msg = (id: string, channelId: string, k: number, more: object = {}) => ({
        author: 'o',
        message: { id, channelId, ts: 2000 + k, lc: 0, sig: 's', cert: 'c', ...more },
      });
      // Runs of new messages broken by an edit and a reaction of a message of the same batch
      // (which must see it stored) and by a message sent twice (a duplicate).
      const batch = (who: string, k: number) => {
        const [c1, c2] = [chans[k % 3]!, chans[(k + 1) % 3]!];
        const m = (i: number, c = c1) => msg(`${who}${k}-${i}`, c, k, { text: `word${k} ${i}` });
        return [
          m(0),
          m(1, c2),
          m(2),
          msg(`${who}${k}-e`, c1, k, { kind: 'edit', target: `${who}${k}-0`, text: `edited${k}` }),
          m(3),
          m(3),
          msg(`${who}${k}-r`, c2, k, { kind: 'react', target: `${who}${k}-1`, emoji: '👍' }),
          m(4, c2),
          msg(`race${k}`, who === 'a' ? c1 : c2, k, { text: who }),
        ];
      };
      const BATCHES = 24;
      const sent = ['a', 'b'].flatMap((who) =>
        Array.from({ length: BATCHES }, (_, k) => ({ who, k, items: batch(who, k) })),
      );
      const results = await Promise.all(
        sent.map(({ who, items }) => (who === 'a' ? a : b).insertMessages(items)),
      );
      const acked = new Map<string, { seq: number; channelId: string }>();
      results.forEach((rs, j) =>
        rs.forEach((r, i) => {
          const { message: m } = sent[j]!.items[i]!;
          if (r instanceof HchatError) {
            // Only the losing copy of a raced id, sent into another channel, is refused.
            expect(m.id.startsWith('race') && r.code === 'E_MESSAGE_CONFLICT').toBe(true);
            return;
          }
          const before = acked.get(m.id);
          if (r.duplicate) expect(before).toEqual({ seq: r.seq, channelId: m.channelId });
          else {
            expect(before).toBeUndefined();
            acked.set(m.id, { seq: r.seq, channelId: m.channelId });
          }
        }),
      );
      // Every raced id was stored once, in one of its two channels.
      for (let k = 0; k < BATCHES; k++) expect(acked.has(`race${k}`)).toBe(true);
      for (const c of chans) {
        const stored = await b.since(c, 0, 10_000);
        const mine = [...acked].filter(([, v]) => v.channelId === c);
        expect(stored.map((m) => m.seq)).toEqual(stored.map((_, i) => i + 1));
        expect(await a.lastSeq(c)).toBe(stored.length);
        expect(new Map(stored.map((m) => [m.id, m.seq]))).toEqual(
          new Map(mine.map(([id, v]) => [id, v.seq])),
        );
      }
      // Search words: a run's message by its text, an edited one by its edit only.
      const found = async (w: string) => (await a.search([w], chans, 10)).map((m) => m.id).sort();
      expect(await found('word5')).toEqual([
        'a5-1',
        'a5-2',
        'a5-3',
        'a5-4',
        'b5-1',
        'b5-2',
        'b5-3',
        'b5-4',
      ]);
      expect(await found('edited5')).toEqual(['a5-0', 'b5-0']);
      const page = await a.history(chans[5 % 3]!, 100);
      expect(page.related.filter((r) => r.target === 'a5-0').map((r) => r.id)).toEqual(['a5-e']);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
