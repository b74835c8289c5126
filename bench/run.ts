/**
 * `npm run bench`: one channel with 100 online members, one publisher with a bounded in-flight
 * window. Measures deliveries per second and end-to-end latency (publisher send → member
 * receive, both in this process, so one clock) against Hybrid Chat's server, and against a
 * trivial relay (bench/relay.ts) in the same run as the anchor. Each server runs in its own
 * process; this process is the load generator. Results: bench/results/<date>.json.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeFrame } from '../src/protocol/frame.js';
import { newSessionKeys, signMessage, type SessionKeys } from '../src/shared/signing.js';
import { messageId } from '../src/shared/message-id.js';
import { benchHosting } from './hosting.js';
import { benchStream } from './stream.js';
import { mosquittoRig, ngircdRig, type Rig } from './anchors.js';
import { MemberWorkers } from './members.js';
import { PushFrames } from './relay-frames.js';
import { writeReport } from './report.js';
import { benchCapacity } from './capacity.js';
import { benchSearch } from './search.js';
import { benchFiles } from './files.js';
import { benchCluster } from './cluster.js';
import { benchBots } from './bots.js';
import { benchMix } from './mix.js';
import { benchNat } from './nat.js';
import { benchWebUi } from './web-ui.js';
import { benchStoreCost } from './store-cost.js';
import {
  Client,
  ROOT,
  cpuSeconds,
  rssKB,
  startProcess,
  startServer,
  stopProcess,
  type ServerAddress,
} from './harness.js';

const MEMBER_COUNTS = (process.env.BENCH_MEMBERS ?? '10,100,500').split(',').map(Number);
const WINDOW = Number(process.env.BENCH_WINDOW ?? 100);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);

function percentile(sorted: Float64Array, p: number): number {
  return sorted.length
    ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
    : NaN;
}

interface Result {
  members: number;
  deliveriesPerSec: number;
  messagesPerSec: number;
  p50ms: number;
  p99ms: number;
  maxMs: number;
  lost: number;
  serverCpuPerDeliveryUs: number;
  serverCpuPercent: number;
  serverRssMB: number;
  /** The server's RSS with every client connected, before the first message (issue 19). */
  serverIdleRssMB: number;
  /** The publishing process (and probe member). */
  loadGenCpuPercent: number;
  /** The member processes together (200 % = both cores). */
  membersCpuPercent: number;
  /**
   * The member processes' CPU (user + system: reading, TLS, parsing and checking every frame)
   * over the window, per delivery counted (bench/member-checks.ts says what each protocol's
   * members check).
   */
  membersCpuPerDeliveryUs: number;
  /** Members whose connection the server closed during the run (slow consumers dropped). */
  membersDropped: number;
  /** A median of this many runs (bench/run.ts medianOf), and each run's deliveries/s and CPU. */
  runs?: number;
  deliveriesPerSecRuns?: number[];
  serverCpuPerDeliveryUsRuns?: number[];
  membersCpuPerDeliveryUsRuns?: number[];
}

/** What drive needs of the publisher (the bench's Client, or an anchor's). */
interface Publisher<T> {
  onAck: () => void;
  fire(x: T): void;
}

/**
 * Publishes for SECONDS (after a 1 s warm-up) while `workers` count deliveries: at full speed
 * with WINDOW messages in flight in all (each of n publishers keeps WINDOW / n), or at `rate`
 * messages per second in all (publishers in turn) on a 10 ms clock whatever the
 * acknowledgements. `frameFor(k, i, ns)`: publisher k's message number i, sent at ns.
 */
async function drive<T>(
  rate: number | undefined,
  publishers: Publisher<T>[],
  workers: MemberWorkers,
  members: number,
  serverPid: number,
  frameFor: (k: number, i: number, sentNs: bigint) => T,
): Promise<Result> {
  const idleRss = rssMB(serverPid);
  let sent = 0;
  let sentMeasured = 0;
  let measuring = false;
  let running = true;
  const window = Math.max(1, Math.round(WINDOW / publishers.length));
  const inFlight = publishers.map(() => 0);
  const send = (k: number) => {
    inFlight[k]!++;
    sent++;
    if (measuring) sentMeasured++;
    publishers[k]!.fire(frameFor(k, sent, process.hrtime.bigint()));
  };
  const pump = (k: number) => {
    while (running && rate === undefined && inFlight[k]! < window) send(k);
  };
  publishers.forEach((p, k) => {
    p.onAck = () => {
      inFlight[k]!--;
      pump(k);
    };
  });
  // The window is announced before anything is sent: a member process that falls behind reads a
  // backlog for seconds at a time, and its IPC waits behind it.
  const t0 = process.hrtime.bigint() + 1_000_000_000n;
  workers.measure(t0, t0 + BigInt(SECONDS * 1e9));
  let ticker: NodeJS.Timeout | undefined;
  if (rate === undefined) publishers.forEach((_, k) => pump(k));
  else {
    const began = process.hrtime.bigint();
    ticker = setInterval(() => {
      const due = Math.floor((Number(process.hrtime.bigint() - began) / 1e9) * rate);
      while (running && sent < due) send(sent % publishers.length);
    }, 10);
  }
  await new Promise((r) => setTimeout(r, Number(t0 - process.hrtime.bigint()) / 1e6)); // warm-up
  const cpu0 = cpuSeconds(serverPid);
  const lg0 = process.cpuUsage();
  const opened = process.hrtime.bigint();
  measuring = true;
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  measuring = false;
  // Everything about the window is read as it closes; the workers may answer later (busy).
  const elapsed = Number(process.hrtime.bigint() - opened) / 1e9;
  const cpu = cpuSeconds(serverPid) - cpu0;
  const lg = process.cpuUsage(lg0);
  const rss = rssMB(serverPid);
  const report = await workers.stop();
  running = false;
  clearInterval(ticker);
  await new Promise((r) => setTimeout(r, 500)); // let the window drain
  const sorted = Float64Array.from(report.samples).sort();
  return {
    members,
    // The members count deliveries read in [t0, t0 + SECONDS) exactly.
    deliveriesPerSec: report.deliveries / SECONDS,
    messagesPerSec: sentMeasured / elapsed,
    p50ms: percentile(sorted, 50),
    p99ms: percentile(sorted, 99),
    maxMs: sorted.length ? sorted[sorted.length - 1]! : NaN,
    // Deliveries of messages sent in the window that had not arrived when it closed, across all
    // members, less a window's worth (approximate at the edges). A server that falls behind shows
    // its backlog here; it is loss only if the backlog is never delivered.
    lost: Math.max(0, sentMeasured * members - report.deliveries - WINDOW * members),
    serverCpuPerDeliveryUs: (cpu / report.deliveries) * 1e6,
    serverCpuPercent: (cpu / elapsed) * 100,
    serverRssMB: rss,
    serverIdleRssMB: idleRss,
    loadGenCpuPercent: ((lg.user + lg.system) / 1e6 / elapsed) * 100,
    membersCpuPercent: (report.cpuUs / 1e6 / elapsed) * 100,
    membersCpuPerDeliveryUs: report.cpuUs / report.deliveries,
    membersDropped: report.dropped,
  };
}

const rssMB = (pid: number) => rssKB(pid) / 1024;
/** The servers under test may run under another `node` (a profiling wrapper, say). */
const SERVER_NODE = process.env.BENCH_SERVER_NODE;

const TEXT_PAD = 'x'.repeat(100);
/** A message's text: its send time, its publisher (a probe's receipt acks it), padding. */
const payload = (ns: bigint, k = 0) => `${ns}|${k}|${TEXT_PAD}`.slice(0, 100);

/** One run against an anchor (bench/anchors.ts), or why it could not run. */
async function benchAnchor(
  make: (publishers: number) => Promise<Rig>,
  c: Cell,
): Promise<{ name: string; result?: Result; error?: string }> {
  const { members, rate } = c;
  let rig: Rig | undefined;
  let workers: MemberWorkers | undefined;
  try {
    rig = await make(c.publishers);
    // The probe's deliveries are not counted (it only acknowledges): the rest are measured.
    const counted = members - (rig.probe ? 1 : 0);
    workers = await MemberWorkers.start(rig.target, counted);
    const result = await drive(rate, rig.publishers, workers, counted, rig.pid, (k, _i, ns) =>
      payload(ns, k),
    );
    result.members = members;
    return { name: rig.name, result };
  } catch (err) {
    return { name: rig?.name ?? 'anchor', error: String(err) };
  } finally {
    workers?.close();
    await rig?.close();
  }
}

/** A Hybrid Chat server under test, with its publishers logged in and one channel of theirs. */
interface HchatUnderTest {
  /** With the fingerprint to pin: over TLS; without: the plain-TCP server (bench/plain-server.ts). */
  server: ServerAddress;
  pid: number;
  publicKey: string;
  publishers: Client[];
  channelId: string;
  /**
   * Publisher k's message `n` (unique across publishers) as a signed post request: signing is
   * the load generator's cost.
   */
  post(k: number, n: number, text: string): Buffer;
}

/**
 * Starts `bin/hchat server` on a temporary folder (with `plain`, the same server without TLS:
 * bench/plain-server.ts), logs the publisher in, creates a channel that allows visitors (members
 * are visitor sessions: no password hashing to open 500, and a channel that allows visitors
 * pushes to them exactly as to members), runs `use`, then stops it all. Every client of the TLS
 * server pins the fingerprint its ready line printed, as a real peer does.
 */
async function withHchat<T>(
  channelId: string,
  publisherCount: number,
  use: (h: HchatUnderTest) => Promise<T>,
  plain = false,
): Promise<T> {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-bench-'));
  const { proc, ready } = await startServer(data, SERVER_NODE, plain);
  const server: ServerAddress = {
    addr: ready.tcp!,
    fingerprint: plain ? undefined : ready.fingerprint,
  };
  try {
    if (!plain && !server.fingerprint) throw new Error('the server printed no fingerprint');
    // Publishers are users, members of the channel (so they get each other's messages, as the
    // IRC publishers, who must join to speak, do).
    const pubs: Array<{ username: string; keys: SessionKeys; client: Client; cert: string }> = [];
    for (let k = 0; k < publisherCount; k++) {
      const username = `publisher${k}`;
      const keys = newSessionKeys();
      const client = await Client.connect(server, true);
      await client.request('register', { username, password: 'bench-pw' });
      const s = await client.request('login', {
        username,
        password: 'bench-pw',
        publicKey: keys.publicKey,
      });
      if (k === 0) {
        await client.request('channel_create', {
          id: channelId,
          name: 'bench',
          allowVisitors: true,
        });
      } else await client.request('channel_join', { channelId });
      pubs.push({ username, keys, client, cert: s.cert as string });
    }
    const post = (k: number, n: number, text: string) => {
      const { username, keys, cert } = pubs[k]!;
      // The id is derived from the content, as every replica checks (src/shared/message-id.ts).
      const content = { channelId, ts: Date.now(), lc: n & 0xffff, text };
      const fields = { id: messageId({ ...content, author: username }), ...content };
      const sig = signMessage({ ...fields, author: username }, keys);
      return encodeFrame({
        t: 'req',
        id: 1_000_000 + n,
        op: 'post',
        body: { message: { ...fields, sig, cert } },
      });
    };
    const result = await use({
      server,
      pid: proc.pid!,
      publicKey: pubs[0]!.keys.publicKey,
      publishers: pubs.map((p) => p.client),
      channelId,
      post,
    });
    for (const p of pubs) p.client.close();
    return result;
  } finally {
    await stopProcess(proc);
    fs.rmSync(data, { recursive: true, force: true });
  }
}

/**
 * One run against Hybrid Chat's server: over TLS as peers use it, or with `plain`, without.
 * Members parse and schema-check every frame; with `signatures` they also verify each message's
 * certificate and signature, as a peer does (bench/member-checks.ts).
 */
function benchHchat(
  { members, rate, publishers }: Cell,
  plain = false,
  signatures = false,
): Promise<Result> {
  return withHchat(
    '01900000-0000-7000-8000-00000000be01',
    publishers,
    async (h) => {
      const workers = await MemberWorkers.start(
        {
          kind: 'hchat',
          server: h.server,
          channelId: h.channelId,
          publicKey: h.publicKey,
          signatures,
        },
        members,
      );
      try {
        return await drive(rate, h.publishers, workers, members, h.pid, (k, i, ns) =>
          h.post(k, i, payload(ns, k)),
        );
      } finally {
        workers.close();
      }
    },
    plain,
  );
}

/**
 * Issue 19 item 1: the frames one pushed message with a 100-character text takes, on a compact
 * link (as every peer asks for it, PROTOCOL.md §3.11) and in the full form, as two members of one
 * channel receive them from the real server (each frame's bytes: its 4-byte length and its JSON,
 * re-encoded as received). The first message a compact link gets also brings its `ref` frames;
 * the figure is the second's. On the wire a frame sent alone adds a TLS 1.3 record's 22 bytes
 * (test/compact.test.ts measures 264 + 22 = 286 at the TCP level).
 */
async function benchFrameSize(): Promise<Record<string, number>> {
  return withHchat('01900000-0000-7000-8000-00000000be05', 1, async (h) => {
    const frames: Record<string, { t: string; bytes: number }[]> = { compact: [], full: [] };
    for (const kind of ['compact', 'full'] as const) {
      const c = await Client.connect(h.server, kind === 'compact' ? { compact: 1 } : true);
      await c.request('visitor', { name: `reader ${kind}`, publicKey: h.publicKey });
      await c.request('channel_join', { channelId: h.channelId });
      c.onEvent = (f) =>
        frames[kind]!.push({ t: f.t, bytes: Buffer.byteLength(JSON.stringify(f)) + 4 });
    }
    const pub = h.publishers[0]!;
    for (let i = 0; i < 2; i++) {
      const ns = process.hrtime.bigint();
      pub.fire(h.post(0, i + 1, payload(ns, 0)));
      const want = i + 1;
      const deadline = Date.now() + 10_000;
      while (
        frames.full!.length < want ||
        frames.compact!.filter((f) => f.t === 'm').length < want
      ) {
        if (Date.now() > deadline) throw new Error('frame sizes: the pushes did not arrive');
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    const m = frames.compact!.filter((f) => f.t === 'm');
    return {
      compactPushBytes: m[1]!.bytes,
      fullPushBytes: frames.full![1]!.bytes,
      firstCompactPushBytes: frames.compact!.slice(0, 3).reduce((n, f) => n + f.bytes, 0),
      tlsRecordBytes: 22,
    };
  });
}

/**
 * A member stops reading for SLOW_SECONDS while 99 others receive 1,000 messages/s: the server's
 * memory over that time, the others' latency before and during it, and what became of the slow
 * member (the server drops a reader with more than 16 MiB queued: E_SLOW_CONSUMER).
 */
function benchSlowMember(): Promise<Record<string, unknown>> {
  return withHchat('01900000-0000-7000-8000-00000000be02', 1, async (h) => {
    const slow = await Client.connect(h.server, true);
    await slow.request('visitor', { name: 'slow reader', publicKey: h.publicKey });
    await slow.request('channel_join', { channelId: h.channelId });
    let dropped: string | undefined;
    let closed = false;
    slow.onEvent = (f) => {
      if (f.t === 'error') dropped = f.code;
    };
    void slow.closed.then(() => (closed = true));
    const workers = await MemberWorkers.start(
      {
        kind: 'hchat',
        server: h.server,
        channelId: h.channelId,
        publicKey: h.publicKey,
        signatures: false,
      },
      99,
    );
    let n = 0;
    const ticker = setInterval(() => {
      for (let k = 0; k < 10; k++)
        h.publishers[0]!.fire(h.post(0, ++n, payload(process.hrtime.bigint())));
    }, 10);
    try {
      const window = async (seconds: number, sample?: (rss: number) => void) => {
        const t0 = process.hrtime.bigint();
        workers.measure(t0, t0 + BigInt(seconds * 1e9));
        for (let k = 0; k < seconds; k++) {
          await new Promise((r) => setTimeout(r, 1000));
          sample?.(rssMB(h.pid));
        }
        const r = await workers.stop();
        const sorted = Float64Array.from(r.samples).sort();
        return {
          p50: percentile(sorted, 50),
          p99: percentile(sorted, 99),
          deliveries: r.deliveries,
        };
      };
      await new Promise((r) => setTimeout(r, 2000)); // warm-up
      const before = await window(5);
      const rssBefore = rssMB(h.pid);
      slow.pause();
      const rss: number[] = [];
      const during = await window(SLOW_SECONDS, (m) => rss.push(m));
      slow.resume();
      await new Promise((r) => setTimeout(r, 500));
      return {
        seconds: SLOW_SECONDS,
        othersBefore: {
          p50ms: round2(before.p50),
          p99ms: round2(before.p99),
          deliveriesPerSec: Math.round(before.deliveries / 5),
        },
        othersDuring: {
          p50ms: round2(during.p50),
          p99ms: round2(during.p99),
          deliveriesPerSec: Math.round(during.deliveries / SLOW_SECONDS),
        },
        serverRssBeforeMB: round2(rssBefore),
        serverRssMaxDuringMB: round2(Math.max(...rss)),
        serverRssEndMB: round2(rss[rss.length - 1] ?? NaN),
        slowMember: closed
          ? `dropped by the server (${dropped ?? 'its error frame was behind the unread bytes'})`
          : 'still connected',
      };
    } finally {
      clearInterval(ticker);
      workers.close();
      slow.close();
    }
  });
}

const round2 = (n: number) => Math.round(n * 100) / 100;

/**
 * One run against the Node relay: its publishers send the push frames Hybrid Chat's server sends
 * (signed, bench/relay-frames.ts), which its members parse and check as Hybrid Chat's do.
 */
async function benchRelay({ members, rate, publishers }: Cell): Promise<Result> {
  const { proc, ready } = await startProcess(['--import', 'tsx', 'bench/relay.ts'], SERVER_NODE);
  const addr = ready.tcp!;
  const channelId = '01900000-0000-7000-8000-00000000be03';
  const frames = new PushFrames(channelId, publishers);
  let workers: MemberWorkers | undefined;
  try {
    const pubs = await Promise.all(
      Array.from({ length: publishers }, () => Client.connect({ addr }, false)),
    );
    const defs = Buffer.concat(pubs.flatMap((_, k) => frames.prelude(k))).toString('base64');
    workers = await MemberWorkers.start({ kind: 'relay', addr, channelId, defs }, members);
    const result = await drive(rate, pubs, workers, members, proc.pid!, (k, i, ns) =>
      frames.frame(k, i, payload(ns, k)),
    );
    for (const p of pubs) p.close();
    return result;
  } finally {
    workers?.close();
    await stopProcess(proc);
  }
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

/** The anchors, by the names BENCH_ONLY takes. */
const ANCHORS: Array<[string, (publishers: number) => Promise<Rig>]> = [
  ['mqtt0', (n) => mosquittoRig(0, n)],
  ['mqtt1', (n) => mosquittoRig(1, n)],
  ['ngircd', (n) => ngircdRig(n)],
];
/** Each cell runs this many times per target, in rotating order; the tables give medians. */
const REPEATS = Math.max(1, Number(process.env.BENCH_REPEATS ?? 3));
/** The many-publishers cells: this many publishers, with these member counts. */
const PUBLISHERS = Math.max(2, Number(process.env.BENCH_PUBLISHERS ?? 10));
const MANY_MEMBERS = (process.env.BENCH_MANY_MEMBERS ?? '100')
  .split(',')
  .filter(Boolean)
  .map(Number);

/** One scenario: members, publishers, and full speed (no rate) or a fixed rate in all. */
interface Cell {
  members: number;
  rate?: number;
  publishers: number;
}

function cellName({ members, rate, publishers }: Cell): string {
  const speed =
    rate === undefined
      ? `full speed (${WINDOW} in flight${publishers > 1 ? ` in all, ${Math.round(WINDOW / publishers)} each` : ''})`
      : `${fmt(rate)} messages/s${publishers > 1 ? ' in all' : ''}`;
  return `${members} members, ${publishers === 1 ? '1 publisher' : `${publishers} publishers`}, ${speed}`;
}

/** Each figure's median over the runs (runs differ by up to ~25 %), and every run's deliveries/s. */
function medianOf(runs: Result[]): Result {
  const out: Result = { ...runs[0]! };
  // Every figure of a run is a number: each gets its median, so a figure added later is too.
  for (const k of Object.keys(out) as Array<keyof Result>) {
    if (typeof out[k] !== 'number') continue;
    const v = runs.map((r) => r[k] as number).sort((x, y) => x - y);
    const mid =
      v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
    (out as unknown as Record<string, number>)[k] = mid;
  }
  out.runs = runs.length;
  out.deliveriesPerSecRuns = runs.map((r) => Math.round(r.deliveriesPerSec));
  out.serverCpuPerDeliveryUsRuns = runs.map((r) => round2(r.serverCpuPerDeliveryUs));
  out.membersCpuPerDeliveryUsRuns = runs.map((r) => round2(r.membersCpuPerDeliveryUs));
  return out;
}

/** BENCH_ONLY=relay,mqtt0,mqtt1,ngircd,sig,plain: run only these beside Hybrid Chat (profiling). */
const ONLY = process.env.BENCH_ONLY?.split(',');

const RATES = (process.env.BENCH_RATES ?? '1000,10000').split(',').filter(Boolean).map(Number);
const SLOW_SECONDS = Number(process.env.BENCH_SLOW_SECONDS ?? 60);

/** The column of Hybrid Chat whose members also verify every signature. */
const SIG_NAME = 'Hybrid Chat, members check signatures';

/**
 * One row per figure: Hybrid Chat, Hybrid Chat with members checking signatures (when it ran),
 * then each anchor, then ours (members checking the JSON) / the best anchor.
 */
function table(
  hchat: Result,
  sig: Result | undefined,
  anchors: Array<{ name: string; result?: Result }>,
): void {
  const ok = anchors.filter((a) => a.result) as Array<{ name: string; result: Result }>;
  const rows: Array<[string, (r: Result) => number, number, 'high' | 'low' | 'none']> = [
    ['deliveries/s', (r) => r.deliveriesPerSec, 0, 'high'],
    ['messages/s', (r) => r.messagesPerSec, 0, 'high'],
    ['latency p50 ms', (r) => r.p50ms, 2, 'low'],
    ['latency p99 ms', (r) => r.p99ms, 2, 'low'],
    ['latency max ms', (r) => r.maxMs, 1, 'low'],
    ['server CPU µs/delivery', (r) => r.serverCpuPerDeliveryUs, 2, 'low'],
    ['server CPU %', (r) => r.serverCpuPercent, 0, 'none'],
    ['server RSS MB', (r) => r.serverRssMB, 1, 'none'],
    ['server RSS MB before the first message', (r) => r.serverIdleRssMB, 1, 'none'],
    ['publisher process CPU %', (r) => r.loadGenCpuPercent, 0, 'none'],
    ['member processes CPU % (of 200)', (r) => r.membersCpuPercent, 0, 'none'],
    ['member CPU µs/delivery (read, parse, check)', (r) => r.membersCpuPerDeliveryUs, 2, 'low'],
    ['not delivered in the window', (r) => r.lost, 0, 'none'],
    ['members dropped by the server', (r) => r.membersDropped, 0, 'none'],
  ];
  const sigHead = sig ? ` ${SIG_NAME} |` : '';
  console.log(
    `| figure | hchat (stores every message) |${sigHead} ${anchors.map((a) => a.name + (a.result ? '' : ' (did not run)')).join(' | ')} | hchat / best anchor |`,
  );
  console.log(`|---|---:|${sig ? '---:|' : ''}${anchors.map(() => '---:').join('|')}|---:|`);
  for (const [name, f, digits, better] of rows) {
    const values = ok.map((a) => f(a.result));
    const best =
      better === 'high' ? Math.max(...values) : better === 'low' ? Math.min(...values) : NaN;
    const ratio = Number.isFinite(best) && best > 0 ? fmt(f(hchat) / best, 2) : '';
    const sigCell = sig ? ` ${fmt(f(sig), digits)} |` : '';
    console.log(
      `| ${name} | ${fmt(f(hchat), digits)} |${sigCell} ${anchors.map((a) => (a.result ? fmt(f(a.result), digits) : '–')).join(' | ')} | ${ratio} |`,
    );
  }
  for (const a of anchors)
    if (!a.result) console.log(`(${a.name}: ${(a as { error?: string }).error})`);
}

/** What TLS costs: Hybrid Chat with TLS (as peers use it) and without, same run. */
function tlsTable(tls: Result, plain: Result): void {
  const rows: Array<[string, (r: Result) => number, number]> = [
    ['server CPU µs/delivery', (r) => r.serverCpuPerDeliveryUs, 2],
    ['latency p99 ms', (r) => r.p99ms, 2],
    ['deliveries/s', (r) => r.deliveriesPerSec, 0],
    ['member processes CPU % (of 200)', (r) => r.membersCpuPercent, 0],
    ['member CPU µs/delivery', (r) => r.membersCpuPerDeliveryUs, 2],
  ];
  console.log(
    '\n| figure | hchat, TLS 1.3 | hchat, plain TCP | TLS / plain |\n|---|---:|---:|---:|',
  );
  for (const [name, f, digits] of rows)
    console.log(
      `| ${name} | ${fmt(f(tls), digits)} | ${fmt(f(plain), digits)} | ${fmt(f(tls) / f(plain), 2)} |`,
    );
  console.log(
    `| server CPU µs/delivery of each run | ${tls.serverCpuPerDeliveryUsRuns?.join(', ')} | ${plain.serverCpuPerDeliveryUsRuns?.join(', ')} | |`,
  );
}

async function main(): Promise<void> {
  console.log(
    `bench: 1 channel, ${MEMBER_COUNTS.join(' / ')} online members, 1 publisher${MANY_MEMBERS.length ? ` (and ${PUBLISHERS} with ${MANY_MEMBERS.join(' / ')})` : ''}; ${SECONDS} s measured after 1 s warm-up, ${REPEATS} runs a cell (medians); members in 2 processes of their own`,
  );
  const cells: Cell[] = process.env.BENCH_SKIP_FANOUT
    ? []
    : [
        ...MEMBER_COUNTS.flatMap((members) =>
          [undefined, ...RATES].map((rate) => ({ members, rate, publishers: 1 })),
        ),
        ...MANY_MEMBERS.flatMap((members) =>
          [undefined, ...RATES.slice(0, 1)].map((rate) => ({
            members,
            rate,
            publishers: PUBLISHERS,
          })),
        ),
      ];
  const results = [];
  for (const cell of cells) {
    const name = cellName(cell);
    console.log(`\n${name} (${REPEATS} runs)`);
    // Every target once per round, in an order that rotates from round to round.
    type Run = { name: string; result?: Result; error?: string };
    const targets: Array<[string, () => Promise<Run>]> = [
      ['relay', async () => ({ name: 'Node relay', result: await benchRelay(cell) })],
      ...ANCHORS.map(([key, rig]): [string, () => Promise<Run>] => [
        key,
        () => benchAnchor(rig, cell),
      ]),
      ['hchat', async () => ({ name: 'Hybrid Chat', result: await benchHchat(cell) })],
      [
        'sig',
        async () => ({
          name: SIG_NAME,
          result: await benchHchat(cell, false, true),
        }),
      ],
      [
        'plain',
        async () => ({ name: 'Hybrid Chat without TLS', result: await benchHchat(cell, true) }),
      ],
    ];
    const runs = new Map<string, Run[]>();
    for (let round = 0; round < REPEATS; round++) {
      for (let i = 0; i < targets.length; i++) {
        const [key, run] = targets[(i + round) % targets.length]!;
        if (key !== 'hchat' && ONLY && !ONLY.includes(key)) continue;
        runs.set(key, [...(runs.get(key) ?? []), await run()]);
      }
    }
    /** The median of a target's runs that worked, or the first run's error. */
    const summed = (key: string): Run | undefined => {
      const all = runs.get(key);
      if (!all) return undefined;
      const ok = all.flatMap((r) => (r.result ? [r.result] : []));
      return ok.length
        ? { name: all[0]!.name, result: medianOf(ok) }
        : { name: all[0]!.name, error: all[0]!.error };
    };
    const hchat = summed('hchat')!.result!;
    const hchatSig = summed('sig')?.result;
    const hchatPlain = summed('plain')?.result;
    const relay = summed('relay')?.result;
    const anchors = ANCHORS.flatMap(([key]) => summed(key) ?? []);
    console.log('');
    table(hchat, hchatSig, anchors);
    if (relay)
      console.log(
        `Node relay (forwards, stores nothing): ${fmt(relay.deliveriesPerSec)} deliveries/s, p99 ${fmt(relay.p99ms, 2)} ms, ${fmt(relay.serverCpuPerDeliveryUs, 2)} µs/delivery, members ${fmt(relay.membersCpuPerDeliveryUs, 2)} µs/delivery`,
      );
    if (hchatPlain) tlsTable(hchat, hchatPlain);
    results.push({
      scenario: name,
      members: cell.members,
      rate: cell.rate ?? null,
      publishers: cell.publishers,
      hchat,
      hchatSig,
      hchatPlain,
      relay,
      anchors,
    });
  }
  console.log('\nframe sizes: one pushed message with a 100-character text');
  const frameSize = await benchFrameSize();
  console.log(JSON.stringify(frameSize, null, 2));
  // Issue 19 item 3: what storing a message costs the server's store, its index in batches or not.
  let storeCost: Record<string, unknown> | undefined;
  if (!process.env.BENCH_SKIP_STORE_COST) {
    console.log('\nstore cost: CPU per message stored, 1 and 10 a transaction');
    storeCost = await benchStoreCost();
    console.log(JSON.stringify(storeCost, null, 2));
  }
  let slowMember: Record<string, unknown> | undefined;
  if (!process.env.BENCH_SKIP_SLOW) {
    console.log(`\nslow member: 1 of 100 stops reading for ${SLOW_SECONDS} s at 1,000 messages/s`);
    slowMember = await benchSlowMember();
    console.log(JSON.stringify(slowMember, null, 2));
  }
  const hosting = process.env.BENCH_SKIP_HOSTING ? undefined : await benchHosting();
  const stream = process.env.BENCH_SKIP_STREAM ? undefined : await benchStream();
  const capacity = process.env.BENCH_SKIP_CAPACITY ? undefined : await benchCapacity();
  let search: Record<string, number> | undefined;
  if (!process.env.BENCH_SKIP_SEARCH) {
    console.log('\nsearch: a peer store of BENCH_SEARCH_MESSAGES (1,000,000) messages');
    search = await benchSearch();
    console.log(JSON.stringify(search, null, 2));
  }
  // BENCH_SKIP_FILES=1 or BENCH_FILES=0 skips the files; BENCH_FILES_QUICK=1 only checks the code.
  const files =
    process.env.BENCH_SKIP_FILES || process.env.BENCH_FILES === '0'
      ? undefined
      : await benchFiles();
  if (files?.quick) console.log('BENCH_FILES_QUICK: the files figures are not written');
  // Several instances (issue 16): BENCH_SKIP_CLUSTER skips it; parts skip themselves without
  // PostgreSQL or NATS and say so.
  const cluster = process.env.BENCH_SKIP_CLUSTER ? undefined : await benchCluster();
  // Bots (issue 17): a mention answered by `hchat bot` on the REST API and its gateway.
  let bots: Record<string, number> | undefined;
  if (!process.env.BENCH_SKIP_BOTS) {
    console.log('\nbots: mention to answer, hchat bot against a wire client');
    bots = await benchBots();
    console.log(JSON.stringify(bots, null, 2));
  }
  // NAT traversal (issue 18): link setup, chat latency and bulk over direct, punched and relayed
  // links in network namespaces; skips itself (and says why) without root.
  const nat = process.env.BENCH_SKIP_NAT ? undefined : await benchNat();
  if (nat) console.log(JSON.stringify(nat, null, 2));
  // The web UI (issue 19 item 5): Chromium on a channel of 100,000 messages and at 100 msg/s.
  let webUi: Record<string, unknown> | undefined;
  if (!process.env.BENCH_SKIP_WEB_UI) {
    console.log('\nweb UI: open 100,000 cached messages, scroll, 100 msg/s into the open channel');
    webUi = await benchWebUi();
    console.log(JSON.stringify(webUi, null, 2));
  }
  // A realistic mix (issue 19 item 4): 10,000 sessions, 1,000 Zipf-sized channels, churn, hosts.
  let mix: Awaited<ReturnType<typeof benchMix>> | undefined;
  if (!process.env.BENCH_SKIP_MIX) {
    mix = await benchMix();
    const { runs: _, ...figures } = mix;
    console.log(JSON.stringify(figures, null, 2));
  }
  if (ONLY) return console.log('BENCH_ONLY: a partial run, not written to bench/results');
  const date = new Date().toISOString().slice(0, 10);
  const out = path.join(ROOT, 'bench', 'results', `${date}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const machine = { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version };
  // A skipped section keeps its figures from today's earlier run, if there was one.
  const earlier = fs.existsSync(out) ? JSON.parse(fs.readFileSync(out, 'utf8')) : {};
  fs.writeFileSync(
    out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        machine,
        memberCounts: MEMBER_COUNTS,
        window: WINDOW,
        seconds: SECONDS,
        results: results.length ? results : earlier.results,
        frameSize,
        storeCost: storeCost ?? earlier.storeCost,
        slowMember: slowMember ?? earlier.slowMember,
        hosting: hosting ?? earlier.hosting,
        stream: stream ?? earlier.stream,
        capacity: capacity ?? earlier.capacity,
        search: search ?? earlier.search,
        files: (files && !files.quick ? files : undefined) ?? earlier.files,
        // A cluster part skipped this time keeps its figures from today's earlier run too.
        cluster: cluster ? { ...earlier.cluster, ...cluster } : earlier.cluster,
        bots: bots ?? earlier.bots,
        nat: nat ?? earlier.nat,
        // A quick web UI run (BENCH_WEB_QUICK) checks the code; its figures are not kept.
        webUi: (webUi && !webUi.quick ? webUi : undefined) ?? earlier.webUi,
        mix: mix ?? earlier.mix,
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`written to ${path.relative(ROOT, out)}`);
  console.log(`summary: ${path.relative(ROOT, writeReport(out))}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
