/**
 * A watched stream's page keeps to live (web/src/live-lag.ts): whatever the two clocks' offset
 * and the link's jitter, a page that keeps up never counts as behind; one whose thread was held
 * counts the frames that waited more than MAX_BEHIND_MS as behind, and the first frame handled on
 * time as live again; and a delay that stays (a slower route, a clock stepped back) stops counting
 * as behind within two windows, so that a player never skips for good.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LiveLag, MAX_BEHIND_MS, WINDOW_MS } from '../web/src/live-lag.js';

const FPS = 25;
/** Milliseconds between frames: whole, so that every time here is exact. */
const EVERY = 1000 / FPS;
/** Any offset between the source's clock and the page's. */
const offset = fc.integer({ min: -1e12, max: 1e12 });
/** The link's delay, and jitter on it below the limit. */
const transit = fc.integer({ min: 0, max: 2000 });
const jitter = fc.array(fc.integer({ min: 0, max: MAX_BEHIND_MS - 1 }), {
  minLength: 300,
  maxLength: 300,
});

describe('a live player keeps to live', () => {
  it('a page that keeps up is never behind, whatever the clocks and the jitter', () => {
    fc.assert(
      fc.property(offset, transit, jitter, (off, t, j) => {
        const lag = new LiveLag();
        return j.every((extra, i) => {
          const captured = i * EVERY;
          return !lag.behind(captured - off, captured + t + extra);
        });
      }),
    );
  });

  it('frames that waited past the limit while the thread was held are behind; the next handled on time is live', () => {
    fc.assert(
      fc.property(
        offset,
        transit,
        fc.integer({ min: MAX_BEHIND_MS + 100, max: 8000 }),
        (off, t, held) => {
          const lag = new LiveLag();
          // Two seconds on time, then the thread is held for `held` ms: the frames captured
          // meanwhile are all handled at its end, then frames come on time again.
          for (let i = 0; i < 2 * FPS; i++)
            expect(lag.behind(i * EVERY - off, i * EVERY + t)).toBe(false);
          const start = 2 * FPS * EVERY;
          const end = start + held;
          const captured: number[] = [];
          for (let k = 0; start + k * EVERY < end; k++) captured.push(start + k * EVERY);
          // Each waited end − c: those past the limit are behind, the others are not.
          for (const c of captured)
            expect(lag.behind(c - off, end + t)).toBe(end - c > MAX_BEHIND_MS);
          const waited = captured.filter((c) => end - c > MAX_BEHIND_MS);
          expect(waited.length).toBeGreaterThan(0);
          expect(lag.behind(end + EVERY - off, end + EVERY + t)).toBe(false);
        },
      ),
    );
  });

  it('a delay that stays counts as behind for two windows at most', () => {
    fc.assert(
      fc.property(offset, fc.integer({ min: MAX_BEHIND_MS + 1, max: 60_000 }), (off, more) => {
        const lag = new LiveLag();
        for (let i = 0; i < 3 * FPS; i++) lag.behind(i * EVERY - off, i * EVERY + 20);
        const from = 3 * FPS * EVERY;
        let last = from;
        for (let c = from; c < from + 4 * WINDOW_MS; c += EVERY)
          if (lag.behind(c - off, c + 20 + more)) last = c;
        expect(last - from).toBeLessThanOrEqual(2 * WINDOW_MS);
        expect(lag.behind(from + 4 * WINDOW_MS - off, from + 4 * WINDOW_MS + 20 + more)).toBe(
          false,
        );
      }),
    );
  });

  it('a frame without a capture time never counts as behind', () => {
    const lag = new LiveLag();
    expect(lag.behind(Number.NaN, 1000)).toBe(false);
    expect(lag.behind(Number.POSITIVE_INFINITY, 1000)).toBe(false);
    expect(lag.behind(500, 1000)).toBe(false);
  });
});
