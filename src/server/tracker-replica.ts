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

/** Encoded bytes of entries per `tracker_sync` part: well under the bus's 1 MiB per event. */
const SYNC_PART_BYTES = 256 * 1024;

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
  /** Snapshots being received: `${instance} ${snapshot}` → the keys and parts seen so far. */
  private readonly incoming = new Map<string, { keys: Set<string>; parts: Set<number> }>();
  /** When this instance last asked the others for their entries, and last ticked. */
  private askedAt = 0;
  private tickedAt = Date.now();
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
      // A session that is on a connection here (it moved, and this side has not seen the old
      // connection close yet) stays this instance's: its close will say so.
      if (this.isLocal(key)) return undefined;
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
    const known = this.heard.has(from);
    this.heardFrom(from);
    // One declared dead and heard again (a partition, a stalled loop) has lost this one's
    // entries, and this one its: ask again (at most once per `aliveMs`).
    if (!known && e.kind === 'instance_alive' && Date.now() - this.askedAt > this.d.aliveMs)
      this.hello();
    if (e.kind === 'instance_up') this.sendSnapshot();
    else if (e.kind === 'tracker_sync') this.snapshotPart(e, from);
  }

  /** Says this instance is here and asks the others for their entries (start, bus back). */
  private hello(): void {
    this.askedAt = Date.now();
    this.d.bus.publish({ kind: 'instance_up' });
    // Others may have dropped this instance's entries while it was cut off: send them again.
    this.sendSnapshot();
  }

  private tick(): void {
    this.d.bus.publish({ kind: 'instance_alive' });
    const now = Date.now();
    const late = now - this.tickedAt > 2 * this.d.aliveMs;
    this.tickedAt = now;
    // A tick this late means this event loop stalled: the others' heartbeats may still be
    // waiting to be read, so nobody is declared dead this round.
    if (late) return;
    const deadline = now - this.d.deadAfterMs;
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

  private isLocal(key: string): boolean {
    return !this.origin.has(key) && this.d.tracker.get(key) !== undefined;
  }

  /** This instance's own entries, in numbered parts cut by size, as one snapshot. */
  private sendSnapshot(): void {
    const parts: TrackerEntry[][] = [[]];
    let bytes = 0;
    for (const e of this.d.tracker.all()) {
      if (this.origin.has(entryKey(e))) continue;
      const size = JSON.stringify(e).length;
      if (bytes + size > SYNC_PART_BYTES && parts[parts.length - 1]!.length > 0) {
        parts.push([]);
        bytes = 0;
      }
      parts[parts.length - 1]!.push(e);
      bytes += size;
    }
    const snapshot = randomBytes(9).toString('base64url');
    parts.forEach((entries, part) =>
      this.d.bus.publish({ kind: 'tracker_sync', snapshot, entries, part, parts: parts.length }),
    );
  }

  /** One part of another instance's snapshot; the last part retires what it no longer has. */
  private snapshotPart(e: Extract<Control, { kind: 'tracker_sync' }>, from: string): void {
    const id = `${from} ${e.snapshot}`;
    let got = this.incoming.get(id);
    if (!got) {
      // Snapshots that lost a part never complete: keep only the latest few.
      if (this.incoming.size >= 64) this.incoming.delete(this.incoming.keys().next().value!);
      this.incoming.set(id, (got = { keys: new Set(), parts: new Set() }));
    }
    got.parts.add(e.part);
    for (const entry of e.entries) {
      const key = entryKey(entry);
      got.keys.add(key);
      // Only what is absent, or already the sender's, is taken: an entry this instance holds
      // as its own, or that another instance announced since, is not the snapshot's to set.
      const owner = this.origin.get(key);
      const now = this.d.tracker.get(key);
      if (now && owner !== from) continue;
      if (now && JSON.stringify(now) === JSON.stringify(entry)) continue;
      this.origin.set(key, from);
      this.d.changed(this.d.tracker.upsert(entry));
    }
    if (got.parts.size < e.parts) return;
    this.incoming.delete(id);
    for (const [key, owner] of [...this.origin])
      if (owner === from && !got.keys.has(key)) this.drop(key, from);
  }

  private drop(key: string, from: string): void {
    if (this.origin.get(key) !== from) return;
    this.origin.delete(key);
    const change = this.d.tracker.remove(key);
    if (change.before) this.d.changed(change);
  }
}
