import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HybridClock, compareHlc, compareMessages, newId } from '../src/shared/hlc.js';

describe('hybrid logical clock', () => {
  it('ticks strictly increase whatever the wall clock does, and pass every observed reading within ε', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({
              kind: fc.constant('tick' as const),
              wall: fc.integer({ min: 0, max: 1e6 }),
            }),
            fc.record({
              kind: fc.constant('observe' as const),
              ts: fc.integer({ min: 0, max: 1e6 }),
              lc: fc.integer({ min: 0, max: 0xffff }),
            }),
          ),
          { maxLength: 200 },
        ),
        (steps) => {
          let wall = 0;
          const epsilon = 60_000;
          const clock = new HybridClock(() => wall, epsilon);
          let last = { ts: -1, lc: 0 };
          for (const s of steps) {
            if (s.kind === 'tick') {
              wall = s.wall;
              const t = clock.tick();
              expect(compareHlc(t, last)).toBeGreaterThan(0);
              expect(t.lc).toBeLessThanOrEqual(0xffff);
              expect(t.ts).toBeGreaterThanOrEqual(wall);
              last = t;
            } else {
              clock.observe(s);
              // A reading more than ε ahead of the wall clock is never observed (clock poisoning).
              if (s.ts - wall <= epsilon && compareHlc(s, last) > 0) last = s;
            }
          }
        },
      ),
    );
  });

  it('never observes a reading more than ε ahead of the wall clock', () => {
    const wall = 1_000_000;
    const c = new HybridClock(() => wall, 60_000);
    c.observe({ ts: 8.64e15, lc: 0 }); // the poisoned reading of issue 11, finding 3
    expect(c.tick()).toEqual({ ts: wall, lc: 0 });
    c.observe({ ts: wall + 60_000, lc: 7 }); // at ε: observed
    expect(c.tick()).toEqual({ ts: wall + 60_000, lc: 8 });
  });

  it('stays close to the wall clock: a tick is never behind it', () => {
    let wall = 1000;
    const c = new HybridClock(() => wall);
    c.observe({ ts: 5000, lc: 3 });
    expect(c.tick()).toEqual({ ts: 5000, lc: 4 });
    wall = 6000;
    expect(c.tick()).toEqual({ ts: 6000, lc: 0 });
  });

  it('orders messages by timestamp then id, the same for any input order', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            ts: fc.integer({ min: 0, max: 5 }),
            lc: fc.integer({ min: 0, max: 2 }),
            id: fc.uuid(),
          }),
          { maxLength: 30 },
        ),
        (msgs) => {
          const a = [...msgs].sort(compareMessages);
          const b = [...msgs].reverse().sort(compareMessages);
          expect(a).toEqual(b);
        },
      ),
    );
  });

  it('makes time-ordered UUIDv7 ids', () => {
    const ids = Array.from({ length: 100 }, () => newId());
    expect(new Set(ids).size).toBe(100);
    for (const id of ids)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
