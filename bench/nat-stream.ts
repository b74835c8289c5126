/**
 * The livestream part of the NAT bench (issue 18: "relay throughput and added latency … for a
 * 500 kbit/s stream"), on bench/nat.ts's rig. Alice, at home 1 behind a cone NAT, streams
 * synthetic video (BENCH_NAT_STREAM_KBPS, 500 kbit/s, at 30 fps, and 20 ms Opus-sized audio);
 * four viewers, each a child of hers (her k = 4 slots), each reached another way (§5.6):
 *
 * - `lan`: bob-direct at her home: UDP over the home's LAN (her `host` candidate);
 * - `punched`: bob-punched behind another cone NAT: UDP through holes punched in both NATs;
 * - `symmetric`: bob-relayed behind a symmetric NAT: a media tunnel in the server's relay (TCP);
 * - `udpBlocked`: bob-noudp behind a cone NAT that forwards no UDP: a media tunnel too.
 *
 * Each of BENCH_NAT_RUNS (3) runs: the four watch anew (a fresh tunnel, fresh stats), each gets
 * a second of whole frames, the bench opens each viewer's `/play` socket (what its page would
 * get); then a window of BENCH_NAT_STREAM_SECONDS (20) s. Per viewer: frame latency (capture →
 * whole frame) p50/p99 as the bench's clock sees it (arrival of the frame on the `/play` socket
 * less its capture time: one kernel clock for every namespace; this adds the viewer's local API
 * and its forwarder to every figure alike) and as the viewer's stats give it (its own clock when
 * the frame was whole, over every frame since it began watching); frames complete over the
 * frames alice sent in the window; the bitrate of whole frames on `/play`. For the relay: bytes
 * of kind media it passed per second (`hchat_relay_bytes_total`, before and after the window),
 * and the server's CPU (/proc) per MiB of them, with the server's idle CPU beside (measured
 * before alice goes live). Every viewer's figures are also ratios to the LAN viewer's of the same
 * run (the median of the runs' ratios).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type WebSocket from 'ws';
import type { HomePeer } from '../test/netns-core.js';
import { cpuSeconds } from './harness.js';
import { fineClock, playFrames, type PlayedFrame } from './nat-api.js';
import { pct, round, serverLog, sleep, time, until, type Rig } from './nat-kit.js';
import { median } from './stats.js';

const SECONDS = Number(process.env.BENCH_NAT_STREAM_SECONDS ?? 20);
const KBPS = Number(process.env.BENCH_NAT_STREAM_KBPS ?? 500);
const FPS = 30;
/**
 * The server's CPU with every peer up and no stream, before alice goes live (after a second for
 * bob-noudp's arrival to settle): 10 ms ticks, so 5 s give it to 2 ms/s.
 */
const IDLE_SECONDS = 5;
/** Between the `/play` sockets' opening and the window: the keyframe each asked for comes. */
const SETTLE_MS = 500;

export const VIEWERS = ['lan', 'punched', 'symmetric', 'udpBlocked'] as const;
export type ViewerKind = (typeof VIEWERS)[number];

/** Where each viewer's `watching` record must say its media comes from, or a tunnel. */
const ROUTE: Record<ViewerKind, RegExp | 'tunnel'> = {
  lan: /^alice@10\.0\.1\.2:\d+$/,
  punched: /^alice@203\.0\.113\.11:\d+$/,
  symmetric: 'tunnel',
  udpBlocked: 'tunnel',
};

interface Viewer {
  kind: ViewerKind;
  peer: HomePeer;
}

/** One viewer's window of one run. */
interface Seen {
  clockP50: number;
  clockP99: number;
  /** The smallest: a clock the bench reads wrong would show here first (below 0). */
  clockMin: number;
  statsP50: number;
  statsP99: number;
  complete: number;
  dropped: number;
  sent: number;
  /** Video frames that reached `/play` in the window (its page skips to a keyframe after a gap). */
  played: number;
  kbps: number;
}

/** The relay over one run's window, and each tunnel over its whole life. */
interface Relayed {
  bytesPerS: number;
  cpuMs: number;
  mib: number;
  tunnels: Partial<Record<ViewerKind, { bytesPerS: number; up: number; down: number }>>;
}

const execFileP = promisify(execFile);

/** The relay's `hchat_relay_bytes_total{kind="media"}`, from its server's metrics. */
async function relayMediaBytes(rig: Rig): Promise<number> {
  const url = `${rig.server.ready.http!}metrics`;
  // The HTTP port is on the internet's namespace: curl there, not blocking the event loop (the
  // `/play` sockets date frames meanwhile).
  const { stdout } = await execFileP('ip', ['netns', 'exec', rig.world.inet, 'curl', '-sf', url]);
  const m = /^hchat_relay_bytes_total\{[^}]*kind="media"[^}]*\} (\d+)$/m.exec(stdout);
  if (!m) throw new Error('nat bench: no hchat_relay_bytes_total{kind="media"} in the metrics');
  return Number(m[1]);
}

async function stats(peer: HomePeer, streamId: string): Promise<any> {
  const r = await peer.call('GET', `/api/streams/${streamId}/stats`);
  if (r.status !== 200) throw new Error(`stream stats: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** The viewers: the rig's three members, and bob-noudp, who joins now at home `udpBlockedHome`. */
async function viewers(rig: Rig, udpBlockedHome: number): Promise<Viewer[]> {
  const member = (kind: string) => rig.members.find((m) => m.kind === kind)!.peer;
  const noudp = await rig.world.startPeer(udpBlockedHome, rig.server, 'bob-noudp');
  const joined = await noudp.call('POST', `/api/channels/${rig.ch}/join`);
  if (joined.status !== 200) throw new Error(`join: ${JSON.stringify(joined.body)}`);
  // Its link to alice up, as the others' are (its router blocks UDP, not TCP).
  await until(
    () => noudp.log().find((r) => r.ev === 'open' && r.peer?.startsWith('host:alice@')),
    30_000,
    "bob-noudp's link to alice",
  );
  const peers: Record<ViewerKind, HomePeer> = {
    lan: member('direct'),
    punched: member('punched'),
    symmetric: member('relayed'),
    udpBlocked: noudp,
  };
  // In VIEWERS' order: each run's figures are indexed alike.
  return VIEWERS.map((kind) => ({ kind, peer: peers[kind] }));
}

/** Every viewer watches; once each has a second of whole frames, each went the way it must. */
async function watchAll(rig: Rig, streamId: string, vs: Viewer[], from: number[]) {
  await Promise.all(
    vs.map((v) =>
      until(
        async () =>
          (await v.peer.call('POST', `/api/streams/${streamId}/watch`)).status === 200 || undefined,
        15_000,
        `${v.kind} watching`,
      ),
    ),
  );
  await until(
    async () => {
      const s = await Promise.all(vs.map((v) => stats(v.peer, streamId)));
      return s.every((x) => x.framesComplete > FPS) ? true : undefined;
    },
    20_000,
    'a second of whole frames at every viewer',
  );
  for (const [i, v] of vs.entries()) {
    const s = await stats(v.peer, streamId);
    if (s.parent !== 'alice') throw new Error(`${v.kind} is fed by ${s.parent}, not alice`);
    const recs = v.peer.log().slice(from[i]);
    const tunnel = recs.some(
      (r) => r.ev === 'media_tunnel' && r.side === 'child' && r.peer === 'alice',
    );
    const watching = recs.find((r) => r.ev === 'watching')?.parent ?? '';
    const route = ROUTE[v.kind];
    const ok = route === 'tunnel' ? tunnel : !tunnel && route.test(watching);
    if (!ok) throw new Error(`${v.kind}'s media: ${tunnel ? 'a tunnel' : `from ${watching}`}`);
  }
}

/** What one run's window saw, besides the frames. */
interface Reading {
  at: number;
  cpu: number;
  relayBytes: number;
  sent: number;
  viewers: any[];
}

/**
 * The relay's counter first and the CPU after it at the start, the other way round at the end:
 * the CPU's window holds none of the server's own answers to the metrics request.
 */
async function read(rig: Rig, streamId: string, vs: Viewer[], start: boolean): Promise<Reading> {
  const pid = rig.server.proc.pid!;
  const relayBytes = start ? await relayMediaBytes(rig) : 0;
  const cpu = cpuSeconds(pid);
  const at = Date.now();
  const sent = (await stats(rig.alice, streamId)).framesSent as number;
  const viewers = await Promise.all(vs.map((v) => stats(v.peer, streamId)));
  return { at, cpu, sent, viewers, relayBytes: start ? relayBytes : await relayMediaBytes(rig) };
}

async function run(rig: Rig, streamId: string, vs: Viewer[]) {
  const from = vs.map((v) => v.peer.log().length);
  const fromServer = serverLog(rig).length;
  await watchAll(rig, streamId, vs, from);
  const frames: PlayedFrame[][] = vs.map(() => []);
  let window = false;
  const sockets: WebSocket[] = [];
  const clock = fineClock();
  let a: Reading;
  let b: Reading;
  /** When `/play` frames began and stopped being kept. */
  let played0: number;
  let played1: number;
  try {
    for (const [i, v] of vs.entries())
      sockets.push(await playFrames(v.peer, streamId, clock, (f) => window && frames[i]!.push(f)));
    await sleep(SETTLE_MS);
    a = await read(rig, streamId, vs, true);
    window = true;
    played0 = Date.now();
    await sleep(SECONDS * 1000 - (Date.now() - a.at));
    window = false;
    played1 = Date.now();
    b = await read(rig, streamId, vs, false);
  } finally {
    for (const s of sockets) s.terminate();
  }
  for (const v of vs) await v.peer.call('DELETE', `/api/streams/${streamId}/watch`);
  const ms = b.at - a.at;
  const seen = vs.map((_, i): Seen => {
    const s0 = a.viewers[i];
    const s1 = b.viewers[i];
    const video = frames[i]!.filter((f) => f.video);
    // The capture time is a truncated whole ms: the frame was captured half a ms later on
    // average (each figure is then within ±0.5 ms, unbiased).
    const lat = video.map((f) => f.arrivedMs - (f.captureMs + 0.5));
    if (lat.length === 0) throw new Error(`${vs[i]!.kind}: no frame on /play in the window`);
    return {
      clockP50: pct(lat, 0.5),
      clockP99: pct(lat, 0.99),
      clockMin: Math.min(...lat),
      statsP50: s1.latencyMs.p50,
      statsP99: s1.latencyMs.p99,
      complete: s1.framesComplete - s0.framesComplete,
      dropped: s1.framesDropped - s0.framesDropped,
      sent: b.sent - a.sent,
      played: video.length,
      kbps: (frames[i]!.reduce((n, f) => n + f.bytes, 0) * 8) / (played1 - played0),
    };
  });
  // Unwatching ends each tunnel: its `relay_close` counts its bytes over its whole life.
  const closes = await until(
    () => {
      const c = serverLog(rig)
        .slice(fromServer)
        .filter((r) => r.ev === 'relay_close' && r.kind === 'media');
      return c.length >= 2 ? c : undefined;
    },
    10_000,
    'both media tunnels closed',
  );
  const opens = serverLog(rig)
    .slice(fromServer)
    .filter((r) => r.ev === 'relay_open' && r.kind === 'media');
  if (opens.length !== 2 || closes.length !== 2)
    throw new Error(`media tunnels: ${opens.length} opened, ${closes.length} closed, not 2`);
  const tunnels: Relayed['tunnels'] = {};
  for (const v of vs.filter((x) => ROUTE[x.kind] === 'tunnel')) {
    const user = v.kind === 'symmetric' ? 'bob-relayed' : 'bob-noudp';
    const close = closes.find((r) => r.peer?.includes(`:${user}@`));
    const open = opens.find((r) => r.id === close?.id);
    if (!close || !open) throw new Error(`no media tunnel of ${user} in the server's log`);
    const up = Number(close.up);
    const down = Number(close.down);
    tunnels[v.kind] = { bytesPerS: ((up + down) * 1000) / (time(close) - time(open)), up, down };
  }
  const bytes = b.relayBytes - a.relayBytes;
  const relayed: Relayed = {
    bytesPerS: (bytes * 1000) / ms,
    cpuMs: (b.cpu - a.cpu) * 1000,
    mib: bytes / 2 ** 20,
    tunnels,
  };
  return { seen, relayed, ms };
}

/** The whole part: the figures of bench/report-nat.ts's stream section. */
export async function streamPart(rig: Rig, udpBlockedHome: number, count: number) {
  const started = Date.now();
  const vs = await viewers(rig, udpBlockedHome);
  console.log(
    `nat: livestream, ${KBPS} kbit/s at ${FPS} fps to ${vs.length} viewers, ${SECONDS} s windows, ${count} runs`,
  );
  const pid = rig.server.proc.pid!;
  await sleep(1000);
  const cpu0 = cpuSeconds(pid);
  const t0 = Date.now();
  await sleep(IDLE_SECONDS * 1000);
  const idleCpuMsPerS = ((cpuSeconds(pid) - cpu0) * 1e6) / (Date.now() - t0);
  const live = await rig.alice.call('POST', `/api/channels/${rig.ch}/streams`, {
    source: 'synthetic',
    fps: FPS,
    bitrateKbps: KBPS,
  });
  if (live.status !== 201) throw new Error(`go live: ${live.status} ${JSON.stringify(live.body)}`);
  const streamId = live.body.streamId as string;
  const runs: Array<Awaited<ReturnType<typeof run>>> = [];
  try {
    for (let i = 0; i < count; i++) runs.push(await run(rig, streamId, vs));
  } finally {
    await rig.alice.call('DELETE', `/api/streams/${streamId}`);
  }
  const med = (f: (r: (typeof runs)[number]) => number, d = 2) => round(median(runs.map(f)), d);
  const viewer = (k: number) => {
    const at = (r: (typeof runs)[number]) => r.seen[k]!;
    const lan = (r: (typeof runs)[number]) => r.seen[0]!;
    const fig = {
      latencyP50Ms: med((r) => at(r).clockP50),
      latencyP99Ms: med((r) => at(r).clockP99),
      statsLatencyP50Ms: med((r) => at(r).statsP50),
      statsLatencyP99Ms: med((r) => at(r).statsP99),
      /** Whole frames at the viewer over the frames alice sent in the window. */
      completeOfSent: med((r) => at(r).complete / at(r).sent, 4),
      dropped: runs.map((r) => at(r).dropped),
      kbps: med((r) => at(r).kbps, 0),
      latencyMinMs: round(Math.min(...runs.map((r) => at(r).clockMin))),
      latencyP50MsRuns: runs.map((r) => round(at(r).clockP50)),
      latencyP99MsRuns: runs.map((r) => round(at(r).clockP99)),
      playedRuns: runs.map((r) => at(r).played),
      sentRuns: runs.map((r) => at(r).sent),
    };
    if (k === 0) return fig;
    return {
      ...fig,
      latencyP50ToLan: med((r) => at(r).clockP50 / lan(r).clockP50),
      latencyP99ToLan: med((r) => at(r).clockP99 / lan(r).clockP99),
      /** What the path adds to a frame's latency, p50, against the LAN viewer's, in ms. */
      latencyP50AddedMs: med((r) => at(r).clockP50 - lan(r).clockP50),
      completeToLan: med((r) => at(r).complete / lan(r).complete, 4),
      kbpsToLan: med((r) => at(r).kbps / lan(r).kbps),
    };
  };
  const kbps = (r: (typeof runs)[number], kind: ViewerKind) => r.seen[VIEWERS.indexOf(kind)]!.kbps;
  const cpuPerMiB = (r: (typeof runs)[number]) => r.relayed.cpuMs / r.relayed.mib;
  const lessIdle = (r: (typeof runs)[number]) =>
    (r.relayed.cpuMs - (idleCpuMsPerS * r.ms) / 1000) / r.relayed.mib;
  return {
    /** The whole part, bob-noudp's start to the stream's end. */
    partSeconds: Math.round((Date.now() - started) / 1000),
    seconds: SECONDS,
    runs: runs.length,
    fps: FPS,
    bitrateKbps: KBPS,
    /**
     * Video frames alice sent a second in the windows: under the fps asked when the machine is
     * busy (the synthetic source's timer fires late and does not catch up).
     */
    sentFps: med((r) => (r.seen[0]!.sent * 1000) / r.ms, 1),
    viewers: Object.fromEntries(VIEWERS.map((kind, k) => [kind, viewer(k)])),
    relay: {
      /** Media bytes the relay passed, both tunnels, both ways, per second of the window. */
      bytesPerS: med((r) => r.relayed.bytesPerS, 0),
      /** Each tunnel over its whole life (its relay_open to its relay_close). */
      symmetricBytesPerS: med((r) => r.relayed.tunnels.symmetric!.bytesPerS, 0),
      udpBlockedBytesPerS: med((r) => r.relayed.tunnels.udpBlocked!.bytesPerS, 0),
      /** Per byte of the frames the tunnels' two viewers got (SRTP, RTCP, RFC 4571, TCP). */
      bytesPerStreamByte: med(
        (r) => r.relayed.bytesPerS / (((kbps(r, 'symmetric') + kbps(r, 'udpBlocked')) * 1000) / 8),
        3,
      ),
      serverCpuMsPerMiB: med(cpuPerMiB),
      /** Less the server's CPU of the same time idle (before alice went live). */
      serverCpuMsPerMiBLessIdle: med(lessIdle),
      serverIdleCpuMsPerS: round(idleCpuMsPerS),
      serverCpuMsRuns: runs.map((r) => round(r.relayed.cpuMs, 0)),
      mibRuns: runs.map((r) => round(r.relayed.mib, 3)),
    },
  };
}
