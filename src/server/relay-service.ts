/**
 * The relay of last resort for P2P links (docs/PROTOCOL.md §3.10): where no punch can work (a
 * NAT that draws a new port per connection, a firewall that lets only the server through), a
 * member asks `relay` for a host's session; the server hands each side a one-time token, and
 * both connect to its relay port with that token. Once both are in, the relay writes one byte
 * to the member and passes bytes through untouched, both ways (a P2P link's host speaks only
 * after the member: host bytes before then end the link): the link's TLS runs end to end between
 * member and host, so the relay carries ciphertext it cannot read or alter unnoticed, and the
 * §4.1 handshake (bound to that TLS) decides who is at each end, as on a direct link.
 *
 * Bounded: requests per session (rate); links per session, per account (those its ended
 * sessions asked for included: a link outlives its session) or, for visitors, per address group,
 * and per instance; a pair that does not form in NAT_LIMITS.relayPairMs is dropped, a header
 * must come in relayHeaderMs, an idle link closes after relayIdleMs. Relayed bytes are counted
 * apart (metrics, connection log).
 */
import { closeServer, listen } from '../shared/listen.js';
import crypto from 'node:crypto';
import net from 'node:net';
import { HchatError } from '../protocol/errors.js';
import {
  RELAY_HEADER_BYTES,
  RELAY_PAIRED,
  RELAY_TOKEN_BYTES,
  parseRelayHeader,
} from '../protocol/relay-header.js';
import type { RelayKind } from '../protocol/nat-ops.js';
import type { OpReq, OpRes } from '../protocol/server-link.js';
import type { ConnectionLog } from '../shared/connlog.js';
import { NAT_LIMITS } from '../shared/limits.js';
import { RateLimiter } from '../shared/rate-limit.js';
import type { Conn } from './conn.js';
import type { Reachable } from './punch-service.js';

/** What the relay needs from its server. */
export interface RelayServiceDeps {
  log: ConnectionLog;
  /** Session `to`, when `conn` may reach it, here or on another instance (PunchService). */
  reachable(conn: Conn, to: { username: string; sessionId: string }): Reachable;
  /** This relay's address for a host on another instance; undefined: unknown (a wildcard). */
  ip: string | undefined;
  /** The address group of `ip` (AccountService.prefixOf): one budget for its visitors. */
  prefixOf(ip: string): string;
  /**
   * Links (pending or paired) the sessions of one account may hold together, and the visitor
   * sessions of one address group: links of sessions that ended count until they close.
   */
  linksPerAccount: number;
  linksPerAddress: number;
}

/** One side of a relayed link: who it is, and its socket once it came. */
interface Side {
  token: string;
  name: string;
  socket?: net.Socket;
}

/** A relayed link: asked for by `a` (the member), offered to `b` (the host). */
interface Pair {
  id: string;
  kind: RelayKind;
  session: string;
  /** Whose budget the link counts against: `user:<name>`, or `visitors:<address group>`. */
  holder: string;
  a: Side;
  b: Side;
  timer: NodeJS.Timeout;
  paired: boolean;
  /** Bytes passed a → b and b → a. */
  up: number;
  down: number;
}

/** Counters of the relay, for metrics and tests. */
export interface RelayStats {
  /** Links paired so far. */
  paired: number;
  /** Bytes passed through, both ways, by links paired so far, by what they carry. */
  bytes: Record<RelayKind, number>;
  /** Connections to the relay port refused: a bad header, an unknown or used token. */
  refused: number;
}

export class RelayService {
  private readonly server = net.createServer((s) => this.accept(s));
  private readonly limiter = new RateLimiter(NAT_LIMITS.relayPerSecond, NAT_LIMITS.relayBurst);
  /** Pending and paired links, by each side's token. */
  private readonly byToken = new Map<string, Pair>();
  private readonly pairs = new Set<Pair>();
  /** Links asked for per session, pending or paired. */
  private readonly perSession = new Map<string, number>();
  /** Links asked for per account or visitors' address group (Pair.holder), pending or paired. */
  private readonly perHolder = new Map<string, number>();
  readonly stats: RelayStats = { paired: 0, bytes: { p2p: 0, media: 0 }, refused: 0 };

  constructor(private readonly d: RelayServiceDeps) {
    this.server.on('error', () => undefined);
  }

  listen(port: number, host: string): Promise<void> {
    return listen(this.server, port, host);
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Links pending or paired now. */
  get links(): number {
    return this.pairs.size;
  }

  close(): Promise<void> {
    for (const p of this.pairs) this.end(p, 'closing');
    return closeServer(this.server);
  }

  /** `relay`: a token for the caller, and the `relay` event with the other's token to `to`. */
  relay(conn: Conn, b: OpReq<'relay'>): OpRes<'relay'> {
    const s = conn.session!;
    const wait = this.limiter.take(s.sessionId);
    if (wait > 0) throw HchatError.rateLimited('too many relay requests', wait);
    const target = this.d.reachable(conn, b.to);
    if ((this.perSession.get(s.sessionId) ?? 0) >= NAT_LIMITS.relayLinksPerSession)
      throw HchatError.rateLimited('too many relayed links for this session', 1000);
    // A link outlives the session that asked for it (logout, revocation): without this, each
    // new login of one account would hold 16 more, until the instance was full.
    const visitor = s.role === 'visitor';
    const holder = visitor
      ? `visitors:${this.d.prefixOf(conn.fs.remote.ip)}`
      : `user:${s.username.toLowerCase()}`;
    if (
      (this.perHolder.get(holder) ?? 0) >=
      (visitor ? this.d.linksPerAddress : this.d.linksPerAccount)
    )
      throw HchatError.rateLimited(
        visitor
          ? 'too many relayed links for visitors from this address'
          : 'too many relayed links for this account',
        1000,
      );
    if (this.pairs.size >= NAT_LIMITS.relayLinksTotal)
      throw HchatError.rateLimited('the relay is full', 1000);
    const token = () => crypto.randomBytes(RELAY_TOKEN_BYTES).toString('base64url');
    const kind = b.kind ?? 'p2p';
    const pair: Pair = {
      id: b.id,
      kind,
      session: s.sessionId,
      holder,
      a: { token: token(), name: conn.name },
      b: { token: token(), name: target.name },
      timer: setTimeout(() => this.end(pair, 'unpaired'), NAT_LIMITS.relayPairMs),
      paired: false,
      up: 0,
      down: 0,
    };
    pair.timer.unref();
    this.pairs.add(pair);
    this.byToken.set(pair.a.token, pair);
    this.byToken.set(pair.b.token, pair);
    this.perSession.set(s.sessionId, (this.perSession.get(s.sessionId) ?? 0) + 1);
    this.perHolder.set(holder, (this.perHolder.get(holder) ?? 0) + 1);
    target.send('relay', {
      from: { username: s.username, role: s.role, sessionId: s.sessionId },
      port: this.port,
      token: pair.b.token,
      id: b.id,
      ...(b.kind ? { kind: b.kind } : {}),
      ...(b.streamId ? { streamId: b.streamId } : {}),
      // A host on another instance must come here, not to its own server's address.
      ...(!target.local && this.d.ip ? { ip: this.d.ip } : {}),
    });
    this.d.log.write('relay_link', {
      peer: conn.name,
      to: target.name,
      id: b.id,
      kind,
      ...(target.local ? {} : { via: 'bus' }),
    });
    return { port: this.port, token: pair.a.token };
  }

  /** A connection to the relay port: its header names a side of a pending link, or it goes. */
  private accept(socket: net.Socket): void {
    socket.on('error', () => undefined);
    socket.setNoDelay(true);
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => refuse('no header in time'), NAT_LIMITS.relayHeaderMs);
    const refuse = (why: string) => {
      clearTimeout(timer);
      socket.off('data', onData);
      this.stats.refused++;
      const r = `${socket.remoteAddress}:${socket.remotePort}`;
      // Anyone may connect here: within its address group's share of the log (LOG_LIMITS).
      this.d.log.outsider(socket.remoteAddress ?? '', 'relay_refused', { addr: r, reason: why });
      socket.destroy();
    };
    const onData = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      if (head.length < RELAY_HEADER_BYTES) return;
      clearTimeout(timer);
      socket.off('data', onData);
      const h = parseRelayHeader(head.subarray(0, RELAY_HEADER_BYTES));
      if ('error' in h) return refuse(h.error);
      const pair = this.byToken.get(h.token);
      if (!pair) return refuse('unknown token');
      const side = pair.a.token === h.token ? pair.a : pair.b;
      // A used token is refused whatever follows it: a header replayed by someone who saw it on
      // the wire cannot end the link it opened.
      if (side.socket) return refuse('token already used');
      // Nothing may follow the header before the relay says paired (the sides wait for it): a
      // header with bytes behind it ends its link, and its token with it.
      if (head.length > RELAY_HEADER_BYTES) {
        refuse('bytes before the pairing');
        return this.end(pair, 'bytes before the pairing');
      }
      side.socket = socket;
      // Bytes before the pairing, or the end of a waiting side, end the link.
      socket.once('data', () => {
        if (!pair.paired) this.end(pair, 'bytes before the pairing');
      });
      socket.once('close', () => this.end(pair, 'closed'));
      if (pair.a.socket && pair.b.socket) this.splice(pair, pair.a.socket, pair.b.socket);
    };
    socket.on('data', onData);
  }

  /** Both sides are in: say so to the side that asked, then pass bytes through both ways. */
  private splice(pair: Pair, a: net.Socket, b: net.Socket): void {
    clearTimeout(pair.timer);
    pair.paired = true;
    this.stats.paired++;
    a.removeAllListeners('data');
    b.removeAllListeners('data');
    a.on('data', (d: Buffer) => {
      pair.up += d.length;
      this.stats.bytes[pair.kind] += d.length;
    });
    // A P2P link's host is a TLS server: it speaks only once the member's first bytes (its
    // ClientHello) reached it. Bytes from it before then end the link and go nowhere: nothing
    // passes host → member until the member spoke. A media tunnel's parent may speak first
    // (its first consent check goes out as it hands the child the hop's keys, §5.6).
    const hostWaits = pair.kind === 'p2p';
    b.on('data', (d: Buffer) => {
      if (hostWaits && pair.up === 0) return this.end(pair, 'host spoke first');
      pair.down += d.length;
      this.stats.bytes[pair.kind] += d.length;
    });
    for (const s of [a, b]) s.setTimeout(NAT_LIMITS.relayIdleMs, () => this.end(pair, 'idle'));
    // Only the side that asked hears it: it speaks first (its TLS ClientHello), and the other
    // side's first bytes are then the ClientHello alone, ready for its TLS server.
    a.write(Buffer.from([RELAY_PAIRED]));
    a.pipe(b);
    if (hostWaits) a.once('data', () => b.pipe(a));
    else b.pipe(a);
    this.d.log.write('relay_open', {
      peer: pair.a.name,
      to: pair.b.name,
      id: pair.id,
      kind: pair.kind,
    });
  }

  private end(pair: Pair, reason: string): void {
    if (!this.pairs.delete(pair)) return;
    clearTimeout(pair.timer);
    this.byToken.delete(pair.a.token);
    this.byToken.delete(pair.b.token);
    for (const [counts, key] of [
      [this.perSession, pair.session],
      [this.perHolder, pair.holder],
    ] as const) {
      const n = (counts.get(key) ?? 1) - 1;
      if (n > 0) counts.set(key, n);
      else counts.delete(key);
    }
    pair.a.socket?.destroy();
    pair.b.socket?.destroy();
    this.d.log.write('relay_close', {
      peer: pair.a.name,
      to: pair.b.name,
      id: pair.id,
      kind: pair.kind,
      reason,
      up: pair.up,
      down: pair.down,
    });
  }
}
