/**
 * The connecting end of a framed link (peer → server, member → host): connects, says hello, keeps
 * the connection alive with heartbeats, optionally reconnects with exponential backoff, and
 * offers typed requests and events. Every answer and event is validated against the link's
 * schemas before it is used.
 */
import net from 'node:net';
import tls from 'node:tls';
import { EventEmitter } from 'node:events';
import type { z } from 'zod';
import { HchatError } from '../protocol/errors.js';
import { helloSentTwice } from '../protocol/hello-version.js';
import {
  Event,
  Fatal,
  Response,
  describeIssues,
  type EventTable,
  type OpTable,
} from '../protocol/rpc.js';
import { FramedSocket } from '../shared/framed-socket.js';
import { DEFAULT_MAX_FRAME, HEADER_BYTES, encodeFrame } from '../protocol/frame.js';
import type { ConnectionLog } from '../shared/connlog.js';
import { dialContext, tlsReason } from '../shared/tls.js';
import { HeartbeatSweep } from '../shared/heartbeat-sweep.js';
import { COMPACT_OPS, RefReader } from '../protocol/compact.js';

/** What every hello answer tells: how often to send, when to give up on silence. */
export interface HelloInfo {
  heartbeatMs: number;
  timeoutMs: number;
  /** Largest frame the other end accepts (1 MiB when it does not say). */
  maxFrame?: number;
  /** Present when the link speaks compact pushes and pages (PROTOCOL.md §3.11). */
  compact?: number;
}

/** Where a link connects. */
export interface LinkAddress {
  host: string;
  port: number;
}

/** Settings of a link. */
export interface RpcLinkOptions<Info extends HelloInfo> {
  host: string;
  port: number;
  /**
   * Other addresses of the same service (a server's other instances), tried in turn after
   * host:port when a connection fails or drops, or when `moveOn` is called.
   */
  alternates?: readonly LinkAddress[];
  /** How the connection log names the other end (`server`, `host:<user>@<ip>:<port>`). */
  name: string;
  log?: ConnectionLog;
  /**
   * Checks the finished TLS handshake before anything is sent (the server's pinned key, or a
   * P2P link's channel binding); throws HchatError to close the link. `addr` is the `host:port`
   * this connection went to.
   */
  secure(socket: tls.TLSSocket, addr: string): void;
  /** The first frame to send. */
  hello(): object;
  /** Validates the other end's hello; throws HchatError when it is not acceptable. */
  parseHello(f: Record<string, unknown>): Info;
  /** A frame to send right after the other end's hello was accepted (a handshake's last step). */
  helloReply?(info: Info): object | undefined;
  /**
   * Makes the TCP connection itself (a P2P link that may be punched, peer/punch.ts) instead of
   * dialling host:port; `via` is logged with `open`. TLS then runs over the socket it gives.
   */
  dial?: () => Promise<{ socket: net.Socket; via: string }>;
  /** Reconnect automatically (default true); off for one-shot clients and tests. */
  reconnect?: boolean;
  /**
   * Give up on a connection whose TLS handshake and the other end's hello have not both come in
   * this time (a dead address, or one that accepts TCP and then says nothing), and try the next.
   */
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

interface Pending {
  op: string;
  resolve(v: unknown): void;
  reject(e: HchatError): void;
  timer: NodeJS.Timeout;
}

/**
 * Events: `up` (ServerInfo) once hello is done; `down` (HchatError | undefined) when the
 * connection is lost; `event` (name, body) for each validated push.
 */
export class RpcLink<
  Ops extends OpTable,
  Events extends EventTable,
  Info extends HelloInfo,
> extends EventEmitter {
  private fs: FramedSocket | undefined;
  /** How the open connection was made (`direct`, `punched`, `relay`), as `dial` said. */
  private viaNow: string | undefined;
  private info: Info | undefined;
  /** The numbers the other end defined, on a compact link (§3.11). */
  private refs: RefReader | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private running = false;
  /** Connections in a row that closed before their hello (reset by a hello). */
  private attempt = 0;
  /**
   * Why the newest connection failed before its hello (the address and the reason: a socket or
   * TLS code, or E_TIMEOUT), until one comes up. Logged and told (`unreachable`) once per change,
   * not at every retry.
   */
  lastFailure: { addr: string; reason: string } | undefined;
  /** Every address of the service, and which one the link uses now. */
  private readonly targets: readonly LinkAddress[];
  private current = 0;
  /** The current connection is being left on purpose (`moveOn`). */
  private moving = false;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Who waits for the current connection's close to be handled (`stop`). */
  private readonly closeWaiters: Array<() => void> = [];
  /** Ends the wait of `start()` while it lasts. */
  private starting: (() => void) | undefined;
  private heartbeat: HeartbeatSweep | undefined;
  private lastSent = 0;
  /**
   * When this end began waiting for the other to speak: the first request or ping it sent after
   * the last byte it read (0, or at most `lastSeen`: waiting for nothing).
   */
  private waitingSince = 0;

  constructor(
    private readonly opts: RpcLinkOptions<Info>,
    private readonly ops: Ops,
    private readonly events: Events,
  ) {
    super();
    this.targets = [{ host: opts.host, port: opts.port }, ...(opts.alternates ?? [])];
  }

  /** The address the link is connected to, or will try next. */
  get target(): LinkAddress {
    return this.targets[this.current]!;
  }

  /** `host:port` the link is connected to, or will try next. */
  get address(): string {
    const t = this.targets[this.current]!;
    return `${t.host}:${t.port}`;
  }

  /**
   * Leaves the current connection for the next address, at once (the other end said it is
   * draining). With a single address the link reconnects to it after its backoff.
   */
  moveOn(): void {
    if (!this.running) return;
    this.moving = true;
    this.fs?.close();
    this.fs?.destroy();
  }

  /** The local port of the current connection (0 while there is none). */
  get localPort(): number {
    return this.fs?.socket.localPort ?? 0;
  }

  /** How the connection log names the other end. */
  get name(): string {
    return this.opts.name;
  }

  /** True once hello is done and until the connection drops. */
  get connected(): boolean {
    return this.info !== undefined && this.fs?.isOpen === true;
  }

  /** The other end's hello on the current connection. */
  get remoteHello(): Info | undefined {
    return this.info;
  }

  /**
   * Starts connecting (and reconnecting until stop()). Resolves on the first hello, or once
   * every address has failed once (a dead first address is not the end of the first try: the
   * next ones are tried at once), or on stop().
   */
  start(): Promise<void> {
    if (this.running) return Promise.resolve();
    this.running = true;
    this.attempt = 0;
    return new Promise((resolve) => {
      let failed = 0;
      const done = () => {
        this.off('up', done);
        this.off('down', down);
        if (this.starting === done) this.starting = undefined;
        resolve();
      };
      const down = () => {
        failed += 1;
        if (failed >= this.targets.length || this.opts.reconnect === false) done();
      };
      this.starting = done;
      this.on('up', done);
      this.on('down', down);
      this.connect();
    });
  }

  /**
   * Closes the connection and stops reconnecting; resolves once the close is handled (and
   * logged), at once when there is no connection.
   */
  stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.retryTimer);
    this.starting?.();
    const fs = this.fs;
    if (!fs) return Promise.resolve();
    const closed = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    fs.close();
    fs.destroy();
    return closed;
  }

  /** Sends a request and resolves with its validated answer. */
  request<K extends keyof Ops & string>(
    op: K,
    body: z.input<Ops[K]['req']>,
    timeoutMs?: number,
  ): Promise<z.output<Ops[K]['res']>> {
    const fs = this.fs;
    if (!fs || !this.connected) return Promise.reject(new HchatError('E_OFFLINE'));
    const id = this.nextId++;
    if (this.nextId > 0xffffffff) this.nextId = 1;
    const frame = encodeFrame({ t: 'req', id, op, body });
    const max = this.info?.maxFrame ?? DEFAULT_MAX_FRAME;
    // A frame the other end cannot take would end the link: refuse it here instead.
    if (frame.length - HEADER_BYTES > max) {
      return Promise.reject(
        new HchatError(
          'E_FRAME_TOO_LARGE',
          `${op} request of ${frame.length} bytes exceeds ${max}`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.pending.delete(id);
          reject(new HchatError('E_TIMEOUT', `${this.opts.name} did not answer ${op} in time`));
        },
        timeoutMs ?? this.opts.requestTimeoutMs ?? 15_000,
      );
      this.pending.set(id, { op, resolve: resolve as (v: unknown) => void, reject, timer });
      this.sent(fs, Date.now());
      fs.sendEncoded(frame);
    });
  }

  private connect(): void {
    if (!this.running) return;
    // Every link is TLS 1.3. The other end's certificate is not checked against a CA here:
    // `secure` decides (a pinned key for the server, channel binding for a peer).
    const target = this.targets[this.current]!;
    if (this.opts.dial) {
      this.opts.dial().then(
        ({ socket, via }) => {
          if (!this.running) return void socket.destroy();
          const tlsSocket = tls.connect({
            socket,
            rejectUnauthorized: false,
            secureContext: dialContext(),
          });
          this.secure(tlsSocket, `${socket.remoteAddress}:${socket.remotePort}`, via);
        },
        (err: unknown) => this.dialFailed(err),
      );
      return;
    }
    const socket = tls.connect({
      host: target.host,
      port: target.port,
      servername: net.isIP(target.host) ? undefined : target.host,
      rejectUnauthorized: false,
      secureContext: dialContext(),
    });
    this.secure(socket, `${target.host}:${target.port}`);
  }

  /**
   * A connection to `addr` ended before its hello: logged (`tls_error` when the other end does
   * not speak TLS, else `unreachable`) and told, once per address and reason.
   */
  private failedAt(addr: string, reason: string): void {
    if (!this.running) return;
    const was = this.lastFailure;
    this.lastFailure = { addr, reason };
    if (was?.addr === addr && was.reason === reason) return;
    const tlsFailed = /^(ERR_SSL|EPROTO|ERR_TLS)/.test(reason);
    this.opts.log?.write(tlsFailed ? 'tls_error' : 'unreachable', {
      ...(tlsFailed ? {} : { peer: this.opts.name }),
      addr,
      reason,
    });
    this.emit('unreachable', this.lastFailure);
  }

  /** A dial of our own failed before any connection: as a connection closed before its hello. */
  private dialFailed(err: unknown): void {
    const reason = err instanceof HchatError ? err : new HchatError('E_TIMEOUT', String(err));
    this.emit('down', reason, false);
    if (this.running && this.opts.reconnect !== false) this.retryLater();
    else this.running = false;
  }

  /** How the current connection was made, when a `dial` made it (undefined: dialled here). */
  get via(): string | undefined {
    return this.viaNow;
  }

  /** Runs the link over a TLS connection being made to `addr`. */
  private secure(socket: tls.TLSSocket, addr: string, via?: string): void {
    let opened = false;
    /** The socket's own error before the TLS handshake finished (refused, not TLS, reset). */
    let failed: string | undefined;
    socket.once('error', (err) => {
      if (!opened) failed = tlsReason(err);
    });
    const limit = this.opts.connectTimeoutMs;
    // One deadline for TCP, TLS and the hello together: an end that trickles bytes cannot hold it.
    const deadline = limit
      ? setTimeout(() => {
          if (this.fs !== fs || this.info) return;
          // Nothing is sent to an end that has not proved who it is.
          fs.close(new HchatError('E_TIMEOUT', `${addr}: no hello within ${limit} ms`));
          fs.destroy();
        }, limit)
      : undefined;
    deadline?.unref();
    const fs = new FramedSocket(socket, {
      frame: (f) => {
        if (!this.info) this.onHello(fs, f, deadline);
        else this.onFrame(fs, f);
      },
      close: (reason) => {
        clearTimeout(deadline);
        if (!this.info && this.fs === fs) this.failedAt(addr, failed ?? reason?.code ?? 'eof');
        this.onClose(fs, opened, reason);
      },
    });
    this.fs = fs;
    socket.once('secureConnect', () => {
      opened = true;
      this.viaNow = via;
      this.opts.log?.write('open', {
        peer: this.opts.name,
        addr,
        tls: socket.getProtocol() ?? '?',
        ...(via ? { via } : {}),
      });
      try {
        this.opts.secure(socket, addr);
      } catch (err) {
        // Nothing, not even an error frame, goes to an end this side does not trust.
        fs.close(err instanceof HchatError ? err : new HchatError('E_INTERNAL', String(err)));
        fs.destroy();
        return;
      }
      this.waitingSince = 0;
      this.sent(fs, Date.now());
      fs.send(this.opts.hello());
    });
  }

  /** The other end's first frame: its hello (or an error, which ends the connection). */
  private onHello(
    fs: FramedSocket,
    f: Record<string, unknown>,
    deadline: NodeJS.Timeout | undefined,
  ): void {
    if (f.t === 'error') {
      fs.close(fatalFrom(f));
      return;
    }
    const info = this.opts.parseHello(f);
    clearTimeout(deadline);
    const reply = this.opts.helloReply?.(info);
    if (reply) fs.send(reply);
    this.info = info;
    this.refs = info.compact !== undefined ? new RefReader() : undefined;
    this.attempt = 0;
    this.lastFailure = undefined;
    this.startHeartbeat(fs, info);
    this.emit('up', info);
  }

  private onFrame(fs: FramedSocket, f: Record<string, unknown>): void {
    if (f.t === 'error') {
      fs.close(fatalFrom(f));
      return;
    }
    switch (f.t) {
      case 'res': {
        const res = Response.safeParse(f);
        if (!res.success) throw new HchatError('E_BAD_FRAME', `res: ${describeIssues(res.error)}`);
        const p = this.pending.get(res.data.id);
        if (!p) return; // answer after its timeout: dropped
        this.pending.delete(res.data.id);
        clearTimeout(p.timer);
        if (res.data.error) {
          p.reject(HchatError.fromWire(res.data.error));
          return;
        }
        // A compact page's items name numbers the link holds: a broken one breaks the link.
        const raw =
          this.refs && COMPACT_OPS.has(p.op) ? this.refs.expandPage(res.data.body) : res.data.body;
        const body = this.ops[p.op]!.res.safeParse(raw);
        if (!body.success) {
          p.reject(new HchatError('E_BAD_FRAME', `${p.op} answer: ${describeIssues(body.error)}`));
          return;
        }
        p.resolve(body.data);
        return;
      }
      case 'ev': {
        const ev = Event.safeParse(f);
        if (!ev.success) throw new HchatError('E_BAD_FRAME', `ev: ${describeIssues(ev.error)}`);
        // Forward compatible: an event this side does not know is ignored (PROTOCOL.md §1).
        if (!Object.hasOwn(this.events, ev.data.ev)) return;
        const name = ev.data.ev;
        const body = this.events[name]!.safeParse(ev.data.body);
        if (!body.success)
          throw new HchatError('E_BAD_FRAME', `${name}: ${describeIssues(body.error)}`);
        this.emit('event', name, body.data);
        return;
      }
      case 'ref':
      case 'm': {
        if (!this.refs || !Object.hasOwn(this.events, 'message'))
          throw new HchatError('E_UNKNOWN_TYPE', `${f.t} frame on a link that is not compact`);
        if (f.t === 'ref') return this.refs.define(f);
        const body = this.events['message']!.safeParse(this.refs.expand(f));
        if (!body.success) throw new HchatError('E_BAD_FRAME', `m: ${describeIssues(body.error)}`);
        this.emit('event', 'message', body.data);
        return;
      }
      case 'pong':
      case 'ping':
        if (f.t === 'ping') fs.send({ t: 'pong' });
        return;
      case 'hello':
        throw helloSentTwice();
      default:
        throw new HchatError(
          'E_UNKNOWN_TYPE',
          `unknown frame type ${JSON.stringify(f.t)?.slice(0, 40)}`,
        );
    }
  }

  private onClose(fs: FramedSocket, opened: boolean, reason: HchatError | undefined): void {
    if (this.fs !== fs) return;
    this.heartbeat?.stop();
    const wasUp = this.info !== undefined;
    this.info = undefined;
    this.refs = undefined;
    this.fs = undefined;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new HchatError('E_CONNECTION_CLOSED'));
      this.pending.delete(id);
    }
    if (opened)
      this.opts.log?.write('close', { peer: this.opts.name, reason: reason?.code ?? 'eof' });
    for (const resolve of this.closeWaiters.splice(0)) resolve();
    this.emit('down', reason, wasUp);
    if (this.running && this.opts.reconnect !== false) this.retryLater();
    else this.running = false;
  }

  /** Connects again after the backoff (the next address at once while a round has untried ones). */
  private retryLater(): void {
    // The next address at once while some of this round are untried; then back off, doubling
    // per round, as with a single address.
    const n = this.targets.length;
    const min = this.opts.minBackoffMs ?? 100;
    const max = this.opts.maxBackoffMs ?? 5000;
    const rounds = Math.floor(this.attempt / n);
    let delay =
      n > 1 && this.attempt % n !== n - 1
        ? min / 2
        : Math.min(max, min * 2 ** rounds) * (0.5 + Math.random() / 2);
    if (this.moving && n > 1) {
      // Told to move (a drain): to any other address, within a second, so that the peers of
      // a draining instance spread over the others instead of landing on one at once.
      this.current = (this.current + 1 + Math.floor(Math.random() * (n - 1))) % n;
      delay = Math.random() * 1000;
    } else this.current = (this.current + 1) % n;
    this.moving = false;
    this.attempt = Math.min(this.attempt + 1, 20 * n);
    this.retryTimer = setTimeout(() => this.connect(), delay);
    this.retryTimer.unref();
  }

  /** A request or ping sent at `now`: the other end owes an answer from then, if from no sooner. */
  private sent(fs: FramedSocket, now: number): void {
    this.lastSent = now;
    if (this.waitingSince <= fs.lastSeen) this.waitingSince = now;
  }

  private startHeartbeat(fs: FramedSocket, info: HelloInfo): void {
    this.heartbeat?.stop();
    this.heartbeat = new HeartbeatSweep(Math.max(20, Math.floor(info.heartbeatMs / 2)), () => {
      if (this.fs !== fs) return;
      const now = Date.now();
      // The other end owes an answer to what was sent since it last spoke (§3.2: the server
      // answers pings), not to time this end spent busy after its last read.
      if (this.waitingSince > fs.lastSeen && now - this.waitingSince > info.timeoutMs) {
        fs.fail(
          new HchatError(
            'E_HEARTBEAT_TIMEOUT',
            `${this.opts.name} silent past the heartbeat timeout`,
          ),
        );
        fs.destroy();
        return;
      }
      if (now - this.lastSent >= info.heartbeatMs * 0.8) {
        this.sent(fs, now);
        fs.send({ t: 'ping' });
      }
    });
  }
}

function fatalFrom(f: Record<string, unknown>): HchatError {
  // The close reason; an error frame is never answered with another.
  const e = Fatal.safeParse(f);
  return e.success
    ? HchatError.fromWire(e.data)
    : new HchatError('E_BAD_FRAME', 'malformed error frame');
}
