/**
 * History pages on PostgreSQL at scale (issue 16: p99 at 10M messages, goal ≤ 5 ms). A real
 * server on a fresh database; a user creates BENCH_HISTORY_CHANNELS channels and posts one real
 * message in each, which the bench then copies with generate_series into the store's own
 * `messages` table (src/store/pg/migrations.ts) until there are BENCH_HISTORY_MESSAGES in all,
 * each with its own id, seq and time, and `channels.last_seq` is brought up to date. Copies keep
 * the template's signature, which no longer matches them: the server does not check signatures
 * when it reads history, and this client does not either (it parses every frame). Then
 * BENCH_HISTORY_PAGES `history` requests of 50 messages, one at a time, each before a random
 * message of a random channel (a tenth of them the newest page), timed from request to answer,
 * each beside the same page read straight from PostgreSQL with the store's own statement
 * (history-page.ts) by a plain client in this process: the anchor, which tells the server's cost
 * from the machine's (2 shared cores: the load average is reported with them).
 */
import os from 'node:os';
import { historyPage } from '../src/store/pg/history-page.js';
import { newSessionKeys, signMessage } from '../src/shared/signing.js';
import { messageId } from '../src/shared/message-id.js';
import { encodeFrame } from '../src/protocol/frame.js';
import { Client } from './harness.js';
import { deploy, percentile } from './cluster-deploy.js';

const MESSAGES = Number(process.env.BENCH_HISTORY_MESSAGES ?? 10_000_000);
const CHANNELS = Number(process.env.BENCH_HISTORY_CHANNELS ?? 100);
const PAGES = Number(process.env.BENCH_HISTORY_PAGES ?? 2000);
const PAGE = 50;
const VACUUM = process.env.BENCH_HISTORY_VACUUM !== '0';
/** BENCH_HISTORY_PREWARM=0: no second pass with the table in the OS cache. */
const PREWARM = process.env.BENCH_HISTORY_PREWARM !== '0';

/** A pass of pages: through the server, and the anchor's. */
interface Pages {
  p50ms: number;
  p99ms: number;
  maxMs: number;
  anchorP50ms: number;
  anchorP99ms: number;
  loadAverage: number;
}

/** Runs `f`, adding its milliseconds to `into`. */
async function timed<T>(into: number[], f: () => Promise<T>): Promise<T> {
  const t = process.hrtime.bigint();
  const out = await f();
  into.push(Number(process.hrtime.bigint() - t) / 1e6);
  return out;
}

/** The id of copy `seq` in channel number `k`: a UUID of its numbers. */
const copyId = (k: number, seq: number) =>
  `${k.toString(16).padStart(8, '0')}-0000-7000-8000-${seq.toString(16).padStart(12, '0')}`;

export async function benchHistory(): Promise<Record<string, unknown>> {
  console.log(`\nhistory: PostgreSQL with ${MESSAGES} messages in ${CHANNELS} channels`);
  const d = await deploy('pg', 1);
  let c: Client | undefined;
  let beat: NodeJS.Timeout | undefined;
  try {
    const inst = d.instances[0]!;
    const keys = newSessionKeys();
    c = await Client.connect(inst.server, true);
    await c.request('register', { username: 'historian', password: 'bench-pw' });
    const s = await c.request('login', {
      username: 'historian',
      password: 'bench-pw',
      publicKey: keys.publicKey,
    });
    const channels: string[] = [];
    const t0 = Date.now() - 365 * 86_400_000;
    for (let k = 0; k < CHANNELS; k++) {
      const id = `01900000-0000-7000-8000-${(0xc0000 + k).toString(16).padStart(12, '0')}`;
      await c.request('channel_create', { id, name: `history-${k}`, allowVisitors: false });
      const content = { channelId: id, ts: Date.now(), lc: 0, text: 'the template' };
      const fields = { id: messageId({ ...content, author: 'historian' }), ...content };
      const sig = signMessage({ ...fields, author: 'historian' }, keys);
      await c.request('post', { message: { ...fields, sig, cert: s.cert } });
      channels.push(id);
    }
    // Heartbeats while the copies load (minutes at 10M), or the server drops this client.
    beat = setInterval(() => c!.fire(encodeFrame({ t: 'ping' })), 5000);
    const per = Math.max(1, Math.floor(MESSAGES / CHANNELS));
    const loadStart = Date.now();
    // Seq 1 is the real message; copies take seq 2 … per+1, older than it, a second apart. They
    // go in as a live server stores them, interleaved: copy g of every channel, then copy g+1 of
    // every channel, so that a channel's neighbouring messages lie on different heap pages, as
    // the arrivals of many channels mix on a real server: a page's 51 rows then lie on 51 heap
    // pages (EXPLAIN BUFFERS: 62 buffers a page; ~15 with one channel's copies after another's).
    const STEP = Math.max(1, Math.floor(1_000_000 / CHANNELS));
    for (let from = 1; from <= per; from += STEP) {
      await d.db!.query(
        // The lateral subquery names g (OFFSET 0 keeps it from being flattened away), so that
        // g is the outer loop: rows come out g by g, each g every channel's copy.
        `INSERT INTO messages (channel_id, seq, id, author, ts, lc, text, sig, cert, kind, received_at)
         WITH t AS MATERIALIZED (
           SELECT m.channel_id, c.n - 1 AS k, m.author, m.sig, m.cert
           FROM unnest($1::text[]) WITH ORDINALITY AS c(id, n)
           JOIN messages m ON m.channel_id = c.id AND m.seq = 1)
         SELECT x.channel_id, x.g + 1,
                lpad(to_hex(x.k), 8, '0') || '-0000-7000-8000-' || lpad(to_hex(x.g + 1), 12, '0'),
                x.author, $2::bigint + x.g * 1000, 0, 'history message ' || x.g, x.sig, x.cert,
                'message', $2::bigint + x.g * 1000
         FROM generate_series($3::bigint, $4::bigint) g
         CROSS JOIN LATERAL (SELECT t.*, g.g FROM t OFFSET 0) x`,
        [channels, t0, from, Math.min(per, from + STEP - 1)],
      );
    }
    await d.db!.query('UPDATE channels SET last_seq = $2 WHERE id = ANY($1::text[])', [
      channels,
      per + 1,
    ]);
    const loadSeconds = (Date.now() - loadStart) / 1000;
    console.log(`  loaded ${per * CHANNELS} copies in ${loadSeconds.toFixed(0)} s`);
    // As autovacuum leaves a table after a bulk load (this machine's PostgreSQL runs without
    // it): hint bits and the visibility map set. Unvacuumed, the first read of every page
    // writes it (hint bits), which is the bench's cost, not a page's (BENCH_HISTORY_VACUUM=0).
    const vacuumStart = Date.now();
    await d.db!.query(VACUUM ? 'VACUUM ANALYZE messages' : 'ANALYZE messages');
    const vacuumSeconds = (Date.now() - vacuumStart) / 1000;
    // Pages before random messages, each timed through the server and, beside it, by the anchor.
    const measure = async (): Promise<Pages> => {
      const times: number[] = [];
      const anchor: number[] = [];
      for (let i = 0; i < PAGES; i++) {
        const k = Math.floor(Math.random() * CHANNELS);
        const before =
          i % 10 === 0
            ? undefined
            : copyId(k, 2 + PAGE + Math.floor(Math.random() * Math.max(1, per - PAGE)));
        // The anchor reads the same page with the store's own statement from this process
        // (no server, no TLS, no frames), before or after the request in turn.
        const direct = () => timed(anchor, () => historyPage(d.db!, channels[k]!, PAGE, before));
        if (i % 2 === 1) await direct();
        const r = await timed(times, () =>
          c!.request('history', { channelId: channels[k], limit: PAGE, ...(before && { before }) }),
        );
        if (i % 2 === 0) await direct();
        if (!Array.isArray(r.messages) || r.messages.length === 0)
          throw new Error(`history page ${i} came back empty`);
      }
      const sorted = Float64Array.from(times).sort();
      const direct = Float64Array.from(anchor).sort();
      return {
        p50ms: percentile(sorted, 50),
        p99ms: percentile(sorted, 99),
        maxMs: sorted[sorted.length - 1]!,
        anchorP50ms: percentile(direct, 50),
        anchorP99ms: percentile(direct, 99),
        loadAverage: os.loadavg()[0]!,
      };
    };
    // First as the load left the machine: what the table's pages cost that the OS no longer
    // caches is the disk's (at 10M on this machine, ~30,000 blocks a second read from it).
    const cold = await measure();
    // Then with the table and its indexes read into the OS cache (pg_prewarm's `read` mode), as
    // they are on a server that has served them and has the memory for them: what a page costs
    // from memory, the goal's case (docs/SCALING.md sizes the memory for it).
    let warm: Pages | undefined;
    let warmSkipped: string | undefined;
    if (PREWARM) {
      try {
        await d.db!.query('CREATE EXTENSION IF NOT EXISTS pg_prewarm');
        const t = Date.now();
        await d.db!.query(
          `SELECT pg_prewarm(c.oid::regclass, 'read') FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = current_schema() AND c.relname IN
             ('messages', 'messages_pkey', 'messages_shown', 'messages_id_key', 'messages_target')`,
        );
        console.log(`  read the table and its indexes into the OS cache in ${Date.now() - t} ms`);
        warm = await measure();
      } catch (err) {
        warmSkipped = `pg_prewarm: ${(err as Error).message}`;
        console.log(`  no cached pass (${warmSkipped})`);
      }
    }
    const out = {
      messages: per * CHANNELS + CHANNELS,
      channels: CHANNELS,
      pages: PAGES,
      pageSize: PAGE,
      loadSeconds,
      vacuumed: VACUUM,
      vacuumSeconds,
      ...cold,
      ...(warm && { cached: warm }),
      ...(warmSkipped && { cachedSkipped: warmSkipped }),
    };
    console.log('  history pages:', JSON.stringify(out));
    return out;
  } finally {
    clearInterval(beat);
    c?.close();
    await d.close();
  }
}
