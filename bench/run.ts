/**
 * `npm run bench`: one channel with 100 online members, one publisher with a bounded in-flight
 * window. Measures deliveries per second and end-to-end latency (publisher send → member
 * receive, both in this process, so one clock) against Hybrid Chat's server, and against a
 * trivial relay (bench/relay.ts) in the same run as the anchor. Each server runs in its own
 * process; this process is the load generator. Results: bench/results/<date>.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FrameDecoder, encodeFrame } from '../src/protocol/frame.js';
import { newSessionKeys, signMessage } from '../src/shared/signing.js';
import { benchHosting } from './hosting.js';
import { benchStream } from './stream.js';
import { mosquittoRig, ngircdRig, type Rig } from './anchors.js';
import { benchCapacity } from './capacity.js';

const MEMBERS = Number(process.env.BENCH_MEMBERS ?? 100);
const WINDOW = Number(process.env.BENCH_WINDOW ?? 100);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROOT = path.resolve(import.meta.dirname, '..');

/** A raw framed client: no schema checks, so the load generator stays cheap. */
class Client {
  private readonly socket: net.Socket;
  private readonly decoder = new FrameDecoder();
  private nextId = 1;
  private readonly waiting = new Map<number, (f: Record<string, any>) => void>();
  onEvent: (f: Record<string, any>) => void = () => undefined;
  onAck: () => void = () => undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (d) => {
      for (const f of this.decoder.push(d)) {
        if (f.t === 'res') {
          const w = this.waiting.get(f.id as number);
          if (w) {
            this.waiting.delete(f.id as number);
            w(f);
          } else this.onAck();
        } else if (f.t === 'ev' || f.t === 'req') this.onEvent(f);
      }
    });
  }

  static connect(addr: string, hello: boolean): Promise<Client> {
    const [host, port] = addr.split(':') as [string, string];
    return new Promise((resolve, reject) => {
      const s = net.connect(Number(port), host, () => {
        const c = new Client(s);
        if (!hello) return resolve(c);
        s.write(encodeFrame({ t: 'hello', v: 1, role: 'peer' }));
        s.once('data', () => resolve(c));
      });
      s.once('error', reject);
    });
  }

  async request(op: string, body: object): Promise<any> {
    const id = this.nextId++;
    const answer = new Promise<Record<string, any>>((r) => this.waiting.set(id, r));
    this.socket.write(encodeFrame({ t: 'req', id, op, body }));
    const f = await answer;
    if (f.error) throw new Error(`${op}: ${f.error.code} ${f.error.message}`);
    return f.body;
  }

  /** Sends a request whose answer only counts towards the window (onAck). */
  fire(frame: Buffer): void {
    this.socket.write(frame);
  }

  close(): void {
    this.socket.destroy();
  }
}

function start(
  cmd: string[],
  env: Record<string, string> = {},
): Promise<{ proc: ChildProcess; addr: string }> {
  const proc = spawn(process.execPath, cmd, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /ready tcp=(\S+)/.exec(out);
      if (m) resolve({ proc, addr: m[1]! });
    });
    proc.once('exit', (code) => reject(new Error(`${cmd.join(' ')} exited with ${code}: ${out}`)));
  });
}

/** CPU seconds (user + system) a process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100/s)
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted.length
    ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
    : NaN;
}

interface Result {
  deliveriesPerSec: number;
  messagesPerSec: number;
  p50ms: number;
  p99ms: number;
  lost: number;
  serverCpuPerDeliveryUs: number;
  loadGenCpuPercent: number;
  serverCpuPercent: number;
  serverRssMB: number;
}

/**
 * Drives one publisher and MEMBERS receivers for SECONDS. `frameFor(i, sentNs)` builds message i;
 * `sentAt(frame)` reads the send time back from a delivered frame.
 */
/** What drive needs of a publisher and of a member (the bench's Client, or an anchor's rig). */
interface DriveEnd<T, E> {
  onEvent: (e: E) => void;
  onAck: () => void;
  fire(x: T): void;
}

async function drive<T, E>(
  rate: number | undefined,
  publisher: DriveEnd<T, E>,
  members: Array<DriveEnd<T, E>>,
  serverPid: number,
  frameFor: (i: number, sentNs: bigint) => T,
  sentAt: (e: E) => bigint,
): Promise<Result> {
  const latencies = new Float64Array(4_000_000);
  let nLat = 0;
  let deliveries = 0;
  let measuring = false;
  let sent = 0;
  let sentMeasured = 0;
  for (const m of members) {
    m.onEvent = (f) => {
      if (!measuring) return;
      deliveries++;
      if (nLat < latencies.length)
        latencies[nLat++] = Number(process.hrtime.bigint() - sentAt(f)) / 1e6;
    };
  }
  let inFlight = 0;
  let running = true;
  const send = () => {
    inFlight++;
    sent++;
    if (measuring) sentMeasured++;
    publisher.fire(frameFor(sent, process.hrtime.bigint()));
  };
  // Full speed: keep WINDOW posts in flight. Fixed rate: send on a 10 ms clock, whatever the acks.
  const pump = () => {
    while (running && rate === undefined && inFlight < WINDOW) send();
  };
  publisher.onAck = () => {
    inFlight--;
    pump();
  };
  let ticker: NodeJS.Timeout | undefined;
  if (rate === undefined) pump();
  else {
    const began = process.hrtime.bigint();
    ticker = setInterval(() => {
      const due = Math.floor((Number(process.hrtime.bigint() - began) / 1e9) * rate);
      while (running && sent < due) send();
    }, 10);
  }
  await new Promise((r) => setTimeout(r, 1000)); // warm-up
  const cpu0 = cpuSeconds(serverPid);
  const lg0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  measuring = true;
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  measuring = false;
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = cpuSeconds(serverPid) - cpu0;
  const lg = process.cpuUsage(lg0);
  running = false;
  clearInterval(ticker);
  await new Promise((r) => setTimeout(r, 500)); // let the window drain
  const sorted = latencies.subarray(0, nLat).sort();
  return {
    deliveriesPerSec: deliveries / elapsed,
    messagesPerSec: sentMeasured / elapsed,
    p50ms: percentile(sorted, 50),
    p99ms: percentile(sorted, 99),
    // Messages sent in the window whose deliveries never came, across all members (approximate at
    // the window's edges, so only a large number means loss).
    lost: Math.max(0, sentMeasured * members.length - deliveries - WINDOW * members.length),
    serverCpuPerDeliveryUs: (cpu / deliveries) * 1e6,
    loadGenCpuPercent: ((lg.user + lg.system) / 1e6 / elapsed) * 100,
    serverCpuPercent: (cpu / elapsed) * 100,
    serverRssMB: rssMB(serverPid),
  };
}

/** Resident memory of a process, in MB, from /proc. */
function rssMB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Hybrid Chat's rivals on the same workload (bench/anchors.ts), or why one could not run. */
async function benchAnchor(
  make: () => Promise<Rig>,
  rate?: number,
): Promise<{ name: string; result?: Result; error?: string }> {
  let rig: Rig | undefined;
  try {
    rig = await make();
    const result = await drive(
      rate,
      rig.publisher,
      rig.members,
      rig.pid,
      (_i, ns) => `${ns}|${TEXT_PAD}`.slice(0, 100),
      (ns: bigint) => ns,
    );
    return { name: rig.name, result };
  } catch (err) {
    return { name: rig?.name ?? 'anchor', error: String(err) };
  } finally {
    await rig?.close();
  }
}

const TEXT_PAD = 'x'.repeat(100);

async function benchHchat(rate?: number): Promise<Result> {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-bench-'));
  const { proc, addr } = await start([
    'bin/hchat',
    'server',
    '--port',
    '0',
    '--http-port',
    '0',
    '--data',
    data,
  ]);
  try {
    const keys = newSessionKeys();
    let cert = '';
    const setup = async (name: string) => {
      const c = await Client.connect(addr, true);
      await c.request('register', { username: name, password: 'bench-pw' });
      const s = await c.request('login', {
        username: name,
        password: 'bench-pw',
        publicKey: keys.publicKey,
      });
      cert = s.cert;
      return c;
    };
    const publisher = await setup('publisher');
    const publisherCert = cert;
    const channelId = '01900000-0000-7000-8000-00000000be01';
    await publisher.request('channel_create', {
      id: channelId,
      name: 'bench',
      allowVisitors: false,
    });
    const members = await Promise.all(
      Array.from({ length: MEMBERS }, (_, i) => setup(`member${i}`)),
    );
    await Promise.all(members.map((m) => m.request('channel_join', { channelId })));
    let counter = 0;
    const result = await drive(
      rate,
      publisher,
      members,
      proc.pid!,
      (i, ns) => {
        counter++;
        const id = `01900000-0000-7000-8000-${counter.toString(16).padStart(12, '0')}`;
        // Text: send time, padded to 100 characters.
        const text = `${ns}|${TEXT_PAD}`.slice(0, 100);
        // Signed by its author, as every message is (the signing cost is the load generator's).
        const fields = { id, channelId, ts: Date.now(), lc: 0, text };
        const sig = signMessage({ ...fields, author: 'publisher' }, keys);
        return encodeFrame({
          t: 'req',
          id: 1_000_000 + i,
          op: 'post',
          body: { message: { ...fields, sig, cert: publisherCert } },
        });
      },
      (f) => BigInt((f.body.message.text as string).split('|')[0]!),
    );
    [publisher, ...members].forEach((c) => c.close());
    return result;
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    fs.rmSync(data, { recursive: true, force: true });
  }
}

async function benchRelay(rate?: number): Promise<Result> {
  const { proc, addr } = await start(['--import', 'tsx', 'bench/relay.ts']);
  try {
    const publisher = await Client.connect(addr, false);
    const members = await Promise.all(
      Array.from({ length: MEMBERS }, () => Client.connect(addr, false)),
    );
    await new Promise((r) => setTimeout(r, 200));
    const result = await drive(
      rate,
      publisher,
      members,
      proc.pid!,
      (i, ns) =>
        encodeFrame({
          t: 'ev',
          ev: 'message',
          body: { message: { text: `${ns}|${TEXT_PAD}`.slice(0, 100), i } },
        }),
      (f) => BigInt((f.body.message.text as string).split('|')[0]!),
    );
    [publisher, ...members].forEach((c) => c.close());
    return result;
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
  }
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

const RATE = Number(process.env.BENCH_RATE ?? 1000);

/** One row per figure: Hybrid Chat, then each anchor, then ours / the best anchor. */
function table(hchat: Result, anchors: Array<{ name: string; result?: Result }>): void {
  const ok = anchors.filter((a) => a.result) as Array<{ name: string; result: Result }>;
  const rows: Array<[string, (r: Result) => number, number, 'high' | 'low' | 'none']> = [
    ['deliveries/s', (r) => r.deliveriesPerSec, 0, 'high'],
    ['messages/s', (r) => r.messagesPerSec, 0, 'high'],
    ['latency p50 ms', (r) => r.p50ms, 2, 'low'],
    ['latency p99 ms', (r) => r.p99ms, 2, 'low'],
    ['server CPU µs/delivery', (r) => r.serverCpuPerDeliveryUs, 2, 'low'],
    ['server CPU %', (r) => r.serverCpuPercent, 0, 'none'],
    ['server RSS MB', (r) => r.serverRssMB, 1, 'none'],
    ['load generator CPU %', (r) => r.loadGenCpuPercent, 0, 'none'],
    ['messages lost', (r) => r.lost, 0, 'none'],
  ];
  console.log(
    `| figure | hchat (stores every message) | ${anchors.map((a) => a.name + (a.result ? '' : ' (did not run)')).join(' | ')} | hchat / best anchor |`,
  );
  console.log(`|---|---:|${anchors.map(() => '---:').join('|')}|---:|`);
  for (const [name, f, digits, better] of rows) {
    const values = ok.map((a) => f(a.result));
    const best =
      better === 'high' ? Math.max(...values) : better === 'low' ? Math.min(...values) : NaN;
    const ratio = Number.isFinite(best) && best > 0 ? fmt(f(hchat) / best, 2) : '';
    console.log(
      `| ${name} | ${fmt(f(hchat), digits)} | ${anchors.map((a) => (a.result ? fmt(f(a.result), digits) : '–')).join(' | ')} | ${ratio} |`,
    );
  }
  for (const a of anchors)
    if (!a.result) console.log(`(${a.name}: ${(a as { error?: string }).error})`);
}

async function main(): Promise<void> {
  console.log(
    `bench: 1 channel, ${MEMBERS} online members, 1 publisher; ${SECONDS} s measured after 1 s warm-up`,
  );
  const scenarios: Array<{ name: string; rate?: number }> = [
    { name: `full speed, ${WINDOW} posts in flight` },
    { name: `${RATE} messages/s` },
  ];
  scenarios[1]!.rate = RATE;
  const results = [];
  for (const sc of scenarios) {
    const relay = await benchRelay(sc.rate);
    const anchors = [
      { name: 'relay (Node, stores nothing)', result: relay },
      await benchAnchor(() => mosquittoRig(0, MEMBERS), sc.rate),
      await benchAnchor(() => mosquittoRig(1, MEMBERS), sc.rate),
      await benchAnchor(() => ngircdRig(MEMBERS), sc.rate),
    ];
    const hchat = await benchHchat(sc.rate);
    console.log(`\n${sc.name}\n`);
    table(hchat, anchors.slice(1));
    console.log(
      `Node relay anchor (forwards, stores nothing): ${fmt(relay.deliveriesPerSec)} deliveries/s, p99 ${fmt(relay.p99ms, 2)} ms, ${fmt(relay.serverCpuPerDeliveryUs, 2)} µs/delivery`,
    );
    results.push({ scenario: sc.name, rate: sc.rate ?? null, hchat, anchors });
  }
  console.log(
    `\nCPU: the load generator is one process holding every client; at 100 % it, not the server, is the bottleneck.`,
  );
  const hosting = process.env.BENCH_SKIP_HOSTING ? undefined : await benchHosting();
  const stream = process.env.BENCH_SKIP_STREAM ? undefined : await benchStream();
  const capacity = process.env.BENCH_SKIP_CAPACITY ? undefined : await benchCapacity();
  const date = new Date().toISOString().slice(0, 10);
  const out = path.join(ROOT, 'bench', 'results', `${date}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const machine = { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version };
  fs.writeFileSync(
    out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        machine,
        members: MEMBERS,
        window: WINDOW,
        seconds: SECONDS,
        results,
        hosting,
        stream,
        capacity,
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`written to ${path.relative(ROOT, out)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
