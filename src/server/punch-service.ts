/**
 * Hole punching's go-between (docs/PROTOCOL.md §3.9), and the way every NAT signal reaches its
 * session: passes a session's `punch` to another session as an event carrying the caller's
 * public address, as this server sees it. A session may punch an entry it may see (the
 * tracker's visibility rule: it knows that entry already), or answer a session that punched it
 * moments ago (a host answers a member it may not see, a visitor). Nothing is stored beyond
 * those few seconds; punches are rate-limited per session.
 *
 * The other session may be on another instance (§3.7): the tracker list holds every instance's
 * entries, so the rule is checked here, and the event crosses the bus as `nat_signal` to the
 * instance that holds that session's connection, which passes it on (and remembers a punch, so
 * that its session may answer).
 */
import { HchatError } from '../protocol/errors.js';
import type { TrackerEntry } from '../protocol/common.js';
import type { PunchEvent, RelayEvent } from '../protocol/nat-ops.js';
import type { OpReq, OpRes } from '../protocol/server-link.js';
import { encodeFrame } from '../protocol/frame.js';
import { peerName, type ConnectionLog } from '../shared/connlog.js';
import { NAT_LIMITS } from '../shared/limits.js';
import { RateLimiter } from '../shared/rate-limit.js';
import type { BusEvent, EventBus } from './bus.js';
import type { Conn } from './conn.js';
import type { Presence } from './presence.js';
import { sameUser, viewOf, type TrackerList } from './tracker.js';

/** What the go-between needs from its server. */
export interface PunchServiceDeps {
  log: ConnectionLog;
  tracker: TrackerList;
  presence: Presence;
  bus: EventBus;
  /** The connections of a user's sessions on this instance. */
  connsOf(username: string): Iterable<Conn>;
}

/** A session another may signal: its entry, and its connection when it is on this instance. */
export interface Reachable {
  entry: TrackerEntry;
  name: string;
  /** Sends it a NAT event, here or through the instance that holds its connection. */
  send(ev: 'punch', body: PunchEvent): void;
  send(ev: 'relay', body: RelayEvent): void;
  /** True when its connection is on this instance. */
  local: boolean;
}

type NatSignal = Extract<BusEvent, { kind: 'nat_signal' }>;

/** Passes punches (and relay offers) between sessions, across instances too. */
export class PunchService {
  private readonly limiter = new RateLimiter(NAT_LIMITS.punchPerSecond, NAT_LIMITS.punchBurst);
  /** `from>to` session pairs of recent punches, and when they expire: `to` may answer. */
  private readonly recent = new Map<string, number>();

  constructor(private readonly d: PunchServiceDeps) {}

  punch(conn: Conn, b: OpReq<'punch'>): OpRes<'punch'> {
    const s = conn.session!;
    const wait = this.limiter.take(s.sessionId);
    if (wait > 0) throw HchatError.rateLimited('too many punches', wait);
    const now = Date.now();
    const answering = (this.recent.get(`${b.to.sessionId}>${s.sessionId}`) ?? 0) > now;
    const target = this.reachable(conn, b.to, answering);
    this.remember(s.sessionId, b.to.sessionId, now);
    target.send('punch', {
      from: { username: s.username, role: s.role, sessionId: s.sessionId },
      ip: conn.fs.remote.ip,
      port: b.port,
      id: b.id,
    });
    this.d.log.write('punch', {
      peer: conn.name,
      to: target.name,
      id: b.id,
      ...(target.local ? {} : { via: 'bus' }),
    });
    return {};
  }

  /**
   * Session `to`, when `conn`'s session may see its entry (the tracker's visibility rule), or
   * `answering` (it asked `conn` moments ago); else `E_NOT_FOUND`, the same for a session that
   * does not exist as for one it may not see.
   */
  reachable(conn: Conn, to: { username: string; sessionId: string }, answering = false): Reachable {
    const entry = this.entryOf(to.username, to.sessionId);
    const viewer = this.d.presence.viewer(conn)!;
    if (!entry || (!answering && !viewOf(viewer, entry, this.d.presence)))
      throw new HchatError('E_NOT_FOUND', 'no such session online');
    const target = this.findConn(entry.username, entry.sessionId);
    const ref = { username: entry.username, sessionId: entry.sessionId };
    return {
      entry,
      local: target !== undefined,
      name: target?.name ?? peerName(entry.username, entry.ip, entry.port),
      send: (ev: 'punch' | 'relay', body: PunchEvent | RelayEvent) => {
        if (target) target.fs.sendEncoded(encodeFrame({ t: 'ev', ev, body }));
        else this.d.bus.publish({ kind: 'nat_signal', to: ref, ev, body } as NatSignal);
      },
    };
  }

  /**
   * A `nat_signal` from the bus: passed to its session when its connection is here (a punch is
   * remembered first, so that the session may answer it through this instance).
   */
  deliver(e: NatSignal): void {
    const target = this.findConn(e.to.username, e.to.sessionId);
    if (!target) return;
    if (e.ev === 'punch') this.remember(e.body.from.sessionId, e.to.sessionId, Date.now());
    target.fs.sendEncoded(encodeFrame({ t: 'ev', ev: e.ev, body: e.body }));
  }

  private entryOf(username: string, sessionId: string): TrackerEntry | undefined {
    for (const role of ['user', 'visitor'] as const)
      for (const e of this.d.tracker.entriesOf(username.toLowerCase(), role))
        if (e.sessionId === sessionId && sameUser(e.username, username)) return e;
    return undefined;
  }

  private remember(from: string, to: string, now: number): void {
    this.sweep(now);
    this.recent.set(`${from}>${to}`, now + NAT_LIMITS.punchAnswerMs);
  }

  private findConn(username: string, sessionId: string): Conn | undefined {
    for (const c of this.d.connsOf(username.toLowerCase()))
      if (c.session?.sessionId === sessionId && sameUser(c.session.username, username)) return c;
    return undefined;
  }

  private sweep(now: number): void {
    if (this.recent.size < 1000) return;
    for (const [k, until] of this.recent) if (until <= now) this.recent.delete(k);
  }
}
