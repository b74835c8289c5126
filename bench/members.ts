/**
 * Receiving members of the fan-out bench, in processes of their own (`npm run bench` forks two),
 * so that the load generator is not one process holding every client. A worker connects its
 * share of members to the server under test, parses and checks every frame, packet or line they
 * receive as that protocol's real clients do (bench/member-checks.ts), counts deliveries and
 * samples latencies (send time in the message, `process.hrtime` is one monotonic clock for every
 * process here) while told to measure. Protocol over the IPC channel:
 *
 *   parent → worker  {cmd: "connect", target, from, count}   → {ok} | {error}
 *                    {cmd: "measure", start, end}             (count arrivals in [start, end);
 *                                                              best sent before `start`)
 *                    {cmd: "stop"}                            → {deliveries, samples, cpuUs}
 *                    {cmd: "close"}                           (disconnect and exit)
 */
import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import mqtt from 'mqtt';
import { PROTOCOL_VERSION } from '../src/protocol/common.js';
import { encodeFrame } from '../src/protocol/frame.js';
import { askWorker, connectServer, type ServerAddress } from './harness.js';
import { COMPACT_VERSION } from '../src/protocol/compact.js';
import { HchatReader, IrcLines, ircSentAt, mqttSentAt } from './member-checks.js';

/** What the members connect to (Hybrid Chat over TLS when `server` has a fingerprint). */
export type Target =
  | {
      kind: 'hchat';
      server: ServerAddress;
      channelId: string;
      publicKey: string;
      /** Members also verify every message's certificate and signature, as a peer does. */
      signatures: boolean;
    }
  /**
   * The Node relay, which forwards push frames its publishers made (bench/relay-frames.ts);
   * `defs` (base64) are the `ref` frames a compact link would have had before (§3.11).
   */
  | { kind: 'relay'; addr: string; channelId: string; defs: string }
  | { kind: 'mqtt'; qos: 0 | 1; topic: string }
  | { kind: 'irc'; port: number };

/** What a worker reports after a window. */
export interface WindowReport {
  deliveries: number;
  samples: number[];
  /** CPU of the worker (µs, user + system) from the window's first delivery to its end. */
  cpuUs: number;
  /** Members whose connection the server closed (a slow consumer dropped, say) since connecting. */
  dropped: number;
}

const SAMPLES = 50_000;
/** The anchors' IRC channel (bench/anchors.ts). */
const IRC_CHANNEL = '#bench';

// ---- the worker side ---------------------------------------------------------------------------

/**
 * Counts deliveries and keeps a uniform sample of their latencies (reservoir), and the worker's
 * CPU over the window.
 */
class Tally {
  /** The window, on the monotonic clock all processes share: [start, end). */
  start = 0n;
  end = 0n;
  deliveries = 0;
  samples: number[] = [];
  /** Connections that closed while we were not closing them. */
  dropped = 0;
  closing = false;
  /** A window was opened: before the first, deliveries are neither counted nor paused for. */
  private opened = false;
  /**
   * The process's CPU when the first delivery of the window was read, and the first after it.
   * Taken by deliveries, not by the IPC messages: a worker that falls behind reads a backlog for
   * seconds in one turn of its event loop, and its `measure` and `stop` wait behind it.
   */
  private cpuAtStart: NodeJS.CpuUsage | undefined;
  private cpuAtEnd: NodeJS.CpuUsage | undefined;
  /**
   * Connections that stop reading once the window is over while they are behind, until the next
   * one opens: members slower than the server (checking signatures, say) would otherwise read a
   * backlog of up to the server's 16 MiB per member for minutes, with the worker's IPC (`stop`,
   * `close`) behind it.
   */
  private readonly readers: Array<{ pause(): unknown; resume(): unknown }> = [];
  private reading = true;

  /** Counts `close` of a member's connection as a drop unless we are closing. */
  watch(closable: { once(event: 'close', f: () => void): unknown }): void {
    closable.once('close', () => {
      if (!this.closing) this.dropped++;
    });
  }

  /** Registers a connection to pause after the window (see readers). */
  holdAfterWindow(socket: { pause(): unknown; resume(): unknown }): void {
    this.readers.push(socket);
  }

  /** Starts counting the window [start, end) (nanoseconds on the shared clock). */
  open(start: bigint, end: bigint): void {
    this.deliveries = 0;
    this.samples = [];
    this.start = start;
    this.end = end;
    this.cpuAtStart = this.cpuAtEnd = undefined;
    if (!this.reading) for (const r of this.readers) r.resume();
    this.reading = true;
    this.opened = true;
  }

  /** CPU (µs, user + system) from the window's first delivery to its end (or now). */
  cpuUs(): number {
    if (!this.cpuAtStart) return 0;
    const end = this.cpuAtEnd ?? process.cpuUsage();
    return end.user - this.cpuAtStart.user + end.system - this.cpuAtStart.system;
  }

  add(sentNs: bigint): void {
    const now = process.hrtime.bigint();
    // Deliveries count by the time the member read them, so a worker that reads its `measure`
    // or `stop` late counts the same window as everybody else.
    if (!this.opened || now < this.start) return;
    if (now >= this.end) {
      if (this.cpuAtStart && !this.cpuAtEnd) this.cpuAtEnd = process.cpuUsage();
      // Only a member that is behind (reading what was sent in the window) stops: one that keeps
      // up goes on reading, so that a next window finds it as it was.
      if (this.reading && sentNs < this.end) {
        for (const r of this.readers) r.pause();
        this.reading = false;
      }
      return;
    }
    this.cpuAtStart ??= process.cpuUsage();
    this.deliveries++;
    const ms = Number(now - sentNs) / 1e6;
    if (this.samples.length < SAMPLES) this.samples.push(ms);
    else {
      const j = Math.floor(Math.random() * this.deliveries);
      if (j < SAMPLES) this.samples[j] = ms;
    }
  }
}

/** Connects one member; returns how to close it. */
async function member(target: Target, i: number, tally: Tally): Promise<() => void> {
  switch (target.kind) {
    case 'hchat':
    case 'relay': {
      const hchat = target.kind === 'hchat';
      const s = await connectServer(hchat ? target.server : { addr: target.addr });
      s.setNoDelay(true);
      s.on('error', () => undefined); // a reset is a close, which the tally counts
      const send = (f: object) => s.write(encodeFrame(f));
      const waiting = new Map<number, () => void>();
      const reader = new HchatReader(
        {
          channelId: target.channelId,
          signatures: hchat && target.signatures,
          hello: hchat,
          compact: !hchat,
        },
        (ns) => tally.add(ns),
        (id) => waiting.get(id)?.(),
        send,
      );
      // The relay's links are compact from the start: its publishers' certificates and the
      // channel were defined before the window, as on a server link that has been up a while.
      if (target.kind === 'relay') reader.push(Buffer.from(target.defs, 'base64'));
      s.on('data', (chunk: Buffer) => reader.push(chunk));
      tally.watch(s);
      tally.holdAfterWindow(s);
      if (!hchat) return () => s.destroy();
      const req = (id: number, op: string, body: object) =>
        new Promise<void>((r) => {
          waiting.set(id, r);
          reader.asking(id, op);
          send({ t: 'req', id, op, body });
        });
      // As the peer says it (peer/server-link.ts): compact pushes (PROTOCOL.md §3.11), unless
      // BENCH_FULL_FORM asks for members that do not (an older client: the full form, §3.5).
      const compact = process.env.BENCH_FULL_FORM ? {} : { compact: COMPACT_VERSION };
      send({ t: 'hello', v: PROTOCOL_VERSION, role: 'peer', ...compact });
      await req(1, 'visitor', { name: `member ${i}`, publicKey: target.publicKey });
      await req(2, 'channel_join', { channelId: target.channelId });
      // Heartbeats, as peers send them, so the server keeps us.
      const beat = setInterval(() => send({ t: 'ping' }), 5000);
      return () => {
        clearInterval(beat);
        s.destroy();
      };
    }
    case 'mqtt': {
      const c = await mqtt.connectAsync('mqtt://127.0.0.1:1883', {
        clean: true,
        reconnectPeriod: 0,
        protocolVersion: 4,
      });
      await c.subscribeAsync(target.topic, { qos: target.qos });
      tally.watch(c);
      // The client has parsed the whole packet (member-checks.ts): the app checks and decodes.
      c.on('message', (topic, payload) => tally.add(mqttSentAt(topic, payload, target.topic)));
      return () => void c.end(true);
    }
    case 'irc': {
      const s = await new Promise<net.Socket>((resolve, reject) => {
        const sock = net.connect(target.port, '127.0.0.1', () => resolve(sock));
        sock.once('error', reject);
      });
      s.setNoDelay(true);
      s.setEncoding('utf8');
      s.on('error', () => undefined);
      let joined: () => void = () => undefined;
      let refused: (err: Error) => void = () => undefined;
      const done = new Promise<void>((resolve, reject) => {
        joined = resolve;
        refused = reject;
      });
      const lines = new IrcLines((m) => {
        switch (m.command) {
          case 'PRIVMSG':
            return tally.add(ircSentAt(m, IRC_CHANNEL));
          case 'PING':
            return void s.write(`PONG :${m.params[0] ?? ''}\r\n`);
          case '001':
            return void s.write(`JOIN ${IRC_CHANNEL}\r\n`);
          case '366':
            return joined();
          case 'ERROR':
            return refused(new Error(`ngIRCd: ERROR ${m.params.join(' ')}`));
        }
        // An error reply (4xx/5xx numeric) while signing on or joining: say so.
        if (/^[45]\d\d$/.test(m.command))
          refused(new Error(`ngIRCd: ${m.command} ${m.params.join(' ')}`));
      });
      s.on('data', (d: string) => lines.push(d));
      s.write(`NICK w${process.pid % 100000}x${i}\r\nUSER m 0 * :m\r\n`);
      await done;
      tally.watch(s);
      tally.holdAfterWindow(s);
      return () => s.destroy();
    }
  }
}

if (process.send && process.argv.includes('--members-worker')) {
  const tally = new Tally();
  let closers: Array<() => void> = [];
  process.on('message', (m: any) => {
    void (async () => {
      if (m.cmd === 'connect') {
        try {
          for (let i = 0; i < m.count; i += 50) {
            closers.push(
              ...(await Promise.all(
                Array.from({ length: Math.min(50, m.count - i) }, (_, j) =>
                  member(m.target, m.from + i + j, tally),
                ),
              )),
            );
          }
          process.send!({ ok: true });
        } catch (err) {
          process.send!({ error: String(err) });
        }
      } else if (m.cmd === 'measure') {
        tally.open(BigInt(m.start), BigInt(m.end));
      } else if (m.cmd === 'stop') {
        const report: WindowReport = {
          deliveries: tally.deliveries,
          samples: tally.samples,
          cpuUs: tally.cpuUs(),
          dropped: tally.dropped,
        };
        process.send!(report);
      } else if (m.cmd === 'close') {
        tally.closing = true;
        for (const c of closers) c();
        closers = [];
        process.exit(0);
      }
    })();
  });
}

// ---- the parent side ---------------------------------------------------------------------------

/** More `node` options for the member processes (`--cpu-prof --cpu-prof-dir=DIR`, say). */
const MEMBER_NODE_ARGS = (process.env.BENCH_MEMBER_NODE_ARGS ?? '').split(' ').filter(Boolean);

/** Member processes for one run. */
export class MemberWorkers {
  private constructor(private readonly procs: ChildProcess[]) {}

  /**
   * Forks `workers` processes and connects `count` members among them, numbered from `first`
   * (a visitor's name is its number: members of one deployment, on whichever instance, need
   * numbers of their own, as a visitor name is the deployment's while its visitor is there).
   */
  static async start(
    target: Target,
    count: number,
    workers = 2,
    first = 0,
  ): Promise<MemberWorkers> {
    const n = Math.max(1, Math.min(workers, count));
    const procs = Array.from({ length: n }, () =>
      fork(path.join(import.meta.dirname, 'members.ts'), ['--members-worker'], {
        execArgv: ['--import', 'tsx', ...MEMBER_NODE_ARGS],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    );
    const w = new MemberWorkers(procs);
    let from = first;
    const answers = procs.map((p, k) => {
      const share = Math.floor(count / n) + (k < count % n ? 1 : 0);
      const a = w.ask<{ ok?: boolean; error?: string }>(p, {
        cmd: 'connect',
        target,
        from,
        count: share,
      });
      from += share;
      return a;
    });
    for (const a of await Promise.all(answers)) {
      if (a.error) {
        w.close();
        throw new Error(a.error);
      }
    }
    return w;
  }

  /** Counts deliveries arriving in [start, end) on the shared monotonic clock (nanoseconds). */
  measure(start: bigint, end: bigint): void {
    for (const p of this.procs)
      p.send({ cmd: 'measure', start: start.toString(), end: end.toString() });
  }

  /** Ends the window: deliveries, latency samples and CPU of every worker. */
  async stop(): Promise<WindowReport> {
    const reports = await Promise.all(
      this.procs.map((p) => this.ask<WindowReport>(p, { cmd: 'stop' })),
    );
    return {
      deliveries: reports.reduce((n, r) => n + r.deliveries, 0),
      samples: reports.flatMap((r) => r.samples),
      cpuUs: reports.reduce((n, r) => n + r.cpuUs, 0),
      dropped: reports.reduce((n, r) => n + r.dropped, 0),
    };
  }

  close(): void {
    for (const p of this.procs) {
      if (p.connected) p.send({ cmd: 'close' });
      setTimeout(() => p.kill('SIGKILL'), 2000).unref();
    }
  }

  private ask<T>(p: ChildProcess, msg: object): Promise<T> {
    return askWorker<T>(p, msg);
  }
}
