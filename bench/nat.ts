/**
 * What NAT traversal costs (issue 18), run by `npm run bench` or alone (`node --import tsx
 * bench/nat.ts`, after `npm run build`). Real `bin/hchat` server and peers in network namespaces
 * (test/netns-core.ts): the server on the internet; alice, who hosts a channel, behind a cone
 * NAT at home 1; three members who joined it, each reaching her another way:
 *
 * - `direct`: at home 1 too (one home namespace): dials her LAN address;
 * - `punched`: at home 2, behind another cone NAT: TCP hole punching;
 * - `relayed`: at home 3, behind a symmetric NAT (`--random-fully`): the server's relay.
 *
 * (Home 4, behind a cone NAT that forwards no UDP, is the livestream part's alone.)
 *
 * 1. Link setup: from the moment a member decides to connect to its TLS link open, BENCH_NAT_SETUPS
 *    (20) times each. The link is cut (`ss -K` in the member's namespace); the member dials again
 *    RETRY_MS (2 s, src/peer/sources.ts) after its `close` record, and logs `open` when TLS is
 *    done. A punch's or relay's own record (`ms` since it started) dates its start; a direct
 *    dial logs nothing at its start, so its SYN does (tcpdump on home 1's loopback). `close` +
 *    RETRY_MS is reported beside: that estimate is late by the retry timer's lateness.
 * 2. Chat latency: BENCH_NAT_POSTS (200) posts by each member, one at a time, the members taking
 *    turns, in each of BENCH_NAT_RUNS (3) runs: the post answer's round trip (local API → signed,
 *    sent over the link → the host's answer) and the time until the host's event stream shows
 *    it. A post also asks the server for the channel's members (mentions), by every member
 *    alike: that round trip is in every figure.
 * 3. Bulk: each member downloads a BENCH_NAT_FILE_MIB (16) MiB file that only alice holds among
 *    the peers (the server in reserve), once per run: MiB/s, and the server's CPU over each
 *    download (from /proc) per MiB of the file; for the relayed link, the bytes the relay passed.
 * 4. Livestream (bench/nat-stream.ts): alice streams 500 kbit/s to a viewer on her LAN, one
 *    behind a cone NAT (punched UDP), one behind a symmetric NAT and one behind a router that
 *    blocks UDP (media tunnels in the server's relay): frame latency, frames complete, bitrate;
 *    the relay's media bytes per second and the server's CPU per MiB of them.
 *
 * BENCH_NAT_PARTS (`setup,chat,bulk,stream`, all by default) picks parts. Every figure is also
 * given as a ratio to the direct link's (the LAN viewer's) in the same run. Needs root; without
 * it (or iproute2, iptables, ss, tcpdump, curl) it says why and skips. Every namespace and process it made is
 * removed at its end, also on an error or SIGINT/SIGTERM.
 */
import crypto from 'node:crypto';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { RETRY_MS } from '../src/peer/sources.js';
import { buildNatWorld, type HomePeer, type OwnedNatWorld } from '../test/netns-core.js';
import { cpuSeconds } from './harness.js';
import { messageEvents, rawCall } from './nat-api.js';
import { median } from './stats.js';
import {
  KINDS,
  pct,
  round,
  serverLog,
  sleep,
  time,
  until,
  type Kind,
  type Member,
  type Rig,
} from './nat-kit.js';
import { streamPart } from './nat-stream.js';
import { watchSyns, type SynTimes } from './syn-times.js';

const SETUPS = Number(process.env.BENCH_NAT_SETUPS ?? 20);
const POSTS = Number(process.env.BENCH_NAT_POSTS ?? 200);
const RUNS = Math.max(3, Number(process.env.BENCH_NAT_RUNS ?? 3));
const FILE_MIB = Number(process.env.BENCH_NAT_FILE_MIB ?? 16);
const PARTS = new Set((process.env.BENCH_NAT_PARTS ?? 'setup,chat,bulk,stream').split(','));
/** Posts before the first run's, not counted: the first ones pay for cold code paths. */
const WARM_POSTS = 10;
/** Between two cuts of one member's link: the retry, the setup, and room to spare. */
const CUT_PERIOD_MS = RETRY_MS + 400;

/** Each kind's home (alice is at home 1, index 0) and the `via` its `open` record must show. */
const HOME: Record<Kind, number> = { direct: 0, punched: 1, relayed: 2 };
const VIA: Record<Kind, string> = { direct: 'direct', punched: 'punched', relayed: 'relay' };

/** Why the bench cannot run here, if it cannot. */
function missing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  for (const [cmd, arg] of [
    ['ip', '-V'],
    ['iptables', '-V'],
    ['ss', '-V'],
    ['tcpdump', '--version'],
    ['curl', '--version'],
  ] as const) {
    try {
      execFileSync(cmd, [arg], { stdio: 'ignore' });
    } catch {
      return `needs ${cmd}`;
    }
  }
  return undefined;
}

/** A peer's connection log from record `from` on (what one step of the bench made). */
function logFrom(peer: HomePeer, from: number): Array<Record<string, string>> {
  return peer.log().slice(from);
}

/** The member's records of its link to alice: the `open` ones from record `from` on. */
function opens(m: Member, from = 0): Array<Record<string, string>> {
  return logFrom(m.peer, from).filter((r) => r.ev === 'open' && r.peer?.startsWith('host:alice@'));
}

async function buildRig(world: OwnedNatWorld): Promise<Rig> {
  const server = await world.startServer();
  const alice = await world.startPeer(0, server, 'alice');
  const ch = (await alice.call('POST', '/api/channels', { name: 'nat', allowVisitors: false })).body
    .id as string;
  const members: Member[] = [];
  for (const kind of KINDS) {
    const peer = await world.startPeer(HOME[kind], server, `bob-${kind}`);
    const joined = await peer.call('POST', `/api/channels/${ch}/join`);
    if (joined.status !== 200) throw new Error(`join: ${JSON.stringify(joined.body)}`);
    members.push({ kind, peer, ns: world.homes[HOME[kind]]!.ns });
  }
  for (const m of members) {
    const open = await until(() => opens(m).at(-1), 30_000, `bob-${m.kind}'s link to alice`);
    if (open.via !== VIA[m.kind])
      throw new Error(`bob-${m.kind} reached alice ${open.via}, not ${VIA[m.kind]}`);
  }
  return { world, server, alice, members, ch };
}

/** One link setup: how the link went, and its start to its `open` record. */
interface Setup {
  via: string;
  ms: number;
  /** The start minus the `close` record + RETRY_MS: how late the retry timer fired. */
  lateMs: number;
}

/**
 * Cuts the member's link `SETUPS` times, `phase` ms into each period; each reopening's setup.
 * A punch or relay dates its own start (its record's time less its `ms`); a direct dial is
 * dated by its SYN (`syns`). Both ends are whole milliseconds of the same clock, as the log
 * writes them (the SYN's time is truncated alike).
 */
async function setups(rig: Rig, m: Member, phase: number, syns?: SynTimes): Promise<Setup[]> {
  const out: Setup[] = [];
  const t0 = Date.now() + phase;
  for (let i = 0; i < SETUPS; i++) {
    await sleep(t0 + i * CUT_PERIOD_MS - Date.now());
    const from = m.peer.log().length;
    const cutAt = Date.now();
    const [ip, port] = opens(m).at(-1)!.addr!.split(':') as [string, string];
    rig.world.run(m.ns, ['ss', '-K', '-tn', 'dst', ip, 'dport', '=', `:${port}`]);
    const open = await until(() => opens(m, from)[0], 15_000, `bob-${m.kind}'s link again`);
    const recs = logFrom(m.peer, from);
    const close = recs.find((r) => r.ev === 'close' && r.peer?.startsWith('host:alice@'));
    if (!close) throw new Error(`bob-${m.kind}: no close record after the cut`);
    // The first attempt's start: a punch that failed before the relay took over counts too.
    const tries = recs
      .filter((r) => (r.ev === 'punch' || r.ev === 'relay_link') && r.ms !== undefined)
      .map((r) => time(r) - Number(r.ms));
    const syn = syns && (await until(() => syns.times.find((t) => t > cutAt), 5000, 'the SYN'));
    const start = tries.length ? Math.min(...tries) : syn && Math.floor(syn);
    if (start === undefined) throw new Error(`bob-${m.kind}: nothing dates the dial's start`);
    out.push({ via: open.via!, ms: time(open) - start, lateMs: start - time(close) - RETRY_MS });
  }
  return out;
}

async function setupPart(rig: Rig, own: (p: ChildProcess) => void) {
  console.log(
    `nat: link setup, ${SETUPS} cuts a member (${((SETUPS * CUT_PERIOD_MS) / 1000).toFixed(0)} s)`,
  );
  // The direct member and alice share home 1: its dials to her cross that home's loopback.
  const [, alicePort] = rig.alice.p2p.split(':');
  const home1 = rig.world.homes[0]!;
  const syns = await watchSyns(home1.ns, 'lo', home1.lanIp, Number(alicePort), own);
  let all: Setup[][];
  try {
    // The three members' reopenings a third of a period apart: never two setups at once.
    all = await Promise.all(
      rig.members.map((m, k) =>
        setups(
          rig,
          m,
          200 + (k * CUT_PERIOD_MS) / KINDS.length,
          m.kind === 'direct' ? syns : undefined,
        ),
      ),
    );
  } finally {
    syns.proc.kill('SIGKILL');
  }
  const late = all.flat().map((s) => s.lateMs);
  const fig = (kind: Kind) => {
    const runs = all[KINDS.indexOf(kind)]!;
    const ok = runs.filter((s) => s.via === VIA[kind]).map((s) => s.ms);
    return {
      p50Ms: median(ok),
      p99Ms: pct(ok, 0.99),
      setups: ok.length,
      // A punch that failed falls back to the relay: not a punched setup, counted apart.
      otherVia: runs.length - ok.length,
      msRuns: ok,
    };
  };
  const direct = fig('direct');
  const ratios = (f: ReturnType<typeof fig>) => ({
    ...f,
    p50ToDirect: round(f.p50Ms / direct.p50Ms),
    p99ToDirect: round(f.p99Ms / direct.p99Ms),
  });
  return {
    setups: SETUPS,
    direct,
    punched: ratios(fig('punched')),
    relayed: ratios(fig('relayed')),
    /** Each dial's start after its `close` record + RETRY_MS (what dating by it would add). */
    retryTimerLateMs: { p50: median(late), min: Math.min(...late), max: Math.max(...late) },
  };
}

/** What one kind's posts of one run took. */
interface Posted {
  answer: number[];
  seen: number[];
  /** Server CPU seconds over its posts' windows. */
  cpu: number;
}

/**
 * `count` posts by each member, one post at a time, the members taking turns (who goes first
 * rotates): load from outside the bench (2 shared cores) then weighs on the three alike. For
 * each post, its answer's round trip and its arrival at alice's event stream; the server's CPU
 * over each post's window is its kind's (alice's upload of a post to the server may land in the
 * next post's window, which spreads that cost over the kinds evenly).
 */
async function posts(rig: Rig, count: number, tag: string): Promise<Map<Kind, Posted>> {
  const events = await messageEvents(rig.alice);
  const out = new Map<Kind, Posted>(KINDS.map((k) => [k, { answer: [], seen: [], cpu: 0 }]));
  const from = rig.members.map((m) => m.peer.log().length);
  const pid = rig.server.proc.pid!;
  try {
    for (let i = 0; i < count; i++) {
      for (let j = 0; j < rig.members.length; j++) {
        const m = rig.members[(i + j) % rig.members.length]!;
        const o = out.get(m.kind)!;
        const text = `${tag} ${i} ${m.kind} ${crypto.randomBytes(6).toString('hex')}`;
        const cpu0 = cpuSeconds(pid);
        const t0 = performance.now();
        const arrived = events.wait((msg) => msg.text === text).then(() => performance.now() - t0);
        // Should the post fail, its wait's later timeout must not end the process before the
        // world is removed.
        arrived.catch(() => undefined);
        const r = await m.peer.call('POST', `/api/channels/${rig.ch}/messages`, { text });
        o.answer.push(performance.now() - t0);
        if (r.status !== 201 || r.body.state !== 'delivered')
          throw new Error(`bob-${m.kind}'s post: ${r.status} ${JSON.stringify(r.body)}`);
        o.seen.push(await arrived);
        o.cpu += cpuSeconds(pid) - cpu0;
      }
    }
  } finally {
    events.close();
  }
  // Every post must have gone over the link to alice, none through the server (the log is
  // written once per event-loop turn: the last record may come a moment after the answer).
  for (const [k, m] of rig.members.entries()) {
    const sent = await until(
      () => {
        const s = logFrom(m.peer, from[k]!).filter((r) => r.ev === 'post');
        return s.length >= count ? s : undefined;
      },
      5000,
      `bob-${m.kind}'s post records`,
    );
    if (sent.length !== count || sent.some((r) => !r.to?.startsWith('host:alice@')))
      throw new Error(`bob-${m.kind}: posts not all over the link: ${JSON.stringify(sent)}`);
  }
  return out;
}

async function chatPart(rig: Rig) {
  console.log(`nat: chat latency, ${POSTS} posts a member, ${RUNS} runs`);
  await posts(rig, WARM_POSTS, 'warm');
  type Run = {
    answerP50: number;
    answerP99: number;
    seenP50: number;
    seenP99: number;
    cpu: number;
  };
  const runs = new Map<Kind, Run[]>(KINDS.map((k) => [k, []]));
  for (let run = 0; run < RUNS; run++) {
    for (const [kind, r] of await posts(rig, POSTS, `run${run}`))
      runs.get(kind)!.push({
        answerP50: pct(r.answer, 0.5),
        answerP99: pct(r.answer, 0.99),
        seenP50: pct(r.seen, 0.5),
        seenP99: pct(r.seen, 0.99),
        cpu: (r.cpu * 1e6) / POSTS,
      });
  }
  const fig = (kind: Kind) => {
    const rs = runs.get(kind)!;
    const med = (f: (r: Run) => number) => round(median(rs.map(f)));
    return {
      answerP50Ms: med((r) => r.answerP50),
      answerP99Ms: med((r) => r.answerP99),
      seenP50Ms: med((r) => r.seenP50),
      seenP99Ms: med((r) => r.seenP99),
      /** Mostly not the link's: the members request and alice's upload of each post. */
      serverCpuUsPerPost: med((r) => r.cpu),
      seenP50MsRuns: rs.map((r) => round(r.seenP50)),
    };
  };
  const direct = fig('direct');
  const vs = (f: ReturnType<typeof fig>) => ({
    ...f,
    seenP50ToDirect: round(f.seenP50Ms / direct.seenP50Ms),
    seenP99ToDirect: round(f.seenP99Ms / direct.seenP99Ms),
    answerP50ToDirect: round(f.answerP50Ms / direct.answerP50Ms),
    /** What the path adds to a post's arrival at the host, p50, in ms. */
    seenP50AddedMs: round(f.seenP50Ms - direct.seenP50Ms),
  });
  return {
    posts: POSTS,
    runs: RUNS,
    direct,
    punched: vs(fig('punched')),
    relayed: vs(fig('relayed')),
  };
}

/** Alice attaches `data` and posts it; once the server holds its backup, its id and URL. */
async function attach(rig: Rig, data: Buffer, name: string) {
  const r = await rawCall(rig.alice, 'POST', `/api/channels/${rig.ch}/files?name=${name}`, data);
  if (r.status !== 201) throw new Error(`attach: ${r.status} ${r.body.toString()}`);
  const file = JSON.parse(r.body.toString()) as { id: string; url: string };
  const msg = await rig.alice.call('POST', `/api/channels/${rig.ch}/messages`, {
    files: [file.id],
  });
  if (msg.status !== 201) throw new Error(`post the file: ${JSON.stringify(msg.body)}`);
  // Timed downloads must not share the server with the backup's upload.
  await until(
    () => rig.alice.log().find((r) => r.ev === 'backup' && r.file === file.id),
    60_000,
    'the backup of the file',
  );
  return { ...file, messageId: msg.body.id as string };
}

/** True once the peer's view of the channel holds the message. */
async function shows(peer: HomePeer, ch: string, id: string): Promise<boolean> {
  const page = await peer.call('GET', `/api/channels/${ch}/messages?limit=50`);
  return page.body.messages.some((m: { id: string }) => m.id === id);
}

async function bulkPart(rig: Rig) {
  const bytes = FILE_MIB * 1024 * 1024;
  console.log(`nat: bulk, a ${FILE_MIB} MiB file to each member, ${RUNS} runs`);
  type Run = { ms: number; cpuMs: number; relayBytes?: number };
  const runs = new Map<Kind, Run[]>(KINDS.map((k) => [k, []]));
  for (let run = 0; run < RUNS; run++) {
    // A file of its own for each member: a member that fetched a file is one more source of it
    // for the next (a download from several peers), and this measures one link.
    const files = new Map<Kind, { data: Buffer; id: string; url: string; messageId: string }>();
    for (const kind of KINDS) {
      const data = crypto.randomBytes(bytes);
      files.set(kind, { data, ...(await attach(rig, data, `nat-${run}-${kind}.bin`)) });
    }
    for (let i = 0; i < KINDS.length; i++) {
      const m = rig.members[(i + run) % KINDS.length]!;
      const file = files.get(m.kind)!;
      await until(
        async () => ((await shows(m.peer, rig.ch, file.messageId)) ? true : undefined),
        30_000,
        `bob-${m.kind} seeing the file`,
      );
      const from = serverLog(rig).length;
      const fromOwn = m.peer.log().length;
      const cpu0 = cpuSeconds(rig.server.proc.pid!);
      const t0 = performance.now();
      const got = await rawCall(m.peer, 'GET', file.url);
      const ms = performance.now() - t0;
      const cpuMs = (cpuSeconds(rig.server.proc.pid!) - cpu0) * 1000;
      if (got.status !== 200 || !got.body.equals(file.data))
        throw new Error(`bob-${m.kind}: GET ${file.url}: ${got.status}, ${got.body.length} bytes`);
      const sources = new Set(
        m.peer
          .log()
          .filter((r) => r.ev === 'chunk' && r.file === file.id)
          .map((r) => r.from),
      );
      if (sources.size !== 1 || !sources.has('host:alice'))
        throw new Error(`bob-${m.kind}'s chunks came from ${[...sources].join(', ')}`);
      // The download dials a link of its own: it must have gone the member's way too.
      const via = opens(m, fromOwn).map((o) => o.via);
      if (via.length !== 1 || via[0] !== VIA[m.kind])
        throw new Error(`bob-${m.kind}'s download went ${via.join(', ') || 'nowhere'}`);
      const r: Run = { ms, cpuMs };
      if (m.kind === 'relayed') {
        // The download's own link to alice closes once the file is whole: the relay then
        // logs the bytes it passed.
        const pair = serverLog(rig)
          .slice(from)
          .find((x) => x.ev === 'relay_link' && x.to?.startsWith('peer:alice@'));
        if (!pair) throw new Error('the relayed download went through no relay');
        const closed = await until(
          () => serverLog(rig).find((x) => x.ev === 'relay_close' && x.id === pair.id),
          10_000,
          'the relay_close of the download link',
        );
        r.relayBytes = Number(closed.up) + Number(closed.down);
      }
      runs.get(m.kind)!.push(r);
    }
  }
  const mib = bytes / (1024 * 1024);
  const fig = (kind: Kind) => {
    const rs = runs.get(kind)!;
    return {
      MiBps: round(mib / (median(rs.map((r) => r.ms)) / 1000), 1),
      serverCpuMsPerMiB: round(median(rs.map((r) => r.cpuMs)) / mib),
      msRuns: rs.map((r) => round(r.ms, 0)),
      serverCpuMsRuns: rs.map((r) => round(r.cpuMs, 0)),
    };
  };
  const direct = fig('direct');
  const relayed = fig('relayed');
  const relayBytes = median(runs.get('relayed')!.map((r) => r.relayBytes!));
  return {
    fileBytes: bytes,
    runs: RUNS,
    direct,
    punched: { ...fig('punched'), MiBpsToDirect: round(fig('punched').MiBps / direct.MiBps) },
    relayed: {
      ...relayed,
      MiBpsToDirect: round(relayed.MiBps / direct.MiBps),
      /** Bytes the relay passed, both ways, per byte of the file (base64 chunks, TLS, frames). */
      relayBytesPerFileByte: round(relayBytes / bytes, 3),
      /** The server's CPU per MiB it relayed (wire bytes). */
      serverCpuMsPerRelayedMiB: round(
        median(runs.get('relayed')!.map((r) => r.cpuMs)) / (relayBytes / (1024 * 1024)),
      ),
    },
  };
}

/** The whole part; undefined (and a printed reason) when it cannot run here. */
export async function benchNat(): Promise<Record<string, unknown> | undefined> {
  const why = missing();
  if (why) {
    console.log(`\nnat: skipped: ${why}`);
    return undefined;
  }
  console.log('\nnat: direct, punched and relayed P2P links in network namespaces');
  const started = Date.now();
  // Home 4 (index 3): the livestream's viewer behind a router that blocks UDP.
  const world = buildNatWorld([{}, {}, { symmetric: true }, { blockUdp: true }]);
  /** Processes the bench starts in the world itself (a capture): ended before the world. */
  const owned: ChildProcess[] = [];
  const close = async () => {
    for (const p of owned) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await world.close();
  };
  // Ctrl-C or a kill: the namespaces and processes go too, then the bench ends.
  const interrupted = (signal: NodeJS.Signals) => {
    console.log(`nat: ${signal}: removing the namespaces`);
    void close().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    const rig = await buildRig(world);
    const setup = PARTS.has('setup') ? await setupPart(rig, (p) => owned.push(p)) : undefined;
    const chat = PARTS.has('chat') ? await chatPart(rig) : undefined;
    const bulk = PARTS.has('bulk') ? await bulkPart(rig) : undefined;
    const stream = PARTS.has('stream') ? await streamPart(rig, 3, RUNS) : undefined;
    return { seconds: Math.round((Date.now() - started) / 1000), setup, chat, bulk, stream };
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const nat = await benchNat();
  if (nat) console.log(JSON.stringify(nat, null, 2));
}
