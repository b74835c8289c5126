/**
 * Livestream figures (run by `npm run bench`, or alone: `node --import tsx bench/stream.ts`).
 * Every process is a real `bin/hchat`: one server, two streamers (one feeding every viewer
 * itself, one with k = 4), and viewers. A synthetic source sends 30 fps at 500 kbit/s.
 *
 * - Streamer upload versus audience: copies of the stream the streamer uploads (upload bytes /
 *   bytes of one copy) for N = 5…50 viewers, without relays and with k = 4.
 * - Frame latency (capture → whole frame at the viewer) p50/p99 and completion at 0, 1 and 5 %
 *   loss (each viewer drops that fraction of incoming datagrams), 10 viewers, k = 4. Anchor: the
 *   one-way latency of a bare UDP datagram between two sockets on this machine, same run.
 * - The central server's bytes during each stream window: control only, never media.
 * - What SRTP costs: the latency section's 10 viewers, k = 4, at 0 and 1 % loss, and the
 *   streamer's and the busiest relay's CPU, with SRTP between peers (`bin/hchat peer`) and
 *   without (bench/plain-peer.ts), each on a stream of its own, in rotating order; medians.
 */
import type { ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BENCH_SERVER_LIMITS, ROOT, cpuSeconds, startProcess, type Started } from './harness.js';

const BIN = path.join(ROOT, 'bin', 'hchat');
const COUNTS = (process.env.BENCH_STREAM_VIEWERS ?? '5,10,20,50').split(',').map(Number);
const LOSSES = [0, 0.01, 0.05];
const WINDOW_S = Number(process.env.BENCH_STREAM_SECONDS ?? 4);
const FPS = 30;
const KBPS = 500;

/** SRTP section: seconds a window, and rounds (each runs every mode and loss once). */
const SRTP_SECONDS = Number(process.env.BENCH_SRTP_SECONDS ?? 6);
const SRTP_ROUNDS = Math.max(3, Number(process.env.BENCH_SRTP_REPEATS ?? 3));
const SRTP_LOSSES = [0, 0.01];

const procs: ChildProcess[] = [];

/** How a peer's media travels to other peers: SRTP as users run it, or plain RTP (bench only). */
type Media = 'srtp' | 'plain';
const PEER_ENTRY: Record<Media, string[]> = {
  srtp: [BIN, 'peer'],
  plain: ['--import', 'tsx', path.join('bench', 'plain-peer.ts')],
};

/** A process (`bin/hchat …` by default), killed when the bench ends. */
async function start(args: string[], entry = [BIN]): Promise<Started> {
  const started = await startProcess([...entry, ...args]);
  procs.push(started.proc);
  return started;
}

async function call(ui: string, method: string, route: string, body?: unknown): Promise<any> {
  // `ui` is the printed `ui=` URL: its `?token=` opens the API, sent as a Bearer token.
  const token = new URL(ui).searchParams.get('token');
  const res = await fetch(new URL(route, ui), {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(f: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f().catch(() => false))) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(50);
  }
}

/** A peer process (its API and pid), signed in as `name`. */
async function peerProc(
  dir: string,
  server: string,
  name: string,
  extra: string[],
  media: Media = 'srtp',
): Promise<{ ui: string; pid: number }> {
  const p = await start(
    ['--server', server, '--data', path.join(dir, name), ...extra],
    PEER_ENTRY[media],
  );
  const ui = p.ready.ui!;
  const account = { username: name, password: `${name}-password` };
  await call(ui, 'POST', '/api/register', account);
  // The server limits logins per address (all of ours come from 127.0.0.1): wait as it says.
  for (;;) {
    try {
      await call(ui, 'POST', '/api/login', account);
      break;
    } catch (err) {
      const m = /"retryAfterMs":(\d+)/.exec(String(err));
      if (!m) throw err;
      await sleep(Number(m[1]));
    }
  }
  return { ui, pid: p.proc.pid! };
}

const peer = async (dir: string, server: string, name: string, extra: string[]) =>
  (await peerProc(dir, server, name, extra)).ui;

/** Starts a synthetic stream on `ui` in channel `ch`; its id. */
async function goLive(ui: string, ch: string): Promise<string> {
  const body = { source: 'synthetic', fps: FPS, bitrateKbps: KBPS };
  return (await call(ui, 'POST', `/api/channels/${ch}/streams`, body)).streamId as string;
}

/** Every viewer watches stream `id`; resolves once each has had a second of whole frames. */
async function watchAll(uis: string[], id: string): Promise<void> {
  for (const ui of uis)
    await until(async () => {
      await call(ui, 'POST', `/api/streams/${id}/watch`);
      return true;
    });
  await until(async () => {
    const s = await Promise.all(uis.map((ui) => call(ui, 'GET', `/api/streams/${id}/stats`)));
    return s.every((x) => x.framesComplete > FPS);
  });
}

const unwatchAll = (uis: string[], id: string) =>
  Promise.all(uis.map((ui) => call(ui, 'DELETE', `/api/streams/${id}/watch`)));

/** One-way latency of bare UDP datagrams between two sockets here: the floor of any stream. */
async function udpAnchor(): Promise<{ p50: number; p99: number }> {
  const a = dgram.createSocket('udp4');
  const b = dgram.createSocket('udp4');
  await new Promise<void>((r) => b.bind(0, '127.0.0.1', r));
  const lat: number[] = [];
  b.on('message', (m) => lat.push(Number(process.hrtime.bigint() - m.readBigUInt64BE(0)) / 1e6));
  const port = b.address().port;
  for (let i = 0; i < 3000; i++) {
    const d = Buffer.alloc(1200);
    d.writeBigUInt64BE(process.hrtime.bigint(), 0);
    a.send(d, port, '127.0.0.1');
    if (i % 100 === 99) await sleep(10);
  }
  await sleep(100);
  a.close();
  b.close();
  lat.sort((x, y) => x - y);
  return {
    p50: round(lat[Math.floor(lat.length / 2)]!),
    p99: round(lat[Math.floor(lat.length * 0.99)]!),
  };
}

const round = (n: number) => Math.round(n * 100) / 100;

/** One window of the SRTP section: a mode's viewers at one loss. */
interface SrtpRun {
  complete: number;
  dropped: number;
  completion: number;
  p50: number;
  p99: number;
  /** CPU % of one core over the window. */
  streamerCpu: number;
  /** The viewer that feeds the most children (a relay). */
  relayCpu: number;
  relayChildren: number;
  /** The mean of the viewers that feed no one. */
  leafCpu: number;
}

/** One mode's peers: a streamer (k = 4) live on a channel of its own, and 10 viewers per loss. */
interface SrtpRig {
  streamer: { ui: string; pid: number };
  id: string;
  viewers: Map<number, Array<{ ui: string; pid: number }>>;
}

async function srtpRig(dir: string, server: string, media: Media): Promise<SrtpRig> {
  const streamer = await peerProc(dir, server, `${media}streamer`, ['--stream-fanout', '4'], media);
  const ch = (
    await call(streamer.ui, 'POST', '/api/channels', { name: `${media}`, allowVisitors: false })
  ).id as string;
  const viewers = new Map<number, Array<{ ui: string; pid: number }>>();
  for (const loss of SRTP_LOSSES) {
    const extra = loss > 0 ? ['--udp-loss', String(loss)] : [];
    const vs = await Promise.all(
      Array.from({ length: 10 }, (_, j) =>
        peerProc(dir, server, `${media}${loss * 100}x${j}`, extra, media),
      ),
    );
    for (const v of vs) await call(v.ui, 'POST', `/api/channels/${ch}/join`);
    viewers.set(loss, vs);
  }
  return { streamer, id: await goLive(streamer.ui, ch), viewers };
}

/** Watches for SRTP_SECONDS with one loss's viewers of a rig. */
async function srtpRun(rig: SrtpRig, loss: number): Promise<SrtpRun> {
  const vs = rig.viewers.get(loss)!;
  const uis = vs.map((v) => v.ui);
  const stats = () => Promise.all(uis.map((ui) => call(ui, 'GET', `/api/streams/${rig.id}/stats`)));
  const pids = [rig.streamer.pid, ...vs.map((v) => v.pid)];
  await watchAll(uis, rig.id);
  const before = await stats();
  const cpu0 = pids.map(cpuSeconds);
  const t0 = Date.now();
  await sleep(SRTP_SECONDS * 1000);
  const cpu = pids.map((pid, i) => cpuSeconds(pid) - cpu0[i]!);
  const elapsed = (Date.now() - t0) / 1000;
  const after = await stats();
  await unwatchAll(uis, rig.id);
  const pct = cpu.map((c) => (c / elapsed) * 100);
  let relay = 0;
  after.forEach((s, i) => {
    if (s.children.length > after[relay].children.length) relay = i;
  });
  const leaves = after.flatMap((s, i) => (s.children.length ? [] : [pct[i + 1]!]));
  const sum = (f: (s: any) => number) => after.reduce((n, s, i) => n + f(s) - f(before[i]), 0);
  const complete = sum((s) => s.framesComplete);
  const dropped = sum((s) => s.framesDropped);
  return {
    complete,
    dropped,
    completion: complete / (complete + dropped),
    p50: Math.max(...after.map((s) => s.latencyMs.p50 ?? 0)),
    p99: Math.max(...after.map((s) => s.latencyMs.p99 ?? 0)),
    streamerCpu: pct[0]!,
    relayCpu: pct[relay + 1]!,
    relayChildren: after[relay].children.length,
    leafCpu: leaves.reduce((a, b) => a + b, 0) / leaves.length,
  };
}

/** Each figure's median over the runs. */
function medianRun(runs: SrtpRun[]): SrtpRun {
  const out = { ...runs[0]! };
  for (const k of Object.keys(out) as Array<keyof SrtpRun>) {
    const v = runs.map((r) => r[k]).sort((a, b) => a - b);
    const m = v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
    out[k] = round(m);
  }
  return out;
}

/**
 * What SRTP costs: the same 10-viewer, k = 4 stream with SRTP between peers and in plain RTP, at
 * 0 and 1 % loss, every (mode, loss) once a round in an order that rotates from round to round.
 */
async function benchSrtpCost(dir: string, server: string): Promise<unknown> {
  const rigs = {
    srtp: await srtpRig(dir, server, 'srtp'),
    plain: await srtpRig(dir, server, 'plain'),
  };
  const cells = SRTP_LOSSES.flatMap((loss) =>
    (['srtp', 'plain'] as const).map((media) => ({ media, loss })),
  );
  const runs = new Map<string, SrtpRun[]>();
  for (let round = 0; round < SRTP_ROUNDS; round++)
    for (let i = 0; i < cells.length; i++) {
      const { media, loss } = cells[(i + round) % cells.length]!;
      const key = `${media}/${loss}`;
      runs.set(key, [...(runs.get(key) ?? []), await srtpRun(rigs[media], loss)]);
    }
  console.log(
    `\nwhat SRTP costs: 10 viewers, k = 4, SRTP between peers or plain RTP (bench/plain-peer.ts), ${SRTP_SECONDS} s windows, medians of ${SRTP_ROUNDS} rounds`,
  );
  console.log(
    '| loss | media | completion | latency p50 | latency p99 | streamer CPU % | relay CPU % (children) | leaf CPU % |',
  );
  console.log('|---:|---|---:|---:|---:|---:|---:|---:|');
  const rows = SRTP_LOSSES.map((loss) => {
    const row = {
      loss,
      srtp: medianRun(runs.get(`srtp/${loss}`)!),
      plain: medianRun(runs.get(`plain/${loss}`)!),
      srtpRuns: runs.get(`srtp/${loss}`)!,
      plainRuns: runs.get(`plain/${loss}`)!,
    };
    for (const media of ['srtp', 'plain'] as const) {
      const r = row[media];
      console.log(
        `| ${loss * 100} % | ${media} | ${r.completion} | ${r.p50} ms | ${r.p99} ms | ${r.streamerCpu} | ${r.relayCpu} (${r.relayChildren}) | ${r.leafCpu} |`,
      );
    }
    return row;
  });
  return { seconds: SRTP_SECONDS, rounds: SRTP_ROUNDS, fps: FPS, bitrateKbps: KBPS, rows };
}

export async function benchStream(): Promise<unknown> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-bench-stream-'));
  try {
    const srv = await start([
      'server',
      '--port',
      '0',
      '--http-port',
      '0',
      '--data',
      path.join(dir, 'server'),
      ...BENCH_SERVER_LIMITS,
    ]);
    // Peers pin the server's key from its ready line (`--server host:port#fingerprint`).
    const server = `${srv.ready.tcp!}#${srv.ready.fingerprint!}`;
    const http = srv.ready.http!;
    // BENCH_SRTP_ONLY=1: the SRTP section alone (a quick look; `npm run bench` runs it all).
    if (process.env.BENCH_SRTP_ONLY) return { srtpCost: await benchSrtpCost(dir, server) };
    const serverBytes = async () => {
      const t = (await (await fetch(new URL('stats', http))).json()).traffic;
      return t.bytesIn + t.bytesOut;
    };
    const flat = await peer(dir, server, 'flat', ['--stream-fanout', '64']);
    const tree = await peer(dir, server, 'tree', ['--stream-fanout', '4']);
    const ch = (await call(flat, 'POST', '/api/channels', { name: 'bench', allowVisitors: false }))
      .id;
    await call(tree, 'POST', `/api/channels/${ch}/join`);
    const maxN = Math.max(...COUNTS);
    const viewers: string[] = [];
    const lossy: Record<string, string[]> = {};
    for (let i = 0; i < maxN; i += 10) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(10, maxN - i) }, (_, j) =>
          peer(dir, server, `viewer${i + j}`, []),
        ),
      );
      viewers.push(...batch);
    }
    for (const loss of LOSSES.filter((l) => l > 0)) {
      lossy[loss] = await Promise.all(
        Array.from({ length: 10 }, (_, j) =>
          peer(dir, server, `lossy${loss * 100}x${j}`, ['--udp-loss', String(loss)]),
        ),
      );
    }
    for (const ui of [...viewers, ...Object.values(lossy).flat()])
      await call(ui, 'POST', `/api/channels/${ch}/join`);

    console.log(`\nlivestream: synthetic ${FPS} fps at ${KBPS} kbit/s, every peer its own process`);
    console.log(`\nstreamer upload (copies of the stream) versus viewers, over ${WINDOW_S} s`);
    console.log(
      '| viewers | no relay: copies | k = 4: copies | k = 4 depth | server bytes/s during the stream |',
    );
    console.log('|---:|---:|---:|---:|---:|');
    const upload = [];
    const flatId = await goLive(flat, ch);
    const treeId = await goLive(tree, ch);
    for (const n of COUNTS) {
      const row: Record<string, number> = { viewers: n };
      for (const [name, ui, id] of [
        ['flat', flat, flatId],
        ['tree', tree, treeId],
      ] as const) {
        const uis = viewers.slice(0, n);
        await watchAll(uis, id);
        const s0 = await call(ui, 'GET', `/api/streams/${id}/stats`);
        const b0 = await serverBytes();
        const t0 = Date.now();
        await sleep(WINDOW_S * 1000);
        const s1 = await call(ui, 'GET', `/api/streams/${id}/stats`);
        const b1 = await serverBytes();
        row[`${name}Copies`] = round(
          (s1.uploadBytes - s0.uploadBytes) / (s1.streamBytes - s0.streamBytes),
        );
        row[`${name}UploadKbps`] = Math.round(
          ((s1.uploadBytes - s0.uploadBytes) * 8) / (Date.now() - t0),
        );
        row[`${name}Depth`] = s1.depth;
        row[`${name}ServerBytesPerSec`] = Math.round(((b1 - b0) * 1000) / (Date.now() - t0));
        await unwatchAll(uis, id);
      }
      upload.push(row);
      console.log(
        `| ${n} | ${row.flatCopies} | ${row.treeCopies} | ${row.treeDepth} | ${row.flatServerBytesPerSec} / ${row.treeServerBytesPerSec} |`,
      );
    }

    const anchor = await udpAnchor();
    console.log(`\nframe latency and completion, 10 viewers, k = 4, over ${WINDOW_S} s`);
    console.log(
      `anchor: one bare UDP datagram, socket to socket here: p50 ${anchor.p50} ms, p99 ${anchor.p99} ms`,
    );
    console.log(
      '| loss | frames complete | dropped | completion | latency p50 | latency p99 | packets recovered |',
    );
    console.log('|---:|---:|---:|---:|---:|---:|---:|');
    const latency = [];
    for (const loss of LOSSES) {
      const uis = loss === 0 ? viewers.slice(0, 10) : lossy[loss]!;
      await watchAll(uis, treeId);
      const before = await Promise.all(
        uis.map((ui) => call(ui, 'GET', `/api/streams/${treeId}/stats`)),
      );
      await sleep(WINDOW_S * 1000);
      const after = await Promise.all(
        uis.map((ui) => call(ui, 'GET', `/api/streams/${treeId}/stats`)),
      );
      await unwatchAll(uis, treeId);
      const complete = after.reduce(
        (n, s, i) => n + s.framesComplete - before[i].framesComplete,
        0,
      );
      const dropped = after.reduce((n, s, i) => n + s.framesDropped - before[i].framesDropped, 0);
      const recovered = after.reduce(
        (n, s, i) => n + s.packetsRecovered - before[i].packetsRecovered,
        0,
      );
      const p50 = Math.max(...after.map((s) => s.latencyMs.p50 ?? 0));
      const p99 = Math.max(...after.map((s) => s.latencyMs.p99 ?? 0));
      const row = {
        loss,
        complete,
        dropped,
        completion: round(complete / (complete + dropped)),
        p50,
        p99,
        recovered,
      };
      latency.push(row);
      console.log(
        `| ${loss * 100} % | ${complete} | ${dropped} | ${row.completion} | ${p50} ms | ${p99} ms | ${recovered} |`,
      );
    }
    console.log("(latency: the worst viewer's p50 and p99 over its last 2,000 frames)");
    // The streams above stay live while their peers run: stopped, so that they load neither side.
    for (const p of procs) if (p !== srv.proc) p.kill('SIGKILL');
    const srtpCost = process.env.BENCH_SKIP_SRTP ? undefined : await benchSrtpCost(dir, server);
    return { fps: FPS, bitrateKbps: KBPS, upload, anchor, latency, srtpCost };
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  benchStream().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
