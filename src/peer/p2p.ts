/**
 * A peer's P2P endpoint: the TCP port other peers connect to (peer_connect) and the UDP port
 * of livestream media (stream/media-socket.ts). The handshake checks the connecting peer's server-signed
 * session token locally; each connection is logged with who is at the other end.
 */
import net from 'node:net';
import { HchatError } from '../protocol/errors.js';
import { PROTOCOL_VERSION } from '../protocol/common.js';
import { PeerHello } from '../protocol/peer-link.js';
import { describeIssues } from '../protocol/server-link.js';
import { FramedSocket } from '../shared/framed-socket.js';
import { peerName, type ConnectionLog } from '../shared/connlog.js';
import type { HostService, MemberConn } from './host-service.js';
import { publicKeyFromBase64, verifyToken } from '../shared/tokens.js';
import { MediaSocket } from '../stream/media-socket.js';

/** What the endpoint needs from its node. */
export interface P2POptions {
  host: string;
  log: ConnectionLog;
  /** Serves channel traffic after the handshake. */
  service: HostService;
  heartbeatMs?: number;
  timeoutMs?: number;
  /** The central server's token-signing key (base64 SPKI), once known. */
  publicKey(): string | undefined;
  /** This peer's own session token, to present when connecting out. */
  token(): string | undefined;
  /** Fraction of incoming datagrams to drop at random (loss injection for tests). */
  udpLoss?: number;
}

/** Who is at the other end of a P2P connection, as its token says. */
export interface PeerIdentity {
  username: string;
  sessionId: string;
  role: 'user' | 'visitor';
}

const HANDSHAKE_MS = 5000;

/** The P2P TCP listener and UDP socket of one peer. */
export class P2PEndpoint {
  private readonly tcp = net.createServer((s) => this.accept(s));
  /** Livestream media (RTP/RTCP), peer to peer. */
  readonly media: MediaSocket;
  private readonly open = new Set<FramedSocket>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly heartbeatMs: number;
  private readonly timeoutMs: number;
  /** False while the user is offline: no connection to anything, so none accepted. */
  serving = true;

  constructor(private readonly opts: P2POptions) {
    this.heartbeatMs = opts.heartbeatMs ?? 2000;
    this.timeoutMs = opts.timeoutMs ?? 6000;
    // Members that went silent (crash, cable pulled) are dropped like the server drops peers.
    this.sweeper = setInterval(() => {
      const deadline = Date.now() - this.timeoutMs;
      for (const c of this.open) {
        if (c.lastSeen < deadline) {
          c.fail(new HchatError('E_HEARTBEAT_TIMEOUT'));
          c.destroy();
        }
      }
    }, this.heartbeatMs);
    this.sweeper.unref();
    this.media = new MediaSocket(opts.udpLoss ?? 0);
  }

  async listen(p2pPort: number, udpPort: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.tcp.once('error', reject);
      this.tcp.listen(p2pPort, this.opts.host, () => {
        this.tcp.off('error', reject);
        resolve();
      });
    });
    await this.media.bind(udpPort, this.opts.host);
  }

  /** Where other peers reach this one, as submitted to the tracker. */
  get advertised(): { ip: string; port: number; udpPort: number } {
    const ip =
      this.opts.host === '0.0.0.0' || this.opts.host === '::' ? '127.0.0.1' : this.opts.host;
    return {
      ip,
      port: (this.tcp.address() as net.AddressInfo).port,
      udpPort: this.media.port,
    };
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    for (const c of this.open) c.destroy();
    await new Promise<void>((resolve) =>
      this.tcp.listening ? this.tcp.close(() => resolve()) : resolve(),
    );
    await this.media.close();
  }

  /** Closes every member connection (the user went offline). */
  dropAll(): void {
    for (const c of this.open) c.fail(new HchatError('E_OFFLINE', 'the host went offline'));
  }

  private accept(socket: net.Socket): void {
    if (!this.serving) {
      socket.destroy();
      return;
    }
    let member: MemberConn | undefined;
    const r = {
      ip: (socket.remoteAddress ?? '?').replace(/^::ffff:/, ''),
      port: socket.remotePort ?? 0,
    };
    const name = () => peerName(member?.who.username, r.ip, r.port);
    const fs = new FramedSocket(socket, {
      frame: (f) => {
        if (member) return this.opts.service.frame(member, f);
        if (f.t !== 'hello') throw new HchatError('E_HELLO_REQUIRED');
        const hello = PeerHello.safeParse(f);
        if (!hello.success)
          throw new HchatError('E_BAD_FRAME', `hello: ${describeIssues(hello.error)}`);
        if (hello.data.v !== PROTOCOL_VERSION) {
          throw new HchatError(
            'E_VERSION_MISMATCH',
            `P2P version ${hello.data.v} not supported; this peer speaks ${PROTOCOL_VERSION}`,
          );
        }
        const key = this.opts.publicKey();
        const claims = key ? verifyToken(hello.data.token, publicKeyFromBase64(key)) : undefined;
        if (!claims)
          throw new HchatError('E_SESSION_INVALID', 'token not signed by the central server');
        const identity = this.identity();
        clearTimeout(timer);
        member = {
          fs,
          who: { username: claims.u, sessionId: claims.sid, role: claims.r },
          ip: r.ip,
          name: '',
          subs: new Set(),
        };
        member.name = name();
        this.opts.log.write('auth', { peer: member.name, role: claims.r, session: claims.sid });
        fs.send({
          t: 'hello',
          v: PROTOCOL_VERSION,
          role: 'host',
          ...identity,
          heartbeatMs: this.heartbeatMs,
          timeoutMs: this.timeoutMs,
        });
      },
      close: (reason) => {
        this.open.delete(fs);
        clearTimeout(timer);
        if (member) this.opts.service.detach(member);
        this.opts.log.write('close', { peer: name(), reason: reason?.code ?? 'eof' });
      },
    });
    const timer = setTimeout(
      () => fs.fail(new HchatError('E_TIMEOUT', 'no hello in time')),
      HANDSHAKE_MS,
    );
    this.open.add(fs);
    this.opts.log.write('open', { peer: name(), dir: 'in' });
  }

  private identity(): { username: string; sessionId: string; userRole: 'user' | 'visitor' } {
    const key = this.opts.publicKey();
    const token = this.opts.token();
    const claims = key && token ? verifyToken(token, publicKeyFromBase64(key)) : undefined;
    if (!claims) throw new HchatError('E_AUTH_REQUIRED', 'this peer is not logged in');
    return { username: claims.u, sessionId: claims.sid, userRole: claims.r };
  }
}
