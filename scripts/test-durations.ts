/**
 * Records how long each test file took, from a vitest JSON report
 * (`npx vitest run --reporter=json --outputFile.json=REPORT.json`), into test/durations.json,
 * which test/sequencer.ts orders the files by.
 * Usage: node --import tsx scripts/test-durations.ts REPORT.json
 */
import fs from 'node:fs';
import path from 'node:path';
import { DURATIONS_FILE } from '../test/sequencer.js';

const reportFile = process.argv[2];
if (!reportFile) {
  console.error('usage: node --import tsx scripts/test-durations.ts REPORT.json');
  process.exit(2);
}
const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as {
  testResults: Array<{ name: string; startTime: number; endTime: number }>;
};
const root = path.dirname(path.dirname(DURATIONS_FILE));
const times = Object.fromEntries(
  report.testResults
    .map(
      (f) =>
        [
          path.relative(root, f.name).split(path.sep).join('/'),
          Math.round((f.endTime - f.startTime) / 100) / 10,
        ] as const,
    )
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)),
);
fs.writeFileSync(DURATIONS_FILE, JSON.stringify(times, null, 2) + '\n');
console.log(
  `${Object.keys(times).length} files recorded in ${path.relative(root, DURATIONS_FILE)}`,
);
