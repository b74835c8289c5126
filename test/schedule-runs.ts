/**
 * How many random schedules a property test plays, read from the environment (README, "Tests and
 * benchmark"): the count, fast-check's seed and path (a path replays that one schedule), and for
 * the soak a time limit after which no new schedule starts (HCHAT_TIME_LIMIT_MS) and a file that
 * receives how many were played (HCHAT_PLAYED_FILE). The test's timeout follows the count.
 */
import fs from 'node:fs';
import type fc from 'fast-check';

export interface ScheduleRuns {
  numRuns: number;
  /** The Vitest timeout: `perRunMs` per schedule, at least `minTimeoutMs`. */
  timeoutMs: number;
  options: fc.Parameters<unknown>;
  /** Wraps the property: counts each schedule played, skips those after the time limit. */
  counted<A extends unknown[]>(f: (...a: A) => Promise<void>): (...a: A) => Promise<void>;
  /** Writes the count to HCHAT_PLAYED_FILE, if set. */
  report(): void;
}

export function scheduleRuns(o: {
  countVar: string;
  seedVar: string;
  pathVar: string;
  defaultRuns: number;
  perRunMs: number;
  minTimeoutMs: number;
}): ScheduleRuns {
  const env = process.env;
  const seed = env[o.seedVar] === undefined ? undefined : Number(env[o.seedVar]);
  const path = env[o.pathVar];
  // With a path, replay that one schedule (fast-check would go on with the ones after it).
  const numRuns = path === undefined ? Number(env[o.countVar] ?? o.defaultRuns) : 1;
  const limitMs =
    env.HCHAT_TIME_LIMIT_MS === undefined ? undefined : Number(env.HCHAT_TIME_LIMIT_MS);
  const derived = Math.max(o.minTimeoutMs, numRuns * o.perRunMs);
  const started = Date.now();
  let played = 0;
  return {
    numRuns,
    timeoutMs: limitMs === undefined ? derived : Math.min(derived, limitMs + 2 * o.perRunMs),
    options: {
      numRuns,
      // Each schedule costs seconds: report the first failing one as it is, without shrinking.
      endOnFailure: true,
      ...(seed === undefined ? {} : { seed }),
      ...(path === undefined ? {} : { path }),
    },
    counted:
      (f) =>
      async (...a) => {
        // Past the time limit the remaining schedules are skipped, none cut off half-way.
        if (limitMs !== undefined && Date.now() - started > limitMs) return;
        played++;
        await f(...a);
      },
    report() {
      if (env.HCHAT_PLAYED_FILE) fs.writeFileSync(env.HCHAT_PLAYED_FILE, String(played));
    },
  };
}
