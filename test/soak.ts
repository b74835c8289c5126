/**
 * The soak (`npm run soak`): the random schedules at scale, where CI's handful cannot reach.
 * Runs the in-process schedules (test/schedules.test.ts, HCHAT_SCHEDULES, default 1,000) and the
 * crash schedules with real processes (test/crash-schedules.test.ts, HCHAT_CRASH_SCHEDULES,
 * default 100) side by side, under one seed (HCHAT_SEED, random by default). No schedule starts
 * after SOAK_MINUTES (default 50), and a run still going 5 minutes later is stopped. Ends with
 * one summary line: counts, failures, the seed, and the command that replays each failing
 * schedule. Exit code 0 only when every schedule played held.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const inProcess = Number(process.env.HCHAT_SCHEDULES ?? 1000);
const crash = Number(process.env.HCHAT_CRASH_SCHEDULES ?? 100);
const seed = Number(process.env.HCHAT_SEED ?? (Math.random() * 2 ** 32) | 0);
const minutes = Number(process.env.SOAK_MINUTES ?? 50);

interface Suite {
  name: string;
  file: string;
  test: string;
  runs: number;
  env: Record<string, string>;
  replay: (path: string) => string;
}

const all: Suite[] = [
  {
    name: 'in-process',
    file: 'test/schedules.test.ts',
    test: 'converge',
    runs: inProcess,
    env: { HCHAT_SCHEDULES: String(inProcess), HCHAT_SEED: String(seed) },
    replay: (p) =>
      `HCHAT_SEED=${seed} HCHAT_PATH=${p} npx vitest run test/schedules.test.ts -t converge`,
  },
  {
    name: 'crash',
    file: 'test/crash-schedules.test.ts',
    test: 'nothing a peer accepted',
    runs: crash,
    env: { HCHAT_CRASH_SCHEDULES: String(crash), HCHAT_CRASH_SEED: String(seed) },
    replay: (p) =>
      `HCHAT_CRASH_SEED=${seed} HCHAT_CRASH_PATH=${p} npx vitest run test/crash-schedules.test.ts`,
  },
];
const suites = all.filter((s) => s.runs > 0);

interface Outcome {
  suite: Suite;
  /** Schedules played (the failing one included). */
  played: number;
  failed: boolean;
  path?: string;
  reason?: string;
}

/** Runs one suite in its own vitest process; its JSON report says what happened. */
async function run(suite: Suite, deadline: number): Promise<Outcome> {
  const report = path.join(os.tmpdir(), `hchat-soak-${process.pid}-${suite.name}.json`);
  const playedFile = `${report}.played`;
  const limitMs = Math.max(0, deadline - Date.now());
  const child = spawn(
    process.execPath,
    [
      path.join(root, 'node_modules', 'vitest', 'vitest.mjs'),
      'run',
      suite.file,
      '-t',
      suite.test,
      '--reporter=dot',
      '--reporter=json',
      `--outputFile.json=${report}`,
    ],
    {
      cwd: root,
      env: {
        ...process.env,
        ...suite.env,
        HCHAT_TIME_LIMIT_MS: String(limitMs),
        HCHAT_PLAYED_FILE: playedFile,
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  const timer = setTimeout(() => child.kill('SIGTERM'), limitMs + 5 * 60_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  let json: any;
  let played: number | undefined;
  try {
    played = Number(fs.readFileSync(playedFile, 'utf8'));
    fs.rmSync(playedFile, { force: true });
    json = JSON.parse(fs.readFileSync(report, 'utf8'));
    fs.rmSync(report, { force: true });
  } catch {
    return {
      suite,
      played: played ?? 0,
      failed: true,
      reason: `vitest ended with ${code} and no report (stopped 5 min past the time limit?)`,
    };
  }
  const test = json.testResults
    ?.flatMap((f: any) => f.assertionResults)
    .find((t: any) => t.status !== 'skipped' && t.status !== 'pending');
  if (test?.status === 'passed') return { suite, played: played ?? suite.runs, failed: false };
  const message: string = (test?.failureMessages ?? []).join('\n');
  const lines = message.replace(/\x1b\[[0-9;]*m/g, '').split('\n');
  const after = /Property failed after (\d+) tests/.exec(message);
  const where = /path: "([^"]+)"/.exec(message);
  return {
    suite,
    played: after ? Number(after[1]) : (played ?? 0),
    failed: true,
    path: where?.[1],
    // The cause (a wait that timed out, an assertion), not fast-check's wrapper line.
    reason: (
      lines.find((l) => /timed out|expected /.test(l)) ??
      lines.find((l) => l.startsWith('Counterexample')) ??
      lines.find((l) => /Error/.test(l)) ??
      `exit ${code}`
    ).slice(0, 500),
  };
}

const started = Date.now();
const deadline = started + minutes * 60_000;
console.log(
  `soak: ${suites.map((s) => `${s.runs} ${s.name}`).join(' and ')} schedules, seed ${seed}, at most ${minutes} min`,
);
const outcomes = await Promise.all(suites.map((s) => run(s, deadline)));
const seconds = Math.round((Date.now() - started) / 1000);
for (const o of outcomes.filter((x) => x.failed)) {
  console.log(`soak: ${o.suite.name} failed: ${o.reason}`);
  if (o.path) console.log(`soak: replay with: ${o.suite.replay(o.path)}`);
}
const failures = outcomes.filter((o) => o.failed).length;
console.log(
  `soak summary: ${outcomes
    .map((o) => {
      const cut = !o.failed && o.played < o.suite.runs ? ' (time limit)' : '';
      return `${o.suite.name} ${o.played}/${o.suite.runs}${cut}`;
    })
    .join(', ')}; failures ${failures}; seed ${seed}; ${seconds} s`,
);
process.exitCode = failures === 0 ? 0 : 1;
