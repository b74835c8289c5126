/**
 * Run by test/punch.test.ts in a network namespace of its own (`unshare -n`), so that the
 * kernel's count of connection attempts (`ActiveOpens` in /proc/net/snmp) is this process's
 * alone: `PUNCHES` punches at once towards a port nobody listens on, each SYN answered RST at
 * once, for `MS` milliseconds. With `LONE`, the last punch dials 127.0.0.2 and the others
 * 127.0.0.1 (one session's many punches towards its own address beside another's one). Prints
 * {opens, elapsed, failed, refusedEach} as JSON (each punch's refused attempts; -1 for one that
 * connected).
 */
import fs from 'node:fs';
import { simultaneousOpen } from '../src/peer/punch.js';

const MS = Number(process.argv[2] ?? 2000);
const PUNCHES = Number(process.argv[3] ?? 10);
const LONE = process.argv[4] === 'lone';

function activeOpens(): number {
  const [names, values] = fs
    .readFileSync('/proc/net/snmp', 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('Tcp:'))
    .map((l) => l.trim().split(/\s+/));
  return Number(values![names!.indexOf('ActiveOpens')]);
}

const before = activeOpens();
const t0 = Date.now();
const results = await Promise.all(
  Array.from({ length: PUNCHES }, (_, i) =>
    simultaneousOpen(
      '127.0.0.1',
      40_000 + i,
      LONE && i === PUNCHES - 1 ? '127.0.0.2' : '127.0.0.1',
      9,
      t0 + MS,
    ).then(
      (s) => (s.destroy(), -1),
      (err: { refused?: number }) => err.refused ?? 0,
    ),
  ),
);
console.log(
  JSON.stringify({
    opens: activeOpens() - before,
    elapsed: Date.now() - t0,
    failed: results.filter((r) => r >= 0).length,
    refusedEach: results,
  }),
);
