/**
 * A peer's P2P endpoint: the TCP port other peers connect to (peer_connect) and the UDP port
 * of livestream media (stream/media-socket.ts). The TCP port speaks TLS 1.3; on it the handshake is
 * a proof of possession both ways, bound to the TLS connection (shared/handshake.ts): the
 * connecting peer shows its key certificate, this peer answers with its own and its transcript
 * signature, and the connecting peer's transcript signature must follow. Until then frames are capped small and a deadline runs. Each connection is logged with
 * who is at the other end.
 */
import { closeServer, listen } from '../shared/listen.js';
import { COMPACT_VERSION } from '../protocol/compact.js';
import { LinkRefs } from '../shared/compact-refs.js';
import type crypto from 'node:crypto';
import type net from 'node:net';
import type tls from 'node:tls';
import { HchatError } from '../protocol/errors.js';
import { checkHelloVersion } from '../protocol/hello-version.js';
import { PROTOCOL_VERSION } from '../protocol/common.js';
import { DEFAULT_MAX_FRAME } from '../protocol/frame.js';
import { PeerAuth, PeerHello } from '../protocol/peer-link.js';
import { describeIssues, type DialProof } from '../protocol/server-link.js';
import { FramedSocket, remoteOf } from '../shared/framed-socket.js';
import { peerName, type ConnectionLog } from '../shared/connlog.js';
import {
  checkLinkCert,
  dialTranscript,
  identityOf,
  newNonce,
  signTranscript,
  signedBy,
  transcript,
  verifyTranscript,
  type LinkCredentials,
  type LinkIdentity,
} from '../shared/handshake.js';
import { FRAME_LIMITS } from '../shared/limits.js';
import { HeartbeatSweep } from '../shared/heartbeat-sweep.js';
import { channelBinding, createTlsServer, selfSignedIdentity } from '../shared/tls.js';
import type { CertClaims } from '../shared/tokens.js';
import type { HostService, MemberConn } from './host-service.js';
import { MediaSocket } from '../stream/media-socket.js';
import { P2PDoor } from './p2p-door.js';

/** What the endpoint needs from its node. */
export interface P2POptions {
  host: string;
  log: ConnectionLog;
  /** Serves channel traffic after the handshake. */
  service: HostService;
  heartbeatMs?: number;
  timeoutMs?: number;
  /** The central server's key, once known: it signs every certificate. */
  serverKey(): crypto.KeyObject | undefined;
  /** This peer's own certificate and key, while logged in. */
  credentials(): LinkCredentials | undefined;
  /**
   * True for a session the server said was revoked (logout); a promise while the server is asked
   * (a session not checked since this peer's server connection came up: revocations.ts), shown
   * `proof`: the dial signature of the session's hello to this peer.
   */
  isRevoked(
    sessionId: string,
    username: string,
    visitor: boolean,
    proof: DialProof,
  ): boolean | Promise<boolean>;
  /** True for a session known revoked here, without asking anyone. */
  knownRevoked(sessionId: string): boolean;
  /**
   * How often the visitor sessions of open links are asked about again (default
   * VISITOR_CHECK_MS). A visitor's session ends with no event when its grace runs out, and a
   * visitor that hid its views from the server ends it by `logout` with no event to this host
   * (PROTOCOL.md §4.1): only asking tells, and a link of an ended session is closed.
   */
  visitorCheckMs?: number;
  /** Fraction of incoming datagrams to drop at random (loss injection for tests). */
  udpLoss?: number;
  /** bench/ only (bench/plain-peer.ts): media in plain RTP between peers (MediaSocket). */
  benchPlainMedia?: boolean;
}

/** How often a host asks whether the visitors on its links are still in session (§4.1). */
export const VISITOR_CHECK_MS = 30_000;

/**
 * A connecting peer's hello, checked, the claims of its certificate, and the proof of its dial
 * to show the server (`session_check`).
 */
type CheckedHello = {
  claims: CertClaims;
  hello: ReturnType<typeof PeerHello.parse>;
  proof: DialProof;
};

/** What a hello we answered leaves for the connecting peer's `auth` to complete. */
type Pending = { claims: CertClaims; data: Buffer; compact: boolean; proof: DialProof };

/** Who is at the other end of a P2P connection, as its certificate says. */
export type PeerIdentity = LinkIdentity;

/** The P2P TCP listener and UDP socket of one peer. */
export class P2PEndpoint {
  /**
   * TLS 1.3 with a key made at start: members do not check it against anything, the handshake's
   * signed transcript binds the connection instead (shared/handshake.ts).
   */
  private readonly tcp: tls.Server;
  /** Livestream media (RTP/RTCP), peer to peer. */
  readonly media: MediaSocket;
  private readonly open = new Map<FramedSocket, MemberConn | undefined>();
  /** The dial proof each member link's hello carried: a visitor's is shown again later. */
  private readonly proofs = new WeakMap<MemberConn, DialProof>();
  /** Connections whose handshake is not complete, capped per address prefix and in total. */
  private readonly door = new P2PDoor();
  private readonly sweeper: HeartbeatSweep;
  private readonly visitorTimer: NodeJS.Timeout;
  /** True while the visitor sessions of open links are being asked about. */
  private checkingVisitors = false;
  private readonly heartbeatMs: number;
  private readonly timeoutMs: number;
  /** The P2P port, kept while the listener is closed (invisible or offline). */
  private port = 0;

  constructor(private readonly opts: P2POptions) {
    this.heartbeatMs = opts.heartbeatMs ?? 2000;
    this.timeoutMs = opts.timeoutMs ?? 6000;
    const identity = selfSignedIdentity('hchat peer');
    this.tcp = createTlsServer(identity, FRAME_LIMITS.handshakeMs, opts.log, (s) => this.accept(s));
    // Connections count against the door's caps from their first TCP byte (p2p-door.ts).
    this.tcp.on('connection', (socket: net.Socket) => void this.door.admit(socket));
    // Members that went silent (crash, cable pulled) are dropped like the server drops peers,
    // and a link whose certificate expired meanwhile as its handshake would be refused now.
    this.sweeper = new HeartbeatSweep(this.heartbeatMs, () => {
      const now = Date.now();
      const deadline = now - this.timeoutMs;
      for (const [c, m] of this.open) {
        if (c.lastSeen < deadline) {
          c.fail(new HchatError('E_HEARTBEAT_TIMEOUT'));
          c.destroy();
        } else if (m && m.certExp < now) {
          c.fail(new HchatError('E_SESSION_INVALID', 'certificate expired'));
        }
      }
    });
    this.visitorTimer = setInterval(
      () => void this.checkVisitors(),
      opts.visitorCheckMs ?? VISITOR_CHECK_MS,
    );
    this.visitorTimer.unref();
    this.media = new MediaSocket(opts.udpLoss ?? 0, opts.benchPlainMedia);
  }

  async listen(p2pPort: number, udpPort: number): Promise<void> {
    await this.listenTcp(p2pPort);
    await this.media.bind(udpPort, this.opts.host);
  }

  private async listenTcp(port: number): Promise<void> {
    await listen(this.tcp, port, this.opts.host);
    this.port = (this.tcp.address() as net.AddressInfo).port;
  }

  /**
   * Opens or closes the P2P port. Closed while the user is invisible or offline, so that nobody
   * can tell this peer is there (an open port would answer a handshake with our certificate):
   * every member link is dropped as if we had gone offline. Reopened on the same port when
   * possible, else on a new one (the tracker entry says which).
   */
  async setServing(on: boolean): Promise<void> {
    if (on === this.tcp.listening) return;
    if (!on) {
      this.tcp.close();
      this.dropAll();
      return;
    }
    try {
      await this.listenTcp(this.port);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      await this.listenTcp(0);
    }
  }

  /** True while the P2P port accepts connections (not invisible, not offline). */
  get serving(): boolean {
    return this.tcp.listening;
  }

  /** Where other peers reach this one, as submitted to the tracker. */
  get advertised(): { ip: string; port: number; udpPort: number } {
    const ip =
      this.opts.host === '0.0.0.0' || this.opts.host === '::' ? '127.0.0.1' : this.opts.host;
    return {
      ip,
      port: this.port,
      udpPort: this.media.port,
    };
  }

  async close(): Promise<void> {
    this.sweeper.stop();
    clearInterval(this.visitorTimer);
    for (const c of this.open.keys()) c.destroy();
    await closeServer(this.tcp);
    await this.media.close();
  }

  /**
   * Takes a connection this peer made itself by hole punching (punch.ts) as if it had been
   * accepted: TLS server side, then the handshake of every member connection.
   */
  adopt(socket: net.Socket): void {
    if (!this.tcp.listening) return void socket.destroy(); // invisible or offline meanwhile
    this.tcp.emit('connection', socket);
  }

  /** Closes every member connection (the user went offline). */
  dropAll(reason = new HchatError('E_OFFLINE', 'the host went offline')): void {
    for (const c of this.open.keys()) c.fail(reason);
  }

  /** Closes the connections of a session the server revoked. */
  dropSession(sessionId: string): void {
    for (const [fs, m] of this.open) {
      if (m?.who.sessionId === sessionId)
        fs.fail(new HchatError('E_SESSION_INVALID', 'session revoked'));
    }
  }

  /**
   * Asks again about the session of every visitor with an open link, one at a time, and closes
   * the links of those that ended (PROTOCOL.md §4.1). Without the server (offline, no answer)
   * nothing is learnt and the links stay, as a handshake would be let in then.
   */
  private async checkVisitors(): Promise<void> {
    if (this.checkingVisitors) return;
    this.checkingVisitors = true;
    try {
      await this.recheck((who) => who.role === 'visitor', '', true);
    } catch {
      // A store error: the next round asks again.
    } finally {
      this.checkingVisitors = false;
    }
  }

  /**
   * Asks again about the session of each open link of `username` (its cached answers forgotten
   * first, revocations.ts `forgetUser`), and closes those revoked: the user became a member of a
   * channel hosted here again, and a logout made while it shared no channel with this peer came
   * as no event.
   */
  async recheckUser(username: string): Promise<void> {
    const u = username.toLowerCase();
    await this.recheck(
      (who) => who.role === 'user' && who.username.toLowerCase() === u,
      username,
      false,
    );
  }

  /**
   * Asks about the session of each open link `pick` chooses, one at a time, showing the proof
   * its hello carried, and closes the links of those revoked.
   */
  private async recheck(
    pick: (who: MemberConn['who']) => boolean,
    username: string,
    visitor: boolean,
  ): Promise<void> {
    const sessions = new Map<string, DialProof>();
    for (const m of this.open.values()) {
      const proof = m && this.proofs.get(m);
      if (m && proof && pick(m.who)) sessions.set(m.who.sessionId, proof);
    }
    for (const [sid, proof] of sessions)
      if (await this.opts.isRevoked(sid, username, visitor, proof)) this.dropSession(sid);
  }

  private accept(socket: tls.TLSSocket): void {
    const binding = channelBinding(socket);
    const r = remoteOf(socket);
    let member: MemberConn | undefined;
    // Set once our hello answered theirs: what their `auth` must sign.
    let pending: Pending | undefined;
    const name = () => peerName(member?.who.username, r.ip, r.port);
    const fs: FramedSocket = new FramedSocket(
      socket,
      {
        frame: (f) => {
          // The other end is closing with a fatal error: never answered (PROTOCOL.md §1).
          if (f.t === 'error') return fs.close(HchatError.fromErrorFrame(f));
          if (member) return this.opts.service.frame(member, f);
          if (pending) {
            member = this.authenticate(fs, f, pending, r.ip);
            this.proofs.set(member, pending.proof);
            clearTimeout(timer);
            this.door.done(r.ip, r.port);
            fs.setMaxFrame(DEFAULT_MAX_FRAME);
            this.open.set(fs, member);
            member.name = name();
            this.opts.log.write('auth', {
              peer: member.name,
              role: member.who.role,
              session: member.who.sessionId,
            });
            this.opts.log.write('peer_connect', {
              peer: member.name,
              user: member.who.username,
              session: member.who.sessionId,
            });
            return;
          }
          const hello = this.checkHello(fs, f, binding);
          const revoked = this.opts.isRevoked(
            hello.claims.sid,
            hello.claims.u,
            hello.claims.r === 'visitor',
            hello.proof,
          );
          if (revoked === true) throw new HchatError('E_SESSION_INVALID', 'session revoked');
          if (revoked === false) return void (pending = this.answerHello(fs, hello, binding));
          // Nothing more is read until the server answered whether the session is live.
          fs.hold();
          revoked.then(
            (no) => {
              if (!fs.isOpen) return;
              if (no) return fs.fail(new HchatError('E_SESSION_INVALID', 'session revoked'));
              try {
                pending = this.answerHello(fs, hello, binding);
              } catch (err) {
                return fs.fail(err instanceof HchatError ? err : new HchatError('E_INTERNAL'));
              }
              fs.release();
            },
            () => fs.fail(new HchatError('E_INTERNAL')),
          );
        },
        close: (reason) => {
          this.open.delete(fs);
          clearTimeout(timer);
          if (member) this.opts.service.detach(member);
          const line = { peer: name(), reason: reason?.code ?? 'eof' };
          // Before its handshake a link is a stranger's: within its group's share (LOG_LIMITS).
          if (member) this.opts.log.write('close', line);
          else this.opts.log.outsider(r.ip, 'close', line);
        },
      },
      FRAME_LIMITS.preAuthMaxFrame,
    );
    fs.pausesReading = true; // the serving end: see FramedSocket
    const timer = setTimeout(
      () => fs.fail(new HchatError('E_TIMEOUT', 'handshake not completed in time')),
      FRAME_LIMITS.handshakeMs,
    );
    this.open.set(fs, undefined);
    this.opts.log.outsider(r.ip, 'open', { peer: name(), dir: 'in' });
  }

  /**
   * Checks the connecting peer's hello, its certificate and its dial signature (not yet whether
   * it was revoked).
   */
  private checkHello(fs: FramedSocket, f: Record<string, unknown>, binding: Buffer): CheckedHello {
    if (f.t !== 'hello') throw new HchatError('E_HELLO_REQUIRED');
    // The version first: another version's hello has other members (version 1 sent a token).
    checkHelloVersion(f, 'peer');
    const hello = PeerHello.safeParse(f);
    if (!hello.success)
      throw new HchatError('E_BAD_FRAME', `hello: ${describeIssues(hello.error)}`);
    const own = this.opts.credentials();
    if (!own) throw new HchatError('E_AUTH_REQUIRED', 'this peer is not logged in');
    const claims = checkLinkCert(hello.data.cert, this.opts.serverKey());
    // It dials this session, on this connection: what the server is shown when asked (§4.1).
    const dial = dialTranscript({
      peerNonce: hello.data.nonce,
      peerSession: claims.sid,
      hostSession: own.sessionId,
      binding,
    });
    if (!signedBy(claims.pk, dial, hello.data.dial))
      throw new HchatError(
        'E_SESSION_INVALID',
        "the hello's dial signature does not verify (for this peer's session and connection)",
      );
    const proof = {
      nonce: hello.data.nonce,
      binding: binding.toString('base64url'),
      sig: hello.data.dial,
    };
    return { claims, hello: hello.data, proof };
  }

  /** Answers a checked hello with ours, signed. */
  private answerHello(
    fs: FramedSocket,
    { claims, hello, proof }: CheckedHello,
    binding: Buffer,
  ): Pending {
    const own = this.opts.credentials();
    if (!own) throw new HchatError('E_AUTH_REQUIRED', 'this peer is not logged in');
    if (hello.maxFrame) fs.peerMaxFrame = hello.maxFrame;
    // Compact pushes and pages when the member asks (§3.11, §4.2): version 1, the only one.
    const compact = hello.compact !== undefined;
    const nonce = newNonce();
    const parts = {
      peerNonce: hello.nonce,
      hostNonce: nonce,
      peerSession: claims.sid,
      hostSession: own.sessionId,
      binding,
    };
    fs.send({
      t: 'hello',
      v: PROTOCOL_VERSION,
      role: 'host',
      cert: own.cert,
      nonce,
      sig: signTranscript(own.keys, transcript('host', parts)),
      heartbeatMs: this.heartbeatMs,
      timeoutMs: this.timeoutMs,
      maxFrame: DEFAULT_MAX_FRAME,
      ...(compact ? { compact: COMPACT_VERSION } : {}),
    });
    return { claims, data: transcript('peer', parts), compact, proof };
  }

  /** Checks the connecting peer's transcript signature: then it is who its certificate says. */
  private authenticate(
    fs: FramedSocket,
    f: Record<string, unknown>,
    pending: Pending,
    ip: string,
  ): MemberConn {
    if (f.t !== 'auth') throw new HchatError('E_AUTH_REQUIRED', 'the handshake needs auth next');
    const auth = PeerAuth.safeParse(f);
    if (!auth.success) throw new HchatError('E_BAD_FRAME', `auth: ${describeIssues(auth.error)}`);
    verifyTranscript(pending.claims, pending.data, auth.data.sig);
    // Revoked between our hello and this auth: the event found no link of it to drop yet.
    if (this.opts.knownRevoked(pending.claims.sid))
      throw new HchatError('E_SESSION_INVALID', 'session revoked');
    const refs = pending.compact ? new LinkRefs((frame) => fs.sendEncoded(frame)) : undefined;
    return {
      fs,
      who: identityOf(pending.claims),
      certExp: pending.claims.exp,
      ip,
      name: '',
      subs: new Set(),
      refs,
    };
  }
}
