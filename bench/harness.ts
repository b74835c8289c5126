/**
 * What the bench's parts share: starting a process that prints a `ready k=v …` line (every
 * `bin/hchat`, bench/plain-server.ts and bench/relay.ts), stopping it, reading its CPU and memory
 * from /proc, connecting to a server as a real client does (TLS 1.3, its key pinned), and a raw
 * framed client that skips schema checks so the load generator stays cheap.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { PROTOCOL_VERSION } from '../src/protocol/common.js';
import { FrameDecoder, encodeFrame } from '../src/protocol/frame.js';
import { TLS_VERSIONS, peerFingerprint } from '../src/shared/tls.js';

export const ROOT = path.resolve(import.meta.dirname, '..');

/** A started process and the fields of its ready line. */
export interface Started {
  proc: ChildProcess;
  ready: Record<string, string>;
}

/**
 * Runs `node args…` from the repository's root and resolves on its ready line; rejects with
 * its output if it exits first. `node` may be another executable (a profiling wrapper, say).
 */
export function startProcess(args: string[], node = process.execPath): Promise<Started> {
  const proc = spawn(node, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^ready (.*)$/m.exec(out);
      if (!m) return;
      const ready: Record<string, string> = {};
      for (const kv of m[1]!.split(' '))
        ready[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
      resolve({ proc, ready });
    });
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    proc.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}: ${out}`)));
  });
}

/**
 * The server's per-address limits raised for the bench, whose thousands of clients all come from
 * 127.0.0.1 (the defaults, docs/SECURITY.md, would refuse most of them as a flood).
 */
export const BENCH_SERVER_LIMITS = [
  '--max-visitors-per-address',
  '1000000',
  '--max-registrations-per-address',
  '1000000',
  '--max-tracker-entries-per-address',
  '1000000',
  '--max-unauthenticated-per-address',
  '100000',
  '--max-unauthenticated',
  '100000',
  // One publisher posts at full speed: the per-user post rate would be the bottleneck.
  '--posts-per-second',
  '10000000',
  '--post-burst',
  '10000000',
];

/**
 * `bin/hchat server` on `data`, any free ports, the per-address limits raised; with `plain`,
 * the same server with its framed port in plain TCP (bench/plain-server.ts), for the same-run
 * cost of TLS. `extra` flags follow (`--store`, `--bus`… for bench/cluster.ts).
 */
export function startServer(
  data: string,
  node?: string,
  plain = false,
  extra: readonly string[] = [],
): Promise<Started> {
  const entry = plain ? ['--import', 'tsx', 'bench/plain-server.ts'] : ['bin/hchat', 'server'];
  return startProcess(
    [...entry, '--port', '0', '--http-port', '0', '--data', data, ...BENCH_SERVER_LIMITS, ...extra],
    node,
  );
}

/**
 * Asks bench worker processes to close (`{cmd: 'close'}`), kills any still there 5 s later, and
 * waits for every one to exit.
 */
export async function closeWorkers(workers: readonly ChildProcess[]): Promise<void> {
  for (const p of workers) {
    if (p.connected) p.send({ cmd: 'close' });
    setTimeout(() => p.kill('SIGKILL'), 5000).unref();
  }
  await Promise.all(
    workers.map((p) => (p.exitCode === null ? new Promise((r) => p.once('exit', r)) : undefined)),
  );
}

/**
 * Where a client reaches a Hybrid Chat server: `ip:port`, and the fingerprint of its TLS key to
 * pin (from its ready line); without one, plain TCP (a bench/plain-server.ts server, or the relay).
 */
export interface ServerAddress {
  addr: string;
  fingerprint?: string;
}

/**
 * Connects as a real client does: TLS 1.3 only, the server's key checked against the pinned
 * fingerprint (a self-signed certificate: no CA to ask); resolves once the handshake is done.
 * Without a fingerprint, plain TCP. `localAddress` (another 127.x.y.z) gives a load generator
 * ephemeral ports of its own, so tens of thousands of connections do not run out of them.
 */
export function connectServer(
  { addr, fingerprint }: ServerAddress,
  localAddress?: string,
): Promise<net.Socket> {
  const [host, port] = addr.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    if (fingerprint === undefined) {
      const s = net.connect({ port: Number(port), host, localAddress }, () => resolve(s));
      s.once('error', reject);
      return;
    }
    const s = tls.connect({
      host,
      port: Number(port),
      // A TCP socket of our own when it must come from `localAddress` (tls.connect's types lack it).
      socket: localAddress ? net.connect({ port: Number(port), host, localAddress }) : undefined,
      rejectUnauthorized: false,
      ...TLS_VERSIONS,
    });
    s.once('secureConnect', () => {
      const shown = peerFingerprint(s);
      if (shown === fingerprint) return resolve(s);
      s.destroy();
      reject(new Error(`${addr} showed key ${shown ?? '(none)'}, not the pinned ${fingerprint}`));
    });
    s.once('error', reject);
  });
}

/** SIGTERM, and wait for the exit. */
export async function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
}

/** CPU seconds (user + system) a process has used, from /proc. */
export function cpuSeconds(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100/s)
}

/**
 * The most open files a process started from this one can be given: unbounded with
 * CAP_SYS_RESOURCE (raiseOpenFiles may lift the hard limit), else this process's hard limit,
 * which its children inherit and prlimit cannot raise (a container without that capability).
 */
export function openFilesCeiling(): number {
  const cap = /^CapEff:\s+([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  if (cap && (BigInt(`0x${cap[1]}`) >> 24n) & 1n) return Infinity; // CAP_SYS_RESOURCE is bit 24
  const hard = /^Max open files\s+\S+\s+(\d+|unlimited)/m.exec(
    fs.readFileSync('/proc/self/limits', 'utf8'),
  );
  return !hard || hard[1] === 'unlimited' ? Infinity : Number(hard[1]);
}

/**
 * Raises a running process's open-file limit to `n` (soft and hard) with prlimit(1), when it is
 * below: a server holding tens of thousands of connections needs more than a shell's default.
 * Raising the hard limit takes root (CAP_SYS_RESOURCE); without it, says what is needed.
 */
export function raiseOpenFiles(pid: number, n: number): void {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(
    fs.readFileSync(`/proc/${pid}/limits`, 'utf8'),
  );
  if (m && (m[1] === 'unlimited' || Number(m[1]) >= n)) return;
  try {
    execFileSync('prlimit', ['--pid', String(pid), `--nofile=${n}:${n}`], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(
      `process ${pid} needs ${n} open files: run the bench as root (it raises them with prlimit) or under \`ulimit -n ${n}\` (${String(err)})`,
    );
  }
}

/** Asks a forked worker something over IPC and resolves with its answer; rejects if it exits. */
export function askWorker<T>(p: ChildProcess, msg: object): Promise<T> {
  // A worker that died already (a member refused a frame and threw, say) will never answer.
  if (!p.connected)
    return Promise.reject(
      new Error(`worker ${p.pid} is gone (exit ${p.exitCode ?? p.signalCode})`),
    );
  return new Promise((resolve, reject) => {
    const onMsg = (m: T) => {
      p.off('exit', onExit);
      resolve(m);
    };
    const onExit = (code: number | null) => reject(new Error(`worker ${p.pid} exited ${code}`));
    p.once('message', onMsg as (m: unknown) => void);
    p.once('exit', onExit);
    p.send(msg);
  });
}

/** Resident memory of a process, in KB, from /proc. */
export function rssKB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** A raw framed client: no schema checks, so the load generator stays cheap. */
export class Client {
  private readonly socket: net.Socket;
  private readonly decoder = new FrameDecoder();
  private nextId = 1;
  private readonly waiting = new Map<number, (f: Record<string, any>) => void>();
  onEvent: (f: Record<string, any>) => void = () => undefined;
  onAck: () => void = () => undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    // A reset while the bench tears down is not a bench failure; `closed` tells who cares.
    socket.on('error', () => undefined);
    // A request whose connection closed fails instead of waiting for ever.
    socket.on('close', () => {
      for (const w of this.waiting.values())
        w({ t: 'res', error: { code: 'CLOSED', message: 'the connection closed' } });
      this.waiting.clear();
    });
    socket.on('data', (d) => {
      for (const f of this.decoder.push(d)) {
        if (f.t === 'res') {
          const w = this.waiting.get(f.id as number);
          if (w) {
            this.waiting.delete(f.id as number);
            w(f);
          } else this.onAck();
        } else if (['ev', 'req', 'error', 'ref', 'm'].includes(f.t as string)) this.onEvent(f);
      }
    });
  }

  /**
   * Connects (see connectServer); with `hello`, says it (with its members, if an object: say
   * `compact`) and waits for the server's.
   */
  static async connect(
    to: ServerAddress,
    hello: boolean | Record<string, unknown>,
    localAddress?: string,
  ): Promise<Client> {
    const s = await connectServer(to, localAddress);
    const c = new Client(s);
    if (!hello) return c;
    const more = typeof hello === 'object' ? hello : {};
    s.write(encodeFrame({ t: 'hello', v: PROTOCOL_VERSION, role: 'peer', ...more }));
    // A server too busy to answer within its hello timeout closes the connection: fail, not hang.
    await new Promise<void>((resolve, reject) => {
      s.once('data', () => resolve());
      s.once('close', () => reject(new Error(`${to.addr} closed the connection before its hello`)));
    });
    return c;
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

  /** Stops reading (a member whose app hangs); the kernel buffers fill, then the server's. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Resolves when the connection is gone. */
  get closed(): Promise<void> {
    return new Promise((r) => (this.socket.destroyed ? r() : this.socket.once('close', () => r())));
  }

  close(): void {
    this.socket.destroy();
  }
}
