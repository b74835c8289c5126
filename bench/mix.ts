/**
 * A realistic mix (issue 19, item 4), run by `npm run bench` or alone (`node --import tsx
 * bench/mix.ts`, after `npm run build`): BENCH_MIX_SESSIONS (10,000) sessions of users in
 * BENCH_MIX_CHANNELS (1,000) channels whose sizes follow Zipf's law (bench/mix-plan.ts), each
 * session in one channel; BENCH_MIX_RATE (500) posts a second in all, spread over the channels
 * in proportion to their size, each by a member online then; 1 % of the sessions a minute
 * (BENCH_MIX_CHURN, 0.01) leave and come back; a host online for every other channel by rank.
 *
 * - Server: a real `bin/hchat server` (the bench's per-address limits, and a signing key made
 *   here). Users, their sessions and the channels read through the server are written into its
 *   database before it starts (so 10,000 sessions cost no scrypt); sessions `resume` with tokens
 *   signed with that key.
 * - Hosts: BENCH_MIX_HOSTS real `bin/hchat peer` processes (default: one per 100 hosted channels,
 *   2 at least; a user owns at most 200 channels), each signed in as a user of its own, each
 *   having made its share of the hosted channels (so it holds their primary copy, announces
 *   them in its tracker entry and backs each message up to the server with `forward`).
 * - Sessions: in 2 member processes (bench/mix-clients.ts), each holding whole channels.
 *
 * Each run: BENCH_MIX_WARMUP (5) s of posting, then BENCH_MIX_SECONDS (20) s measured, then 3 s
 * for the last deliveries; figures per run, then the median of BENCH_MIX_REPEATS (BENCH_REPEATS,
 * 3) runs on the same world.
 */
import crypto from 'node:crypto';
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteServerStore } from '../src/store/server-store.js';
import {
  closeWorkers,
  askWorker,
  cpuSeconds,
  raiseOpenFiles,
  rssKB,
  startProcess,
  startServer,
  stopProcess,
  type Started,
} from './harness.js';
import { describePlan, planMix, type PlannedChannel } from './mix-plan.js';
import {
  keysOf,
  sessionOf,
  userOf,
  type ChannelOrder,
  type MixReport,
  type OpenOrder,
  type WindowOrder,
} from './mix-clients.js';
import { median } from './stats.js';

const env = process.env;
const SESSIONS = Number(env.BENCH_MIX_SESSIONS ?? 10_000);
const CHANNELS = Number(env.BENCH_MIX_CHANNELS ?? 1_000);
const RATE = Number(env.BENCH_MIX_RATE ?? 500);
const SECONDS = Number(env.BENCH_MIX_SECONDS ?? 20);
const WARMUP = Number(env.BENCH_MIX_WARMUP ?? 5);
const CHURN = Number(env.BENCH_MIX_CHURN ?? 0.01);
const REPEATS = Math.max(1, Number(env.BENCH_MIX_REPEATS ?? env.BENCH_REPEATS ?? 3));
const HOSTS = Math.max(2, Number(env.BENCH_MIX_HOSTS ?? Math.ceil(Math.ceil(CHANNELS / 2) / 100)));
const WORKERS = 2;
/** More `node` options for the member processes (as bench/members.ts: `--cpu-prof …`). */
const MEMBER_NODE_ARGS = (env.BENCH_MEMBER_NODE_ARGS ?? '').split(' ').filter(Boolean);
/**
 * After a window, deliveries still owed count as lost once none came for this long (members
 * that fell behind read their backlog first), or when DRAIN_MAX_MS passed.
 */
const GRACE_MS = 3000;
const DRAIN_MAX_MS = 60_000;
/** Opening every session may take this long before the run is given up. */
const OPEN_DEADLINE_MS = Number(env.BENCH_MIX_OPEN_SECONDS ?? 300) * 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;
const channelIdOf = (rank: number) =>
  `01900000-0000-7000-8000-${(0xa000000 + rank).toString(16).padStart(12, '0')}`;

/** Writes the users, their sessions and the server-read channels into a new server database. */
function populate(file: string, plan: readonly PlannedChannel[], sessions: number): void {
  new SqliteServerStore(file).close(); // the schema, as the server makes it
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  const now = Date.now();
  const user = db.prepare(`INSERT INTO users (username, pass_hash, created_at) VALUES (?, ?, ?)`);
  const session = db.prepare(
    `INSERT INTO sessions (session_id, username, role, created_at, public_key) VALUES (?, ?, 'user', ?, ?)`,
  );
  const channel = db.prepare(
    `INSERT INTO channels (id, name, owner, allow_visitors, created_at) VALUES (?, ?, ?, 0, ?)`,
  );
  const member = db.prepare(
    `INSERT INTO members (channel_id, username, joined_at) VALUES (?, ?, ?)`,
  );
  db.transaction(() => {
    for (let i = 0; i < sessions; i++) {
      user.run(userOf(i), 'unused: sessions are resumed', now);
      session.run(sessionOf(i), userOf(i), now, keysOf(i).publicKey);
    }
    for (const c of plan) {
      if (c.hosted) continue; // made by its host, joined by its members over the wire
      channel.run(channelIdOf(c.rank), `mix-${c.rank}`, userOf(c.first), now + c.rank);
      for (let i = c.first; i < c.first + c.size; i++)
        member.run(channelIdOf(c.rank), userOf(i), now);
    }
  })();
  db.close();
}

/** Seconds a process's main thread has waited on a run queue (ready, no core free), from /proc. */
function runQueueSeconds(pid: number): number {
  return Number(fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e9;
}

/** Members of the channels host k hosts: its P2P links. */
const hostedMembers = (plan: readonly PlannedChannel[], k: number) =>
  plan.reduce((n, c) => n + (c.host === k ? c.size : 0), 0);

/**
 * Messages of the hosted channels in the server's backup (read from its database beside it),
 * once they are at least `want` or 10 s passed.
 */
async function backups(file: string, hosted: string[], want: number): Promise<number> {
  const db = new Database(file, { readonly: true });
  try {
    const count = db.prepare(
      `SELECT count(*) AS n FROM messages WHERE channel_id IN (${hosted.map(() => '?').join(',')})`,
    );
    const deadline = Date.now() + 10_000;
    for (;;) {
      const n = (count.get(...hosted) as { n: number }).n;
      if (n >= want || Date.now() > deadline) return n;
      await sleep(500);
    }
  } finally {
    db.close();
  }
}

/** Calls a peer's local API (its token as Bearer); the JSON answer, or throws. */
async function call(ui: string, method: string, route: string, body?: unknown): Promise<any> {
  const res = await fetch(new URL(route, ui), {
    method,
    headers: {
      authorization: `Bearer ${new URL(ui).searchParams.get('token')}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/** A host peer: `bin/hchat peer`, registered and logged in as `mixhost<k>`. */
async function startHost(dir: string, server: string, k: number): Promise<Started> {
  const name = `mixhost${k}`;
  const s = await startProcess([
    'bin/hchat',
    'peer',
    '--server',
    server,
    '--data',
    path.join(dir, name),
  ]);
  const account = { username: name, password: `${name}-password` };
  await call(s.ready.ui!, 'POST', '/api/register', account);
  for (;;) {
    try {
      await call(s.ready.ui!, 'POST', '/api/login', account);
      return s;
    } catch (err) {
      const m = /"retryAfterMs":(\d+)/.exec(String(err));
      if (!m) throw err;
      await sleep(Number(m[1]));
    }
  }
}

/** The value at percentile p of weighted samples (each sample stands for `w` deliveries). */
function weightedPercentile(groups: Array<{ values: number[]; weight: number }>, p: number) {
  const all = groups
    .flatMap((g) => g.values.map((v) => [v, g.weight] as const))
    .sort((a, b) => a[0] - b[0]);
  const total = all.reduce((n, [, w]) => n + w, 0);
  let acc = 0;
  for (const [v, w] of all) if ((acc += w) >= (p / 100) * total) return v;
  return NaN;
}

/** One measured run's figures. */
export interface MixRun {
  p50ms: number;
  p99ms: number;
  serverReadP50ms: number;
  serverReadP99ms: number;
  hostReadP50ms: number;
  hostReadP99ms: number;
  postsPerSec: number;
  deliveriesPerSec: number;
  hostDeliveriesPerSec: number;
  lost: number;
  /** Posts the hosts accepted since the sessions opened (warm-ups and earlier runs included). */
  hostAccepted: number;
  unowed: number;
  refused: number;
  postFailed: number;
  churned: number;
  returned: number;
  failedReturns: number;
  returnP50ms: number;
  returnMaxMs: number;
  caughtUp: number;
  dropped: number;
  dropReasons: Array<Record<string, number>>;
  dropExamples: Record<string, string>;
  /** Dropped sessions back (as a peer reconnects) and given up, since opening. */
  reconnected: number;
  gaveUp: number;
  /** Sessions online at the source of their channel when the window was counted. */
  online: number;
  /** Each member process's event-loop delay, p99 and max (ms). */
  membersLagP99ms: number[];
  membersLagMaxMs: number[];
  serverCpuPercent: number;
  serverRssMaxMB: number;
  hostsCpuPercent: number[];
  membersCpuPercent: number;
  loadAverage: number;
  /**
   * % of the window the server's and each member process's main thread was ready to run but
   * waiting for a core (/proc/<pid>/schedstat): how much the shared machine held them back.
   */
  serverWaitPercent: number;
  membersWaitPercent: number[];
  /** From the window's end until its deliveries stopped coming (members behind read a backlog). */
  drainMs: number;
}

/** Waits until the window's deliveries stop coming (see GRACE_MS); returns how long it took. */
async function drained(workers: ChildProcess[]): Promise<number> {
  const t0 = Date.now();
  let last = Infinity;
  let since = Date.now();
  for (;;) {
    await sleep(500);
    const owed = (
      await Promise.all(workers.map((p) => askWorker<{ owed: number }>(p, { cmd: 'owed' })))
    ).reduce((n, o) => n + o.owed, 0);
    if (owed < last) ((last = owed), (since = Date.now()));
    if (owed === 0 || Date.now() - since >= GRACE_MS || Date.now() - t0 >= DRAIN_MAX_MS)
      return Date.now() - t0;
  }
}

/** One window: post, churn, measure; then the workers' counts. */
async function measure(workers: ChildProcess[], shares: number[], server: number, hosts: number[]) {
  const startNs = process.hrtime.bigint() + BigInt(WARMUP * 1e9);
  const endNs = startNs + BigInt(SECONDS * 1e9);
  workers.forEach((p, k) =>
    p.send({
      cmd: 'window',
      start: startNs.toString(),
      end: endNs.toString(),
      rate: RATE * shares[k]!,
      churnPerMinute: CHURN,
    } satisfies WindowOrder & { cmd: string }),
  );
  await sleep(WARMUP * 1000);
  const t0 = performance.now();
  const cpu0 = [server, ...hosts].map(cpuSeconds);
  const waiting = [server, ...workers.map((p) => p.pid!)];
  const wait0 = waiting.map(runQueueSeconds);
  let rssMax = 0;
  while (process.hrtime.bigint() < endNs) {
    rssMax = Math.max(rssMax, rssKB(server));
    await sleep(Math.min(1000, Number(endNs - process.hrtime.bigint()) / 1e6 + 1));
  }
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = [server, ...hosts].map((pid, k) =>
    round(((cpuSeconds(pid) - cpu0[k]!) / elapsed) * 100),
  );
  const waited = waiting.map((pid, k) =>
    round(((runQueueSeconds(pid) - wait0[k]!) / elapsed) * 100),
  );
  const loadAverage = round(os.loadavg()[0]!, 2);
  const drainMs = await drained(workers);
  const reports = await Promise.all(workers.map((p) => askWorker<MixReport>(p, { cmd: 'report' })));
  const sum = (f: (r: MixReport) => number) => reports.reduce((n, r) => n + f(r), 0);
  const group = (f: (r: MixReport) => number[], seen: (r: MixReport) => number) =>
    reports.map((r) => ({ values: f(r), weight: f(r).length ? seen(r) / f(r).length : 0 }));
  const serverGroups = group(
    (r) => r.serverSamples,
    (r) => r.serverDeliveries,
  );
  const hostGroups = group(
    (r) => r.hostSamples,
    (r) => r.hostDeliveries,
  );
  const returns = reports.flatMap((r) => r.returnMs);
  const d = (n: number) => round(n, 2);
  return {
    p50ms: d(weightedPercentile([...serverGroups, ...hostGroups], 50)),
    p99ms: d(weightedPercentile([...serverGroups, ...hostGroups], 99)),
    serverReadP50ms: d(weightedPercentile(serverGroups, 50)),
    serverReadP99ms: d(weightedPercentile(serverGroups, 99)),
    hostReadP50ms: d(weightedPercentile(hostGroups, 50)),
    hostReadP99ms: d(weightedPercentile(hostGroups, 99)),
    postsPerSec: round(sum((r) => r.posted) / SECONDS),
    deliveriesPerSec: Math.round(sum((r) => r.serverDeliveries + r.hostDeliveries) / SECONDS),
    hostDeliveriesPerSec: Math.round(sum((r) => r.hostDeliveries) / SECONDS),
    lost: sum((r) => r.lost),
    hostAccepted: sum((r) => r.hostAccepted),
    unowed: sum((r) => r.unowed),
    refused: sum((r) => r.refused),
    postFailed: sum((r) => r.postFailed),
    churned: sum((r) => r.churned),
    returned: sum((r) => r.returned),
    failedReturns: sum((r) => r.failedReturns),
    returnP50ms: returns.length ? Math.round(median(returns)) : NaN,
    returnMaxMs: returns.length ? Math.round(Math.max(...returns)) : NaN,
    caughtUp: sum((r) => r.caughtUp),
    dropped: sum((r) => r.dropped),
    dropReasons: reports.map((r) => r.dropReasons),
    dropExamples: Object.assign({}, ...reports.map((r) => r.dropExamples)),
    reconnected: sum((r) => r.reconnected),
    gaveUp: sum((r) => r.gaveUp),
    online: sum((r) => r.online),
    membersLagP99ms: reports.map((r) => Math.round(r.lagP99ms)),
    membersLagMaxMs: reports.map((r) => Math.round(r.lagMaxMs)),
    serverCpuPercent: cpu[0]!,
    serverRssMaxMB: round(rssMax / 1024),
    hostsCpuPercent: cpu.slice(1),
    membersCpuPercent: round((sum((r) => r.cpuUs) / 1e6 / SECONDS) * 100),
    loadAverage,
    serverWaitPercent: waited[0]!,
    membersWaitPercent: waited.slice(1),
    drainMs,
  } satisfies MixRun;
}

/** Runs the mix: a fresh world, REPEATS windows on it, their figures and medians. */
export async function benchMix() {
  const plan = planMix(SESSIONS, CHANNELS, HOSTS, WORKERS);
  const shape = describePlan(plan);
  console.log(
    `\nrealistic mix: ${SESSIONS} sessions in ${CHANNELS} channels (Zipf: ${shape.largest.join(', ')}, …; median ${shape.medianSize}), ${RATE} posts/s, ${CHURN * 100} % churn a minute, hosts online for ${shape.hostedChannels} channels (${HOSTS} host peers); ${REPEATS} × ${SECONDS} s after ${WARMUP} s warm-up`,
  );
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-bench-mix-'));
  const procs: ChildProcess[] = [];
  let workers: ChildProcess[] = [];
  const cleanUp = async () => {
    await closeWorkers(workers);
    await Promise.all(procs.map((p) => stopProcess(p)));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const interrupted = (signal: NodeJS.Signals) =>
    void cleanUp().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  process.once('SIGINT', interrupted).once('SIGTERM', interrupted);
  try {
    const { privateKey } = crypto.generateKeyPairSync('ed25519');
    const keyFile = path.join(dir, 'signing-key.pem');
    fs.writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const data = path.join(dir, 'server');
    fs.mkdirSync(data);
    let t = Date.now();
    populate(path.join(data, 'server.db'), plan, SESSIONS);
    const populateMs = Date.now() - t;
    const server = await startServer(data, env.BENCH_SERVER_NODE, false, [
      '--signing-key',
      keyFile,
    ]);
    procs.push(server.proc);
    const spid = server.proc.pid!;
    // Each session's server link, the hosts', and some files of its own.
    raiseOpenFiles(spid, SESSIONS + HOSTS + 1000);
    const rssEmptyKB = rssKB(spid);
    const serverArg = `${server.ready.tcp}#${server.ready.fingerprint}`;
    t = Date.now();
    const hosts: Started[] = [];
    for (let k = 0; k < HOSTS; k++) {
      const h = await startHost(dir, serverArg, k);
      procs.push(h.proc);
      hosts.push(h);
      raiseOpenFiles(h.proc.pid!, hostedMembers(plan, k) + 1000);
    }
    const ids = new Map<number, string>();
    for (const c of plan) {
      if (!c.hosted) continue;
      const made = await call(hosts[c.host!]!.ready.ui!, 'POST', '/api/channels', {
        name: `mix-${c.rank}`,
      });
      ids.set(c.rank, made.id as string);
    }
    const hostsMs = Date.now() - t;
    t = Date.now();
    workers = Array.from({ length: WORKERS }, (_, k) => {
      const p = fork(path.join(import.meta.dirname, 'mix-clients.ts'), ['--mix-worker'], {
        execArgv: ['--import', 'tsx', ...MEMBER_NODE_ARGS],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      // A server link per session, and a host link per member of a hosted channel.
      const mine = plan.filter((c) => c.worker === k);
      raiseOpenFiles(
        p.pid!,
        mine.reduce((n, c) => n + c.size * (c.hosted ? 2 : 1), 1000),
      );
      return p;
    });
    const [host, port] = server.ready.tcp!.split(':') as [string, string];
    const signingKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const opens = workers.map((p, k) => {
      const channels: ChannelOrder[] = plan
        .filter((c) => c.worker === k)
        .map((c) => ({
          id: c.hosted ? ids.get(c.rank)! : channelIdOf(c.rank),
          first: c.first,
          size: c.size,
          host: c.hosted ? `mixhost${c.host}` : undefined,
        }));
      const order: OpenOrder = {
        host,
        port: Number(port),
        fingerprint: server.ready.fingerprint!,
        signingKeyPem,
        channels,
      };
      return askWorker<{
        opened: number;
        failed: number;
        errors: string[];
        dropReasons: Record<string, number>;
        lagMaxMs: number;
      }>(p, {
        cmd: 'open',
        ...order,
      });
    });
    const timeout = sleep(OPEN_DEADLINE_MS).then(() => {
      throw new Error(`opening ${SESSIONS} sessions took more than ${OPEN_DEADLINE_MS / 1000} s`);
    });
    const opened = await Promise.race([Promise.all(opens), timeout]);
    const failed = opened.reduce((n, o) => n + o.failed, 0);
    if (failed)
      throw new Error(
        `${failed} sessions did not open: ${opened.flatMap((o) => o.errors).join('; ')}`,
      );
    const openSeconds = round((Date.now() - t) / 1000);
    console.log(
      `${SESSIONS} sessions open in ${openSeconds} s; links dropped meanwhile: ${JSON.stringify(opened.map((o) => o.dropReasons))}; member processes' event loop late by ${opened.map((o) => Math.round(o.lagMaxMs)).join(' / ')} ms at most`,
    );
    await sleep(3000);
    // The world idles: every session online, heartbeats only.
    const c0 = cpuSeconds(spid);
    await sleep(5000);
    const idleCpuPercent = round(((cpuSeconds(spid) - c0) / 5) * 100);
    const rssIdleKB = rssKB(spid);
    const shares = workers.map((_, k) => {
      const mine = plan.filter((c) => c.worker === k).reduce((n, c) => n + c.size, 0);
      return mine / SESSIONS;
    });
    const runs: MixRun[] = [];
    for (let r = 0; r < REPEATS; r++) {
      const run = await measure(
        workers,
        shares,
        spid,
        hosts.map((h) => h.proc.pid!),
      );
      console.log(`run ${r + 1}: ${JSON.stringify(run)}`);
      runs.push(run);
    }
    // The hosts back every message up to the server (`forward`): all of them must be there.
    const accepted = runs.at(-1)!.hostAccepted;
    const backedUp = await backups(path.join(data, 'server.db'), [...ids.values()], accepted);
    console.log(`hosts accepted ${accepted} posts; the server's backup holds ${backedUp} of them`);
    const med = (f: (r: MixRun) => number) => median(runs.map(f));
    return {
      settings: {
        sessions: SESSIONS,
        channels: CHANNELS,
        rate: RATE,
        seconds: SECONDS,
        warmup: WARMUP,
        churnPerMinute: CHURN,
        hosts: HOSTS,
        repeats: REPEATS,
      },
      plan: shape,
      setup: { populateMs, hostsMs, openSeconds },
      server: {
        rssEmptyMB: round(rssEmptyKB / 1024),
        rssIdleMB: round(rssIdleKB / 1024),
        rssEndMB: round(rssKB(spid) / 1024),
        idleCpuPercent,
      },
      p50ms: med((r) => r.p50ms),
      p99ms: med((r) => r.p99ms),
      serverReadP99ms: med((r) => r.serverReadP99ms),
      hostReadP99ms: med((r) => r.hostReadP99ms),
      deliveriesPerSec: med((r) => r.deliveriesPerSec),
      postsPerSec: med((r) => r.postsPerSec),
      serverCpuPercent: med((r) => r.serverCpuPercent),
      serverRssMaxMB: med((r) => r.serverRssMaxMB),
      hostsCpuPercent: round(med((r) => r.hostsCpuPercent.reduce((a, b) => a + b, 0))),
      membersCpuPercent: med((r) => r.membersCpuPercent),
      lost: runs.reduce((n, r) => n + r.lost, 0),
      hostAccepted: accepted,
      backedUp,
      runs,
    };
  } finally {
    process.off('SIGINT', interrupted).off('SIGTERM', interrupted);
    await cleanUp();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  benchMix().then(
    (result) => {
      console.log(`mix ${JSON.stringify(result)}`);
      process.exit(0);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
