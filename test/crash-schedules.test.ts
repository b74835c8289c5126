/**
 * Crash safety (SPEC §5) with real processes: random schedules of posts, status changes and
 * SIGKILLs of the host, a member or the server, some while posts are in flight. After healing,
 * every post a peer accepted (answered 201) is on every replica exactly once, nothing appears that
 * nobody wrote, and all replicas show the same order. HCHAT_CRASH_SCHEDULES sets how many
 * schedules run (default 2; each costs several seconds of process starts); the test's timeout
 * grows with it. HCHAT_CRASH_SEED sets fast-check's seed, and HCHAT_CRASH_SEED with
 * HCHAT_CRASH_PATH replay the one schedule that failed (fast-check prints both).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { waitFor } from './testnet.js';
import { scheduleRuns } from './schedule-runs.js';
import { hostedChannel, startSwarm, type Swarm } from './swarm.js';

const NAMES = ['alice', 'bob', 'carol'] as const;
type Name = (typeof NAMES)[number];

type Action =
  | { kind: 'post'; who: Name; count: number }
  | { kind: 'status'; who: Name; status: 'online' | 'invisible' | 'offline' }
  | { kind: 'kill'; who: Name; afterMs: number }
  | { kind: 'killServer'; afterMs: number };

const who = fc.constantFrom(...NAMES);
const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('post' as const),
      who,
      count: fc.integer({ min: 1, max: 5 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('status' as const),
      who,
      status: fc.constantFrom('online' as const, 'invisible' as const, 'offline' as const),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('kill' as const),
      who,
      afterMs: fc.integer({ min: 0, max: 40 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('killServer' as const),
      afterMs: fc.integer({ min: 0, max: 40 }),
    }),
  },
);

/** A schedule takes 5-30 s on a loaded 2-core machine (it may wait 30 s to settle): 60 s each. */
const runs = scheduleRuns({
  countVar: 'HCHAT_CRASH_SCHEDULES',
  seedVar: 'HCHAT_CRASH_SEED',
  pathVar: 'HCHAT_CRASH_PATH',
  defaultRuns: 2,
  perRunMs: 60_000,
  minTimeoutMs: 240_000,
});

/** Fires posts; resolves with the texts a peer accepted (201) and all it was asked to write. */
function fire(s: Swarm, name: Name, ch: string, texts: string[]) {
  return Promise.all(
    texts.map((text) =>
      s
        .call(name, 'POST', `/api/channels/${ch}/messages`, { text })
        .then((r) => (r.status === 201 ? text : undefined))
        .catch(() => undefined),
    ),
  );
}

describe('crash schedules', () => {
  it(
    'nothing a peer accepted is lost or doubled, whatever process is SIGKILLed when',
    async () => {
      try {
        await fc.assert(
          fc.asyncProperty(
            fc.array(action, { minLength: 3, maxLength: 8 }),
            runs.counted(async (schedule) => {
              const s = await startSwarm([...NAMES]);
              try {
                await play(s, schedule);
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

/** Plays one schedule on a swarm, heals, and checks every replica. */
async function play(s: Swarm, schedule: readonly Action[]): Promise<void> {
  const ch = await hostedChannel(s);
  const accepted = new Set<string>();
  const attempted = new Set<string>();
  const dead = new Set<Name | 'server'>();
  let serial = 0;
  const revive = async (n: Name | 'server') => {
    if (!dead.has(n)) return;
    if (n === 'server') await s.restartServer();
    else await s.restart(n);
    dead.delete(n);
  };
  for (const a of schedule) {
    if (a.kind === 'post') {
      await revive(a.who);
      const texts = Array.from({ length: a.count }, () => `${a.who}-${serial++}`);
      texts.forEach((t) => attempted.add(t));
      for (const t of await fire(s, a.who, ch, texts)) if (t) accepted.add(t);
    } else if (a.kind === 'status') {
      await revive(a.who);
      expect((await s.call(a.who, 'PUT', '/api/status', { status: a.status })).status).toBe(200);
    } else if (a.kind === 'kill') {
      await revive(a.who);
      // Kill it while some of its posts are in flight.
      const texts = Array.from({ length: 3 }, () => `${a.who}-${serial++}`);
      texts.forEach((t) => attempted.add(t));
      const inFlight = fire(s, a.who, ch, texts);
      await new Promise((r) => setTimeout(r, a.afterMs));
      await s.kill(a.who);
      dead.add(a.who);
      for (const t of await inFlight) if (t) accepted.add(t);
    } else {
      const texts = [`bob-${serial++}`];
      texts.forEach((t) => attempted.add(t));
      await revive('bob');
      const inFlight = fire(s, 'bob', ch, texts);
      await new Promise((r) => setTimeout(r, a.afterMs));
      if (!dead.has('server')) {
        s.server.proc.kill('SIGKILL');
        await s.server.exited;
        dead.add('server');
      }
      for (const t of await inFlight) if (t) accepted.add(t);
    }
  }

  // Heal: every process up, everyone online; wait until all replicas agree.
  await revive('server');
  for (const n of NAMES) await revive(n);
  for (const n of NAMES) await s.call(n, 'PUT', '/api/status', { status: 'online' });
  const settled = async () => {
    const onServer = s.serverMessages(ch).map((m) => m.text);
    const views = await Promise.all(NAMES.map((n) => s.view(n, ch)));
    const pending = await Promise.all(
      NAMES.map(async (n) => (await s.call(n, 'GET', '/api/me')).body.pending),
    );
    return (
      [...accepted].every((t) => onServer.includes(t)) &&
      views.every(
        (v) =>
          JSON.stringify(v.texts) === JSON.stringify(onServer) &&
          v.states.every((st) => st === 'delivered'),
      ) &&
      pending.every((p) => p === 0)
    );
  };
  await waitFor(settled, 30_000, () => `replicas to converge on ${JSON.stringify(schedule)}`);
  const onServer = s.serverMessages(ch).map((m) => m.text);
  expect(new Set(onServer).size).toBe(onServer.length); // nothing doubled
  for (const t of accepted) expect(onServer).toContain(t); // nothing accepted lost
  for (const t of onServer) expect(attempted.has(t)).toBe(true); // nothing invented
  for (const n of NAMES) expect((await s.view(n, ch)).texts).toEqual(onServer);
}
