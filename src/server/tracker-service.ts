/**
 * This instance's side of the tracker (SPEC §3, PROTOCOL.md §3.2, §3.7): the entries of its own
 * connections (`submit_info`, `set_status`, removed when a session ends), told to every instance
 * on the bus; the other instances' entries, kept by the TrackerReplica; and every change of the
 * list handed to Presence, which tells the sessions it concerns.
 */
import { HchatError } from '../protocol/errors.js';
import type { TrackerEntry } from '../protocol/common.js';
import type { OpReq, OpRes } from '../protocol/server-link.js';
import type { ConnectionLog } from '../shared/connlog.js';
import { RATE_LIMITS } from '../shared/limits.js';
import { RateLimiter } from '../shared/rate-limit.js';
import type { BusEvent, EventBus } from './bus.js';
import type { Conn } from './conn.js';
import type { ChannelService } from './channel-service.js';
import type { Presence } from './presence.js';
import { TrackerReplica } from './tracker-replica.js';
import { entryKey, sameUser, type EntryChange, type TrackerList } from './tracker.js';

type Control = Extract<BusEvent, { kind: 'instance_up' | 'instance_alive' | 'tracker_sync' }>;
type TrackerEvent = Extract<BusEvent, { kind: 'tracker' }>;

/** What the tracker needs from its server. */
export interface TrackerServiceDeps {
  tracker: TrackerList;
  bus: EventBus;
  log: ConnectionLog;
  channels: ChannelService;
  presence: Presence;
  /** The address group of a connection's address (per-address caps). */
  prefixOf(ip: string): string;
  caps: { entriesPerAccount: number; entriesPerAddress: number };
  /** How often this instance tells the others it is alive; 4 × silent is dead. */
  aliveMs: number;
  internalError(what: string, err: unknown): void;
  /** True once the server is closing. */
  closing(): boolean;
}

/** The tracker list as this instance keeps it, and the changes it makes and hears of. */
export class TrackerService {
  /** The other instances' entries in `tracker` (one instance: nothing to keep). */
  private readonly replica: TrackerReplica;
  /** Changes from other instances, told to this instance's sessions in order (presence loads). */
  private remoteTracker: Promise<void> = Promise.resolve();
  private readonly presenceLimiter = new RateLimiter(
    RATE_LIMITS.presencePerSecond,
    RATE_LIMITS.presenceBurst,
  );

  constructor(private readonly d: TrackerServiceDeps) {
    this.replica = new TrackerReplica({
      tracker: d.tracker,
      bus: d.bus,
      changed: (change) => this.remoteChanged(change),
      aliveMs: d.aliveMs,
      deadAfterMs: d.aliveMs * 4,
    });
  }

  /** Stops the replica's heartbeats (the server is closing). */
  stop(): void {
    this.replica.stop();
  }

  /** `submit_info`: the connection's entry, cut to what its user may claim, and capped. */
  async submitInfo(conn: Conn, b: OpReq<'submit_info'>): Promise<OpRes<'submit_info'>> {
    const s = conn.session!;
    // What the entry may claim is read first; the entry then changes in one turn.
    const hosts: string[] = [];
    for (const id of b.hosts)
      if ((await this.d.channels.channel(id))?.owner === s.username) hosts.push(id);
    const live: typeof b.live = [];
    if (s.role === 'user')
      for (const l of b.live) if (await this.belongs(l.channelId, s.username)) live.push(l);
    if (conn.session !== s) throw new HchatError('E_AUTH_REQUIRED'); // logged out meanwhile
    // A server-reflexive candidate is the address this server saw: one naming another address is
    // not one (the peer may claim any host address, as it may claim any `ip`).
    const seen = conn.fs.remote.ip;
    const candidates = (b.candidates ?? []).filter((c) => c.type === 'host' || c.ip === seen);
    const entry: TrackerEntry = {
      username: s.username,
      role: s.role,
      ip: b.ip,
      port: b.port,
      udpPort: b.udpPort,
      sessionId: s.sessionId,
      status: b.status,
      // A peer may host only channels its user owns.
      hosts,
      // A peer may announce streams only in channels its user belongs to.
      live,
      ...(candidates.length > 0 ? { candidates } : {}),
    };
    const key = entryKey(entry);
    // Caps on entries: per account, and per address group of the connection (not of `ip`).
    const group = this.d.prefixOf(conn.fs.remote.ip);
    const caps = this.d.caps;
    const over = this.d.tracker.overCap(entry, group, caps, conn.entryKey);
    if (over) {
      const n =
        over === 'account'
          ? `${caps.entriesPerAccount} tracker entries per account`
          : `${caps.entriesPerAddress} tracker entries per address group`;
      throw HchatError.rateLimited(`at most ${n} at once; close another session first`, 60_000);
    }
    if (conn.entryKey && conn.entryKey !== key) {
      const change = this.d.tracker.remove(conn.entryKey);
      this.publish(change);
    }
    conn.entryKey = key;
    const change = this.d.tracker.upsert(entry, group);
    this.d.log.write('add_list', { peer: conn.name, p2p: `${b.ip}:${b.port}`, status: b.status });
    this.publish(change);
    return { entry };
  }

  /**
   * Every presence change goes out to the session's co-members: a session may make a few a
   * second (RATE_LIMITS.presencePerSecond, burst presenceBurst), never a flood of them.
   */
  presenceBudget(conn: Conn): void {
    const wait = this.presenceLimiter.take(conn.session!.sessionId);
    if (wait > 0) throw HchatError.rateLimited('too many presence changes', wait);
  }

  private async belongs(channelId: string, username: string): Promise<boolean> {
    const c = await this.d.channels.channel(channelId);
    return (
      !!c &&
      (sameUser(c.owner, username) ||
        (await this.d.channels.members(c.id)).has(username.toLowerCase()))
    );
  }

  /** `set_status`: online or invisible, for the connection's entry. */
  setStatus(conn: Conn, b: OpReq<'set_status'>): OpRes<'set_status'> {
    const entry = conn.entryKey ? this.d.tracker.get(conn.entryKey) : undefined;
    if (entry) {
      const change = this.d.tracker.upsert({ ...entry, status: b.status });
      this.publish(change);
    }
    this.d.log.write('status', { peer: conn.name, status: b.status });
    return { status: b.status };
  }

  /** Removes the entry `conn` announced, if any (its session ended). */
  dropEntry(conn: Conn): void {
    if (!conn.entryKey) return;
    const change = this.d.tracker.remove(conn.entryKey);
    conn.entryKey = undefined;
    this.publish(change);
  }

  /** Tells every instance (this one too) of a change of this instance's own entries. */
  private publish(change: EntryChange): void {
    if (change.before || change.after) this.d.bus.publish({ kind: 'tracker', ...change });
  }

  /**
   * A `tracker` event off the bus: this instance's own (`from` undefined) as its list already
   * holds it, or another instance's, which changes this instance's copy of the list first.
   */
  busEvent(e: TrackerEvent, from: string | undefined): void {
    if (from === undefined) this.changed(this.replica.local(e));
    else {
      const change = this.replica.remote(e, from);
      if (change) this.remoteChanged(change);
    }
  }

  /** Another instance's start, heartbeat or snapshot (tracker-replica.ts). */
  control(e: Control, from: string): void {
    this.replica.control(e, from);
  }

  /**
   * A change of another instance's entry: its user's channels are loaded here first (a user with
   * no session on this instance is not yet), so that its co-members here hear of it. The loads
   * start at once, side by side (a burst of other instances' sessions coming online waits on the
   * store's pool, not on one load after another); the changes are told in the order they came.
   * Once the server closes, nothing more is loaded or told.
   */
  private remoteChanged(change: EntryChange): void {
    const e = (change.after ?? change.before)!;
    const loaded: Promise<{ failed: unknown } | undefined> =
      e.role === 'user' && !this.d.closing()
        ? this.d.presence.loadUser(e.username).then(
            () => undefined,
            (failed: unknown) => ({ failed }),
          )
        : Promise.resolve(undefined);
    this.remoteTracker = this.remoteTracker.then(async () => {
      const load = await loaded;
      if (this.d.closing()) return;
      if (load) this.d.internalError('telling a tracker change failed', load.failed);
      else this.changed(change);
    });
  }

  /** The list changed: only the sessions the entry concerns hear of it, each as it may see it. */
  private changed(change: EntryChange): void {
    this.d.presence.entryChanged(change);
    const was = change.before?.status === 'online';
    const is = change.after?.status === 'online';
    const entry = (change.after ?? change.before)!;
    if (was === is) return;
    this.d.log.write(is ? 'tracker_join' : 'tracker_leave', {
      user: entry.username,
      p2p: `${entry.ip}:${entry.port}`,
      session: entry.sessionId,
    });
  }
}
