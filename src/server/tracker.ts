/**
 * The tracker list (SPEC §2): one entry per logged-in peer session that submitted its info,
 * unique by (ip and port, user name, session id). Pure logic: the server wires it to sockets.
 *
 * Invisible entries are kept (the user works normally) but are shown only to the same user;
 * to everyone else an invisible entry does not exist: not in lists, not in events.
 */
import { entryKey, type TrackerEntry } from '../protocol/common.js';

export { entryKey };

/** What other users must be told after a change: an entry appeared or disappeared for them. */
export interface VisibilityChange {
  joined?: TrackerEntry;
  left?: TrackerEntry;
}

/** True when users other than the entry's own can see it. */
export function isPublic(e: TrackerEntry): boolean {
  return e.status === 'online';
}

/** The tracker's list of entries. */
export class TrackerList {
  private readonly entries = new Map<string, TrackerEntry>();

  /** Adds or replaces an entry (add_list). Returns what became visible or hidden to others. */
  upsert(entry: TrackerEntry): VisibilityChange {
    const key = entryKey(entry);
    const before = this.entries.get(key);
    this.entries.set(key, entry);
    return diff(before, entry);
  }

  /** Removes an entry; returns the visible entry that left, if any. */
  remove(key: string): VisibilityChange {
    const before = this.entries.get(key);
    if (!before) return {};
    this.entries.delete(key);
    return diff(before, undefined);
  }

  get(key: string): TrackerEntry | undefined {
    return this.entries.get(key);
  }

  /** The list as `viewer` may see it (get_list): public entries and the viewer's own. */
  visibleTo(viewer: string): TrackerEntry[] {
    const out: TrackerEntry[] = [];
    for (const e of this.entries.values()) {
      if (isPublic(e) || sameUser(e.username, viewer)) out.push(e);
    }
    return out;
  }

  get size(): number {
    return this.entries.size;
  }
}

function diff(before: TrackerEntry | undefined, after: TrackerEntry | undefined): VisibilityChange {
  const was = before !== undefined && isPublic(before);
  const is = after !== undefined && isPublic(after);
  if (!was && is) return { joined: after };
  if (was && !is) return { left: before };
  // Still visible, but what it hosts or streams changed: announce it again so members find it.
  if (
    was &&
    is &&
    (before.hosts.join() !== after.hosts.join() || liveKey(before) !== liveKey(after))
  )
    return { joined: after };
  return {};
}

/** Usernames compare without case, as accounts do. */
export function sameUser(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

function liveKey(e: TrackerEntry): string {
  return e.live.map((l) => l.streamId).join();
}
