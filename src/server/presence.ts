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
import { fitPage, pageBudget } from '../protocol/page-budget.js';
import type { ServerStore } from '../store/server-store.js';
import type { Conn } from './conn.js';
import {
  channelsIn,
  entryKey,
  eventFor,
  isOwn,
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

/** Tracker visibility and fan-out on one server instance. */
export class Presence implements Memberships {
  /** Channels of each user (lower-case), loaded on first use, then kept by joins and leaves. */
  private readonly userChannels = new Map<string, Set<string>>();
  /** Loads of users' channels under way, by user (lower-case). */
  private readonly loading = new Map<string, Promise<void>>();
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
    const channels = await this.d.store.channelsOf(username);
    for (const c of channels) await this.d.loadMembers(c.id);
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
      this.userChannels.set(k, new Set(channels.map((c) => c.id)));
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
    const fit = fitPage(slice, pageBudget(conn.fs.peerMaxFrame), 'start');
    const more = fit.cut || start + slice.length < all.length;
    const last = fit.items[fit.items.length - 1];
    return more && last ? { peers: fit.items, next: entryKey(last) } : { peers: fit.items };
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
      if (!v || isOwn(v, e)) continue; // a user's own sessions are not told of their entries
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
    this.membershipsEnded(channelId, [k], new Set([...this.membersOf(channelId), k]));
  }

  /** `channelId` was deleted: none of its members (loaded here) belongs to it any more. */
  channelDeleted(channelId: string): void {
    const members: string[] = [];
    for (const [k, channels] of this.userChannels) if (channels.has(channelId)) members.push(k);
    this.membershipsEnded(channelId, members, new Set(members));
  }

  /**
   * `gone` (lower-case) no longer belong to `channelId`, whose members were `was`: their channel
   * sets forget it, and each connection of those members is told what it no longer sees.
   */
  private membershipsEnded(
    channelId: string,
    gone: readonly string[],
    was: ReadonlySet<string>,
  ): void {
    const had = new Set(gone.filter((k) => this.userChannels.get(k)?.has(channelId)));
    if (had.size === 0) return;
    const before: Memberships = {
      channelsOf: (u) => {
        const set = this.channelsOf(u);
        if (!had.has(u.toLowerCase()) || set.has(channelId)) return set;
        return new Set([...set, channelId]);
      },
      membersOf: (id) => this.membersOf(id),
    };
    for (const k of had) this.userChannels.get(k)!.delete(channelId);
    const out = new Outbox();
    for (const a of was) {
      for (const c of this.d.connsOf(a)) {
        const v = this.viewer(c);
        if (v?.role !== 'user') continue;
        for (const b of was) {
          // Only pairs with one side gone changed; a user's own entries are not its business here.
          if (b === a || (!had.has(a) && !had.has(b))) continue;
          for (const e of this.d.tracker.entriesOf(b, 'user')) {
            const ev = eventFor(v, { before: e, after: e }, this, before);
            if (ev) out.send(c, ev.ev, ev.entry);
          }
        }
      }
    }
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
