/**
 * Who hears of which tracker entry (docs/PROTOCOL.md §3.3 `get_list`, §3.5 `peer_joined` and
 * `peer_left`): the server's side of the visibility rule in tracker.ts. A change of one entry is
 * pushed only to the sessions it concerns (its user's co-members, visitors viewing a channel it
 * hosts or streams), each with the entry cut to what that session may see, each distinct body
 * encoded once. A new membership or a visitor's new view makes the entries that became visible
 * known both ways. `get_list` is answered in pages that fit the receiver's frame.
 * The rule is decided in one turn from caches: a user's channels are loaded when a session of
 * theirs attaches here (`loadUser`), with those channels' members; a user not loaded counts as
 * in no channel until a load it starts ends.
 */
import { encodeFrame } from '../protocol/frame.js';
import type { Channel, TrackerEntry } from '../protocol/common.js';
import { listPage } from '../protocol/page-budget.js';
import type { ServerStore } from '../store/server-store.js';
import type { Conn } from './conn.js';
import {
  channelsIn,
  entryKey,
  eventFor,
  isOwn,
  sameView,
  viewOf,
  type EntryChange,
  type Memberships,
  type TrackerList,
  type Viewer,
} from './tracker.js';

/** What presence needs from its server. */
export interface PresenceDeps {
  store: ServerStore;
  tracker: TrackerList;
  /** The users (lower-case) of a channel (ChannelService's cache; empty when not loaded). */
  membersOf(channelId: string): ReadonlySet<string>;
  /** Loads a channel's members into that cache. */
  loadMembers(channelId: string): Promise<unknown>;
  /** A channel, if it exists and is cached (ChannelService's cache). */
  channel(channelId: string): Channel | undefined;
  /** Connections of a user on this instance (lower-case name). */
  connsOf(username: string): Iterable<Conn>;
  /** Every connection on this instance. */
  conns(): ReadonlySet<Conn>;
  /** Others that hear of every change, deciding for themselves who may see it (the gateway). */
  entryChanged?(change: EntryChange): void;
  /** Entries in one get_list page at most. */
  pageEntries: number;
  /** Users kept loaded besides those connected here (USER_CACHE_MAX). */
  usersCached?: number;
}

/**
 * Users whose channels are kept loaded, besides those with a connection on this instance (every
 * instance loads the users of the other instances' entries too): past it, the oldest loaded user
 * not connected here is forgotten, and loaded again when one of its entries changes.
 */
const USER_CACHE_MAX = 50_000;
/** Loaded users looked at, at most, for one to forget: a load stays O(1). */
const EVICTION_SCAN = 64;
const NO_CHANNELS: ReadonlySet<string> = new Set();
/**
 * Pairs of members told of memberships that ended, at most: a leave tells a channel of up to
 * 16,384 members, a deletion one of up to 128 (a deleted channel of 200 members took 0.46 s and
 * 39,402 events; see channelDeleted).
 */
export const TELL_PAIRS_MAX = 16_384;

/** Tracker visibility and fan-out on one server instance. */
export class Presence implements Memberships {
  /** Channels of each user (lower-case), loaded on first use, then kept by joins and leaves. */
  private readonly userChannels = new Map<string, Set<string>>();
  /** Loads of users' channels under way, by user (lower-case). */
  private readonly loading = new Map<string, Promise<void>>();
  /** Users whose memberships changed while their load was under way: it reads again. */
  private readonly changedWhileLoading = new Set<string>();
  /** Visitor connections by the channel they view. */
  private readonly viewers = new Map<string, Set<Conn>>();

  constructor(private readonly d: PresenceDeps) {}

  channelsOf(username: string): ReadonlySet<string> {
    const set = this.userChannels.get(username.toLowerCase());
    if (set) return set;
    this.loadUser(username).catch((err: unknown) =>
      console.error('hchat server: loading memberships failed:', err),
    );
    return NO_CHANNELS;
  }

  /**
   * Loads a user's channels and their members, once (memberships change by events after): loads
   * asked for while one of the same user runs share it, so a burst of one user's entries (its
   * sessions on other instances coming online) reads the store once.
   */
  loadUser(username: string): Promise<void> {
    const k = username.toLowerCase();
    if (this.userChannels.has(k)) return Promise.resolve();
    const running = this.loading.get(k);
    if (running) return running;
    const load = this.readUser(username, k).finally(() => this.loading.delete(k));
    this.loading.set(k, load);
    return load;
  }

  private async readUser(username: string, k: string): Promise<void> {
    let channels;
    // A membership that ended (or began) while the store was read may be missing from what it
    // read: read again, a few times at most.
    for (let tries = 0; ; tries++) {
      this.changedWhileLoading.delete(k);
      channels = await this.d.store.channelsOf(username);
      for (const c of channels) await this.d.loadMembers(c.id);
      if (!this.changedWhileLoading.has(k) || tries === 2) break;
    }
    this.changedWhileLoading.delete(k);
    if (this.userChannels.has(k)) return; // a load that ended meanwhile (and events since) wins
    if (this.userChannels.size >= (this.d.usersCached ?? USER_CACHE_MAX)) this.forgetOne();
    this.userChannels.set(k, new Set(channels.map((c) => c.id)));
  }

  /**
   * Forgets the oldest loaded user that has no connection here. A user connected here is never
   * forgotten: what its sessions see, and who hears of its entries, is read from its channels in
   * one turn (channelsOf answers "none" for a user not loaded). Those passed over go to the back.
   * When every user looked at is connected here, nobody goes: the cache then holds more than its
   * size, as many as this instance has connections.
   */
  private forgetOne(): void {
    for (let n = 0; n < EVICTION_SCAN; n++) {
      const oldest = this.userChannels.entries().next().value;
      if (!oldest) return;
      const [k, channels] = oldest;
      this.userChannels.delete(k);
      if (isEmpty(this.d.connsOf(k))) return;
      this.userChannels.set(k, channels);
    }
  }

  /** Reads every loaded user's channels again (after a bus outage: events were missed). */
  async reloadUsers(): Promise<void> {
    for (const k of [...this.userChannels.keys()]) {
      const channels = await this.d.store.channelsOf(k);
      for (const c of channels) await this.d.loadMembers(c.id);
      const now = new Set(channels.map((c) => c.id));
      const before = new Set(this.userChannels.get(k) ?? []);
      // Memberships that ended meanwhile are told as a leave would have been, those that began
      // as a join would have been (after the user's channels are what the store says).
      for (const id of before) if (!now.has(id)) this.memberLeft(id, k);
      this.userChannels.set(k, now);
      for (const id of now) if (!before.has(id)) this.memberJoined(id, k);
    }
  }

  membersOf(channelId: string): ReadonlySet<string> {
    return this.d.membersOf(channelId);
  }

  /** The session on `conn` as a viewer of the list. */
  viewer(conn: Conn): Viewer | undefined {
    const s = conn.session;
    return s && { username: s.username, role: s.role, views: conn.views };
  }

  /** One page of `get_list`: entries after the cursor that fit the frame, and the next cursor. */
  page(conn: Conn, after: string | undefined): { peers: TrackerEntry[]; next?: string } {
    const all = this.d.tracker.visibleTo(this.viewer(conn)!, this);
    const start = after === undefined ? 0 : firstAfter(all, after);
    const slice = all.slice(start, start + this.d.pageEntries);
    const p = listPage(slice, conn.fs.peerMaxFrame, entryKey, start + slice.length < all.length);
    return { peers: p.items, ...(p.next === undefined ? {} : { next: p.next }) };
  }

  // ---- changes --------------------------------------------------------------------------------

  /** An entry changed (joined, left, or changed what it hosts or streams): tell who it concerns. */
  entryChanged(change: EntryChange): void {
    const e = change.after ?? change.before;
    if (!e) return;
    let recipients = new Set<Conn>();
    if (e.role === 'user') {
      // Its user's co-members; when they are more than the connections, every connection.
      const all = this.d.conns();
      let work = 0;
      for (const id of this.channelsOf(e.username)) {
        const members = this.membersOf(id);
        work += members.size;
        if (work > all.size) {
          recipients = new Set(all);
          break;
        }
        for (const u of members) for (const c of this.d.connsOf(u)) recipients.add(c);
      }
    }
    const channels = new Set([
      ...(change.before ? channelsIn(change.before) : []),
      ...(change.after ? channelsIn(change.after) : []),
    ]);
    for (const id of channels) for (const c of this.viewers.get(id) ?? []) recipients.add(c);
    const out = new Outbox();
    for (const c of recipients) {
      const v = this.viewer(c);
      // A session is not told of its own entry; its user's other sessions are (get_list shows
      // them their user's entries too): an owner's other device follows the host it reads from.
      if (!v || (isOwn(v, e) && c.session?.sessionId === e.sessionId)) continue;
      const ev = eventFor(v, change, this);
      if (ev) out.send(c, ev.ev, ev.entry);
    }
    this.d.entryChanged?.(change);
  }

  /**
   * `username` joined `channelId` (a new membership): it and the channel's members may now see
   * each other's entries; both sides hear of those that became visible.
   */
  memberJoined(channelId: string, username: string): void {
    const k = username.toLowerCase();
    if (this.loading.has(k)) this.changedWhileLoading.add(k);
    this.userChannels.get(k)?.add(channelId);
    const owner = this.d.channel(channelId)?.owner;
    if (owner) this.userChannels.get(owner.toLowerCase())?.add(channelId);
    const before = this.without(k, channelId);
    const out = new Outbox();
    const theirs: TrackerEntry[] = [];
    for (const u of this.membersOf(channelId))
      if (u !== k) theirs.push(...this.d.tracker.entriesOf(u, 'user'));
    for (const c of this.d.connsOf(k)) {
      const v = this.viewer(c);
      if (v?.role !== 'user') continue;
      for (const e of theirs) {
        const ev = eventFor(v, { before: e, after: e }, this, before);
        if (ev) out.send(c, ev.ev, ev.entry);
      }
    }
    const mine = this.d.tracker.entriesOf(username, 'user');
    if (mine.length === 0) return;
    for (const u of this.membersOf(channelId)) {
      if (u === k) continue;
      for (const c of this.d.connsOf(u)) {
        const v = this.viewer(c);
        if (!v) continue;
        for (const e of mine) {
          const ev = eventFor(v, { before: e, after: e }, this, before);
          if (ev) out.send(c, ev.ev, ev.entry);
        }
      }
    }
  }

  /**
   * `username` left `channelId`, or was removed (after ChannelService forgot the membership): it
   * no longer shares that channel with its members. Whoever no longer sees whom hears
   * `peer_left`, both ways; an entry still seen through another channel is told with its `hosts`
   * and `live` cut anew.
   */
  memberLeft(channelId: string, username: string): void {
    const k = username.toLowerCase();
    const cached = this.membersOf(channelId);
    // Members not cached here (they joined on other instances): those loaded here who have it.
    const was = cached.size > 0 ? new Set(cached) : this.loadedMembersOf(channelId);
    this.membershipsEnded(channelId, [k], was.add(k));
  }

  /**
   * `channelId` was deleted: none of its members (loaded here) belongs to it any more. Past
   * TELL_PAIRS_MAX pairs of members nobody is told (each member hears of the deletion itself,
   * PROTOCOL.md §3.5): a channel of 3,000 members would take 9 million events. Answers the
   * members it had (loaded here), for the gateway's sessions.
   */
  channelDeleted(channelId: string): ReadonlySet<string> {
    const members = this.loadedMembersOf(channelId);
    this.membershipsEnded(channelId, [...members], members);
    return members;
  }

  /**
   * These memberships with `users` (lower-case) still in `channelId`: how they were before they
   * left it. Each user's set is made once.
   */
  plus(users: ReadonlySet<string>, channelId: string): Memberships {
    const made = new Map<string, ReadonlySet<string>>();
    return {
      channelsOf: (u) => {
        const k = u.toLowerCase();
        const set = this.channelsOf(u);
        if (!users.has(k) || set.has(channelId)) return set;
        let copy = made.get(k);
        if (!copy) made.set(k, (copy = new Set([...set, channelId])));
        return copy;
      },
      membersOf: (id) => {
        const set = this.membersOf(id);
        if (id !== channelId) return set;
        return new Set([...set, ...users]);
      },
    };
  }

  /** The users loaded here who belong to `channelId`. */
  private loadedMembersOf(channelId: string): Set<string> {
    const out = new Set<string>();
    for (const [k, channels] of this.userChannels) if (channels.has(channelId)) out.add(k);
    return out;
  }

  /**
   * `gone` (lower-case) no longer belong to `channelId`, whose members were `was`: their channel
   * sets forget it, and each connection of a pair with one side gone is told what it no longer
   * sees (O(gone × was)). A user whose load is under way reads its channels again when it ends.
   */
  private membershipsEnded(channelId: string, gone: readonly string[], was: ReadonlySet<string>) {
    for (const k of gone) if (this.loading.has(k)) this.changedWhileLoading.add(k);
    const had = new Set(gone.filter((k) => this.userChannels.get(k)?.has(channelId)));
    if (had.size === 0) return;
    const before = this.plus(had, channelId);
    for (const k of had) this.userChannels.get(k)!.delete(channelId);
    if (had.size * was.size > TELL_PAIRS_MAX) return;
    const told: Array<[Conn, 'peer_joined' | 'peer_left', TrackerEntry]> = [];
    // What `a`'s connections no longer see of `b`'s entries.
    const tell = (a: string, b: string) => {
      if (a === b) return;
      for (const c of this.d.connsOf(a)) {
        const v = this.viewer(c);
        if (v?.role !== 'user') continue;
        for (const e of this.d.tracker.entriesOf(b, 'user')) {
          const ev = eventFor(v, { before: e, after: e }, this, before);
          if (ev) told.push([c, ev.ev, ev.entry]);
        }
      }
    };
    for (const g of had)
      for (const a of was) {
        tell(a, g);
        if (!had.has(a)) tell(g, a);
      }
    if (told.length === 0) return;
    // Decided now, written after this turn: a leaver hears its `channel_leave` answered before
    // the events its leave caused (as when the bus is NATS), so its peer no longer serves the
    // channel when they come.
    setImmediate(() => {
      const out = new Outbox();
      for (const [c, ev, entry] of told) out.send(c, ev, entry);
    });
  }

  /** A user created a channel: it belongs to it (other instances learn it on a join). */
  channelCreated(channelId: string, owner: string): void {
    this.userChannels.get(owner.toLowerCase())?.add(channelId);
  }

  /**
   * A visitor's connection views more channels (channel_join, subscribe): it hears of the
   * entries that host or stream them. Only channels that allow visitors count.
   */
  /** The visitors' connections viewing a channel. */
  viewersOf(channelId: string): ReadonlySet<Conn> {
    return this.viewers.get(channelId) ?? new Set();
  }

  view(conn: Conn, channelIds: Iterable<string>): void {
    const v = this.viewer(conn);
    if (v?.role !== 'visitor') return;
    const before: Viewer = { ...v, views: new Set(conn.views) };
    const added: string[] = [];
    for (const id of channelIds) {
      if (conn.views.has(id) || !this.d.channel(id)?.allowVisitors) continue;
      conn.views.add(id);
      added.push(id);
      let set = this.viewers.get(id);
      if (!set) this.viewers.set(id, (set = new Set()));
      set.add(conn);
    }
    const out = new Outbox();
    const told = new Set<string>();
    for (const id of added) {
      for (const e of this.d.tracker.entriesIn(id)) {
        const key = entryKey(e);
        if (told.has(key)) continue;
        told.add(key);
        const was = viewOfBoth(before, v, e, this);
        if (was) out.send(conn, 'peer_joined', was);
      }
    }
  }

  /**
   * `channelId` no longer allows visitors: no visitor's connection views it any more, and each
   * hears of the entries it saw through it alone (`peer_left`) or sees cut anew (`peer_joined`).
   */
  closedToVisitors(channelId: string): void {
    const viewing = this.viewers.get(channelId);
    if (!viewing) return;
    this.viewers.delete(channelId);
    const out = new Outbox();
    for (const conn of viewing) {
      const v = this.viewer(conn);
      const before: Viewer | undefined = v && { ...v, views: new Set(conn.views) };
      conn.views.delete(channelId);
      if (!v || !before) continue;
      for (const e of this.d.tracker.entriesIn(channelId)) {
        const was = viewOf(before, e, this);
        const is = viewOf(v, e, this);
        if (was && !is) out.send(conn, 'peer_left', was);
        else if (was && is && !sameView(was, is)) out.send(conn, 'peer_joined', is);
      }
    }
  }

  /** The connection's session ends: it views nothing any more. */
  forget(conn: Conn): void {
    for (const id of conn.views) {
      const set = this.viewers.get(id);
      set?.delete(conn);
      if (set?.size === 0) this.viewers.delete(id);
    }
    conn.views.clear();
  }

  /** These memberships without `username` in `channelId` (how they were before it joined). */
  without(username: string, channelId: string): Memberships {
    return {
      channelsOf: (u) => {
        const set = this.channelsOf(u);
        if (u.toLowerCase() !== username || !set.has(channelId)) return set;
        const copy = new Set(set);
        copy.delete(channelId);
        return copy;
      },
      membersOf: (id) => {
        const set = this.membersOf(id);
        if (id !== channelId || !set.has(username)) return set;
        const copy = new Set(set);
        copy.delete(username);
        return copy;
      },
    };
  }
}

function isEmpty(xs: Iterable<unknown>): boolean {
  for (const _ of xs) return false;
  return true;
}

/** The entry as `after` sees it, when that differs from what `before` saw. */
function viewOfBoth(
  before: Viewer,
  after: Viewer,
  e: TrackerEntry,
  m: Memberships,
): TrackerEntry | undefined {
  const ev = eventFor(after, { after: e }, m);
  if (!ev) return undefined;
  const was = eventFor(before, { after: e }, m);
  return was && JSON.stringify(was.entry) === JSON.stringify(ev.entry) ? undefined : ev.entry;
}

/** Events written as they come, each distinct body encoded once. */
class Outbox {
  private readonly frames = new Map<string, Buffer>();

  send(conn: Conn, ev: 'peer_joined' | 'peer_left', entry: TrackerEntry): void {
    const id = `${ev}|${JSON.stringify(entry)}`;
    let frame = this.frames.get(id);
    if (!frame) this.frames.set(id, (frame = encodeFrame({ t: 'ev', ev, body: { entry } })));
    conn.fs.sendEncoded(frame);
  }
}

/** The index of the first entry whose key sorts after `cursor`. */
function firstAfter(sorted: readonly TrackerEntry[], cursor: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (entryKey(sorted[mid]!) <= cursor) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
