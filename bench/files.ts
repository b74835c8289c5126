/**
 * Files (issue 14), run by `npm run bench` or alone (`node --import tsx bench/files.ts`). Every
 * file goes in and out as users move it: attached through a peer's local API (the raw bytes),
 * posted in a message, read back with a GET of its URL until the last byte, and compared with
 * what was attached.
 *
 * 1. One source: a member downloads a 25 MiB file whose only source is the channel's host (who
 *    attached it). Anchor, same run: the same bytes copied over loopback TCP from one process to
 *    another (bench/byte-source.ts). Server, host and member are `bin/hchat` processes.
 * 2. Several sources: every seeder's upload capped (`--upload-limit`, 8 MiB/s); a newcomer
 *    downloads a 25 MiB file that three seeders hold (the host and two members who fetched it),
 *    and one that only the host holds (in a channel of its own). A fresh `bin/hchat peer` per
 *    download, so that it holds nothing yet.
 * 3. Server bytes per file: the host attaches a file to a channel of N members, each of whom
 *    downloads it (five at a time); the server's traffic counters (`/stats`: all frames, in
 *    and out) over that time, and the chunks it took in and served (its connection log's
 *    `chunk` and `serve` records). The server is `bin/hchat server`; the host and the 50
 *    members are peers in this process (50 processes would not fit 2 cores), with a smaller
 *    file (4 MiB).
 *
 * Each download figure is a median of BENCH_FILES_REPEATS (3, at least 3) runs, in an order that
 * rotates from run to run. BENCH_FILES_QUICK=1 checks the code in seconds (small files, one run,
 * 3 and 5 members): its figures mean nothing.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { parseRecord } from '../src/shared/connlog.js';
import { startPeer, type PeerProcess } from '../src/peer/index.js';
import {
  ROOT,
  connectServer,
  startProcess,
  startServer,
  stopProcess,
  type ServerAddress,
  type Started,
} from './harness.js';
import { median } from './stats.js';

const MiB = 1024 * 1024;
const QUICK = !!process.env.BENCH_FILES_QUICK;
/** Bytes of the files of parts 1 and 2. */
const SIZE = QUICK ? 4 * MiB : 25 * MiB;
/** Bytes of the file of part 3 (51 peers share this process). */
const SERVER_PART_SIZE = QUICK ? 1 * MiB : 4 * MiB;
const REPEATS = QUICK ? 1 : Math.max(3, Number(process.env.BENCH_FILES_REPEATS ?? 3));
const UPLOAD_LIMIT = Number(process.env.BENCH_FILES_UPLOAD_LIMIT ?? 8 * MiB);
const MEMBERS = (process.env.BENCH_FILES_MEMBERS ?? (QUICK ? '3,5' : '5,20,50'))
  .split(',')
  .map(Number);
/** Members of part 3 that download at the same time. */
const WAVE = 5;
const BIN = path.join(ROOT, 'bin', 'hchat');

const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mibps = (bytes: number, ms: number) => bytes / MiB / (ms / 1000);

/** A peer as the bench drives it: its local API (`ui=` URL with token) and data folder. */
interface Peer {
  name: string;
  ui: string;
  dataDir: string;
  stop(): Promise<void>;
}

/** Calls a peer's local API (its token sent as Bearer); the JSON answer, or throws. */
async function call(ui: string, method: string, route: string, body?: unknown): Promise<any> {
  const res = await fetch(new URL(route, ui), {
    method,
    headers: {
      ...auth(ui),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

function auth(ui: string): Record<string, string> {
  return { authorization: `Bearer ${new URL(ui).searchParams.get('token')}` };
}

/** Registers and logs in (the server limits password checks per address: waits as it says). */
async function signIn(ui: string, name: string): Promise<void> {
  const account = { username: name, password: `${name}-password` };
  await call(ui, 'POST', '/api/register', account);
  for (;;) {
    try {
      return await call(ui, 'POST', '/api/login', account);
    } catch (err) {
      const m = /"retryAfterMs":(\d+)/.exec(String(err));
      if (!m) throw err;
      await sleep(Number(m[1]));
    }
  }
}

/** Attaches `data` to a channel and posts it; the file's id and URL, and the message's id. */
async function attachAndPost(
  p: Peer,
  ch: string,
  data: Buffer,
  name: string,
): Promise<{ id: string; url: string; messageId: string }> {
  const res = await fetch(
    new URL(`/api/channels/${ch}/files?name=${encodeURIComponent(name)}`, p.ui),
    {
      method: 'POST',
      headers: { ...auth(p.ui), 'content-type': 'application/octet-stream' },
      body: new Uint8Array(data),
    },
  );
  const file = await res.json();
  if (res.status !== 201) throw new Error(`attach: ${res.status} ${JSON.stringify(file)}`);
  const msg = await call(p.ui, 'POST', `/api/channels/${ch}/messages`, { files: [file.id] });
  return { id: file.id, url: file.url, messageId: msg.id };
}

/** Waits until the message is in the peer's view of the channel (its outbox sent it). */
async function seen(p: Peer, ch: string, messageId: string): Promise<void> {
  const end = Date.now() + 60_000;
  for (;;) {
    const page = await call(p.ui, 'GET', `/api/channels/${ch}/messages`);
    if (page.messages.some((m: { id: string }) => m.id === messageId)) return;
    if (Date.now() > end) throw new Error(`${p.name} never saw message ${messageId}`);
    await sleep(25);
  }
}

/** Waits until the author's peer has backed the file up at the server (its log's `backup`). */
async function backedUp(author: Peer, fileId: string): Promise<void> {
  const end = Date.now() + 60_000;
  while (!logRecords(author.dataDir).some((r) => r.ev === 'backup' && r.file === fileId)) {
    if (Date.now() > end) throw new Error(`${author.name} never backed up ${fileId}`);
    await sleep(25);
  }
}

/** GETs a file through a peer's local API: milliseconds to the last byte; checks the bytes. */
async function download(p: Peer, url: string, expected: Buffer): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(new URL(url, p.ui), { headers: auth(p.ui) });
  const data = Buffer.from(await res.arrayBuffer());
  const ms = performance.now() - t0;
  if (res.status !== 200 || !data.equals(expected))
    throw new Error(`${p.name}: GET ${url} gave ${res.status}, ${data.length} bytes, not the file`);
  return ms;
}

/** Records of a process's connection log (the rotated file first). */
function logRecords(dataDir: string): Array<Record<string, string>> {
  return ['connections.log.1', 'connections.log'].flatMap((f) => {
    const file = path.join(dataDir, f);
    return fs.existsSync(file)
      ? fs.readFileSync(file, 'utf8').trim().split('\n').map(parseRecord)
      : [];
  });
}

/** Where each chunk of a file a peer fetched came from (`host:…`, `peer:…`, `server`). */
function chunkSources(dataDir: string, fileId: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of logRecords(dataDir))
    if (r.ev === 'chunk' && r.file === fileId && r.from) out[r.from] = (out[r.from] ?? 0) + 1;
  return out;
}

/** Processes started by this bench, stopped when it ends. */
const procs: ChildProcess[] = [];

async function start(args: string[]): Promise<Started> {
  const s = await startProcess(args);
  procs.push(s.proc);
  return s;
}

/** A `bin/hchat server` on its own folder; `--server` value for peers, and its stats URL. */
async function server(dir: string): Promise<{ addr: string; http: string; dataDir: string }> {
  const dataDir = path.join(dir, 'server');
  const s = await startServer(dataDir);
  procs.push(s.proc);
  return {
    addr: `${s.ready.tcp}#${s.ready.fingerprint}`,
    http: s.ready.http!,
    dataDir,
  };
}

/** A `bin/hchat peer` process, signed in as `name`. */
async function peerProcess(
  dir: string,
  serverAddr: string,
  name: string,
  extra: string[] = [],
): Promise<Peer> {
  const dataDir = path.join(dir, name);
  const s = await start([BIN, 'peer', '--server', serverAddr, '--data', dataDir, ...extra]);
  await signIn(s.ready.ui!, name);
  return { name, ui: s.ready.ui!, dataDir, stop: () => stopProcess(s.proc) };
}

/** A peer in this process, signed in as `name`. */
async function peerHere(dir: string, serverAddr: string, name: string): Promise<Peer> {
  const [addr, fingerprint] = serverAddr.split('#') as [string, string];
  const [host, port] = addr.split(':') as [string, string];
  const dataDir = path.join(dir, name);
  const p: PeerProcess = await startPeer({
    serverHost: host,
    serverPort: Number(port),
    serverFingerprint: fingerprint,
    host: '127.0.0.1',
    p2pPort: 0,
    udpPort: 0,
    uiPort: 0,
    dataDir,
  });
  await signIn(p.uiUrl, name);
  return { name, ui: p.uiUrl, dataDir, stop: () => p.close() };
}

async function channel(owner: Peer, name: string, members: Peer[]): Promise<string> {
  const ch = (await call(owner.ui, 'POST', '/api/channels', { name })).id as string;
  for (const m of members) await call(m.ui, 'POST', `/api/channels/${ch}/join`);
  return ch;
}

/**
 * A copy of an anchor's bytes (bench/byte-source.ts), in plain TCP or, with its fingerprint, in
 * TLS 1.3 as peers connect (connectServer: the key pinned): milliseconds from connect to the
 * last byte, handshake included (as a download's P2P handshake is).
 */
async function copy(to: ServerAddress, expected: Buffer): Promise<number> {
  const t0 = performance.now();
  const s = await connectServer(to);
  const parts: Buffer[] = [];
  s.on('data', (d: Buffer) => parts.push(d));
  await new Promise((resolve, reject) => s.once('end', resolve).once('error', reject));
  const ms = performance.now() - t0;
  s.destroy();
  if (!Buffer.concat(parts).equals(expected)) throw new Error('the copy differs');
  return ms;
}

/** Part 1: a member downloads from the host alone, against copies of the same bytes. */
async function oneSource(dir: string) {
  const srv = await server(dir);
  const alice = await peerProcess(dir, srv.addr, 'alice');
  const bob = await peerProcess(dir, srv.addr, 'bob');
  const ch = await channel(alice, 'files', [bob]);
  const data = crypto.randomBytes(SIZE);
  const bytesFile = path.join(dir, 'anchor.bin');
  fs.writeFileSync(bytesFile, data);
  const source = (tls: boolean) =>
    start(['--import', 'tsx', 'bench/byte-source.ts', bytesFile, ...(tls ? ['tls'] : [])]);
  const tcp = (await source(false)).ready;
  const tls = (await source(true)).ready;
  const ms = { hchat: [] as number[], tcp: [] as number[], tls: [] as number[] };
  const sources: Record<string, number> = {};
  const kinds = ['hchat', 'tcp', 'tls'] as const;
  for (let run = 0; run < REPEATS; run++) {
    for (let i = 0; i < kinds.length; i++) {
      const k = kinds[(i + run) % kinds.length]!;
      if (k === 'tcp') ms.tcp.push(await copy({ addr: tcp.tcp! }, data));
      if (k === 'tls')
        ms.tls.push(await copy({ addr: tls.tcp!, fingerprint: tls.fingerprint }, data));
      if (k !== 'hchat') continue;
      // The same bytes under another name each run: another file, which bob does not hold.
      const f = await attachAndPost(alice, ch, data, `one-source-${run}.bin`);
      // The host's members get the message at once; its backup to the server is not timed.
      await backedUp(alice, f.id);
      await seen(bob, ch, f.messageId);
      ms.hchat.push(await download(bob, f.url, data));
      for (const [from, n] of Object.entries(chunkSources(bob.dataDir, f.id)))
        sources[from] = (sources[from] ?? 0) + n;
    }
  }
  const rate = (k: keyof typeof ms) => mibps(SIZE, median(ms[k]));
  return {
    bytes: SIZE,
    runs: REPEATS,
    hchatMiBps: round(rate('hchat'), 1),
    tcpMiBps: round(rate('tcp'), 1),
    tlsMiBps: round(rate('tls'), 1),
    /** The goal's ratio: Hybrid Chat / the plain TCP copy. */
    ratio: round(rate('hchat') / rate('tcp'), 3),
    /** What TLS alone leaves: Hybrid Chat / the TLS 1.3 copy, and that copy / plain TCP. */
    ratioToTls: round(rate('hchat') / rate('tls'), 3),
    tlsToTcp: round(rate('tls') / rate('tcp'), 3),
    hchatMsRuns: ms.hchat.map((x) => round(x, 0)),
    tcpMsRuns: ms.tcp.map((x) => round(x, 1)),
    tlsMsRuns: ms.tls.map((x) => round(x, 1)),
    /** Chunks bob fetched, by source, over every run (only `host:alice` expected). */
    sources,
  };
}

/** Part 2: a newcomer downloads from three capped seeders, and from one. */
async function multiSource(dir: string) {
  const srv = await server(dir);
  const cap = ['--upload-limit', String(UPLOAD_LIMIT)];
  const alice = await peerProcess(dir, srv.addr, 'alice', cap);
  const bob = await peerProcess(dir, srv.addr, 'bob', cap);
  const carol = await peerProcess(dir, srv.addr, 'carol', cap);
  const three = await channel(alice, 'three seeders', [bob, carol]);
  const one = await channel(alice, 'one seeder', []);
  // Different bytes in each channel: a file attached again to a second channel is not offered
  // to the server for that channel (it was backed up already), so keep the cases apart.
  const files = {
    three: { ch: three, data: crypto.randomBytes(SIZE), f: undefined as any },
    one: { ch: one, data: crypto.randomBytes(SIZE), f: undefined as any },
  };
  for (const [name, c] of Object.entries(files))
    c.f = await attachAndPost(alice, c.ch, c.data, `${name}.bin`);
  // The two other seeders fetch it (bob from alice, then carol from both).
  for (const p of [bob, carol]) {
    await seen(p, three, files.three.f.messageId);
    await download(p, files.three.f.url, files.three.data);
  }
  const ms = { one: [] as number[], three: [] as number[] };
  const sources = { one: {} as Record<string, number>, three: {} as Record<string, number> };
  for (let run = 0; run < REPEATS; run++) {
    for (const k of run % 2 ? (['three', 'one'] as const) : (['one', 'three'] as const)) {
      const c = files[k];
      const newcomer = await peerProcess(dir, srv.addr, `new${k}${run}`);
      await call(newcomer.ui, 'POST', `/api/channels/${c.ch}/join`);
      await seen(newcomer, c.ch, c.f.messageId);
      ms[k].push(await download(newcomer, c.f.url, c.data));
      for (const [from, n] of Object.entries(chunkSources(newcomer.dataDir, c.f.id)))
        sources[k][from] = (sources[k][from] ?? 0) + n;
      // Gone before the next run: it holds the file and would be one more seeder.
      await newcomer.stop();
    }
  }
  const rate = (k: 'one' | 'three') => mibps(SIZE, median(ms[k]));
  return {
    bytes: SIZE,
    runs: REPEATS,
    uploadLimit: UPLOAD_LIMIT,
    oneMiBps: round(rate('one'), 2),
    threeMiBps: round(rate('three'), 2),
    ratio: round(rate('three') / rate('one'), 2),
    oneMsRuns: ms.one.map((x) => round(x, 0)),
    threeMsRuns: ms.three.map((x) => round(x, 0)),
    /** Chunks the newcomers fetched, by source (`host:alice`, `peer:bob`, …), all runs. */
    sources,
  };
}

/** The server's traffic counters (all frames of every connection). */
async function traffic(http: string): Promise<{ bytesIn: number; bytesOut: number }> {
  const res = await fetch(new URL('/stats', http));
  return ((await res.json()) as { traffic: { bytesIn: number; bytesOut: number } }).traffic;
}

/** Part 3: the server's bytes while N members each download a file the host attached. */
async function serverBytes(dir: string) {
  const srv = await server(dir);
  const peers: Peer[] = [];
  try {
    const alice = await peerHere(dir, srv.addr, 'alice');
    peers.push(alice);
    const most = Math.max(...MEMBERS);
    for (let i = 0; i < most; i++) peers.push(await peerHere(dir, srv.addr, `m${i}`));
    const members = peers.slice(1);
    const rows = [];
    for (const n of MEMBERS) {
      const ch = await channel(alice, `${n} members`, members.slice(0, n));
      const data = crypto.randomBytes(SERVER_PART_SIZE);
      await sleep(500); // the joins' traffic settles
      const before = await traffic(srv.http);
      const t0 = performance.now();
      const f = await attachAndPost(alice, ch, data, `for-${n}.bin`);
      const fromServer: number[] = [];
      for (let at = 0; at < n; at += WAVE)
        await Promise.all(
          members.slice(at, Math.min(n, at + WAVE)).map(async (m) => {
            await seen(m, ch, f.messageId);
            await download(m, f.url, data);
            fromServer.push(chunkSources(m.dataDir, f.id).server ?? 0);
          }),
        );
      const ms = performance.now() - t0;
      await sleep(200); // the last `file_held` answers
      const after = await traffic(srv.http);
      const log = logRecords(srv.dataDir).filter((r) => r.file === f.id);
      const bytesIn = after.bytesIn - before.bytesIn;
      const bytesOut = after.bytesOut - before.bytesOut;
      rows.push({
        members: n,
        seconds: round(ms / 1000, 1),
        bytesIn,
        bytesOut,
        inPerFileByte: round(bytesIn / SERVER_PART_SIZE, 3),
        outPerFileByte: round(bytesOut / SERVER_PART_SIZE, 4),
        outPerMember: Math.round(bytesOut / n),
        chunks: Math.ceil(SERVER_PART_SIZE / (256 * 1024)),
        chunksIn: log.filter((r) => r.ev === 'chunk').length,
        chunksServed: log.filter((r) => r.ev === 'serve').length,
        chunksMembersGotFromServer: fromServer.reduce((a, b) => a + b, 0),
      });
    }
    return { fileBytes: SERVER_PART_SIZE, wave: WAVE, rows };
  } finally {
    for (const p of peers.reverse()) await p.stop();
  }
}

/** Runs the three parts and prints them. */
export async function benchFiles(): Promise<Record<string, unknown>> {
  const t0 = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-bench-files-'));
  const mb = (n: number) => `${round(n / MiB, 1)} MiB`;
  try {
    console.log(
      `\nfiles${QUICK ? ' (BENCH_FILES_QUICK: small files, one run; figures mean nothing)' : ''}: ${mb(SIZE)} downloads through the local API, medians of ${REPEATS}`,
    );
    const one = await oneSource(path.join(dir, 'one'));
    await stopAll();
    console.log(`| figure | value |\n|---|---:|`);
    console.log(
      `| one source (the host) → member | ${one.hchatMiBps} MiB/s (runs: ${one.hchatMsRuns.join(', ')} ms) |`,
    );
    console.log(
      `| TCP copy over loopback (anchor) | ${one.tcpMiBps} MiB/s (runs: ${one.tcpMsRuns.join(', ')} ms) |`,
    );
    console.log(
      `| TLS 1.3 copy over loopback | ${one.tlsMiBps} MiB/s (runs: ${one.tlsMsRuns.join(', ')} ms) |`,
    );
    console.log(`| Hybrid Chat / TCP copy (goal ≥ 0.8) | ${one.ratio} |`);
    console.log(`| Hybrid Chat / TLS copy; TLS / TCP | ${one.ratioToTls}; ${one.tlsToTcp} |`);
    console.log(`| chunks by source | ${JSON.stringify(one.sources)} |`);
    const multi = await multiSource(path.join(dir, 'multi'));
    await stopAll();
    console.log(
      `| newcomer, 1 seeder at ${mb(UPLOAD_LIMIT)}/s | ${multi.oneMiBps} MiB/s (runs: ${multi.oneMsRuns.join(', ')} ms) |`,
    );
    console.log(
      `| newcomer, 3 seeders at ${mb(UPLOAD_LIMIT)}/s each | ${multi.threeMiBps} MiB/s (runs: ${multi.threeMsRuns.join(', ')} ms) |`,
    );
    console.log(`| three / one (goal ≥ 2.5) | ${multi.ratio} |`);
    console.log(`| chunks by source | ${JSON.stringify(multi.sources)} |`);
    const server = await serverBytes(path.join(dir, 'server'));
    await stopAll();
    console.log(
      `\nserver bytes per file (${mb(SERVER_PART_SIZE)} attached by the host, every member downloads it, ${WAVE} at a time; all frames)`,
    );
    console.log(
      '| members | bytes in | in / file size | bytes out | out / member | chunks in | chunks served | s |\n|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const r of server.rows)
      console.log(
        `| ${r.members} | ${r.bytesIn} | ${r.inPerFileByte} | ${r.bytesOut} | ${r.outPerMember} | ${r.chunksIn} of ${r.chunks} | ${r.chunksServed} | ${r.seconds} |`,
      );
    const seconds = Math.round((Date.now() - t0) / 1000);
    console.log(`files bench: ${seconds} s`);
    return { quick: QUICK, seconds, oneSource: one, multiSource: multi, serverBytes: server };
  } finally {
    await stopAll();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function stopAll(): Promise<void> {
  for (const p of procs.splice(0).reverse()) await stopProcess(p);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  benchFiles()
    .then((r) => console.log(JSON.stringify(r, null, 2)))
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}
