/**
 * The tracker across server instances (issue 16 §3, PROTOCOL.md §3.7). Every instance keeps the
 * whole list: the entries of its own connections, and a replica of the other instances' entries
 * built from their `tracker` events on the bus. So `get_list` and presence pushes are the same
 * on every instance, and the caps per account and per address hold across the deployment.
 *
 * Instances say they are alive every `aliveMs`; one silent for `deadAfterMs` (killed, cut off
 * from the bus) has its entries dropped everywhere, as if each of its sessions had left. An
 * instance that starts, or whose bus link comes back, asks the others for their entries
 * (`instance_up`); each answers with a snapshot of its own (`tracker_sync`, in parts), which
 * replaces what the asker held of it.
 */
import { randomBytes } from 'node:crypto';
import { entryKey, type TrackerEntry } from '../protocol/common.js';
import type { EventBus } from './bus.js';
import type { BusEvent } from './bus-events.js';
import type { EntryChange, TrackerList } from './tracker.js';

/** Entries per `tracker_sync` part: well under the bus's 1 MiB per event. */
const SYNC_PART = 500;

type Control = Extract<BusEvent, { kind: 'instance_up' | 'instance_alive' | 'tracker_sync' }>;

export interface TrackerReplicaDeps {
  tracker: TrackerList;
  bus: EventBus;
  /** A change of the list this instance's sessions may have to hear of. */
  changed(change: EntryChange): void;
  aliveMs: number;
  deadAfterMs: number;
}

/** The other instances' entries, kept in this instance's TrackerList. */
export class TrackerReplica {
  /** Entry key → the instance whose connection it belongs to (absent: this instance's). */
  private readonly origin = new Map<string, string>();
  /** Instance → when it was last heard from. */
  private readonly heard = new Map<string, number>();
  /** Snapshots being received: `${instance} ${snapshot}` → the keys seen so far. */
  private readonly incoming = new Map<string, Set<string>>();
  private readonly timer: NodeJS.Timeout;
  private readonly offReconnect: () => void;

  constructor(private readonly d: TrackerReplicaDeps) {
    this.timer = setInterval(() => this.tick(), d.aliveMs);
    this.timer.unref();
    this.offReconnect = d.bus.onReconnect(() => this.hello());
    this.hello();
  }

  stop(): void {
    clearInterval(this.timer);
    this.offReconnect();
  }

  /** Instances heard from within `deadAfterMs` (this one excluded). */
  get peers(): number {
    return this.heard.size;
  }

  /**
   * A `tracker` event from another instance: applied to the list. Returns the change as this
   * instance's list saw it (what its sessions may have to hear of), or undefined for none.
   */
  remote(e: Extract<BusEvent, { kind: 'tracker' }>, from: string): EntryChange | undefined {
    this.heardFrom(from);
    if (e.after) {
      const key = entryKey(e.after);
      if (e.before && entryKey(e.before) !== key) this.drop(entryKey(e.before), from);
      this.origin.set(key, from);
      return this.d.tracker.upsert(e.after);
    }
    const key = entryKey(e.before!);
    if (this.origin.get(key) !== from) return undefined;
    this.origin.delete(key);
    return this.d.tracker.remove(key);
  }

  /** A change this instance made to its own list: the entry is its own from now on. */
  local(e: Extract<BusEvent, { kind: 'tracker' }>): EntryChange {
    if (e.after) this.origin.delete(entryKey(e.after));
    return e;
  }

  /** `instance_up`, `instance_alive` and `tracker_sync` from another instance. */
  control(e: Control, from: string): void {
    this.heardFrom(from);
    if (e.kind === 'instance_up') this.sendSnapshot();
    else if (e.kind === 'tracker_sync') this.snapshotPart(e, from);
  }

  /** Says this instance is here and asks the others for their entries (start, bus back). */
  private hello(): void {
    this.d.bus.publish({ kind: 'instance_up' });
    // Others may have dropped this instance's entries while it was cut off: send them again.
    this.sendSnapshot();
  }

  private tick(): void {
    this.d.bus.publish({ kind: 'instance_alive' });
    const deadline = Date.now() - this.d.deadAfterMs;
    for (const [instance, at] of this.heard) {
      if (at >= deadline) continue;
      this.heard.delete(instance);
      for (const [key, from] of [...this.origin]) if (from === instance) this.drop(key, instance);
      for (const k of [...this.incoming.keys()])
        if (k.startsWith(`${instance} `)) this.incoming.delete(k);
    }
  }

  private heardFrom(instance: string): void {
    this.heard.set(instance, Date.now());
  }

  /** This instance's own entries, in parts, as one snapshot. */
  private sendSnapshot(): void {
    const own: TrackerEntry[] = [];
    for (const e of this.d.tracker.all()) if (!this.origin.has(entryKey(e))) own.push(e);
    const snapshot = randomBytes(9).toString('base64url');
    for (let i = 0; i === 0 || i < own.length; i += SYNC_PART)
      this.d.bus.publish({
        kind: 'tracker_sync',
        snapshot,
        entries: own.slice(i, i + SYNC_PART),
        last: i + SYNC_PART >= own.length,
      });
  }

  /** One part of another instance's snapshot; the last part retires what it no longer has. */
  private snapshotPart(e: Extract<Control, { kind: 'tracker_sync' }>, from: string): void {
    const id = `${from} ${e.snapshot}`;
    const seen = this.incoming.get(id) ?? new Set<string>();
    for (const entry of e.entries) {
      const key = entryKey(entry);
      seen.add(key);
      // An entry this instance holds as its own stays its own.
      const owner = this.origin.get(key);
      if (owner === undefined && this.d.tracker.get(key)) continue;
      const now = this.d.tracker.get(key);
      if (owner === from && now && JSON.stringify(now) === JSON.stringify(entry)) continue;
      this.origin.set(key, from);
      this.d.changed(this.d.tracker.upsert(entry));
    }
    if (!e.last) {
      this.incoming.set(id, seen);
      return;
    }
    this.incoming.delete(id);
    for (const [key, owner] of [...this.origin])
      if (owner === from && !seen.has(key)) this.drop(key, from);
  }

  private drop(key: string, from: string): void {
    if (this.origin.get(key) !== from) return;
    this.origin.delete(key);
    const change = this.d.tracker.remove(key);
    if (change.before) this.d.changed(change);
  }
}
