/**
 * The server's door: what a connection may cost before it has a session. A connection must say
 * hello within `helloTimeoutMs`; until it has a session its frames are capped at
 * `preAuthMaxFrame` (a login is a few hundred bytes), so a stranger cannot make the server buffer
 * a megabyte per socket; and connections without a session are capped per address prefix and in
 * total, counted from their first TCP byte, TLS handshake included (past either cap a new
 * connection is closed: during its TLS handshake without a word, after it with `E_RATE_LIMITED`).
 */
import type net from 'node:net';
import { HchatError } from '../protocol/errors.js';
import { encodeFrame } from '../protocol/frame.js';
import { SERVER_DOOR_LIMITS, withDefaults } from '../shared/limits.js';
import { remoteOf } from '../shared/framed-socket.js';
import type { Conn } from './conn.js';

/** Settings of the door (SERVER_DOOR_LIMITS by default). */
export type DoorLimits = { -readonly [K in keyof typeof SERVER_DOOR_LIMITS]: number };

interface Waiting {
  prefix: string;
  helloTimer: NodeJS.Timeout | undefined;
}

/** Admission and pre-authentication limits of the server's framed port. */
export class ServerDoor {
  readonly limits: DoorLimits;
  /** Connections without a session, with their prefix and hello timer. */
  private readonly waiting = new Map<Conn, Waiting>();
  private readonly perPrefix = new Map<string, number>();
  /** TCP connections still in their TLS handshake (`ip:port` → prefix), and per prefix. */
  private readonly handshaking = new Map<string, string>();
  private readonly handshakingPerPrefix = new Map<string, number>();

  constructor(
    limits: Partial<Record<keyof DoorLimits, number | undefined>>,
    /** The frame cap once a connection has a session. */
    private readonly maxFrame: number,
    private readonly prefixOf: (ip: string) => string,
  ) {
    this.limits = withDefaults<DoorLimits>(SERVER_DOOR_LIMITS, limits);
  }

  /**
   * A TCP connection arrived, before its TLS handshake: false (and the socket destroyed: there
   * is no channel yet to say why) past twice the caps. Counted until `handshakeDone` or its
   * close, so that connections that never finish TLS are capped like those that never log in;
   * the slack lets a burst of honest connections finish TLS and hear `E_RATE_LIMITED` from
   * `admit`, with when to retry, instead of a silent close.
   */
  admitTcp(socket: net.Socket): boolean {
    const { ip, port } = remoteOf(socket);
    const prefix = this.prefixOf(ip);
    if (
      this.waiting.size + this.handshaking.size >= 2 * this.limits.unauthenticatedTotal ||
      (this.perPrefix.get(prefix) ?? 0) + (this.handshakingPerPrefix.get(prefix) ?? 0) >=
        2 * this.limits.unauthenticatedPerAddress
    ) {
      socket.destroy();
      return false;
    }
    const key = `${ip}:${port}`;
    this.handshaking.set(key, prefix);
    this.handshakingPerPrefix.set(prefix, (this.handshakingPerPrefix.get(prefix) ?? 0) + 1);
    socket.once('close', () => this.handshakeDone(socket));
    return true;
  }

  /** The TLS handshake of a connection admitted by `admitTcp` finished (or it closed). */
  handshakeDone(socket: net.Socket): void {
    const r = remoteOf(socket);
    const key = `${r.ip}:${r.port}`;
    const prefix = this.handshaking.get(key);
    if (prefix === undefined) return;
    this.handshaking.delete(key);
    const n = (this.handshakingPerPrefix.get(prefix) ?? 0) - 1;
    if (n > 0) this.handshakingPerPrefix.set(prefix, n);
    else this.handshakingPerPrefix.delete(prefix);
  }

  /** False (and the socket refused) when a new connection from there would pass a cap. */
  admit(socket: net.Socket): boolean {
    const { ip } = remoteOf(socket);
    const total = this.waiting.size >= this.limits.unauthenticatedTotal;
    const mine =
      (this.perPrefix.get(this.prefixOf(ip)) ?? 0) >= this.limits.unauthenticatedPerAddress;
    if (!total && !mine) return true;
    socket.on('error', () => undefined);
    const err = new HchatError(
      'E_RATE_LIMITED',
      total
        ? 'server busy: too many connections without a session; retry in 5 s'
        : 'too many connections without a session from your address; retry in 5 s',
      { retryAfterMs: 5000 },
    );
    socket.end(encodeFrame({ t: 'error', ...err.toWire() }));
    setTimeout(() => socket.destroy(), 2000).unref();
    return false;
  }

  /** A connection was accepted: it has no session, a small frame cap and a hello deadline. */
  opened(conn: Conn): void {
    const helloTimer = setTimeout(() => {
      if (!conn.helloDone)
        conn.fs.fail(
          new HchatError('E_HELLO_REQUIRED', `no hello within ${this.limits.helloTimeoutMs} ms`),
        );
    }, this.limits.helloTimeoutMs);
    helloTimer.unref();
    this.enter(conn, helloTimer);
  }

  /** The hello arrived in time. */
  helloDone(conn: Conn): void {
    const w = this.waiting.get(conn);
    if (w?.helloTimer) clearTimeout(w.helloTimer);
    if (w) w.helloTimer = undefined;
  }

  /** The connection has a session: the full frame cap, no longer counted. */
  authenticated(conn: Conn): void {
    this.leave(conn);
    conn.fs.setMaxFrame(this.maxFrame);
  }

  /** The connection lost its session (logout) but stays open: counted and capped again. */
  unauthenticated(conn: Conn): void {
    if (conn.fs.isOpen && !this.waiting.has(conn)) this.enter(conn, undefined);
  }

  /** The connection is gone. */
  closed(conn: Conn): void {
    this.leave(conn);
  }

  /** Connections without a session now. */
  get unauthenticatedCount(): number {
    return this.waiting.size;
  }

  private enter(conn: Conn, helloTimer: NodeJS.Timeout | undefined): void {
    const prefix = this.prefixOf(conn.fs.remote.ip);
    this.waiting.set(conn, { prefix, helloTimer });
    this.perPrefix.set(prefix, (this.perPrefix.get(prefix) ?? 0) + 1);
    conn.fs.setMaxFrame(Math.min(this.limits.preAuthMaxFrame, this.maxFrame));
  }

  private leave(conn: Conn): void {
    const w = this.waiting.get(conn);
    if (!w) return;
    if (w.helloTimer) clearTimeout(w.helloTimer);
    this.waiting.delete(conn);
    const n = (this.perPrefix.get(w.prefix) ?? 0) - 1;
    if (n > 0) this.perPrefix.set(w.prefix, n);
    else this.perPrefix.delete(w.prefix);
  }
}
