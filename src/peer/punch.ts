/**
 * TCP hole punching for P2P links (docs/PROTOCOL.md §3.9). A member whose host sits behind
 * another NAT cannot dial it; instead both dial each other at the same moment, each from a local
 * port whose public mapping it predicts (a NAT that keeps ports maps it to the same number), so
 * that each side's SYN opens its own NAT for the other's: TCP simultaneous open. The server only
 * passes the two `punch` messages, with each side's public address as it sees it.
 *
 * What comes out is a plain connected socket: the link then runs exactly as a direct one (TLS,
 * the handshake of §4.1), the member as TLS client, the host as TLS server (P2PEndpoint.adopt).
 */
import crypto from 'node:crypto';
import net from 'node:net';
import type { Candidate, TrackerEntry } from '../protocol/common.js';
import { HchatError } from '../protocol/errors.js';
import type { PunchEvent, RelayEvent, RelayKind } from '../protocol/nat-ops.js';
import { hostName, peerName, type ConnectionLog } from '../shared/connlog.js';
import { NAT_LIMITS } from '../shared/limits.js';
import { RateLimiter } from '../shared/rate-limit.js';
import { hostOf } from './reflexive.js';
import { relayDialHost, relayDialMember } from './relay-dial.js';
import { dialTcp } from './dial-tcp.js';
import type { LinkVia } from './api-shapes.js';
import type { ServerLink } from './server-link.js';

/** How a P2P link reached its host (the local API's LinkVia). */
export type Via = LinkVia;

/** What the puncher needs from its node. */
export interface PuncherDeps {
  link: ServerLink;
  /** The address P2P sockets bind to (the peer's `--host`). */
  host: string;
  log: ConnectionLog;
  /** This peer's server-reflexive candidates on its current server connection. */
  ownReflexive(): readonly Candidate[];
  /** True while this peer accepts P2P links (online, logged in as a user). */
  serving(): boolean;
  /** Hands a punched connection to the P2P endpoint, as if it had been accepted. */
  adopt(socket: net.Socket): void;
  /** Hands a media tunnel a child opened to us through the relay to the livestreams (§5.6). */
  mediaTunnel(from: RelayEvent['from'], streamId: string, socket: net.Socket): void;
  /** How long a punch dials before it has failed (default `NAT_LIMITS.punchDeadlineMs`). */
  punchDeadlineMs?: number;
}

/** A member's way to its hosts, and a host's answers to members' punches. */
export class Puncher {
  /** Punches this peer started, waiting for the other side's answer, by id. */
  private readonly waiting = new Map<string, (e: PunchEvent) => void>();
  /** Failed punches per entry key: how many in a row, and no new one before `until`. */
  private readonly failures = new Map<string, { count: number; until: number }>();

  /** How long both sides of a punch dial each other before it has failed. */
  private readonly deadlineMs: number;

  constructor(private readonly d: PuncherDeps) {
    this.deadlineMs = d.punchDeadlineMs ?? NAT_LIMITS.punchDeadlineMs;
  }

  /**
   * A connected socket to the entry's host: dialled directly where that can work; punched when
   * the entry says its host is behind a NAT (not ours) and both NATs keep ports; through the
   * server's relay when a NAT between does not keep ports, or the punch failed. Throws when
   * nothing works; the caller reads from the server meanwhile.
   */
  async connect(entry: TrackerEntry): Promise<{ socket: net.Socket; via: Via }> {
    const plan = this.plan(entry);
    if (plan === 'direct') return { socket: await dialTcp(entry.ip, entry.port), via: 'direct' };
    if (plan === 'punch') {
      const failed = this.failures.get(entry.sessionId);
      // A punch that failed lately fails again: the relay, until the backoff is over.
      if (!failed || failed.until <= Date.now()) {
        for (let round = 1; ; round++) {
          try {
            return await this.punchTo(entry, round);
          } catch (err) {
            // Logged by punchTo. Refused attempts say the other router answers: the SYNs may
            // only have missed each other, and another round may meet.
            if (round < NAT_LIMITS.punchRounds && wasRefused(err)) continue;
            // One backoff per connection tried, whatever its rounds; then the relay.
            const count = (failed?.count ?? 0) + 1;
            const wait = Math.min(NAT_LIMITS.punchBackoffMaxMs, 1000 * 2 ** count);
            this.failures.set(entry.sessionId, { count, until: Date.now() + wait });
            break;
          }
        }
      }
    }
    return this.relayTo(entry);
  }

  /** One round of punching a hole to the entry's host, logged (the round named after the first). */
  private async punchTo(
    entry: TrackerEntry,
    round: number,
  ): Promise<{ socket: net.Socket; via: Via }> {
    const started = Date.now();
    const name = hostName(entry.username, entry.ip, entry.port);
    const which = round > 1 ? { round } : {};
    try {
      const { socket, addr } = await this.punch(entry);
      this.failures.delete(entry.sessionId);
      this.d.log.write('punch', {
        peer: name,
        addr,
        result: 'ok',
        ms: Date.now() - started,
        ...which,
      });
      return { socket, via: 'punched' };
    } catch (err) {
      const reason = err instanceof HchatError ? err.code : 'error';
      this.d.log.write('punch', {
        peer: name,
        result: 'failed',
        reason,
        ms: Date.now() - started,
        ...which,
      });
      throw err;
    }
  }

  /** A link to the entry's host through the server's relay (PROTOCOL.md §3.10). */
  private async relayTo(entry: TrackerEntry): Promise<{ socket: net.Socket; via: Via }> {
    const name = hostName(entry.username, entry.ip, entry.port);
    const socket = await this.relayed(name, { to: entry, kind: 'p2p' });
    return { socket, via: 'relay' };
  }

  /**
   * A media tunnel to our parent in a stream through the server's relay (§5.6), for a hop whose
   * UDP cannot cross the NATs between: a socket for RFC 4571 frames once the parent is in.
   */
  relayMedia(
    parent: { username: string; sessionId: string },
    streamId: string,
    name: string,
  ): Promise<net.Socket> {
    return this.relayed(name, { to: parent, kind: 'media', streamId });
  }

  /** Asks `relay` of the server and meets the other side at its relay port; logged. */
  private async relayed(
    name: string,
    r: { to: { username: string; sessionId: string }; kind: RelayKind; streamId?: string },
  ): Promise<net.Socket> {
    const started = Date.now();
    try {
      const a = await this.d.link.request('relay', {
        to: { username: r.to.username, sessionId: r.to.sessionId },
        id: crypto.randomBytes(12).toString('base64url'),
        ...(r.kind === 'media' ? { kind: r.kind, streamId: r.streamId } : {}),
      });
      const ip = hostOf(this.d.link.address);
      const socket = await relayDialMember({ ip, port: a.port, token: a.token });
      this.d.log.write('relay_link', {
        peer: name,
        kind: r.kind,
        addr: `${ip}:${a.port}`,
        result: 'ok',
        ms: Date.now() - started,
      });
      return socket;
    } catch (err) {
      const reason = err instanceof HchatError ? err.code : 'error';
      this.d.log.write('relay_link', {
        peer: name,
        kind: r.kind,
        result: 'failed',
        reason,
        ms: Date.now() - started,
      });
      throw err;
    }
  }

  /** A `relay` event: a member asks us (the host) to meet it at the server's relay. */
  onRelay(e: RelayEvent): void {
    if (!this.d.serving()) return; // nobody can reach us now: say nothing
    const ip = e.ip ?? hostOf(this.d.link.address);
    const name = peerName(e.from.username, ip, e.port);
    const kind = e.kind ?? 'p2p';
    if (kind === 'media' && e.streamId === undefined) return; // names no stream: nothing to carry
    relayDialHost({ ip, port: e.port, token: e.token }).then(
      (socket) => {
        this.d.log.write('relay_link', { peer: name, kind, addr: `${ip}:${e.port}`, result: 'ok' });
        if (kind === 'media') this.d.mediaTunnel(e.from, e.streamId!, socket);
        else this.d.adopt(socket);
      },
      (err: unknown) => {
        const reason = err instanceof HchatError ? err.code : 'error';
        this.d.log.write('relay_link', { peer: name, kind, result: 'failed', reason });
      },
    );
  }

  /** A `punch` event from the server: the answer to ours, or a member asking us (the host). */
  onEvent(e: PunchEvent): void {
    const answer = this.waiting.get(e.id);
    if (answer) {
      this.waiting.delete(e.id);
      answer(e);
      return;
    }
    if (!this.d.serving()) return; // nobody can reach us now: say nothing
    void this.answer(e);
  }

  /**
   * How to reach the entry's host: dial it when it is not behind a NAT (its public address is
   * its own) or behind ours (one home: its LAN address works); punch when its NAT keeps ports,
   * as ours does if we are behind one; else (a port we cannot predict) the relay.
   */
  private plan(entry: TrackerEntry): 'direct' | 'punch' | 'relay' {
    const theirs = tcpReflexive(entry.candidates ?? []);
    if (!theirs || theirs.ip === entry.ip) return 'direct';
    const ours = tcpReflexive(this.d.ownReflexive());
    if (ours && ours.ip === theirs.ip) return 'direct';
    return keepsPorts(theirs) && (!ours || keepsPorts(ours)) ? 'punch' : 'relay';
  }

  /** Our side of a punch we start: ask the host through the server, then dial its answer. */
  private async punch(entry: TrackerEntry): Promise<{ socket: net.Socket; addr: string }> {
    const deadline = Date.now() + this.deadlineMs;
    const port = await freePort(this.d.host);
    const id = crypto.randomBytes(12).toString('base64url');
    const answered = new Promise<PunchEvent>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new HchatError('E_TIMEOUT', 'the host did not answer the punch'));
      }, this.deadlineMs);
      timer.unref();
      this.waiting.set(id, (e) => {
        clearTimeout(timer);
        resolve(e);
      });
    });
    try {
      await this.d.link.request('punch', {
        to: { username: entry.username, sessionId: entry.sessionId },
        port,
        id,
      });
    } catch (err) {
      this.waiting.delete(id);
      answered.catch(() => undefined);
      throw err;
    }
    const e = await answered;
    if (e.from.sessionId !== entry.sessionId)
      throw new HchatError('E_SESSION_INVALID', 'the punch was answered by another session');
    const socket = await simultaneousOpen(this.d.host, port, e.ip, e.port, deadline);
    return { socket, addr: `${e.ip}:${e.port}` };
  }

  /** The host's side: answer with our own port, and dial the member from it at once. */
  private async answer(e: PunchEvent): Promise<void> {
    const started = Date.now();
    const name = peerName(e.from.username, e.ip, e.port);
    try {
      const port = await freePort(this.d.host);
      const deadline = Date.now() + this.deadlineMs;
      // Our SYN leaves before the answer reaches the member: when theirs comes, our NAT knows it.
      const dialling = simultaneousOpen(this.d.host, port, e.ip, e.port, deadline);
      dialling.catch(() => undefined);
      await this.d.link.request('punch', {
        to: { username: e.from.username, sessionId: e.from.sessionId },
        port,
        id: e.id,
      });
      const socket = await dialling;
      this.d.log.write('punch', { peer: name, result: 'ok', ms: Date.now() - started });
      this.d.adopt(socket);
    } catch (err) {
      const reason = err instanceof HchatError ? err.code : 'error';
      this.d.log.write('punch', { peer: name, result: 'failed', reason, ms: Date.now() - started });
    }
  }
}

function tcpReflexive(cs: readonly Candidate[]): Candidate | undefined {
  return cs.find((c) => c.type === 'srflx' && c.proto === 'tcp');
}

/** The NAT gave the local port its own number: a fresh local port will likely keep its too. */
function keepsPorts(c: Candidate): boolean {
  return c.base === undefined || c.base === c.port;
}

/**
 * Attempts per millisecond this process makes at most, all its punches together, on average; a
 * burst of ATTEMPT_BURST may go at once. A router that answers an unsolicited SYN with RST (one
 * without a firewall, or that REJECTs) ends the other side's attempt when its SYN comes first:
 * the SYNs connect only if they cross between the routers, within one trip from one router to
 * the other. So a refused attempt is repeated at once, from the same port, keeping each side
 * dialling nearly all the time. Over the internet the RST's round trip paces that (one attempt
 * per round trip); where the routers are a fraction of a millisecond apart, this budget does: at
 * most 1,000 SYNs a second from this process, however many punches it was asked for at once.
 * When it runs short, the addresses being dialled take turns (`takeTurn`): a session that asks
 * for many punches towards its own address, which answers RST, gets one address's share, not
 * the budget.
 */
const ATTEMPTS_PER_MS = 1;
const ATTEMPT_BURST = 50;
/** The process's one bucket (RateLimiter counts in seconds). */
const budget = new RateLimiter(ATTEMPTS_PER_MS * 1000, ATTEMPT_BURST);
/** Between an attempt that failed otherwise than refused (no route, a local error) and the next. */
const OTHER_ERROR_GAP_MS = 10;
/** Attempts waiting for the budget, per address dialled; the addresses are served in turn. */
const waiting = new Map<string, Array<() => void>>();
let draining: NodeJS.Timeout | undefined;

/** Takes one attempt from the process's budget; false when it has none left now. */
const mayAttempt = (): boolean => budget.take('') === 0;

/**
 * Runs `attempt` (a dial towards `address`) now if the budget allows and nothing waits, else in
 * its address's turn: one attempt per address waiting, round after round, as the budget refills.
 */
function takeTurn(address: string, attempt: () => void): void {
  if (waiting.size === 0 && mayAttempt()) return attempt();
  const queue = waiting.get(address);
  if (queue) queue.push(attempt);
  else waiting.set(address, [attempt]);
  draining ??= setTimeout(drain, 1);
}

function drain(): void {
  draining = undefined;
  // One attempt per address a pass; a Map keeps insertion order, so an address served goes to
  // the back of the line, behind those the budget did not reach this time.
  for (const address of [...waiting.keys()]) {
    if (!mayAttempt()) break;
    const queue = waiting.get(address)!;
    waiting.delete(address);
    const attempt = queue.shift()!;
    if (queue.length > 0) waiting.set(address, queue);
    attempt();
  }
  if (waiting.size > 0) draining = setTimeout(drain, 1);
}

/** A punch that timed out after some of its attempts were refused (RST), not just unanswered. */
function wasRefused(err: unknown): boolean {
  return ((err as { refused?: number } | null)?.refused ?? 0) > 0;
}

/** A local port free now on `host` (the kernel's pick), for a connection to bind to. */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Dials ip:port from host:localPort until a connection is made or the deadline passes. Each
 * attempt waits for the kernel's own SYN retries (a router that drops what it did not ask for
 * just delays it); a refused one is tried again from the same port, at once while the process's
 * budget allows (ATTEMPTS_PER_MS), else in `ip`'s turn (takeTurn).
 */
export function simultaneousOpen(
  host: string,
  localPort: number,
  ip: string,
  port: number,
  deadline: number,
): Promise<net.Socket> {
  let refused = 0;
  return new Promise((resolve, reject) => {
    const next = (): void => {
      if (Date.now() + 100 >= deadline)
        reject(
          Object.assign(
            new HchatError(
              'E_TIMEOUT',
              `no simultaneous open with ${ip}:${port} (${refused} refused)`,
            ),
            { refused },
          ),
        );
      // An attempt that waited past the deadline is not made: the next check rejects.
      else takeTurn(ip, () => (Date.now() + 100 >= deadline ? next() : attempt()));
    };
    const attempt = () => {
      const s = net.connect({ host: ip, port, localAddress: host, localPort });
      const timer = setTimeout(() => s.destroy(), Math.max(0, deadline - Date.now()));
      let connected = false;
      s.once('connect', () => {
        connected = true;
        clearTimeout(timer);
        resolve(s);
      });
      const refusedBefore = refused;
      s.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNREFUSED') refused++;
      });
      s.once('close', () => {
        clearTimeout(timer);
        if (connected) return; // the link's own close, later
        // Refused: again at once (the budget allowing). Anything else (no route, a local error)
        // would come back as fast and learn nothing: OTHER_ERROR_GAP_MS later.
        if (refused > refusedBefore) setImmediate(next);
        else setTimeout(next, OTHER_ERROR_GAP_MS);
      });
    };
    next();
  });
}
