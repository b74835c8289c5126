/**
 * The crash schedules (crash-play.ts) on two server instances sharing PostgreSQL and NATS
 * (issue 16): alice and carol start on instance 0, bob on instance 1, each peer knowing both
 * addresses in its own order. Actions as on one server, without DMs (their mailboxes are not
 * shared across instances yet), plus SIGKILL of one instance (`killInstance`) and SIGTERM, so
 * that it drains (`drainInstance`), while a member's post is in flight; a stopped instance is
 * started again on its port later. The same checks after healing: nothing accepted lost or
 * doubled, same order and state everywhere; then, the host gone, bob and carol on different
 * instances each post and read everything from the server. HCHAT_CLUSTER_SCHEDULES sets how many schedules run
 * (default 2); HCHAT_CLUSTER_SEED and HCHAT_CLUSTER_PATH replay one, as in crash-schedules.
 */
import { describe, it } from 'vitest';
import fc from 'fast-check';
import { scheduleRuns } from './schedule-runs.js';
import { hostedChannel, startSwarm } from './swarm.js';
import { NAMES, playSchedule, scheduleAction, type ScheduleKind } from './crash-play.js';

const KIND: ScheduleKind = { dms: false, instances: 2 };

/**
 * Instances notice a silent peer within 3 s, and a drained one waits at most 3 s for its peers
 * to leave, so a schedule does not spend its time in timeouts.
 */
const SERVER_ARGS = ['--peer-timeout-ms', '3000', '--heartbeat-ms', '1000', '--drain-ms', '3000'];

/** Like crash-schedules, plus an instance start per stop: 75 s each. */
const runs = scheduleRuns({
  countVar: 'HCHAT_CLUSTER_SCHEDULES',
  seedVar: 'HCHAT_CLUSTER_SEED',
  pathVar: 'HCHAT_CLUSTER_PATH',
  defaultRuns: 1,
  perRunMs: 75_000,
  minTimeoutMs: 240_000,
});

describe('crash schedules on two instances', () => {
  it(
    'nothing a peer accepted is lost or doubled, whatever instance is killed or drained when',
    async () => {
      try {
        await fc.assert(
          fc.asyncProperty(
            fc.array(scheduleAction(KIND), { minLength: 3, maxLength: 8 }),
            runs.counted(async (schedule) => {
              const s = await startSwarm([...NAMES], { instances: 2, serverArgs: SERVER_ARGS });
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
