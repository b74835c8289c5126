/**
 * Source selection on a member (SPEC §5): for each joined channel hosted elsewhere, read and
 * post through its host while a P2P link to it is up, through the server otherwise. It follows
 * the tracker list: a host appears (peer_joined with the channel in `hosts`) → connect; the link
 * drops or fails → the server serves, and the host is tried again every few seconds while the
 * tracker still lists it.
 */
import {
  entryKey,
  type Channel,
  type StoredMessage,
  type TrackerEntry,
} from '../protocol/common.js';
import type { ConnectionLog } from '../shared/connlog.js';
import type { HostLink } from './host-link.js';
import type { TypingEvent } from '../protocol/typing-ops.js';

/** What the selector needs from its node. */
export interface SourcesDeps {
  log: ConnectionLog;
  /** A P2P link to a host, with this session's credentials; undefined while logged out. */
  dial(entry: TrackerEntry): HostLink | undefined;
  /** True while logged in (links can be made). */
  loggedIn(): boolean;
  ownSession(): string | undefined;
  /** Joined channels that are hosted elsewhere. */
  channels(): Channel[];
  /** A link to a host is up: these channels are now read from it. */
  linkUp(link: HostLink, channelIds: string[]): void;
  /** A link went down: these channels fall back to the server. */
  linkDown(channelIds: string[]): void;
  /** A message pushed by a host. */
  message(link: HostLink, message: StoredMessage): void;
  /** A typing state pushed by a host. */
  typing(link: HostLink, e: TypingEvent): void;
}

interface LinkRecord {
  link: HostLink;
  up: boolean;
  channels: string[];
}

/** How long after a link to a host dropped or failed it is tried again. */
export const RETRY_MS = 2000;

/** How long a read or the outbox waits at most for a link to a host that is being made. */
export const SETTLE_MS = 3000;

/**
 * The member's host links, one per host entry. Entries are indexed by the channels they host, so
 * that a tracker event costs only the channels that entry hosts (of those we read); everything is
 * looked at again only on `setTracker` (a fresh list) and `refresh` (our channels changed).
 */
export class ChannelSources {
  private readonly entries = new Map<string, TrackerEntry>();
  /** Entry keys by channel hosted. */
  private readonly byHosted = new Map<string, Set<string>>();
  /** Our channels hosted elsewhere, as of the last refresh. */
  private mine = new Map<string, Channel>();
  /** The host entry each of our channels is read from. */
  private readonly assigned = new Map<string, string>();
  /** The channels each host entry serves us. */
  private readonly served = new Map<string, Set<string>>();
  private readonly links = new Map<string, LinkRecord>();
  private retry: NodeJS.Timeout | undefined;
  private closed = false;
  /** True once a tracker list was heard in this session (false again when offline or logged out). */
  private listed = false;
  /** Hosts (entry keys) whose last link failed before it came up: nothing waits for them. */
  private readonly failing = new Set<string>();

  constructor(private readonly deps: SourcesDeps) {}

  /** Replaces the known tracker list (after get_list). */
  setTracker(peers: readonly TrackerEntry[]): void {
    this.listed = true;
    this.entries.clear();
    this.byHosted.clear();
    for (const e of peers) this.put(e);
    this.refresh();
  }

  /** Forgets the tracker list and every host link (offline, or logged out) until the next one. */
  forget(): void {
    this.setTracker([]);
    this.listed = false;
  }

  /**
   * No tracker list is on its way (the steps after a login or resume stopped before it): what
   * waits for one (`settleAll` with `listing`) stops waiting; the hosts stay unknown until one.
   */
  noListComing(): void {
    this.listed = true;
  }

  /** True once a tracker list was heard since the last `forget` (hosts are known). */
  get hasList(): boolean {
    return this.listed;
  }

  upsert(e: TrackerEntry): void {
    const before = this.entries.get(entryKey(e));
    this.put(e);
    this.reassign([...(before?.hosts ?? []), ...e.hosts]);
  }

  remove(e: TrackerEntry): void {
    const before = this.entries.get(entryKey(e));
    if (!before) return;
    this.drop(before);
    this.reassign(before.hosts);
  }

  /** The tracker list as last heard. */
  list(): TrackerEntry[] {
    return [...this.entries.values()];
  }

  /** The entry with this key, as last heard. */
  get(key: string): TrackerEntry | undefined {
    return this.entries.get(key);
  }

  /** True when `link` is the up link that serves `channelId` (its pushes may be stored). */
  serves(link: HostLink, channelId: string): boolean {
    return this.linkFor(channelId) === link;
  }

  /** The up link that serves a channel, if any. */
  linkFor(channelId: string): HostLink | undefined {
    const key = this.assigned.get(channelId);
    const r = key === undefined ? undefined : this.links.get(key);
    return r?.up && r.channels.includes(channelId) ? r.link : undefined;
  }

  /**
   * Resolves once no link that would serve `channelId` is still connecting (it is up, or it
   * failed), or after `ms`: a member reads from the server only when the host is not coming.
   */
  async settle(channelId: string, ms = SETTLE_MS): Promise<void> {
    await this.settleAll([channelId], ms);
  }

  /**
   * `settle` for several channels at once, with one deadline; with `listing`, it first waits
   * for the tracker list (one is on its way: the server link just came up), since without it no
   * host is known.
   */
  async settleAll(channelIds: Iterable<string>, ms = SETTLE_MS, listing = false): Promise<void> {
    const deadline = Date.now() + ms;
    const ids = [...new Set(channelIds)];
    while (Date.now() < deadline && !this.closed) {
      if ((this.listed || !listing) && !ids.some((id) => this.connecting(id))) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** True while the link that would serve `channelId` is still being made. */
  private connecting(channelId: string): boolean {
    const key = this.assigned.get(channelId);
    const r = key === undefined ? undefined : this.links.get(key);
    return !!r && !r.up && !this.failing.has(key!) && r.channels.includes(channelId);
  }

  /** Reads our channels again, opens links to hosts that serve them, closes unneeded ones. */
  refresh(): void {
    if (this.closed) return;
    const loggedIn = this.deps.loggedIn();
    this.mine = new Map(loggedIn ? this.deps.channels().map((c) => [c.id, c]) : []);
    this.reassign([...this.mine.keys(), ...this.assigned.keys()]);
    // Links that dropped are opened again (the retry timer calls this).
    for (const key of new Set([...this.links.keys(), ...this.served.keys()])) this.syncLink(key);
  }

  /** Closes every link. */
  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    for (const r of this.links.values()) r.link.stop();
    this.links.clear();
  }

  private put(e: TrackerEntry): void {
    const key = entryKey(e);
    const before = this.entries.get(key);
    if (before) this.drop(before);
    this.failing.delete(key); // announced again: worth a wait
    this.entries.set(key, e);
    for (const id of e.hosts) {
      let set = this.byHosted.get(id);
      if (!set) this.byHosted.set(id, (set = new Set()));
      set.add(key);
    }
  }

  private drop(e: TrackerEntry): void {
    const key = entryKey(e);
    this.entries.delete(key);
    for (const id of e.hosts) {
      const set = this.byHosted.get(id);
      set?.delete(key);
      if (set?.size === 0) this.byHosted.delete(id);
    }
  }

  /** Chooses the host entry of each of these channels again; updates the links that changed. */
  private reassign(channelIds: Iterable<string>): void {
    if (this.closed) return;
    const own = this.deps.ownSession();
    const touched = new Set<string>();
    for (const id of new Set(channelIds)) {
      const c = this.mine.get(id);
      const e = c && this.hostOf(c, own);
      const key = e && entryKey(e);
      const old = this.assigned.get(id);
      if (old === key) continue;
      if (old !== undefined) {
        const set = this.served.get(old)!;
        set.delete(id);
        if (set.size === 0) this.served.delete(old);
        touched.add(old);
      }
      if (key === undefined) {
        this.assigned.delete(id);
        continue;
      }
      this.assigned.set(id, key);
      let set = this.served.get(key);
      if (!set) this.served.set(key, (set = new Set()));
      set.add(id);
      touched.add(key);
    }
    for (const key of touched) this.syncLink(key);
  }

  /** Makes the link to one host entry match the channels it should serve us. */
  private syncLink(key: string): void {
    const want = [...(this.served.get(key) ?? [])];
    const r = this.links.get(key);
    if (want.length === 0) {
      if (!r) return;
      this.links.delete(key);
      r.link.stop();
      if (r.up) this.deps.linkDown(r.channels);
      return;
    }
    const entry = this.entries.get(key);
    if (!r) {
      if (entry) this.open(key, entry, want);
      return;
    }
    if (sameSet(r.channels, want)) return;
    const gone = r.channels.filter((id) => !want.includes(id));
    r.channels = want;
    if (r.up) {
      this.deps.linkUp(r.link, want);
      if (gone.length) this.deps.linkDown(gone);
    }
  }

  /** The online entry of the channel's owner that hosts it (the current one if still good). */
  private hostOf(c: Channel, own: string | undefined): TrackerEntry | undefined {
    const keys = this.byHosted.get(c.id);
    if (!keys) return undefined;
    const ok = (e: TrackerEntry | undefined): e is TrackerEntry =>
      !!e &&
      e.sessionId !== own &&
      e.status === 'online' &&
      e.username.toLowerCase() === c.owner.toLowerCase() &&
      e.hosts.includes(c.id);
    const current = this.assigned.get(c.id);
    if (current !== undefined && keys.has(current) && ok(this.entries.get(current)))
      return this.entries.get(current);
    for (const key of keys) {
      const e = this.entries.get(key);
      if (ok(e)) return e;
    }
    return undefined;
  }

  private open(key: string, entry: TrackerEntry, channels: string[]): void {
    const link = this.deps.dial(entry);
    if (!link) return;
    const r: LinkRecord = { link, up: false, channels };
    this.links.set(key, r);
    link.on('up', () => {
      r.up = true;
      this.failing.delete(key);
      this.deps.linkUp(link, r.channels);
    });
    link.on('down', () => {
      const wasUp = r.up;
      r.up = false;
      if (this.links.get(key) !== r) return; // closed on purpose, already handled
      // Failed before it came up: its retries are not waited for (a post or a read goes to
      // the server at once) until a link to it comes up or its entry changes.
      if (!wasUp) this.failing.add(key);
      this.links.delete(key);
      if (wasUp) this.deps.linkDown(r.channels);
      this.scheduleRetry();
    });
    link.on('event', (name: string, body: unknown) => {
      if (name === 'message') this.deps.message(link, (body as { message: StoredMessage }).message);
      else if (name === 'typing') this.deps.typing(link, body as TypingEvent);
    });
    void link.start();
  }

  private scheduleRetry(): void {
    if (this.retry || this.closed) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.refresh();
    }, RETRY_MS);
    this.retry.unref();
  }
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}
