/**
 * Live events for the local API (`GET /api/events`): each gets an increasing id, and the last
 * ones are kept so that a client that lost its stream resumes with `since=<id>` (or the SSE
 * `Last-Event-ID` header) without missing anything still in the window.
 */

/** Names of the events the local API streams. */
export type LocalEventName =
  | 'message'
  | 'presence'
  | 'members'
  | 'sync'
  | 'connection'
  | 'status'
  | 'refused'
  | 'stream'
  | 'typing'
  /** A file's fetch or backup progressed, or completed (docs/PROTOCOL.md §9). */
  | 'file'
  /** A user's avatar changed (`{username, hash, ts}`): show the new one. */
  | 'avatar'
  /**
   * A channel's settings or the account's membership changed (created, joined, left, renamed,
   * removed, deleted; here, on another page or on another of its devices): re-read it.
   */
  | 'channel'
  /** A direct message or notice was stored (`{conversationId, message}`). */
  | 'dm'
  /** An own direct message changed state (`{conversationId, id, state}`). */
  | 'dm_state'
  /** The conversation list changed (new one, counts, verification, blocks): re-read it. */
  | 'dms';

/** One event as streamed. */
export interface LocalEvent {
  id: number;
  event: LocalEventName;
  data: unknown;
}

/** A bounded, replayable event stream. */
export class EventHub {
  private readonly ring: LocalEvent[] = [];
  private readonly listeners = new Set<(e: LocalEvent) => void>();
  /**
   * Ids go on increasing across restarts of the peer: they start from the clock (microseconds'
   * worth of room per millisecond), so that a reader's id from before a restart is lower than
   * every id of this run and it gets all that is kept, however much was told before it came back.
   */
  private nextId: number;

  constructor(
    private readonly keep = 1000,
    startAt = Date.now() * 1000,
  ) {
    this.nextId = startAt;
  }

  emit(event: LocalEventName, data: unknown): void {
    const e = { id: this.nextId++, event, data };
    this.ring.push(e);
    if (this.ring.length > this.keep) this.ring.shift();
    for (const l of this.listeners) l(e);
  }

  /**
   * Empties the window (ids go on increasing): what was told before cannot be replayed with
   * `since=`. Another account logged in, and the last one's events are not its to read.
   */
  forget(): void {
    this.ring.length = 0;
  }

  /** Events after `since` still in the window, oldest first. */
  since(since: number): LocalEvent[] {
    return this.ring.filter((e) => e.id > since);
  }

  /** The event of id `id`, if it is still in the window. */
  get(id: number): LocalEvent | undefined {
    const first = this.ring[0];
    return first ? this.ring[id - first.id] : undefined;
  }

  /** Id of the oldest event still in the window (`lastId + 1` when it is empty). */
  get oldestId(): number {
    return this.ring[0]?.id ?? this.nextId;
  }

  /** Subscribes; returns the unsubscribe function. */
  listen(fn: (e: LocalEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Id of the latest event (one below the first id before any). */
  get lastId(): number {
    return this.nextId - 1;
  }
}
