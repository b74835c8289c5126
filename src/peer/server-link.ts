/**
 * The peer's end of the peer ↔ server link: connects, says hello, keeps the connection alive with
 * heartbeats, reconnects with exponential backoff, and offers typed requests and events. Every
 * answer and event is validated against protocol/server-link.ts before it is used.
 */
import net from 'node:net';
import { EventEmitter } from 'node:events';
import type { z } from 'zod';
import { HchatError } from '../protocol/errors.js';
import { PROTOCOL_VERSION } from '../protocol/common.js';
import {
  EVENTS,
  Event,
  Fatal,
  OPS,
  Response,
  ServerHello,
  describeIssues,
  type EventName,
  type OpName,
  type OpReq,
  type OpRes,
} from '../protocol/server-link.js';
import { FramedSocket } from '../shared/framed-socket.js';
import type { ConnectionLog } from '../shared/connlog.js';

/** The server's hello, as the peer keeps it. */
export type ServerInfo = z.infer<typeof ServerHello>;

/** Settings of a link. */
export interface ServerLinkOptions {
  host: string;
  port: number;
  log?: ConnectionLog;
  /** Reconnect automatically (default true); off for one-shot clients and tests. */
  reconnect?: boolean;
  requestTimeoutMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

interface Pending {
  op: OpName;
  resolve(v: unknown): void;
  reject(e: HchatError): void;
  timer: NodeJS.Timeout;
}

/**
 * Events: `up` (ServerInfo) once hello is done; `down` (HchatError | undefined) when the
 * connection is lost; `event` (name, body) for each validated server push.
 */
export class ServerLink extends EventEmitter {
  private fs: FramedSocket | undefined;
  private info: ServerInfo | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private running = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private lastSent = 0;

  constructor(private readonly opts: ServerLinkOptions) {
    super();
  }

  /** `server`, as the connection log names this end. */
  get name(): string {
    return 'server';
  }

  /** True once hello is done and until the connection drops. */
  get connected(): boolean {
    return this.info !== undefined && this.fs?.isOpen === true;
  }

  /** The server's hello of the current connection. */
  get server(): ServerInfo | undefined {
    return this.info;
  }

  /** Starts connecting (and reconnecting until stop()). Resolves on the first hello or failure. */
  start(): Promise<void> {
    if (this.running) return Promise.resolve();
    this.running = true;
    this.attempt = 0;
    return new Promise((resolve) => {
      const done = () => {
        this.off('up', done);
        this.off('down', done);
        resolve();
      };
      this.once('up', done);
      this.once('down', done);
      this.connect();
    });
  }

  /** Closes the connection and stops reconnecting. */
  stop(): void {
    this.running = false;
    clearTimeout(this.retryTimer);
    this.fs?.close();
    this.fs?.destroy();
  }

  /** Sends a request and resolves with its validated answer. */
  request<K extends OpName>(op: K, body: OpReq<K>, timeoutMs?: number): Promise<OpRes<K>> {
    const fs = this.fs;
    if (!fs || !this.connected) return Promise.reject(new HchatError('E_OFFLINE'));
    const id = this.nextId++;
    if (this.nextId > 0xffffffff) this.nextId = 1;
    return new Promise<OpRes<K>>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.pending.delete(id);
          reject(new HchatError('E_TIMEOUT', `server did not answer ${op} in time`));
        },
        timeoutMs ?? this.opts.requestTimeoutMs ?? 15_000,
      );
      this.pending.set(id, { op, resolve: resolve as (v: unknown) => void, reject, timer });
      this.lastSent = Date.now();
      fs.send({ t: 'req', id, op, body });
    });
  }

  private connect(): void {
    if (!this.running) return;
    const socket = net.connect({ host: this.opts.host, port: this.opts.port });
    let opened = false;
    const fs = new FramedSocket(socket, {
      frame: (f) => this.onFrame(fs, f),
      close: (reason) => this.onClose(fs, opened, reason),
    });
    this.fs = fs;
    socket.once('connect', () => {
      opened = true;
      this.opts.log?.write('open', { peer: 'server', addr: `${this.opts.host}:${this.opts.port}` });
      this.lastSent = Date.now();
      fs.send({ t: 'hello', v: PROTOCOL_VERSION, role: 'peer', agent: 'hchat-peer' });
    });
  }

  private onFrame(fs: FramedSocket, f: Record<string, unknown>): void {
    if (f.t === 'error') {
      fs.close(fatalFrom(f));
      return;
    }
    if (!this.info) {
      const hello = ServerHello.safeParse(f);
      if (!hello.success)
        throw new HchatError('E_BAD_FRAME', `server hello: ${describeIssues(hello.error)}`);
      this.info = hello.data;
      this.attempt = 0;
      this.startHeartbeat(fs, hello.data);
      this.emit('up', hello.data);
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
        const body = (OPS[p.op].res as z.ZodType).safeParse(res.data.body);
        if (!body.success) {
          p.reject(new HchatError('E_BAD_FRAME', `${p.op} answer: ${describeIssues(body.error)}`));
          return;
        }
        p.resolve(body.data);
        return;
      }
      case 'ev': {
        const ev = Event.safeParse(f);
        if (!ev.success || !Object.hasOwn(EVENTS, ev.data.ev)) {
          throw new HchatError(
            'E_UNKNOWN_TYPE',
            `unknown event ${JSON.stringify(f.ev)?.slice(0, 40)}`,
          );
        }
        const name = ev.data.ev as EventName;
        const body = (EVENTS[name] as z.ZodType).safeParse(ev.data.body);
        if (!body.success)
          throw new HchatError('E_BAD_FRAME', `${name}: ${describeIssues(body.error)}`);
        this.emit('event', name, body.data);
        return;
      }
      case 'pong':
      case 'ping':
        if (f.t === 'ping') fs.send({ t: 'pong' });
        return;
      default:
        throw new HchatError(
          'E_UNKNOWN_TYPE',
          `unknown frame type ${JSON.stringify(f.t)?.slice(0, 40)}`,
        );
    }
  }

  private onClose(fs: FramedSocket, opened: boolean, reason: HchatError | undefined): void {
    if (this.fs !== fs) return;
    clearInterval(this.heartbeat);
    const wasUp = this.info !== undefined;
    this.info = undefined;
    this.fs = undefined;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new HchatError('E_CONNECTION_CLOSED'));
      this.pending.delete(id);
    }
    if (opened) this.opts.log?.write('close', { peer: 'server', reason: reason?.code ?? 'eof' });
    this.emit('down', reason, wasUp);
    if (this.running && this.opts.reconnect !== false) {
      const min = this.opts.minBackoffMs ?? 100;
      const max = this.opts.maxBackoffMs ?? 5000;
      const delay = Math.min(max, min * 2 ** this.attempt) * (0.5 + Math.random() / 2);
      this.attempt = Math.min(this.attempt + 1, 20);
      this.retryTimer = setTimeout(() => this.connect(), delay);
      this.retryTimer.unref();
    } else {
      this.running = false;
    }
  }

  private startHeartbeat(fs: FramedSocket, info: ServerInfo): void {
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(
      () => {
        const now = Date.now();
        if (now - fs.lastSeen > info.timeoutMs) {
          fs.fail(
            new HchatError('E_HEARTBEAT_TIMEOUT', 'server silent past the heartbeat timeout'),
          );
          fs.destroy();
          return;
        }
        if (now - this.lastSent >= info.heartbeatMs * 0.8) {
          this.lastSent = now;
          fs.send({ t: 'ping' });
        }
      },
      Math.max(20, Math.floor(info.heartbeatMs / 2)),
    );
    this.heartbeat.unref();
  }
}

function fatalFrom(f: Record<string, unknown>): HchatError {
  // The close reason; an error frame is never answered with another.
  const e = Fatal.safeParse(f);
  return e.success
    ? HchatError.fromWire(e.data)
    : new HchatError('E_BAD_FRAME', 'malformed error frame');
}
