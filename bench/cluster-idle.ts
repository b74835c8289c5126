/**
 * Idle sessions over several instances (issue 16): BENCH_IDLE_SESSIONS users (default 50,000) in
 * channels of BENCH_IDLE_CHANNEL_SIZE (10), each online on one of BENCH_IDLE_INSTANCES (2, or
 * more where a process may not hold its share of the connections: below) PostgreSQL + NATS
 * instances (in turn), sending a heartbeat every 5 s as a peer does; 1 % of them drop and come
 * back each minute (spread over the minute, back on the next instance). Measured: the
 * instances' RSS per session (after connecting, less before), pushes per session per minute
 * over BENCH_IDLE_MINUTES (2), from the instances' /metrics and as the clients counted them, and
 * the instances' CPU meanwhile; the median of BENCH_IDLE_REPEATS runs, each on a fresh deployment.
 *
 * Accounts, sessions, channels and memberships are written straight into the store's tables
 * (src/store/pg/migrations.ts) and each client `resume`s with a session token signed by the
 * deployment's key (as server.ts signs them), so that opening 50,000 sessions costs no scrypt.
 * The clients live in worker processes of BENCH_IDLE_PER_WORKER (8,000) sessions each
 * (bench/idle-clients.ts), each on a loopback address of its own; the instances' and workers'
 * open-file limits are raised with prlimit (root with CAP_SYS_RESOURCE), as 25,000 connections
 * need. Where they cannot be (root without that capability, in a container), no process may
 * open more files than the hard limit it inherited, and the sessions go over as many instances
 * as it takes (three for 50,000 under a limit of 20,000); the report says how many.
 */
import crypto from 'node:crypto';
import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import {
  askWorker,
  closeWorkers,
  cpuSeconds,
  openFilesCeiling,
  raiseOpenFiles,
  rssKB,
} from './harness.js';
import { deploy, pushesTotal, type Deployment } from './cluster-deploy.js';
import { median } from './stats.js';
import type { IdleReport, OpenOrder } from './idle-clients.js';

const SESSIONS = Number(process.env.BENCH_IDLE_SESSIONS ?? 50_000);
const CHANNEL_SIZE = Number(process.env.BENCH_IDLE_CHANNEL_SIZE ?? 10);
const MINUTES = Number(process.env.BENCH_IDLE_MINUTES ?? 2);
const REPEATS = Math.max(1, Number(process.env.BENCH_IDLE_REPEATS ?? 1));
const PER_WORKER = Number(process.env.BENCH_IDLE_PER_WORKER ?? 8000);
/** Files an instance needs beyond its sessions' connections (its store, bus, logs, HTTP). */
const SPARE_FILES = 1000;
/**
 * Two instances, or as many more as it takes for each to hold its share of the connections
 * where a process may not open more than openFilesCeiling() files (a container whose root
 * lacks CAP_SYS_RESOURCE: 20,000 here, so 50,000 sessions take three).
 */
const INSTANCES = Math.max(
  2,
  Number(
    process.env.BENCH_IDLE_INSTANCES ?? Math.ceil(SESSIONS / (openFilesCeiling() - SPARE_FILES)),
  ),
);
const CHURN_PER_MINUTE = 0.01;
/** Opening every session may take this long before the run is given up (a busy machine is slow). */
const CONNECT_DEADLINE_MS = Number(process.env.BENCH_IDLE_CONNECT_MINUTES ?? 20) * 60_000;

/** Writes the users, their sessions, channels and memberships into the deployment's database. */
async function populate(d: Deployment): Promise<void> {
  const db = d.db!;
  const now = Date.now();
  const pk = crypto.randomBytes(32).toString('base64url');
  const channels = Math.ceil(SESSIONS / CHANNEL_SIZE);
  await db.query(
    `INSERT INTO users (username, pass_hash, created_at)
     SELECT 'idle' || g, 'unused: sessions are resumed', $1::bigint FROM generate_series(0, $2::int - 1) g`,
    [now, SESSIONS],
  );
  await db.query(
    `INSERT INTO sessions (session_id, username, role, created_at, public_key)
     SELECT 'idle-session-' || lpad(g::text, 8, '0'), 'idle' || g, 'user', $1::bigint, $3
     FROM generate_series(0, $2::int - 1) g`,
    [now, SESSIONS, pk],
  );
  // Channel c holds users c*size … c*size+size-1, the first its owner.
  await db.query(
    `INSERT INTO channels (id, name, owner, allow_visitors, created_at)
     SELECT '01900000-0000-7000-8000-' || lpad(to_hex(c), 12, '0'), 'idle-' || c,
            'idle' || (c * $2::int), false, $1::bigint + c
     FROM generate_series(0, $3::int - 1) c`,
    [now, CHANNEL_SIZE, channels],
  );
  await db.query(
    `INSERT INTO members (channel_id, username, joined_at)
     SELECT '01900000-0000-7000-8000-' || lpad(to_hex(g / $2::int), 12, '0'), 'idle' || g, $1::bigint
     FROM generate_series(0, $3::int - 1) g`,
    [now, CHANNEL_SIZE, SESSIONS],
  );
}

/** One run's figures. */
interface IdleRun {
  connectSeconds: number;
  /** Opens tried again (the server closed or did not answer one: busy). */
  openRetries: number;
  rssPerSessionKB: number;
  /** Each instance's RSS growth divided by the sessions it held. */
  rssPerSessionKBByInstance: number[];
  instancesRssMB: number;
  churned: number;
  returned: number;
  droppedByServer: number;
  misdirected: number;
  errors: number;
  pushesPerSessionPerMinute: number;
  receivedPerSessionPerMinute: number;
  /** What 1 % churn costs: a `peer_left` and a `peer_joined` to each co-member, per churn. */
  expectedPerSessionPerMinute: number;
  receivedByEvent: Record<string, number>;
  /** Each instance's CPU over the window, % of one core. */
  instancesCpuPercent: number[];
  loadAverage: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Forks the client workers, raising their open-file limits. */
function forkWorkers(count: number): ChildProcess[] {
  return Array.from({ length: count }, () => {
    const p = fork(path.join(import.meta.dirname, 'idle-clients.ts'), ['--idle-worker'], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    raiseOpenFiles(p.pid!, PER_WORKER + 1000);
    return p;
  });
}

/** One run on a fresh deployment. */
async function idleRun(): Promise<IdleRun> {
  const d = await deploy('pg', INSTANCES);
  let workers: ChildProcess[] = [];
  const cleanUp = async () => {
    await closeWorkers(workers);
    await d.close();
  };
  // Interrupted (Ctrl-C, a timeout's SIGTERM): the instances and the database go too.
  const interrupted = (signal: NodeJS.Signals) =>
    void cleanUp().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  process.once('SIGINT', interrupted).once('SIGTERM', interrupted);
  try {
    // Each instance holds its share of the connections, and some files and sockets of its own.
    for (const x of d.instances)
      raiseOpenFiles(x.pid, Math.ceil(SESSIONS / INSTANCES) + SPARE_FILES);
    await populate(d);
    await sleep(2000);
    const rss0 = d.instances.map((x) => rssKB(x.pid));
    workers = forkWorkers(Math.ceil(SESSIONS / PER_WORKER));
    const signingKeyPem = d.signingKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const connectStart = Date.now();
    let from = 0;
    const opened = workers.map((p, k) => {
      const count = Math.floor(SESSIONS / workers.length) + (k < SESSIONS % workers.length ? 1 : 0);
      const order: OpenOrder = {
        instances: d.instances.map((x) => x.server),
        signingKeyPem,
        from,
        count,
        channelSize: CHANNEL_SIZE,
        localAddress: `127.0.1.${k + 1}`,
      };
      from += count;
      return askWorker<{ opened: number; failed: number; retries: number }>(p, {
        cmd: 'open',
        ...order,
      });
    });
    const answers = await within(Promise.all(opened), CONNECT_DEADLINE_MS, 'opening the sessions');
    const failed = answers.reduce((n, a) => n + a.failed, 0);
    if (failed > 0) throw new Error(`${failed} of ${SESSIONS} sessions did not open`);
    const openRetries = answers.reduce((n, a) => n + a.retries, 0);
    const connectSeconds = (Date.now() - connectStart) / 1000;
    console.log(`  ${SESSIONS} sessions online in ${connectSeconds.toFixed(0)} s`);
    await sleep(5000);
    const rss1 = d.instances.map((x) => rssKB(x.pid));
    // The window: 1 % a minute drop and come back on the next instance, spread over the minute.
    for (const p of workers) p.send({ cmd: 'window', churnPerMinute: CHURN_PER_MINUTE });
    const pushes0 = (await Promise.all(d.instances.map(pushesTotal))).reduce((a, b) => a + b, 0);
    const cpu0 = d.instances.map((x) => cpuSeconds(x.pid));
    const t0 = Date.now();
    await sleep(MINUTES * 60_000);
    const seconds = (Date.now() - t0) / 1000;
    const cpu = d.instances.map((x, k) => ((cpuSeconds(x.pid) - cpu0[k]!) / seconds) * 100);
    const loadAverage = os.loadavg()[0]!;
    const pushes1 = (await Promise.all(d.instances.map(pushesTotal))).reduce((a, b) => a + b, 0);
    const reports = await within(
      Promise.all(workers.map((p) => askWorker<IdleReport>(p, { cmd: 'report' }))),
      60_000,
      "the workers' reports",
    );
    const sum = (f: (r: IdleReport) => number) => reports.reduce((n, r) => n + f(r), 0);
    const byEvent: Record<string, number> = {};
    for (const r of reports)
      for (const [ev, n] of Object.entries(r.events)) byEvent[ev] = (byEvent[ev] ?? 0) + n;
    const received = Object.values(byEvent).reduce((a, b) => a + b, 0);
    const minutes = seconds / 60;
    const perSessionMinute = (n: number) => Number((n / SESSIONS / minutes).toFixed(3));
    const churned = sum((r) => r.churned);
    // Session i opened on instance i % INSTANCES.
    const held = d.instances.map((_, k) => Math.floor((SESSIONS - 1 - k) / INSTANCES) + 1);
    const rssGrowth = rss1.reduce((t, r, k) => t + r - rss0[k]!, 0);
    return {
      connectSeconds: Math.round(connectSeconds),
      openRetries,
      rssPerSessionKB: Number((rssGrowth / SESSIONS).toFixed(1)),
      rssPerSessionKBByInstance: rss1.map((r, k) => Number(((r - rss0[k]!) / held[k]!).toFixed(1))),
      instancesRssMB: Math.round(rss1.reduce((a, b) => a + b, 0) / 1024),
      churned,
      returned: sum((r) => r.returned),
      droppedByServer: sum((r) => r.dropped),
      misdirected: sum((r) => r.misdirected),
      errors: sum((r) => r.errors),
      pushesPerSessionPerMinute: perSessionMinute(pushes1 - pushes0),
      receivedPerSessionPerMinute: perSessionMinute(received),
      expectedPerSessionPerMinute: perSessionMinute(churned * 2 * (CHANNEL_SIZE - 1)),
      receivedByEvent: byEvent,
      instancesCpuPercent: cpu.map((c) => Number(c.toFixed(1))),
      loadAverage: Number(loadAverage.toFixed(1)),
    };
  } finally {
    process.off('SIGINT', interrupted).off('SIGTERM', interrupted);
    await cleanUp();
  }
}

/** BENCH_IDLE_REPEATS runs: the medians, and each run's figures. */
export async function benchIdle(): Promise<Record<string, unknown>> {
  console.log(
    `\nidle sessions: ${SESSIONS} over ${INSTANCES} instances, 1 % churn a minute, ${MINUTES} min, ${REPEATS} run(s)`,
  );
  const runs: IdleRun[] = [];
  for (let r = 0; r < REPEATS; r++) {
    runs.push(await idleRun());
    console.log('  idle run:', JSON.stringify(runs[runs.length - 1]));
  }
  const med = (f: (r: IdleRun) => number) => median(runs.map(f));
  return {
    sessions: SESSIONS,
    instances: INSTANCES,
    channelSize: CHANNEL_SIZE,
    minutes: MINUTES,
    repeats: REPEATS,
    workers: Math.ceil(SESSIONS / PER_WORKER),
    connectSeconds: med((r) => r.connectSeconds),
    rssPerSessionKB: med((r) => r.rssPerSessionKB),
    churned: med((r) => r.churned),
    droppedByServer: Math.max(...runs.map((r) => r.droppedByServer)),
    misdirected: Math.max(...runs.map((r) => r.misdirected)),
    pushesPerSessionPerMinute: med((r) => r.pushesPerSessionPerMinute),
    receivedPerSessionPerMinute: med((r) => r.receivedPerSessionPerMinute),
    expectedPerSessionPerMinute: med((r) => r.expectedPerSessionPerMinute),
    instancesCpuPercent: med((r) => r.instancesCpuPercent.reduce((a, b) => a + b, 0)),
    loadAverage: med((r) => r.loadAverage),
    runs,
  };
}
