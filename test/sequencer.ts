/**
 * The order test files start in: longest first, by the times recorded in test/durations.json,
 * so that the workers end together instead of one waiting out a long file picked up last.
 * Without it a clean clone (no vitest cache) starts the largest files first, whatever they
 * take: a 100 s file of 112 lines came last and the suite took 976 s instead of 845 s.
 * Files not recorded yet (new ones) start first, as vitest's own order does.
 * `node --import tsx scripts/test-durations.ts REPORT.json` records a run's times.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

export const DURATIONS_FILE = path.join(import.meta.dirname, 'durations.json');

/** Seconds each file took, by its path from the project's root. */
function recorded(): Record<string, number> {
  try {
    return JSON.parse(fs.readFileSync(DURATIONS_FILE, 'utf8')) as Record<string, number>;
  } catch {
    return {};
  }
}

export class DurationSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const times = recorded();
    const root = this.ctx.config.root;
    const time = (f: TestSpecification) =>
      times[path.relative(root, f.moduleId).split(path.sep).join('/')] ?? Infinity;
    return [...files].sort((a, b) => time(b) - time(a) || (a.moduleId < b.moduleId ? -1 : 1));
  }
}
