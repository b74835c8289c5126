/**
 * What storing a message costs the server's SQLite store (issue 19 item 3: the server's CPU per
 * message in small channels at modest rates, where each group commit holds one message or a
 * few). Run by `npm run bench` or alone (`node --import tsx bench/store-cost.ts`).
 *
 * The real `SqliteServerStore`, holding BENCH_STORE_BASE (50,000) messages already, takes
 * BENCH_STORE_MESSAGES (5,000) more of 15 words in transactions of 1 and of 10, each in a turn
 * of its own (the index's timer runs between them), then one search (which indexes whatever is
 * still pending, so every message is in the search index when the clock stops): CPU µs per
 * message, user + system.
 * Beside it, in the same rotation, the same store with the search index kept inside the storing
 * transaction, as before it followed in batches: the insert trigger of SEARCH_MIGRATION put back
 * in a scratch database. Medians of BENCH_REPEATS (3) runs.
 * Also how long each storing call held the event loop (p99, longest, share over 5 ms), and, at 1
 * message a transaction, the same with SQLite's automatic checkpoints off: the difference is what
 * the checkpoints (every 1,000 WAL pages, copying them into the database file and syncing it, in
 * the thread that commits) cost the writer.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { NewMessage } from '../src/protocol/common.js';
import { HchatError } from '../src/protocol/errors.js';
import { searchWords } from '../src/shared/search-text.js';
import { SEARCH_MIGRATION } from '../src/store/search-index.js';
import { SqliteServerStore } from '../src/store/sqlite-server-store.js';
import { median } from './stats.js';

const MESSAGES = Number(process.env.BENCH_STORE_MESSAGES ?? 5000);
/** Messages the store holds before the measured ones (a store in use is not empty). */
const BASE = Number(process.env.BENCH_STORE_BASE ?? 50_000);
const REPEATS = Math.max(1, Number(process.env.BENCH_REPEATS ?? 3));
const BATCHES = [1, 10];
const C = '00000000-0000-4000-8000-0000000000b5';
const WORDS = ['meeting', 'lunch', 'tomorrow', 'deploy', 'review', 'weather', 'paris', 'great'];
const WORDS2 = ['the', 'is', 'at', 'we', 'noon', 'ship', 'it', 'today', 'thanks', 'again'];

/** The insert trigger as it was: the index written in the transaction that stores the row. */
const IN_TRANSACTION = /CREATE TRIGGER message_fts_message[\s\S]*?END;/.exec(SEARCH_MIGRATION)![0];

const round = (n: number) => Math.round(n * 10) / 10;

function text(i: number): string {
  const w = Array.from({ length: 15 }, (_, j) =>
    j % 2 ? WORDS2[(i + j * 7) % WORDS2.length] : WORDS[(i * 3 + j) % WORDS.length],
  );
  return `${w.join(' ')} ${i}`;
}

/** What one fresh store's writes cost: CPU µs per message, and each transaction's wall time. */
interface Run {
  cpuUs: number;
  /** How long each storing call held the event loop, ms. */
  writeMs: number[];
}

/**
 * One fresh store. `inTransaction`: the search index written in the storing transaction (as
 * before). `checkpoints: false`: SQLite's automatic checkpoints off (the WAL left to grow: not
 * a way to run, a measure of what the checkpoints cost the writing thread).
 */
async function run(batch: number, inTransaction: boolean, checkpoints = true): Promise<Run> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-bench-store-'));
  const store = new SqliteServerStore(path.join(dir, 'server.db'));
  try {
    const db = (store as unknown as { db: { exec(sql: string): void; pragma(p: string): void } })
      .db;
    if (inTransaction) db.exec(`DROP TRIGGER message_fts_message; ${IN_TRANSACTION}`);
    await store.createUser({ username: 'bob', passHash: 'x' });
    await store.createChannel({
      id: C,
      name: 'b',
      owner: 'bob',
      allowVisitors: false,
      createdAt: 1,
    });
    const items = Array.from({ length: BASE + MESSAGES }, (_, i) => ({
      message: {
        id: `01900000-0000-7000-8000-${i.toString(16).padStart(12, '0')}`,
        channelId: C,
        ts: 1_700_000_000_000 + i,
        lc: 0,
        text: text(i),
        sig: 's'.repeat(86),
        cert: 'c'.repeat(300),
      } as NewMessage,
      author: 'bob',
    }));
    for (let i = 0; i < BASE; i += 1000) await store.insertMessages(items.slice(i, i + 1000));
    await store.search(searchWords('deploy'), [C], 1);
    if (!checkpoints) db.pragma('wal_autocheckpoint = 0');
    const writeMs: number[] = [];
    const cpu0 = process.cpuUsage();
    // Each transaction in a turn of its own, as the server's group commits are: the index's
    // timer runs between them as it does in use.
    for (let i = BASE; i < BASE + MESSAGES; i += batch) {
      const t0 = performance.now();
      for (const r of await store.insertMessages(items.slice(i, i + batch)))
        if (r instanceof HchatError) throw r;
      writeMs.push(performance.now() - t0);
      await new Promise((r) => setImmediate(r));
    }
    // The last message's number is a word of its own: found only once everything is indexed.
    const found = await store.search(searchWords(String(BASE + MESSAGES - 1)), [C], 10);
    const cpu = process.cpuUsage(cpu0);
    if (found.length !== 1) throw new Error('the stored messages are not all searchable');
    return { cpuUs: (cpu.user + cpu.system) / MESSAGES, writeMs };
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** How long the writes of one run held the event loop: p99, max, and how many per 1,000 over 5 ms. */
function holds(r: Run): { p99Ms: number; maxMs: number; over5msPer1000: number } {
  const xs = [...r.writeMs].sort((a, b) => a - b);
  return {
    p99Ms: Math.round(xs[Math.floor(xs.length * 0.99)]! * 100) / 100,
    maxMs: round(xs.at(-1)!),
    over5msPer1000: round((1000 * xs.filter((x) => x > 5).length) / xs.length),
  };
}

export async function benchStoreCost(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = { messages: MESSAGES, repeats: REPEATS };
  for (const batch of BATCHES) {
    const later: Run[] = [];
    const inTx: Run[] = [];
    const noCheckpoints: Run[] = [];
    for (let r = 0; r < REPEATS; r++) {
      // Alternating which goes first, so that neither always meets a warmer cache.
      if (r % 2) inTx.push(await run(batch, true));
      later.push(await run(batch, false));
      if (r % 2 === 0) inTx.push(await run(batch, true));
      if (batch === 1) noCheckpoints.push(await run(batch, false, false));
    }
    const cpu = (rs: Run[]) => rs.map((x) => round(x.cpuUs));
    // The run of median CPU stands for its variant's event-loop holds too.
    const mid = (rs: Run[]) => [...rs].sort((a, b) => a.cpuUs - b.cpuUs)[rs.length >> 1]!;
    out[`perTransaction${batch}`] = {
      indexedLaterUs: median(cpu(later)),
      indexedInTransactionUs: median(cpu(inTx)),
      indexedLaterUsRuns: cpu(later),
      indexedInTransactionUsRuns: cpu(inTx),
      writes: holds(mid(later)),
      ...(noCheckpoints.length && {
        noCheckpointsUs: median(cpu(noCheckpoints)),
        noCheckpointsUsRuns: cpu(noCheckpoints),
        noCheckpointsWrites: holds(mid(noCheckpoints)),
      }),
    };
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`)
  console.log(JSON.stringify(await benchStoreCost(), null, 2));
