/**
 * The cluster bench (issue 16), part of `npm run bench` (bench/README.md "Several instances"):
 * - fan-out: deliveries/s and latency p99, one publisher at full speed, for one SQLite instance,
 *   one PostgreSQL instance and two PostgreSQL instances with NATS (publisher on the first,
 *   members split over both), in the same run, the median of BENCH_REPEATS runs each;
 * - cross-instance push latency p50/p99, at a paced rate, for members on the other instance
 *   (and, beside it, those on the publisher's);
 * - history page p99 on PostgreSQL with BENCH_HISTORY_MESSAGES messages (bench/cluster-history.ts);
 * - a file backed up and read back chunk by chunk, SQLite against two PostgreSQL instances
 *   (bench/cluster-files.ts);
 * - idle sessions over two instances with 1 % churn a minute (bench/cluster-idle.ts).
 * A part whose service (PostgreSQL, NATS) does not answer is skipped, and the report says so.
 */
import { newSessionKeys, signMessage } from '../src/shared/signing.js';
import { messageId } from '../src/shared/message-id.js';
import { encodeFrame } from '../src/protocol/frame.js';
import { Client, cpuSeconds } from './harness.js';
import { MemberWorkers, type WindowReport } from './members.js';
import {
  deploy,
  natsAvailable,
  percentile,
  pgAvailable,
  type Deployment,
} from './cluster-deploy.js';
import { median } from './stats.js';
import { benchClusterFiles } from './cluster-files.js';
import { benchHistory } from './cluster-history.js';
import { benchIdle } from './cluster-idle.js';

const MEMBERS = Number(process.env.BENCH_CLUSTER_MEMBERS ?? 100);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const WINDOW = Number(process.env.BENCH_WINDOW ?? 100);
/** Messages per second of the latency runs: well below saturation, so latency is not queueing. */
const LATENCY_RATE = Number(process.env.BENCH_CLUSTER_RATE ?? 50);

/** One fan-out run: the figures of the members on each instance. */
interface FanoutRun {
  deliveriesPerSec: number;
  p50ms: number;
  p99ms: number;
  /** Members on the publisher's instance, and on the other (two instances only). */
  local: { p50ms: number; p99ms: number };
  remote?: { p50ms: number; p99ms: number };
  serverCpuPercent: number;
}

const TEXT_PAD = 'x'.repeat(100);
const payload = (ns: bigint) => `${ns}|0|${TEXT_PAD}`.slice(0, 100);

const lat = (r: WindowReport) => {
  const s = Float64Array.from(r.samples).sort();
  return { p50ms: percentile(s, 50), p99ms: percentile(s, 99) };
};

/**
 * One run on a fresh deployment: a publisher (a user) on instance 0 creates a channel that
 * allows visitors, MEMBERS visitor members join it split evenly over the instances, and the
 * publisher posts at full speed (WINDOW in flight) or at `rate` messages/s for SECONDS after 1 s
 * of warm-up. Each member checks what it receives as bench/members.ts does.
 */
async function fanoutRun(make: () => Promise<Deployment>, rate?: number): Promise<FanoutRun> {
  const d = await make();
  const workers: MemberWorkers[] = [];
  let pub: Client | undefined;
  try {
    const [a] = d.instances;
    const keys = newSessionKeys();
    pub = await Client.connect(a!.server, true);
    await pub.request('register', { username: 'publisher', password: 'bench-pw' });
    const s = await pub.request('login', {
      username: 'publisher',
      password: 'bench-pw',
      publicKey: keys.publicKey,
    });
    const channelId = '01900000-0000-7000-8000-00000000c105';
    await pub.request('channel_create', { id: channelId, name: 'bench', allowVisitors: true });
    const n = d.instances.length;
    let first = 0;
    for (const [k, inst] of d.instances.entries()) {
      const share = Math.floor(MEMBERS / n) + (k < MEMBERS % n ? 1 : 0);
      workers.push(
        await MemberWorkers.start(
          {
            kind: 'hchat',
            server: inst.server,
            channelId,
            publicKey: keys.publicKey,
            signatures: false,
          },
          share,
          n === 1 ? 2 : 1,
          first,
        ),
      );
      first += share;
    }
    // Members on another instance hear of the channel's messages over the bus once they joined.
    const post = (i: number, text: string) => {
      const content = { channelId, ts: Date.now(), lc: i & 0xffff, text };
      const fields = { id: messageId({ ...content, author: 'publisher' }), ...content };
      const sig = signMessage({ ...fields, author: 'publisher' }, keys);
      return encodeFrame({
        t: 'req',
        id: 1_000_000 + i,
        op: 'post',
        body: { message: { ...fields, sig, cert: s.cert } },
      });
    };
    let sent = 0;
    let inFlight = 0;
    let running = true;
    const fire = () => {
      inFlight++;
      pub!.fire(post(++sent, payload(process.hrtime.bigint())));
    };
    pub.onAck = () => {
      inFlight--;
      while (running && rate === undefined && inFlight < WINDOW) fire();
    };
    let ticker: NodeJS.Timeout | undefined;
    if (rate === undefined) while (inFlight < WINDOW) fire();
    else {
      const began = process.hrtime.bigint();
      ticker = setInterval(() => {
        const due = Math.floor((Number(process.hrtime.bigint() - began) / 1e9) * rate);
        while (running && sent < due) fire();
      }, 10);
    }
    await new Promise((r) => setTimeout(r, 1000));
    const cpu0 = d.instances.reduce((t, i) => t + cpuSeconds(i.pid), 0);
    const t0 = process.hrtime.bigint();
    for (const w of workers) w.measure(t0, t0 + BigInt(SECONDS * 1e9));
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = d.instances.reduce((t, i) => t + cpuSeconds(i.pid), 0) - cpu0;
    const reports = await Promise.all(workers.map((w) => w.stop()));
    running = false;
    clearInterval(ticker);
    const all = Float64Array.from(reports.flatMap((r) => r.samples)).sort();
    return {
      deliveriesPerSec: reports.reduce((t, r) => t + r.deliveries, 0) / elapsed,
      p50ms: percentile(all, 50),
      p99ms: percentile(all, 99),
      local: lat(reports[0]!),
      ...(reports[1] && { remote: lat(reports[1]) }),
      serverCpuPercent: (cpu / elapsed) * 100,
    };
  } finally {
    pub?.close();
    for (const w of workers) w.close();
    await d.close();
  }
}

/** The medians of REPEATS full-speed runs of one deployment, with each run's deliveries/s. */
async function fanout(make: () => Promise<Deployment>) {
  const runs: FanoutRun[] = [];
  for (let r = 0; r < REPEATS; r++) runs.push(await fanoutRun(make));
  return {
    deliveriesPerSec: Math.round(median(runs.map((r) => r.deliveriesPerSec))),
    p99ms: median(runs.map((r) => r.p99ms)),
    serverCpuPercent: Math.round(median(runs.map((r) => r.serverCpuPercent))),
    deliveriesPerSecRuns: runs.map((r) => Math.round(r.deliveriesPerSec)),
  };
}

/** Every part of the cluster bench that its services allow; `skipped` says which did not run. */
export async function benchCluster(): Promise<Record<string, unknown>> {
  const skipped: string[] = [];
  const hasPg = await pgAvailable();
  const hasNats = await natsAvailable();
  if (!hasPg) skipped.push('PostgreSQL parts: no PostgreSQL at BENCH_PG');
  if (!hasNats) skipped.push('two-instance parts: no NATS at BENCH_NATS');
  const out: Record<string, unknown> = { members: MEMBERS, seconds: SECONDS, repeats: REPEATS };
  if (process.env.BENCH_SKIP_CLUSTER_FANOUT) skipped.push('fan-out: BENCH_SKIP_CLUSTER_FANOUT');
  else {
    const fan: Record<string, unknown> = {};
    console.log(`\ncluster fan-out: ${MEMBERS} members, one publisher at full speed`);
    fan.sqlite1 = await fanout(() => deploy('sqlite', 1));
    console.log('  SQLite, 1 instance:', JSON.stringify(fan.sqlite1));
    if (hasPg) {
      fan.pg1 = await fanout(() => deploy('pg', 1));
      console.log('  PostgreSQL, 1 instance:', JSON.stringify(fan.pg1));
    }
    if (hasPg && hasNats) {
      fan.pg2 = await fanout(() => deploy('pg', 2));
      console.log('  PostgreSQL + NATS, 2 instances:', JSON.stringify(fan.pg2));
      const paced: FanoutRun[] = [];
      for (let r = 0; r < REPEATS; r++)
        paced.push(await fanoutRun(() => deploy('pg', 2), LATENCY_RATE));
      fan.crossInstance = {
        rate: LATENCY_RATE,
        remoteP50ms: median(paced.map((r) => r.remote!.p50ms)),
        remoteP99ms: median(paced.map((r) => r.remote!.p99ms)),
        localP50ms: median(paced.map((r) => r.local.p50ms)),
        localP99ms: median(paced.map((r) => r.local.p99ms)),
      };
      console.log('  cross-instance latency:', JSON.stringify(fan.crossInstance));
    }
    out.fanout = fan;
  }
  if (process.env.BENCH_SKIP_HISTORY) skipped.push('history: BENCH_SKIP_HISTORY');
  else if (hasPg) out.history = await benchHistory();
  if (process.env.BENCH_SKIP_CLUSTER_FILES) skipped.push('file backups: BENCH_SKIP_CLUSTER_FILES');
  else out.files = await benchClusterFiles(hasPg && hasNats);
  if (process.env.BENCH_SKIP_IDLE) skipped.push('idle sessions: BENCH_SKIP_IDLE');
  else if (hasPg && hasNats) out.idle = await benchIdle();
  out.skipped = skipped;
  if (skipped.length) console.log('cluster bench skipped:', skipped.join('; '));
  return out;
}
