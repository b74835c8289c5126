/**
 * Token buckets, one per key (a user, a link, an address): `rate` tokens a second up to `burst`.
 * Pure logic with an injectable clock; the map of buckets stays bounded (full buckets are
 * forgotten, as they hold nothing a fresh bucket would not).
 */

/** A set of token buckets with the same rate and burst. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly maxKeys = 100_000,
  ) {}

  /**
   * Takes `n` tokens from `key`'s bucket: 0 when they were there, else how many milliseconds
   * until they will be (nothing is taken then).
   */
  take(key: string, n = 1, now = Date.now()): number {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.sweep(now);
      b = { tokens: this.burst, at: now };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate);
    b.at = now;
    if (b.tokens >= n) {
      b.tokens -= n;
      return 0;
    }
    return Math.ceil(((n - b.tokens) / this.rate) * 1000);
  }

  /** The whole tokens left in `key`'s bucket now (a full bucket for a key never seen). */
  left(key: string, now = Date.now()): number {
    const b = this.buckets.get(key);
    if (!b) return this.burst;
    return Math.floor(Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate));
  }

  /** Seconds until `key`'s bucket is full again. */
  secondsToFull(key: string, now = Date.now()): number {
    return Math.ceil((this.burst - this.left(key, now)) / this.rate);
  }

  private sweep(now: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.rate >= this.burst) this.buckets.delete(k);
    }
    // Still full of busy keys: start over rather than grow without bound.
    if (this.buckets.size >= this.maxKeys) this.buckets.clear();
  }
}
