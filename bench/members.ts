/**
 * Receiving members of the fan-out bench, in processes of their own (`npm run bench` forks two),
 * so that the load generator is not one process holding every client. A worker connects its
 * share of members to the server under test, counts deliveries and samples latencies (send time
 * in the message, `process.hrtime` is one monotonic clock for every process here) while told to
 * measure. Protocol over the IPC channel:
 *
 *   parent → worker  {cmd: "connect", target, from, count}   → {ok} | {error}
 *                    {cmd: "measure", start, end}             (count arrivals in [start, end))
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

/** What the members connect to (Hybrid Chat over TLS when `server` has a fingerprint). */
export type Target =
  | { kind: 'hchat'; server: ServerAddress; channelId: string; publicKey: string }
  | { kind: 'relay'; addr: string }
  | { kind: 'mqtt'; qos: 0 | 1; topic: string }
  | { kind: 'irc'; port: number };

/** What a worker reports after a window. */
export interface WindowReport {
  deliveries: number;
  samples: number[];
  cpuUs: number;
  /** Members whose connection the server closed (a slow consumer dropped, say) since connecting. */
  dropped: number;
}

const SAMPLES = 50_000;

// ---- the worker side ---------------------------------------------------------------------------

/** Counts deliveries and keeps a uniform sample of their latencies (reservoir). */
class Tally {
  /** The window, on the monotonic clock all processes share: [start, end). */
  start = 0n;
  end = 0n;
  deliveries = 0;
  samples: number[] = [];
  /** Connections that closed while we were not closing them. */
  dropped = 0;
  closing = false;

  /** Counts `close` of a member's connection as a drop unless we are closing. */
  watch(closable: { once(event: 'close', f: () => void): unknown }): void {
    closable.once('close', () => {
      if (!this.closing) this.dropped++;
    });
  }

  add(sentNs: bigint): void {
    const now = process.hrtime.bigint();
    // Deliveries count by arrival time, so a busy worker that reads its `stop` late counts the
    // same window as everybody else.
    if (now < this.start || now >= this.end) return;
    this.deliveries++;
    const ms = Number(now - sentNs) / 1e6;
    if (this.samples.length < SAMPLES) this.samples.push(ms);
    else {
      const j = Math.floor(Math.random() * this.deliveries);
      if (j < SAMPLES) this.samples[j] = ms;
    }
  }
}

const sentAt = (text: string): bigint => BigInt(text.slice(0, text.indexOf('|')));

/** How a pushed message's frame body begins (JSON.stringify keeps the servers' key order). */
const MESSAGE_PREFIX = Buffer.from('{"t":"ev","ev":"message","body":');
const TEXT_KEY = Buffer.from('"text":"');
const BAR = '|'.charCodeAt(0);
/** Every FULL_PARSE_EVERY-th message frame is also parsed whole and checked against the scan. */
const FULL_PARSE_EVERY = 64;

/**
 * The send time at the start of a message frame's text, read off the bytes: members read as
 * little as each protocol allows (the IRC member likewise finds ` PRIVMSG #bench :` in a line),
 * so that the member processes, which share the two cores with the server, cost what the
 * protocol costs and not what a general JSON parser does.
 */
function sentAtRaw(body: Buffer): bigint {
  const start = body.indexOf(TEXT_KEY) + TEXT_KEY.length;
  const end = body.indexOf(BAR, start);
  if (start < TEXT_KEY.length || end < 0 || end - start > 20)
    throw new Error(`a message frame without a send time: ${body.toString('utf8')}`);
  return BigInt(body.toString('latin1', start, end));
}

/**
 * Connects (TLS 1.3 with the key pinned, or plain TCP: harness.ts connectServer) and splits the
 * bytes received into frame bodies (protocol/frame.ts: u32 length, then the body). Message frames
 * go to `onMessage` as bytes; any other frame is parsed and goes to `onFrame`.
 */
async function framed(
  to: ServerAddress,
  onMessage: (sentNs: bigint) => void,
  onFrame: (f: Record<string, any>) => void,
): Promise<net.Socket> {
  const s = await connectServer(to);
  let pending: Buffer | undefined;
  let messages = 0;
  s.on('data', (chunk: Buffer) => {
    let buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    let at = 0;
    while (buf.length - at >= 4) {
      const len = buf.readUInt32BE(at);
      if (buf.length - at - 4 < len) break;
      const body = buf.subarray(at + 4, at + 4 + len);
      at += 4 + len;
      if (body.subarray(0, MESSAGE_PREFIX.length).equals(MESSAGE_PREFIX)) {
        const ns = sentAtRaw(body);
        if (++messages % FULL_PARSE_EVERY === 0) {
          const f = JSON.parse(body.toString('utf8'));
          if (f.t !== 'ev' || f.ev !== 'message' || sentAt(f.body.message.text) !== ns)
            throw new Error(`a message frame the scan misread: ${body.toString('utf8')}`);
        }
        onMessage(ns);
      } else onFrame(JSON.parse(body.toString('utf8')));
    }
    pending = at < buf.length ? buf.subarray(at) : undefined;
    if (pending && at > 0) pending = Buffer.from(pending); // do not pin the whole chunk
  });
  return s;
}

/** Connects one member; returns how to close it. */
async function member(target: Target, i: number, tally: Tally): Promise<() => void> {
  switch (target.kind) {
    case 'hchat': {
      const waiting = new Map<number, () => void>();
      const s = await framed(
        target.server,
        (ns) => tally.add(ns),
        (f) => {
          if (f.t === 'res') waiting.get(f.id)?.();
        },
      );
      s.setNoDelay(true);
      tally.watch(s);
      const req = (id: number, op: string, body: object) =>
        new Promise<void>((r) => {
          waiting.set(id, r);
          s.write(encodeFrame({ t: 'req', id, op, body }));
        });
      s.write(encodeFrame({ t: 'hello', v: PROTOCOL_VERSION, role: 'peer' }));
      await req(1, 'visitor', { name: `member ${i}`, publicKey: target.publicKey });
      await req(2, 'channel_join', { channelId: target.channelId });
      // Heartbeats, as peers send them, so the server keeps us.
      const beat = setInterval(() => s.write(encodeFrame({ t: 'ping' })), 5000);
      return () => {
        clearInterval(beat);
        s.destroy();
      };
    }
    case 'relay': {
      const s = await framed(
        { addr: target.addr },
        (ns) => tally.add(ns),
        () => undefined,
      );
      tally.watch(s);
      return () => s.destroy();
    }
    case 'mqtt': {
      const c = await mqtt.connectAsync('mqtt://127.0.0.1:1883', {
        clean: true,
        reconnectPeriod: 0,
        protocolVersion: 4,
      });
      await c.subscribeAsync(target.topic, { qos: target.qos });
      tally.watch(c);
      c.on('message', (_t, payload) => tally.add(sentAt(payload.toString())));
      return () => void c.end(true);
    }
    case 'irc': {
      const s = await new Promise<net.Socket>((resolve, reject) => {
        const sock = net.connect(target.port, '127.0.0.1', () => resolve(sock));
        sock.once('error', reject);
      });
      s.setNoDelay(true);
      s.setEncoding('utf8');
      let buf = '';
      let joined: () => void = () => undefined;
      let refused: (err: Error) => void = () => undefined;
      const done = new Promise<void>((resolve, reject) => {
        joined = resolve;
        refused = reject;
      });
      s.on('data', (d: string) => {
        buf += d;
        let k;
        while ((k = buf.indexOf('\r\n')) >= 0) {
          const line = buf.slice(0, k);
          buf = buf.slice(k + 2);
          const at = line.indexOf(' PRIVMSG #bench :');
          if (at >= 0) tally.add(sentAt(line.slice(at + 17)));
          else if (line.startsWith('PING ')) s.write(`PONG ${line.slice(5)}\r\n`);
          else if (/ 001 /.test(line)) s.write('JOIN #bench\r\n');
          else if (/ 366 /.test(line)) joined();
          // An error reply (4xx/5xx numeric) or ERROR while signing on or joining: say so.
          else if (/^(:\S+ [45]\d\d |ERROR )/.test(line)) refused(new Error(`ngIRCd: ${line}`));
        }
      });
      s.write(`NICK w${process.pid % 100000}x${i}\r\nUSER m 0 * :m\r\n`);
      await done;
      tally.watch(s);
      return () => s.destroy();
    }
  }
}

if (process.send && process.argv.includes('--members-worker')) {
  const tally = new Tally();
  let closers: Array<() => void> = [];
  let cpu0 = process.cpuUsage();
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
        tally.deliveries = 0;
        tally.samples = [];
        tally.start = BigInt(m.start);
        tally.end = BigInt(m.end);
        cpu0 = process.cpuUsage();
      } else if (m.cmd === 'stop') {
        const cpu = process.cpuUsage(cpu0);
        const report: WindowReport = {
          deliveries: tally.deliveries,
          samples: tally.samples,
          cpuUs: cpu.user + cpu.system,
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

/** Member processes for one run. */
export class MemberWorkers {
  private constructor(private readonly procs: ChildProcess[]) {}

  /** Forks `workers` processes and connects `count` members among them. */
  static async start(target: Target, count: number, workers = 2): Promise<MemberWorkers> {
    const n = Math.max(1, Math.min(workers, count));
    const procs = Array.from({ length: n }, () =>
      fork(path.join(import.meta.dirname, 'members.ts'), ['--members-worker'], {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    );
    const w = new MemberWorkers(procs);
    let from = 0;
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
