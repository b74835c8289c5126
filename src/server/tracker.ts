/**
 * The tracker list (SPEC §2): one entry per logged-in peer session that submitted its info,
 * unique by (ip and port, user name, session id). Pure logic: the server wires it to sockets.
 *
 * Who sees an entry (docs/PROTOCOL.md §3.5, `viewOf`): its own user always; anyone else only
 * while it is public (status online) and relevant to them: a user sees the entries of users it
 * shares a channel with, a visitor sees the entries that host or stream a channel it views.
 * Each sees `hosts` and `live` cut to the channels it can read. Everything else does not exist
 * for them: not in lists, not in events.
 */
import { entryKey, type Role, type TrackerEntry } from '../protocol/common.js';

export { entryKey };

/** Who looks at the list: a session on one connection. */
export interface Viewer {
  username: string;
  role: Role;
  /**
   * Channels that allow visitors and that this connection views (a visitor's joins and
   * subscriptions); users read the channels they belong to.
   */
  views: ReadonlySet<string>;
}

/** Channel memberships, as the server knows them (the owner counts as a member). */
export interface Memberships {
  /** The channels a user belongs to; empty for an unknown user. */
  channelsOf(username: string): ReadonlySet<string>;
  /** The users (lower-case) that belong to a channel. */
  membersOf(channelId: string): ReadonlySet<string>;
}

/** An entry before and after a change, for the sessions that may see it (undefined: none). */
export interface EntryChange {
  before?: TrackerEntry;
  after?: TrackerEntry;
}

/** Where the caps on entries stand for a new entry. */
export interface EntryCaps {
  entriesPerAccount: number;
  entriesPerAddress: number;
}

/** True when users other than the entry's own can see it. */
export function isPublic(e: TrackerEntry): boolean {
  return e.status === 'online';
}

/** True when the entry is one of the viewer's own user's. */
export function isOwn(viewer: Pick<Viewer, 'username' | 'role'>, e: TrackerEntry): boolean {
  return viewer.role === e.role && sameUser(viewer.username, e.username);
}

/**
 * The entry as `viewer` may see it, or undefined when it may not: the visibility rule, the one
 * function behind `get_list` and every `peer_joined`/`peer_left` (docs/PROTOCOL.md §3.5).
 */
export function viewOf(viewer: Viewer, e: TrackerEntry, m: Memberships): TrackerEntry | undefined {
  if (isOwn(viewer, e)) return e;
  if (!isPublic(e)) return undefined;
  const mine = viewer.role === 'user' ? m.channelsOf(viewer.username) : EMPTY;
  const readable = (id: string) => mine.has(id) || viewer.views.has(id);
  const seen =
    (viewer.role === 'user' && e.role === 'user' && shareAny(mine, m.channelsOf(e.username))) ||
    e.hosts.some((id) => viewer.views.has(id)) ||
    e.live.some((l) => viewer.views.has(l.channelId));
  if (!seen) return undefined;
  const hosts = e.hosts.filter(readable);
  const live = e.live.filter((l) => readable(l.channelId));
  return hosts.length === e.hosts.length && live.length === e.live.length
    ? e
    : { ...e, hosts, live };
}

/**
 * What one viewer must be told of a change: the entry it now sees (`joined`), the one it no
 * longer sees (`left`), or nothing when its view did not change.
 */
export function eventFor(
  viewer: Viewer,
  change: EntryChange,
  m: Memberships,
  mBefore: Memberships = m,
): { ev: 'peer_joined' | 'peer_left'; entry: TrackerEntry } | undefined {
  const was = change.before && viewOf(viewer, change.before, mBefore);
  const is = change.after && viewOf(viewer, change.after, m);
  if (is) return was && sameView(was, is) ? undefined : { ev: 'peer_joined', entry: is };
  return was ? { ev: 'peer_left', entry: was } : undefined;
}

interface Stored {
  entry: TrackerEntry;
  /** The address group (prefix) of the connection that submitted it. */
  group: string;
}

/** The tracker's list of entries, indexed by user and by channel hosted or streamed. */
export class TrackerList {
  private readonly entries = new Map<string, Stored>();
  private readonly byUser = new Map<string, Set<string>>();
  private readonly byChannel = new Map<string, Set<string>>();
  private readonly perGroup = new Map<string, number>();

  /**
   * Adds or replaces an entry (add_list) submitted from address group `group`. Returns the entry
   * before and after, for the sessions that must be told (see `eventFor`).
   */
  upsert(entry: TrackerEntry, group = ''): EntryChange {
    const key = entryKey(entry);
    const before = this.entries.get(key);
    if (before) this.unindex(key, before);
    const stored = { entry, group: before?.group ?? group };
    this.entries.set(key, stored);
    this.index(key, stored);
    return { before: before?.entry, after: entry };
  }

  /** Removes an entry; returns what it was. */
  remove(key: string): EntryChange {
    const before = this.entries.get(key);
    if (!before) return {};
    this.entries.delete(key);
    this.unindex(key, before);
    return { before: before.entry };
  }

  /**
   * Which cap a new entry would pass, if any ('account' or 'address'); `replacing` is the key
   * of the entry it takes the place of (same connection), which does not count.
   */
  overCap(
    entry: TrackerEntry,
    group: string,
    caps: EntryCaps,
    replacing?: string,
  ): 'account' | 'address' | undefined {
    const key = entryKey(entry);
    if (this.entries.has(key)) return undefined; // a change of an entry, not a new one
    const replaced = replacing === undefined ? undefined : this.entries.get(replacing);
    const own = this.byUser.get(userKey(entry))?.size ?? 0;
    const sameUserReplaced = replaced && userKey(replaced.entry) === userKey(entry) ? 1 : 0;
    if (own - sameUserReplaced >= caps.entriesPerAccount) return 'account';
    const inGroup = this.perGroup.get(group) ?? 0;
    const sameGroupReplaced = replaced && replaced.group === group ? 1 : 0;
    if (inGroup - sameGroupReplaced >= caps.entriesPerAddress) return 'address';
    return undefined;
  }

  get(key: string): TrackerEntry | undefined {
    return this.entries.get(key)?.entry;
  }

  /** Every entry. */
  *all(): IterableIterator<TrackerEntry> {
    for (const s of this.entries.values()) yield s.entry;
  }

  /** The entries of one user (or visitor). */
  entriesOf(username: string, role: Role): TrackerEntry[] {
    return this.keysToEntries(this.byUser.get(userKey({ username, role })));
  }

  /** The entries that host or stream a channel. */
  entriesIn(channelId: string): TrackerEntry[] {
    return this.keysToEntries(this.byChannel.get(channelId));
  }

  /**
   * The list as `viewer` may see it (get_list), ordered by entry key. Only the entries that can
   * be relevant are looked at: its own user's, its co-members', those in the channels it views
   * (or every entry, when that is fewer).
   */
  visibleTo(viewer: Viewer, m: Memberships): TrackerEntry[] {
    const out = new Map<string, TrackerEntry>();
    const consider = (e: TrackerEntry) => {
      const v = viewOf(viewer, e, m);
      if (v) out.set(entryKey(e), v);
    };
    const users = this.relevantUsers(viewer, m);
    if (users === undefined) {
      for (const s of this.entries.values()) consider(s.entry);
    } else {
      for (const e of this.entriesOf(viewer.username, viewer.role)) consider(e);
      for (const u of users) for (const e of this.entriesOf(u, 'user')) consider(e);
      for (const id of viewer.views) for (const e of this.entriesIn(id)) consider(e);
    }
    return [...out.keys()].sort().map((k) => out.get(k)!);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The users whose entries a user may see, or undefined when scanning everything is cheaper. */
  private relevantUsers(viewer: Viewer, m: Memberships): Set<string> | undefined {
    const users = new Set<string>();
    if (viewer.role !== 'user') return users;
    let work = 0;
    for (const id of m.channelsOf(viewer.username)) {
      const members = m.membersOf(id);
      work += members.size;
      if (work > this.entries.size * 4) return undefined;
      for (const u of members) users.add(u);
    }
    return users;
  }

  private keysToEntries(keys: Set<string> | undefined): TrackerEntry[] {
    return keys ? [...keys].map((k) => this.entries.get(k)!.entry) : [];
  }

  private index(key: string, s: Stored): void {
    addTo(this.byUser, userKey(s.entry), key);
    for (const id of channelsIn(s.entry)) addTo(this.byChannel, id, key);
    this.perGroup.set(s.group, (this.perGroup.get(s.group) ?? 0) + 1);
  }

  private unindex(key: string, s: Stored): void {
    removeFrom(this.byUser, userKey(s.entry), key);
    for (const id of channelsIn(s.entry)) removeFrom(this.byChannel, id, key);
    const n = (this.perGroup.get(s.group) ?? 0) - 1;
    if (n > 0) this.perGroup.set(s.group, n);
    else this.perGroup.delete(s.group);
  }
}

/** The channels an entry hosts or streams in. */
export function channelsIn(e: TrackerEntry): Set<string> {
  return new Set([...e.hosts, ...e.live.map((l) => l.channelId)]);
}

/** Usernames compare without case, as accounts do. */
export function sameUser(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

const EMPTY: ReadonlySet<string> = new Set();

function userKey(e: { username: string; role: Role }): string {
  return `${e.role}:${e.username.toLowerCase()}`;
}

function shareAny(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  for (const x of small) if (large.has(x)) return true;
  return false;
}

/** True when two cuts of an entry say the same. */
export function sameView(a: TrackerEntry, b: TrackerEntry): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

function addTo(map: Map<string, Set<string>>, k: string, v: string): void {
  let set = map.get(k);
  if (!set) map.set(k, (set = new Set()));
  set.add(v);
}

function removeFrom(map: Map<string, Set<string>>, k: string, v: string): void {
  const set = map.get(k);
  set?.delete(v);
  if (set?.size === 0) map.delete(k);
}
