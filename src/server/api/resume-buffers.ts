/**
 * What the REST gateway keeps for resume (docs/REST.md "Resume"), and its bound. An event is
 * encoded once (`SharedEvent`, the frame without its seq) and every session that keeps it holds
 * a reference, not a copy. What an account's sessions keep together (an event several of them
 * keep counting once) is bounded, and so is what the instance keeps: past either, the oldest
 * detached sessions are dropped first (they can no longer resume: `invalid_session`), then live
 * sessions keep fewer events (a resume from before what they still hold is refused alike).
 */

/** Bytes counted for each event an account keeps beyond its encoding (the event, its map entry). */
const EVENT_OVERHEAD = 128;
/** Bytes counted for each reference a session holds (a slot of its buffer). */
const REFERENCE_BYTES = 8;

/** An event encoded once: everything of its frame after the seq, shared by every session. */
export interface SharedEvent {
  /** `,"type":…,"data":…}`: the frame is `{"t":"event","seq":` + seq + this. */
  readonly tail: string;
  /** What keeping it costs an account (its encoding and EVENT_OVERHEAD). */
  readonly bytes: number;
}

/** Encodes event `type` with `data` once, for every session that sends or keeps it. */
export function sharedEvent(type: string, data: unknown): SharedEvent {
  const body = data === undefined ? '' : `,"data":${JSON.stringify(data)}`;
  const tail = `,"type":${JSON.stringify(type)}${body}}`;
  return { tail, bytes: Buffer.byteLength(tail) + EVENT_OVERHEAD };
}

/** The frame of event `e` numbered `seq` in its session. */
export function eventText(seq: number, e: SharedEvent): string {
  return `{"t":"event","seq":${seq}${e.tail}`;
}

/** The bounds of a ResumeBudget. */
export interface ResumeLimits {
  /** Events one session keeps at most. */
  bufferEvents: number;
  /** Bytes the sessions of one account keep together. */
  accountBytes: number;
  /** Bytes the sessions of this instance keep together. */
  instanceBytes: number;
}

/** What one account's sessions keep: each event once, however many of them keep it. */
interface AccountUsage {
  readonly key: string;
  bytes: number;
  readonly held: Map<SharedEvent, number>;
  readonly buffers: Set<ResumeBuffer>;
  /** Its sessions whose socket is away, the one that went first first. */
  readonly detached: Set<ResumeBuffer>;
}

/** One session's numbered events, kept for a resume: seq `first` is `events[0]`. */
export class ResumeBuffer {
  /** The seq of the oldest event still kept (of the next one when none is). */
  first = 1;
  readonly events: SharedEvent[] = [];
  /** Released: its session ended, or its events were dropped; it keeps nothing more. */
  released = false;

  constructor(
    readonly usage: AccountUsage,
    /** Ends the session when its events are dropped (it can no longer resume). */
    readonly drop: () => void,
  ) {}

  /** The seq of the last event (0 before any). */
  get seq(): number {
    return this.first + this.events.length - 1;
  }

  /** Whether a client that read up to `seq` can be sent every event after it. */
  covers(seq: number): boolean {
    return Number.isInteger(seq) && seq <= this.seq && seq >= this.first - 1;
  }

  /** The frames of the events after `seq`. */
  *after(seq: number): Iterable<string> {
    for (let i = Math.max(0, seq + 1 - this.first); i < this.events.length; i++)
      yield eventText(this.first + i, this.events[i]!);
  }
}

/** Every session's resume buffer on one instance, and what they may keep. */
export class ResumeBudget {
  private readonly accounts = new Map<string, AccountUsage>();
  /** Sessions whose socket is away, across accounts, the one that went first first. */
  private readonly detached = new Set<ResumeBuffer>();
  private bytes = 0;

  constructor(private readonly limits: ResumeLimits) {}

  /** What the instance keeps, in counted bytes. */
  get size(): number {
    return this.bytes;
  }

  /** What `account`'s sessions keep, in counted bytes. */
  sizeOf(account: string): number {
    return this.accounts.get(account.toLowerCase())?.bytes ?? 0;
  }

  /** A new session's buffer; `drop` ends the session when its events must go. */
  open(account: string, drop: () => void): ResumeBuffer {
    const key = account.toLowerCase();
    let usage = this.accounts.get(key);
    if (!usage) {
      usage = { key, bytes: 0, held: new Map(), buffers: new Set(), detached: new Set() };
      this.accounts.set(key, usage);
    }
    const b = new ResumeBuffer(usage, drop);
    usage.buffers.add(b);
    return b;
  }

  /**
   * Numbers `e` in `b` and keeps it; then, past a bound, drops the oldest detached sessions
   * (the account's own for its bound, any account's for the instance's), and, with none left,
   * the oldest events of `b` itself. Returns its seq.
   */
  push(b: ResumeBuffer, e: SharedEvent): number {
    if (b.released) {
      // Nothing is kept for a session that ended; it still numbers what it is handed.
      b.first++;
      return b.seq;
    }
    b.events.push(e);
    const seq = b.seq;
    this.hold(b.usage, e);
    if (b.events.length > this.limits.bufferEvents) this.shift(b);
    while (b.usage.bytes > this.limits.accountBytes)
      if (!this.dropOldest(b.usage.detached) && !this.trim(b, b.usage.buffers)) break;
    while (this.bytes > this.limits.instanceBytes)
      if (!this.dropOldest(this.detached) && !this.trim(b, this.allBuffers())) break;
    return seq;
  }

  /** `b`'s socket went: it is dropped before the live ones when a bound is reached. */
  detach(b: ResumeBuffer): void {
    if (b.released) return;
    b.usage.detached.add(b);
    this.detached.add(b);
  }

  /** `b` has a socket again. */
  attach(b: ResumeBuffer): void {
    b.usage.detached.delete(b);
    this.detached.delete(b);
  }

  /** `b`'s session ended: what it kept is let go. */
  release(b: ResumeBuffer): void {
    if (b.released) return;
    b.released = true;
    this.attach(b);
    while (b.events.length > 0) this.shift(b);
    const u = b.usage;
    u.buffers.delete(b);
    if (u.buffers.size === 0 && this.accounts.get(u.key) === u) this.accounts.delete(u.key);
  }

  /** Ends the session that went first of `from`; false when there is none. */
  private dropOldest(from: Set<ResumeBuffer>): boolean {
    const oldest = from.values().next().value;
    if (oldest === undefined) return false;
    this.release(oldest);
    oldest.drop();
    return true;
  }

  /**
   * Lets go of the oldest event of `b` (or else of the first of `others` that keeps one) in
   * every session of its account that has it first: an event its sessions share is then let go
   * of at once, not one reference at a time. False when none keeps an event.
   */
  private trim(b: ResumeBuffer, others: Iterable<ResumeBuffer>): boolean {
    const from = b.events.length > 0 ? b : firstKeeping(others);
    if (!from) return false;
    const e = from.events[0];
    for (const o of from.usage.buffers) if (o.events[0] === e) this.shift(o);
    return true;
  }

  private *allBuffers(): Iterable<ResumeBuffer> {
    for (const u of this.accounts.values()) yield* u.buffers;
  }

  /** Lets go of `b`'s oldest event. */
  private shift(b: ResumeBuffer): void {
    const e = b.events.shift()!;
    b.first++;
    const u = b.usage;
    const n = u.held.get(e)!;
    let freed = REFERENCE_BYTES;
    if (n === 1) {
      u.held.delete(e);
      freed += e.bytes;
    } else u.held.set(e, n - 1);
    u.bytes -= freed;
    this.bytes -= freed;
  }

  private hold(u: AccountUsage, e: SharedEvent): void {
    const n = u.held.get(e) ?? 0;
    u.held.set(e, n + 1);
    const added = REFERENCE_BYTES + (n === 0 ? e.bytes : 0);
    u.bytes += added;
    this.bytes += added;
  }
}

/** The first of `buffers` that keeps an event. */
function firstKeeping(buffers: Iterable<ResumeBuffer>): ResumeBuffer | undefined {
  for (const b of buffers) if (b.events.length > 0) return b;
  return undefined;
}
