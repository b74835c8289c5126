/**
 * Hybrid logical clock (Kulkarni et al., 2014): readings (ts, lc) where ts is close to the wall
 * clock in milliseconds and lc breaks ties, so that every reading a node makes is greater than
 * every reading it made or saw before, whatever the wall clock does.
 */
import { v7 as uuidv7 } from 'uuid';
import { MESSAGE_LIMITS } from './limits.js';

/** One reading of the clock. */
export interface HlcTime {
  ts: number;
  lc: number;
}

const MAX_LC = 0xffff;

/** A node's clock. `now` is injectable so tests can drive the wall clock. */
export class HybridClock {
  private last: HlcTime = { ts: 0, lc: 0 };

  constructor(
    private readonly now: () => number = Date.now,
    /** ε: readings further ahead of the wall clock than this are never observed. */
    private readonly maxSkewMs: number = MESSAGE_LIMITS.maxClockSkewMs,
  ) {}

  /** A new reading for a local event (a message this node writes). */
  tick(): HlcTime {
    const wall = this.now();
    if (wall > this.last.ts) this.last = { ts: wall, lc: 0 };
    else this.last = bump(this.last);
    return { ...this.last };
  }

  /**
   * Takes in a reading seen on a received message, so later ticks order after it. A reading more
   * than ε ahead of the wall clock is ignored (such messages are refused anyway): one poisoned
   * message must never drag this clock into the future.
   */
  observe(seen: HlcTime): void {
    if (seen.ts - this.now() > this.maxSkewMs) return;
    if (compareHlc(seen, this.last) > 0) this.last = { ts: seen.ts, lc: seen.lc };
  }

  /** The latest reading made or observed. */
  get current(): HlcTime {
    return { ...this.last };
  }
}

function bump(t: HlcTime): HlcTime {
  // The counter is bounded on the wire; past it, borrow one millisecond.
  return t.lc < MAX_LC ? { ts: t.ts, lc: t.lc + 1 } : { ts: t.ts + 1, lc: 0 };
}

/** Orders two readings. */
export function compareHlc(a: HlcTime, b: HlcTime): number {
  return a.ts - b.ts || a.lc - b.lc;
}

/** The order every replica shows a channel in: by timestamp, then by id. */
export function compareMessages(a: HlcTime & { id: string }, b: HlcTime & { id: string }): number {
  return compareHlc(a, b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** A new globally unique, time-ordered id (UUIDv7). */
export function newId(): string {
  return uuidv7();
}
