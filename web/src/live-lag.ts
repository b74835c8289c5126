/**
 * How far a watched stream's page is behind live. Every frame the local peer passes on carries
 * the time it was captured, by the source's clock (src/peer/live-ws.ts); the page compares it
 * with its own clock when the frame is handled. The two clocks may differ by any amount, so what
 * counts is the frame's delay beyond the shortest delay seen lately (the link's own): a page whose
 * main thread falls behind (a slow machine, a busy tab) handles frames that waited in its queue,
 * and their extra delay is what it is behind. A player behind by more than MAX_BEHIND_MS skips
 * frames, decoding none, until it is live again, and then starts at the next keyframe, as a live
 * player does, instead of drawing every stale frame and staying as far behind for good.
 *
 * "Lately" is the last one to two windows of WINDOW_MS: a delay that stays longer than that (a
 * slower route, a clock stepped back) becomes the new shortest, so the page never skips for good.
 */

/** The extra delay past which a page skips to live. */
export const MAX_BEHIND_MS = 1000;
/** How long a shortest delay counts. */
export const WINDOW_MS = 5000;

export class LiveLag {
  private current = Infinity;
  private previous = Infinity;
  private windowStart = -Infinity;

  /**
   * A frame captured at `captureMs` (the source's clock) handled at `now` (this page's clock,
   * never going back): true when it comes more than MAX_BEHIND_MS later than live.
   */
  behind(captureMs: number, now: number): boolean {
    const delay = now - captureMs;
    if (!Number.isFinite(delay)) return false;
    if (now - this.windowStart >= WINDOW_MS) {
      this.previous = this.current;
      this.current = Infinity;
      this.windowStart = now;
    }
    this.current = Math.min(this.current, delay);
    return delay - Math.min(this.previous, this.current) > MAX_BEHIND_MS;
  }
}
