/**
 * `npm run fuzz [-- target...]`: runs each fuzz target of fuzz/targets/ (or those named, or a
 * path to a target module) in a process of its own, for FUZZ_SECONDS each, and exits non-zero when
 * any crashed. See fuzz/README.md.
 *
 *   FUZZ_SECONDS  seconds of mutation per target (default 60)
 *   FUZZ_RUNS     at most this many mutated inputs per target (default: no bound)
 *   FUZZ_SEED     seed of the mutation's random source (default: time-based; printed)
 *   FUZZ_CORPUS   folder of kept inputs, per target below it (default fuzz/.corpus; "none": none)
 *   FUZZ_CRASHES  folder of crashing inputs (default fuzz/crashes)
 *   FUZZ_MAX_CRASHES  stop a target after this many distinct crashes (default 5)
 *   FUZZ_BLIND    1: keep no new input (a control run without coverage feedback)
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BlockCoverage } from './engine/coverage.js';
import { fuzz, type FuzzReport } from './engine/fuzzer.js';
import type { FuzzTarget } from './engine/target.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);

function targetPath(name: string): string {
  return name.includes('/') || name.endsWith('.ts')
    ? path.resolve(name)
    : path.join(here, 'targets', `${name}.ts`);
}

/** Every target of fuzz/targets/. */
function allTargets(): string[] {
  return fs
    .readdirSync(path.join(here, 'targets'))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => f.slice(0, -3))
    .sort();
}

/** Runs one target in this process and prints its report as the last line. */
async function runOne(name: string): Promise<void> {
  const file = targetPath(name);
  const target0 = path.basename(file, '.ts');
  const coverage = new BlockCoverage();
  // Coverage first: V8 gives block counters only to code compiled after it starts.
  coverage.start();
  const target = ((await import(pathToFileURL(file).href)) as { default: FuzzTarget }).default;
  coverage.include.push(...target.cover);
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
  const corpusRoot = process.env.FUZZ_CORPUS ?? path.join(here, '.corpus');
  process.stderr.write(`[${target.name}] ${target.description}\n[${target.name}] seed ${seed}\n`);
  const report = await fuzz(target, coverage, {
    seconds: Number(process.env.FUZZ_SECONDS ?? 60),
    maxRuns: process.env.FUZZ_RUNS ? Number(process.env.FUZZ_RUNS) : undefined,
    seed,
    seedDir: path.join(here, 'seeds', target0),
    corpusDir: corpusRoot === 'none' ? undefined : path.join(corpusRoot, target0),
    crashDir: process.env.FUZZ_CRASHES ?? path.join(here, 'crashes'),
    maxCrashes: Number(process.env.FUZZ_MAX_CRASHES ?? 5),
    blind: process.env.FUZZ_BLIND === '1',
  });
  coverage.stop();
  const { crashes, ...figures } = report;
  process.stdout.write(
    `FUZZ_REPORT ${JSON.stringify({ ...figures, crashes: crashes.map((c) => ({ signature: c.signature, file: c.file })) })}\n`,
  );
  // Servers, timers and sockets of the target may linger: the report is out, so end here.
  process.exit(crashes.length > 0 ? 1 : 0);
}

/** Runs each target in a child process, one after the other; a summary at the end. */
function runAll(names: string[]): void {
  const reports: FuzzReport[] = [];
  let failed = false;
  for (const name of names) {
    const child = spawnSync(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), '--one', name],
      { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
    const line = child.stdout.split('\n').find((l) => l.startsWith('FUZZ_REPORT '));
    if (!line) {
      process.stderr.write(`[${name}] ended without a report (exit ${child.status})\n`);
      failed = true;
      continue;
    }
    reports.push(JSON.parse(line.slice('FUZZ_REPORT '.length)) as FuzzReport);
    if (child.status !== 0) failed = true;
  }
  process.stdout.write(
    '\ntarget        runs  seconds  blocks covered/seen  features  corpus  crashes\n',
  );
  for (const r of reports) {
    process.stdout.write(
      `${r.target.padEnd(12)} ${String(r.runs).padStart(6)} ${String(r.seconds).padStart(8)}  ` +
        `${`${r.blocksCovered}/${r.blocksKnown}`.padStart(19)} ${String(r.features).padStart(9)} ` +
        `${String(r.corpus).padStart(7)} ${String(r.crashes.length).padStart(8)}\n`,
    );
    for (const c of r.crashes)
      process.stdout.write(`  crash: ${c.signature}\n    ${path.relative(root, c.file)}\n`);
  }
  process.exit(failed ? 1 : 0);
}

const args = process.argv.slice(2);
if (args[0] === '--one' && args[1]) await runOne(args[1]);
else runAll(args.length > 0 ? args : allTargets());
