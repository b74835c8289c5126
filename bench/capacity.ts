/**
 * Capacity figures of the central server (issue "Performance"), run by `npm run bench` or alone
 * (`node --import tsx bench/capacity.ts`); the server is a real `bin/hchat server` process.
 *
 * - Idle sessions: N connections, each with a visitor session, sending a heartbeat every 5 s as
 *   peers do; the server's resident memory per session and its CPU while they idle.
 * - History page latency: a channel holding 1 million and 10 million messages; pages of 50 before
 *   random messages (and the newest page), timed request → answer at the client. Anchor: the
 *   same page read straight from SQLite (better-sqlite3) in this process, same database.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { encodeFrame } from '../src/protocol/frame.js';
import { SqliteServerStore } from '../src/store/server-store.js';
import { newSessionKeys } from '../src/shared/signing.js';
import { Client, cpuSeconds, rssKB, startServer, stopProcess } from './harness.js';

const IDLE = Number(process.env.BENCH_IDLE_SESSIONS ?? 10_000);
const SIZES = (process.env.BENCH_HISTORY_SIZES ?? '1000000,10000000').split(',').map(Number);
const PAGES = 2000;

const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;
const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/** Resident memory per idle session and the CPU the heartbeats cost. */
async function idleSessions(n: number): Promise<Record<string, number>> {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-bench-idle-'));
  const { proc, ready } = await startServer(data);
  // Over TLS, the server's key pinned, as peers connect.
  const addr = { addr: ready.tcp!, fingerprint: ready.fingerprint };
  const conns: Client[] = [];
  const ping = encodeFrame({ t: 'ping' });
  const beat = setInterval(() => {
    for (const c of conns) c.fire(ping);
  }, 5000);
  try {
    const publicKey = newSessionKeys().publicKey;
    const first = await Client.connect(addr, true);
    await first.request('visitor', { name: 'idle-base', publicKey });
    conns.push(first);
    await new Promise((r) => setTimeout(r, 500));
    const base = rssKB(proc.pid!);
    const t0 = Date.now();
    for (let i = 1; i < n; i += 250) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(250, n - i) }, async (_, j) => {
          const c = await Client.connect(addr, true);
          await c.request('visitor', { name: `idle-${i + j}`, publicKey });
          return c;
        }),
      );
      conns.push(...batch);
    }
    const connectMs = Date.now() - t0;
    await new Promise((r) => setTimeout(r, 3000));
    const cpu0 = cpuSeconds(proc.pid!);
    const w0 = Date.now();
    await new Promise((r) => setTimeout(r, 10_000)); // two heartbeat rounds
    const cpuPercent = ((cpuSeconds(proc.pid!) - cpu0) / ((Date.now() - w0) / 1000)) * 100;
    const after = rssKB(proc.pid!);
    return {
      sessions: n,
      connectMs,
      serverRssBaseMB: round(base / 1024, 1),
      serverRssMB: round(after / 1024, 1),
      rssPerSessionKB: round((after - base) / (n - 1), 2),
      idleCpuPercent: round(cpuPercent, 1),
    };
  } finally {
    clearInterval(beat);
    for (const c of conns) c.close();
    await stopProcess(proc);
    fs.rmSync(data, { recursive: true, force: true });
  }
}

const idOf = (i: number) => `01900000-0000-7000-8000-${i.toString(16).padStart(12, '0')}`;
const CHANNEL = '01900000-0000-7000-8000-0000c0ffee00';

/** A channel of `n` messages, written straight into a fresh server store. */
function populate(file: string, n: number): number {
  const t0 = Date.now();
  const store = new SqliteServerStore(file);
  store.createChannel({
    id: CHANNEL,
    name: 'history',
    owner: 'writer',
    allowVisitors: true,
    createdAt: Date.now(),
  });
  store.close();
  // The store's own insert checks every id for a duplicate; for a bulk load a plain insert in
  // big transactions is enough (same table, same indexes as the server uses).
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const ins = db.prepare(
    `INSERT INTO messages (id, channel_id, seq, author, ts, lc, text, received_at, sig, cert)
     VALUES (?, ?, ?, 'writer', ?, 0, ?, ?, ?, ?)`,
  );
  const sig = 'A'.repeat(86);
  const cert = 'bench-cert';
  const text = 'x'.repeat(100);
  const base = Date.parse('2026-01-01T00:00:00Z');
  for (let i = 1; i <= n;) {
    const end = Math.min(n, i + 100_000 - 1);
    db.transaction(() => {
      for (; i <= end; i++) ins.run(idOf(i), CHANNEL, i, base + i, text, base + i, sig, cert);
    })();
  }
  db.prepare('UPDATE channels SET last_seq = ? WHERE id = ?').run(n, CHANNEL);
  db.close();
  return Date.now() - t0;
}

async function historyLatency(n: number): Promise<Record<string, number>> {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-bench-history-'));
  try {
    const file = path.join(data, 'server.db');
    const populateMs = populate(file, n);
    const sizeMB = fs.statSync(file).size / 1024 / 1024;
    // Anchor: the same page straight from SQLite, in this process.
    const db = new Database(file, { readonly: true });
    const page = db.prepare(
      `SELECT * FROM messages WHERE channel_id = ? AND (ts, lc, id) < (?, 0, ?)
       ORDER BY ts DESC, lc DESC, id DESC LIMIT 50`,
    );
    const base = Date.parse('2026-01-01T00:00:00Z');
    const raw: number[] = [];
    for (let k = 0; k < PAGES; k++) {
      const i = 1 + Math.floor(Math.random() * n);
      const t = process.hrtime.bigint();
      page.all(CHANNEL, base + i, idOf(i));
      raw.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    db.close();
    const { proc, ready } = await startServer(data, process.env.BENCH_SERVER_NODE);
    const addr = { addr: ready.tcp!, fingerprint: ready.fingerprint };
    try {
      const c = await Client.connect(addr, true);
      await c.request('visitor', { name: 'reader', publicKey: newSessionKeys().publicKey });
      await c.request('channel_join', { channelId: CHANNEL });
      await c.request('history', { channelId: CHANNEL, limit: 50 }); // warm-up
      const lat: number[] = [];
      for (let k = 0; k < PAGES; k++) {
        const before = k % 10 === 0 ? undefined : idOf(1 + Math.floor(Math.random() * n));
        const t = process.hrtime.bigint();
        const r = await c.request('history', { channelId: CHANNEL, limit: 50, before });
        lat.push(Number(process.hrtime.bigint() - t) / 1e6);
        if (r.messages.length === 0 && before === undefined) throw new Error('empty history');
      }
      c.close();
      lat.sort((a, b) => a - b);
      raw.sort((a, b) => a - b);
      return {
        messages: n,
        populateMs,
        dbMB: round(sizeMB, 0),
        p50ms: round(pct(lat, 50), 3),
        p99ms: round(pct(lat, 99), 3),
        maxMs: round(lat[lat.length - 1]!, 3),
        sqliteP50ms: round(pct(raw, 50), 3),
        sqliteP99ms: round(pct(raw, 99), 3),
      };
    } finally {
      await stopProcess(proc);
    }
  } finally {
    fs.rmSync(data, { recursive: true, force: true });
  }
}

export async function benchCapacity(): Promise<unknown> {
  console.log(`\nidle sessions: ${IDLE} connections with a visitor session, heartbeat every 5 s`);
  const idle = await idleSessions(IDLE);
  console.log('| figure | value |\n|---|---:|');
  for (const [k, v] of Object.entries(idle)) console.log(`| ${k} | ${v} |`);
  console.log(`\nhistory page (50 messages) latency, ${PAGES} pages before random messages`);
  console.log(
    '| messages in the channel | p50 ms | p99 ms | max ms | SQLite alone p50 / p99 ms | database MB |',
  );
  console.log('|---:|---:|---:|---:|---:|---:|');
  const history = [];
  for (const n of SIZES) {
    const h = await historyLatency(n);
    history.push(h);
    console.log(
      `| ${n.toLocaleString('en-US')} | ${h.p50ms} | ${h.p99ms} | ${h.maxMs} | ${h.sqliteP50ms} / ${h.sqliteP99ms} | ${h.dbMB} |`,
    );
  }
  return { idle, history };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  benchCapacity().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
