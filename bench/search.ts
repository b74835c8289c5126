/**
 * Full-text search on a peer (issue 13: "≤ 50 ms p99 over 1,000,000 messages"), run by
 * `npm run bench` or alone (`node --import tsx bench/search.ts`). A peer store gets
 * BENCH_SEARCH_MESSAGES messages (default 1,000,000) through its own `storeReceived`, in
 * transactions of 10,000, then indexed as in use (in batches, store/search-index.ts; the build
 * time includes it): 20 channels, texts of
 * 4–24 words drawn from a 5,000-word vocabulary with Zipf frequencies (word rank r drawn with
 * weight 1/r, as in natural text). Then BENCH_SEARCH_QUERIES (200) searches of one or two words,
 * drawn by the same frequencies, half cut to a prefix of 3–5 letters, through the peer's search
 * (peer/search.ts: index, folding, snippets), timed one by one: p50, p99, max.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { StoredMessage } from '../src/protocol/common.js';
import { PeerStore } from '../src/store/peer-store.js';
import { PeerSearch } from '../src/peer/search.js';
import { EventHub } from '../src/peer/event-hub.js';
import type { ServerLink } from '../src/peer/server-link.js';

const MESSAGES = Number(process.env.BENCH_SEARCH_MESSAGES ?? 1_000_000);
const QUERIES = Number(process.env.BENCH_SEARCH_QUERIES ?? 200);
const CHANNELS = 20;
const VOCABULARY = 5000;
const BATCH = 10_000;

const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;
const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/** A seeded generator (mulberry32), so every run builds the same store. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Pronounceable words, a few with accents, distinct. */
function vocabulary(random: () => number): string[] {
  const c = 'bcdfghjklmnprstvwz';
  const v = 'aeiouéüa';
  const words = new Set<string>();
  while (words.size < VOCABULARY) {
    let w = '';
    const syllables = 1 + Math.floor(random() * 4);
    for (let i = 0; i < syllables; i++)
      w += c[Math.floor(random() * c.length)]! + v[Math.floor(random() * v.length)]!;
    if (random() < 0.3) w += c[Math.floor(random() * c.length)]!;
    words.add(w);
  }
  return [...words];
}

/** Draws word ranks with weight 1/rank. */
function zipf(random: () => number, n: number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let r = 0; r < n; r++) cdf[r] = sum += 1 / (r + 1);
  return () => {
    const x = random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/** Builds the store, runs the queries; the figures for the report. */
export async function benchSearch(): Promise<Record<string, number>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-bench-search-'));
  const random = rng(42);
  const words = vocabulary(random);
  const rank = zipf(random, words.length);
  const store = new PeerStore(path.join(dir, 'peer.db'));
  try {
    const channels = Array.from({ length: CHANNELS }, () => crypto.randomUUID());
    for (const [i, id] of channels.entries())
      store.saveChannel('alice', {
        id,
        name: `c${i}`,
        owner: 'bob',
        allowVisitors: false,
        createdAt: i,
      });
    const seqs = new Map(channels.map((c) => [c, 0]));
    const t0 = performance.now();
    const start = Date.now() - MESSAGES * 1000;
    for (let done = 0; done < MESSAGES;) {
      const batch: StoredMessage[] = [];
      for (const end = Math.min(MESSAGES, done + BATCH); done < end; done++) {
        const channelId = channels[Math.floor(random() * CHANNELS)]!;
        const seq = seqs.get(channelId)! + 1;
        seqs.set(channelId, seq);
        const n = 4 + Math.floor(random() * 21);
        const text = Array.from({ length: n }, () => words[rank()]!).join(' ');
        batch.push({
          id: crypto.randomUUID(),
          channelId,
          seq,
          author: random() < 0.5 ? 'bob' : 'carol',
          ts: start + done * 1000,
          lc: 0,
          text,
          sig: 'x',
          cert: 'x',
        });
      }
      store.storeReceived(batch);
    }
    const search = new PeerSearch({
      store,
      link: undefined as unknown as ServerLink, // every channel is held here: never asked
      events: new EventHub(),
      accountName: 'alice',
      readableChannels: () => store.channels('alice'),
      refusal: () => undefined, // never asked: nothing comes from a replica
      certClaims: () => undefined, // no real certificates here: nobody is a bot
      connection: 'offline',
    });
    // The index follows the stored messages in batches (store/search-index.ts); a search indexes
    // what is pending first, and that belongs to the build.
    await search.search({ q: 'café', limit: 1 });
    const buildS = (performance.now() - t0) / 1000;
    const dbMB =
      fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0) / 2 ** 20;
    const queries = Array.from({ length: QUERIES }, () => {
      const n = random() < 0.5 ? 1 : 2;
      return Array.from({ length: n }, () => {
        const w = words[rank()]!;
        return random() < 0.5 ? [...w].slice(0, 3 + Math.floor(random() * 3)).join('') : w;
      }).join(' ');
    });
    // Warm the page cache, and the process's first Unicode normalization (ICU loads its data).
    for (const q of ['café', ...queries.slice(0, 10)]) await search.search({ q, limit: 20 });
    const times: number[] = [];
    let results = 0;
    for (const q of queries) {
      const t = performance.now();
      const r = await search.search({ q, limit: 20 });
      times.push(performance.now() - t);
      results += r.results.length;
    }
    if (process.env.BENCH_SEARCH_SLOWEST)
      console.log(
        queries
          .map((q, i) => [times[i]!, q] as const)
          .sort((a, b) => b[0] - a[0])
          .slice(0, 8),
      );
    times.sort((a, b) => a - b);
    return {
      messages: MESSAGES,
      buildSeconds: round(buildS, 1),
      databaseMB: round(dbMB, 0),
      queries: QUERIES,
      meanResults: round(results / QUERIES, 1),
      p50ms: round(pct(times, 50)),
      p99ms: round(pct(times, 99)),
      maxMs: round(times[times.length - 1]!),
    };
  } finally {
    store.close();
    if (process.env.BENCH_SEARCH_KEEP) console.log(`kept ${dir}`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchSearch(), null, 2));
}
