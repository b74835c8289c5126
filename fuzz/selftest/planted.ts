/**
 * A toy target with a planted bug, for the engine's own test (test/fuzz.test.ts): a little
 * "packet" parser that crashes (TypeError) only on a packet with the right magic, version, type
 * and an option count past the options actually present: a path that random inputs almost never
 * take, and that coverage feedback reaches one check at a time. Refusals of malformed input
 * (RangeError) are its documented error type.
 */
import type { FuzzTarget } from '../engine/target.js';

const MAGIC = 0xcafe;

function parse(d: Buffer): number {
  if (d.length < 6) throw new RangeError('too short');
  if (d.readUInt16BE(0) !== MAGIC) throw new RangeError('bad magic');
  const version = d[2]! >> 4;
  if (version !== 2) throw new RangeError('bad version');
  const type = d[3]!;
  if (type !== 0x41) return 0;
  const count = d[4]!;
  const options: number[] = [];
  for (let o = 5; o < d.length; o++) options.push(d[o]!);
  let sum = 0;
  // The planted bug: trusts the count, not the options present.
  for (let i = 0; i < count; i++) sum += (options[i] as unknown as { valueOf(): number }).valueOf();
  return sum;
}

const target: FuzzTarget = {
  name: 'planted',
  description: 'toy packet parser with a planted bug behind magic, version, type and count checks',
  cover: ['/fuzz/selftest/planted.ts'],
  maxLen: 64,
  seeds: () => [Buffer.from('hello!')],
  run(d) {
    try {
      parse(d);
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
    }
  },
};
export default target;
