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
}

interface LinkRecord {
  link: HostLink;
  up: boolean;
  channels: string[];
}

const RETRY_MS = 2000;

/** The member's host links, one per host entry. */
export class ChannelSources {
  private readonly entries = new Map<string, TrackerEntry>();
  private readonly links = new Map<string, LinkRecord>();
  private retry: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly deps: SourcesDeps) {}

  /** Replaces the known tracker list (after get_list). */
  setTracker(peers: readonly TrackerEntry[]): void {
    this.entries.clear();
    for (const e of peers) this.entries.set(entryKey(e), e);
    this.refresh();
  }

  upsert(e: TrackerEntry): void {
    this.entries.set(entryKey(e), e);
    this.refresh();
  }

  remove(e: TrackerEntry): void {
    this.entries.delete(entryKey(e));
    this.refresh();
  }

  /** The tracker list as last heard. */
  list(): TrackerEntry[] {
    return [...this.entries.values()];
  }

  /** True when `link` is the up link that serves `channelId` (its pushes may be stored). */
  serves(link: HostLink, channelId: string): boolean {
    return this.linkFor(channelId) === link;
  }

  /** The up link that serves a channel, if any. */
  linkFor(channelId: string): HostLink | undefined {
    for (const r of this.links.values()) if (r.up && r.channels.includes(channelId)) return r.link;
    return undefined;
  }

  /**
   * Resolves once no link that would serve `channelId` is still connecting (it is up, or it
   * failed), or after `ms`: a member reads from the server only when the host is not coming.
   */
  async settle(channelId: string, ms = 3000): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const connecting = [...this.links.values()].some(
        (r) => !r.up && r.channels.includes(channelId),
      );
      if (!connecting) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Opens links to hosts that serve our channels, closes links nobody needs. */
  refresh(): void {
    if (this.closed) return;
    const loggedIn = this.deps.loggedIn();
    const own = this.deps.ownSession();
    const wanted = new Map<string, { entry: TrackerEntry; channels: string[] }>();
    if (loggedIn) {
      for (const c of this.deps.channels()) {
        const e = this.hostOf(c, own);
        if (!e) continue;
        const key = entryKey(e);
        const w = wanted.get(key) ?? { entry: e, channels: [] };
        w.channels.push(c.id);
        wanted.set(key, w);
      }
    }
    for (const [key, r] of this.links) {
      if (wanted.has(key)) continue;
      this.links.delete(key);
      r.link.stop();
      if (r.up) this.deps.linkDown(r.channels);
    }
    for (const [key, w] of wanted) {
      const r = this.links.get(key);
      if (!r) this.open(key, w.entry, w.channels);
      else if (!sameSet(r.channels, w.channels)) {
        const gone = r.channels.filter((id) => !w.channels.includes(id));
        r.channels = w.channels;
        if (r.up) {
          this.deps.linkUp(r.link, w.channels);
          if (gone.length) this.deps.linkDown(gone);
        }
      }
    }
  }

  /** Closes every link. */
  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    for (const r of this.links.values()) r.link.stop();
    this.links.clear();
  }

  private hostOf(c: Channel, own: string | undefined): TrackerEntry | undefined {
    for (const e of this.entries.values()) {
      if (e.sessionId === own || e.status !== 'online') continue;
      if (e.username.toLowerCase() === c.owner.toLowerCase() && e.hosts.includes(c.id)) return e;
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
      this.deps.linkUp(link, r.channels);
    });
    link.on('down', () => {
      const wasUp = r.up;
      r.up = false;
      if (this.links.get(key) !== r) return; // closed on purpose, already handled
      this.links.delete(key);
      if (wasUp) this.deps.linkDown(r.channels);
      this.scheduleRetry();
    });
    link.on('event', (name: string, body: { message: StoredMessage }) => {
      if (name === 'message') this.deps.message(link, body.message);
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
