/**
 * The server's framed-protocol TCP port (PROTOCOL.md §1.1): TLS 1.3 with the server's key (plain
 * TCP for the bench alone), every socket admitted by the door, one Conn per socket, and the
 * heartbeat sweep that drops connections silent past the timeout.
 */
import net from 'node:net';
import { HchatError } from '../protocol/errors.js';
import type { ConnectionLog } from '../shared/connlog.js';
import { FramedSocket, type TrafficStats } from '../shared/framed-socket.js';
import { HeartbeatSweep } from '../shared/heartbeat-sweep.js';
import { createTlsServer, type TlsIdentity } from '../shared/tls.js';
import { Conn } from './conn.js';
import type { ServerDoor } from './door.js';

/** What the framed port needs from its server. */
export interface FramedPortDeps {
  identity: TlsIdentity;
  /** bench/ only: plain TCP (ServerOptions.benchPlaintext). */
  plaintext: boolean;
  /** Time a TLS handshake has to finish. */
  handshakeMs: number;
  log: ConnectionLog;
  door: ServerDoor;
  maxFrame: number;
  heartbeatMs: number;
  /** A connection silent this long is dropped. */
  timeoutMs: number;
  traffic: TrafficStats;
  /** A frame arrived on `conn`. */
  frame(conn: Conn, f: Record<string, unknown>): void;
  /** Bytes were written to `conn` (metrics). */
  framesOut(conn: Conn, bytes: Buffer): void;
  /** `conn` closed: the session it carried ends. */
  closed(conn: Conn): void;
  /** True once the server is closing: new sockets are refused. */
  closing(): boolean;
}

/** The framed port and its connections. */
export class FramedPort {
  /** Every open connection of this instance. */
  readonly conns = new Set<Conn<FramedSocket>>();
  readonly server: net.Server;
  private readonly sweeper: HeartbeatSweep;
  private nextConnId = 1;

  constructor(private readonly d: FramedPortDeps) {
    this.server = d.plaintext
      ? net.createServer((socket) => this.accept(socket))
      : // A connection that does not finish its TLS handshake is dropped like one without hello.
        createTlsServer(d.identity, d.handshakeMs, d.log, (socket) => this.accept(socket));
    // TLS handshakes count against the door's caps from the first TCP byte (door.ts).
    this.server.on('connection', (socket: net.Socket) => {
      if (d.closing()) socket.destroy();
      else if (!d.plaintext) d.door.admitTcp(socket);
    });
    this.sweeper = new HeartbeatSweep(Math.max(50, Math.min(d.heartbeatMs, d.timeoutMs / 4)), () =>
      this.sweep(),
    );
  }

  /** `ip:port` the port is bound to. */
  get address(): string {
    const a = this.server.address() as net.AddressInfo;
    return `${a.address}:${a.port}`;
  }

  /** Stops the heartbeat sweep (the server is closing). */
  stopSweep(): void {
    this.sweeper.stop();
  }

  private accept(socket: net.Socket): void {
    if (this.d.closing()) {
      socket.destroy();
      return;
    }
    this.d.door.handshakeDone(socket);
    if (!this.d.door.admit(socket)) return;
    const id = this.nextConnId++;
    const conn: Conn<FramedSocket> = new Conn(
      id,
      new FramedSocket(
        socket,
        {
          frame: (f) => this.d.frame(conn, f),
          close: (reason) => this.onClose(conn, reason),
        },
        this.d.maxFrame,
        this.d.traffic,
        (bytes) => this.d.framesOut(conn, bytes),
      ),
    );
    conn.fs.pausesReading = true; // the serving end: see FramedSocket
    this.conns.add(conn);
    this.d.door.opened(conn);
    // No session yet: within its address group's share of the log (LOG_LIMITS); its `auth`
    // record, once it logs in, is always written.
    this.d.log.outsider(conn.fs.remote.ip, 'open', { peer: conn.name, conn: id });
  }

  /**
   * Ends every connection (the server closes): each is failed with `reason` first, so that what
   * the sessions' ends publish reaches none of them, then closed here at once (its session
   * detached, its `close` record written) rather than when its socket closes, which may come
   * after the log is shut (a drain stopped listening: nothing waits for these sockets).
   */
  closeAll(reason: HchatError): void {
    const all = [...this.conns];
    for (const c of all) c.fs.fail(reason);
    for (const c of all) this.onClose(c, reason);
  }

  /** `conn` ended: once, whichever comes first, `closeAll` or its socket's close. */
  private onClose(conn: Conn<FramedSocket>, reason: HchatError | undefined): void {
    if (!this.conns.delete(conn)) return;
    const name = conn.name; // before the session is detached: the line names who left
    const session = conn.session !== undefined;
    this.d.closed(conn);
    this.d.door.closed(conn);
    const line = { peer: name, conn: conn.id, reason: reason?.code ?? 'eof' };
    if (session) this.d.log.write('close', line);
    else this.d.log.outsider(conn.fs.remote.ip, 'close', line);
  }

  private sweep(): void {
    const deadline = Date.now() - this.d.timeoutMs;
    for (const c of this.conns) {
      if (c.fs.lastSeen < deadline) {
        c.fs.fail(new HchatError('E_HEARTBEAT_TIMEOUT'));
        c.fs.destroy();
      }
    }
  }
}
