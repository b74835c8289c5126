/**
 * The failed-token budget per address group (src/server/api/bad-tokens.ts, docs/SECURITY.md "The
 * REST API v1 and its tokens"), as pure logic on a clock of the test's own: how many store reads
 * bad tokens buy over time, whether sent one by one or all at once, and its memory bound.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HchatError } from '../src/protocol/errors.js';
import { BadTokenThrottle } from '../src/server/api/bad-tokens.js';
import { addressPrefix } from '../src/shared/address-prefix.js';
import { API_LIMITS } from '../src/shared/limits.js';

const bad = () => Promise.reject(new HchatError('E_TOKEN_INVALID'));
const code = (err: unknown) => (err instanceof HchatError ? err.code : String(err));

function throttle(limits = {}) {
  let now = 1_000_000;
  const t = new BadTokenThrottle(
    (ip) => addressPrefix(ip),
    limits,
    () => now,
  );
  let reads = 0;
  /** One bearer check from `ip`: its code ('ok' for a good token). */
  const attempt = async (ip: string, good = false) => {
    try {
      await t.guard(ip, () => (reads++, good ? Promise.resolve('ok') : bad()));
      return 'ok';
    } catch (err) {
      return code(err);
    }
  };
  return {
    t,
    attempt,
    reads: () => reads,
    advance: (ms: number) => void (now += ms),
  };
}

describe('BadTokenThrottle', () => {
  it('spends the burst, then refuses the group unread until the next interval; other groups are free', async () => {
    const { attempt, reads, advance, t } = throttle();
    const burst = API_LIMITS.badTokenBurst;
    for (let i = 0; i < burst; i++) expect(await attempt('10.0.0.1')).toBe('E_TOKEN_INVALID');
    expect(await attempt('10.0.0.2')).toBe('E_TOO_MANY_BAD_TOKENS');
    expect(await attempt('10.0.0.3', true)).toBe('E_TOO_MANY_BAD_TOKENS');
    expect(reads()).toBe(burst);
    expect(await attempt('10.0.1.1', true)).toBe('ok');
    expect(await attempt('10.0.1.1')).toBe('E_TOKEN_INVALID');
    advance(API_LIMITS.badTokenEveryMs);
    expect(await attempt('10.0.0.3', true)).toBe('ok');
    expect(t.counts).toEqual({ valid: 2, invalid: burst + 1, throttled: 2 });
  });

  it('the wait it names is how long until one more check may run', async () => {
    const { t, attempt, advance } = throttle({ badTokenBurst: 1, badTokenEveryMs: 5000 });
    expect(await attempt('10.0.0.1')).toBe('E_TOKEN_INVALID');
    advance(100);
    const err = await t.guard('10.0.0.1', bad).catch((e: unknown) => e as HchatError);
    expect(err.code).toBe('E_TOO_MANY_BAD_TOKENS');
    expect(err.retryAfterMs).toBe(4900);
    advance(4899);
    expect(await attempt('10.0.0.1')).toBe('E_TOO_MANY_BAD_TOKENS');
    advance(1);
    expect(await attempt('10.0.0.1')).toBe('E_TOKEN_INVALID');
  });

  it('bad tokens buy at most burst + elapsed / interval reads, however they are sent', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ wait: fc.nat(3000), atOnce: fc.integer({ min: 1, max: 50 }) }), {
          maxLength: 40,
        }),
        async (waves) => {
          const { attempt, reads, advance } = throttle({ badTokenBurst: 5, badTokenEveryMs: 1000 });
          let elapsed = 0;
          let overshoot = 0;
          for (const w of waves) {
            advance(w.wait);
            elapsed += w.wait;
            const before = reads();
            // Checks begun together: every one runs its guard before any failure is charged.
            const codes = await Promise.all(
              Array.from({ length: w.atOnce }, () => attempt('10.0.0.1')),
            );
            overshoot = Math.max(overshoot, reads() - before);
            expect(codes.filter((c) => c === 'E_TOKEN_INVALID').length).toBe(reads() - before);
          }
          // What ran past the budget at once is owed afterwards: the total stays bounded by the
          // budget over time, plus the last wave's excess.
          expect(reads()).toBeLessThanOrEqual(5 + Math.floor(elapsed / 1000) + overshoot);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('remembers a bounded number of groups', async () => {
    const { attempt, t } = throttle({ badTokenGroups: 1000 });
    for (let i = 0; i < 5000; i++) await attempt(`10.${i >> 8}.${i & 255}.1`);
    expect(t.size).toBeLessThanOrEqual(1000);
  });
});
