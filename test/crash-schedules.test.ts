/**
 * Crash safety (SPEC §5) with real processes: random schedules of posts, edits, deletes,
 * reactions, direct messages in a group DM of the three (issue 15), status changes and SIGKILLs
 * of the host, a member or the server, some while posts or DMs are in flight; the checks after
 * healing are in crash-play.ts. HCHAT_CRASH_SCHEDULES sets how many schedules run (default 3;
 * each costs several seconds of process starts); the test's timeout grows with it.
 * HCHAT_CRASH_SEED sets fast-check's seed, and HCHAT_CRASH_SEED with HCHAT_CRASH_PATH replay the
 * one schedule that failed (fast-check prints both).
 */
import { describe, it } from 'vitest';
import fc from 'fast-check';
import { scheduleRuns } from './schedule-runs.js';
import { hostedChannel, startSwarm } from './swarm.js';
import { NAMES, playSchedule, scheduleAction, type ScheduleKind } from './crash-play.js';

const KIND: ScheduleKind = { dms: true, instances: 1 };

/** A schedule takes 5-30 s on a loaded 2-core machine (it may wait 30 s to settle): 60 s each. */
const runs = scheduleRuns({
  countVar: 'HCHAT_CRASH_SCHEDULES',
  seedVar: 'HCHAT_CRASH_SEED',
  pathVar: 'HCHAT_CRASH_PATH',
  defaultRuns: 2,
  perRunMs: 60_000,
  minTimeoutMs: 240_000,
});

describe('crash schedules', () => {
  it(
    'nothing a peer accepted is lost or doubled, whatever process is SIGKILLed when',
    async () => {
      try {
        await fc.assert(
          fc.asyncProperty(
            fc.array(scheduleAction(KIND), { minLength: 3, maxLength: 8 }),
            runs.counted(async (schedule) => {
              const s = await startSwarm([...NAMES]);
              try {
                await playSchedule(s, await hostedChannel(s), schedule, KIND);
              } finally {
                await s.close();
              }
            }),
          ),
          runs.options,
        );
      } finally {
        runs.report();
      }
    },
    runs.timeoutMs,
  );
});
