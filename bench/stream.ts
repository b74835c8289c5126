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
 */
import type { ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BENCH_SERVER_LIMITS, ROOT, startProcess, type Started } from './harness.js';

const BIN = path.join(ROOT, 'bin', 'hchat');
const COUNTS = (process.env.BENCH_STREAM_VIEWERS ?? '5,10,20,50').split(',').map(Number);
const LOSSES = [0, 0.01, 0.05];
const WINDOW_S = Number(process.env.BENCH_STREAM_SECONDS ?? 4);
const FPS = 30;
const KBPS = 500;

const procs: ChildProcess[] = [];

/** A `bin/hchat` process, killed when the bench ends. */
async function start(args: string[]): Promise<Started> {
  const started = await startProcess([BIN, ...args]);
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

/** A peer process, signed in as `name`, member of `channelId` (when given). */
async function peer(dir: string, server: string, name: string, extra: string[]): Promise<string> {
  const p = await start(['peer', '--server', server, '--data', path.join(dir, name), ...extra]);
  const ui = p.ready.ui!;
  await call(ui, 'POST', '/api/register', { username: name, password: `${name}-password` });
  await call(ui, 'POST', '/api/login', { username: name, password: `${name}-password` });
  return ui;
}

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
    const goLive = async (ui: string) =>
      (
        await call(ui, 'POST', `/api/channels/${ch}/streams`, {
          source: 'synthetic',
          fps: FPS,
          bitrateKbps: KBPS,
        })
      ).streamId as string;
    const watchAll = async (uis: string[], id: string) => {
      for (const ui of uis)
        await until(async () => {
          await call(ui, 'POST', `/api/streams/${id}/watch`);
          return true;
        });
      await until(async () => {
        const s = await Promise.all(uis.map((ui) => call(ui, 'GET', `/api/streams/${id}/stats`)));
        return s.every((x) => x.framesComplete > FPS);
      });
    };
    const unwatchAll = (uis: string[], id: string) =>
      Promise.all(uis.map((ui) => call(ui, 'DELETE', `/api/streams/${id}/watch`)));

    console.log(`\nlivestream: synthetic ${FPS} fps at ${KBPS} kbit/s, every peer its own process`);
    console.log(`\nstreamer upload (copies of the stream) versus viewers, over ${WINDOW_S} s`);
    console.log(
      '| viewers | no relay: copies | k = 4: copies | k = 4 depth | server bytes/s during the stream |',
    );
    console.log('|---:|---:|---:|---:|---:|');
    const upload = [];
    const flatId = await goLive(flat);
    const treeId = await goLive(tree);
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
    return { fps: FPS, bitrateKbps: KBPS, upload, anchor, latency };
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
