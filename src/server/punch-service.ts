/**
 * Hole punching's go-between (docs/PROTOCOL.md §3.9): passes a session's `punch` to another
 * session as an event carrying the caller's public address, as this server sees it. A session
 * may punch an entry it may see (the tracker's visibility rule: it knows that entry already), or
 * answer a session that punched it moments ago (a host answers a member it may not see, a
 * visitor). Nothing is stored beyond those few seconds; punches are rate-limited per session.
 */
import { HchatError } from '../protocol/errors.js';
import type { OpReq, OpRes } from '../protocol/server-link.js';
import { encodeFrame } from '../protocol/frame.js';
import type { ConnectionLog } from '../shared/connlog.js';
import { NAT_LIMITS } from '../shared/limits.js';
import { RateLimiter } from '../shared/rate-limit.js';
import type { Conn } from './conn.js';
import type { Presence } from './presence.js';
import { sameUser, viewOf, type TrackerList } from './tracker.js';

/** What the go-between needs from its server. */
export interface PunchServiceDeps {
  log: ConnectionLog;
  tracker: TrackerList;
  presence: Presence;
  /** The connections of a user's sessions on this instance. */
  connsOf(username: string): Iterable<Conn>;
}

/** Passes punches between the sessions of this instance. */
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
    this.sweep(now);
    this.recent.set(`${s.sessionId}>${b.to.sessionId}`, now + NAT_LIMITS.punchAnswerMs);
    target.fs.sendEncoded(
      encodeFrame({
        t: 'ev',
        ev: 'punch',
        body: {
          from: { username: s.username, role: s.role, sessionId: s.sessionId },
          ip: conn.fs.remote.ip,
          port: b.port,
          id: b.id,
        },
      }),
    );
    this.d.log.write('punch', { peer: conn.name, to: target.name, id: b.id });
    return {};
  }

  /**
   * The connection of session `to` on this instance, when `conn`'s session may see its entry
   * (the tracker's visibility rule), or `answering` (it asked `conn` moments ago); else
   * `E_NOT_FOUND`, the same for a session that does not exist as for one it may not see.
   */
  reachable(conn: Conn, to: { username: string; sessionId: string }, answering = false): Conn {
    const target = this.findConn(to.username, to.sessionId);
    const entry = target?.entryKey ? this.d.tracker.get(target.entryKey) : undefined;
    const viewer = this.d.presence.viewer(conn)!;
    if (!target || !entry || (!answering && !viewOf(viewer, entry, this.d.presence)))
      throw new HchatError('E_NOT_FOUND', 'no such session online');
    return target;
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
