/**
 * Mutations of fuzz inputs: byte-level ones (bit flips, interesting integers, inserts, deletes,
 * copies, splices with another corpus entry, dictionary words) and, for inputs made of JSON lines,
 * JSON-aware ones that change one value of one line (type swaps, boundary numbers, odd strings,
 * added or removed keys) so that frame bodies stay parseable often enough to reach the schemas.
 */

/** A seeded pseudo-random source (mulberry32): a run replays from its seed. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}

/** What a mutation may draw on besides the input itself. */
export interface MutationContext {
  rng: Rng;
  /** Another corpus entry, for splices. */
  other(): Buffer;
  /** Words worth inserting as JSON keys and values (op names, keys). */
  dictionary: readonly string[];
  /** Byte strings worth inserting (the words, and literals of the code under test). */
  tokens: readonly Buffer[];
  maxLen: number;
}

const INTERESTING_32 = [
  0, 1, 2, 3, 4, 8, 12, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x100000,
  0x100001, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
];

type ByteMutator = (b: Buffer, c: MutationContext) => Buffer;

const byteMutators: ByteMutator[] = [
  // flip one bit
  (b, { rng }) => {
    if (b.length === 0) return b;
    const i = rng.int(b.length);
    b[i] = b[i]! ^ (1 << rng.int(8));
    return b;
  },
  // set one byte at random
  (b, { rng }) => {
    if (b.length === 0) return b;
    b[rng.int(b.length)] = rng.int(256);
    return b;
  },
  // write an interesting integer, 1, 2 or 4 bytes, either byte order
  (b, { rng }) => {
    const size = rng.pick([1, 2, 4]);
    if (b.length < size) return b;
    const v = rng.pick(INTERESTING_32);
    const i = rng.int(b.length - size + 1);
    const be = rng.next() < 0.5;
    if (size === 1) b[i] = v & 0xff;
    else if (size === 2) be ? b.writeUInt16BE(v & 0xffff, i) : b.writeUInt16LE(v & 0xffff, i);
    else be ? b.writeUInt32BE(v >>> 0, i) : b.writeUInt32LE(v >>> 0, i);
    return b;
  },
  // add or subtract a small number from a byte
  (b, { rng }) => {
    if (b.length === 0) return b;
    const i = rng.int(b.length);
    b[i] = (b[i]! + rng.int(35) - 17) & 0xff;
    return b;
  },
  // insert random bytes
  (b, { rng }) => {
    const n = 1 + rng.int(rng.next() < 0.8 ? 4 : 64);
    const ins = Buffer.alloc(n);
    const fill = rng.next() < 0.5 ? rng.int(256) : -1;
    for (let k = 0; k < n; k++) ins[k] = fill >= 0 ? fill : rng.int(256);
    const i = rng.int(b.length + 1);
    return Buffer.concat([b.subarray(0, i), ins, b.subarray(i)]);
  },
  // delete a range
  (b, { rng }) => {
    if (b.length < 2) return b;
    const i = rng.int(b.length);
    const n = 1 + rng.int(Math.min(b.length - i, rng.next() < 0.8 ? 4 : 128));
    return Buffer.concat([b.subarray(0, i), b.subarray(i + n)]);
  },
  // copy a range of the input elsewhere in it
  (b, { rng }) => {
    if (b.length < 2) return b;
    const from = rng.int(b.length);
    const n = 1 + rng.int(Math.min(b.length - from, 64));
    const to = rng.int(b.length + 1);
    return Buffer.concat([b.subarray(0, to), b.subarray(from, from + n), b.subarray(to)]);
  },
  // splice: head of this input, tail of another
  (b, { rng, other }) => {
    const o = other();
    return Buffer.concat([b.subarray(0, rng.int(b.length + 1)), o.subarray(rng.int(o.length + 1))]);
  },
  // insert or overwrite with a token
  (b, { rng, tokens }) => {
    if (tokens.length === 0) return b;
    const w = rng.pick(tokens);
    const i = rng.int(b.length + 1);
    const overwrite = rng.next() < 0.5 ? w.length : 0;
    return Buffer.concat([b.subarray(0, i), w, b.subarray(Math.min(b.length, i + overwrite))]);
  },
];

const ODD_STRINGS = [
  '',
  ' ',
  '\u0000',
  '\ud800',
  '\u202e',
  '\u2028',
  'A'.repeat(65),
  'x'.repeat(4001),
  '__proto__',
  'constructor',
  '00000000-0000-0000-0000-000000000000',
  '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
  '127.0.0.1',
  '::1',
  'ab',
  'hello',
];
const ODD_NUMBERS = [
  0,
  -1,
  1,
  0.5,
  2,
  255,
  256,
  65535,
  65536,
  0xffffffff,
  2 ** 32,
  2 ** 53,
  -(2 ** 53),
  8.64e15,
  8.64e15 + 1,
  1e308,
  -1e308,
];

/** A JSON value of any type, small. */
function oddValue(rng: Rng): unknown {
  switch (rng.int(8)) {
    case 0:
      return null;
    case 1:
      return rng.next() < 0.5;
    case 2:
    case 3:
      return rng.pick(ODD_NUMBERS);
    case 4:
    case 5:
      return rng.pick(ODD_STRINGS);
    case 6:
      return rng.next() < 0.5 ? [] : [rng.pick(ODD_STRINGS), rng.pick(ODD_NUMBERS)];
    default:
      return rng.next() < 0.5 ? {} : { t: 'x' };
  }
}

/** Every container (object or array) of a JSON value, to pick one to change. */
function containers(v: unknown, out: Array<Record<string, unknown> | unknown[]> = []) {
  if (v !== null && typeof v === 'object') {
    out.push(v as Record<string, unknown>);
    for (const c of Object.values(v)) containers(c, out);
  }
  return out;
}

/** Changes one value, key or element of a parsed JSON value (in place); returns the new root. */
function mutateJsonValue(root: unknown, c: MutationContext): unknown {
  const { rng } = c;
  const all = containers(root);
  if (all.length === 0) return rng.next() < 0.5 ? oddValue(rng) : { t: root };
  const box = rng.pick(all);
  const keys = Object.keys(box);
  const op = rng.int(6);
  if (Array.isArray(box)) {
    if (op === 0 || box.length === 0) box.push(oddValue(rng));
    else if (op === 1) box.splice(rng.int(box.length), 1);
    else if (op === 2) box.push(...box.slice(0, 1 + rng.int(Math.min(box.length, 4))));
    else {
      const i = rng.int(box.length);
      box[i] = tweak(box[i], c);
    }
    return root;
  }
  const obj = box as Record<string, unknown>;
  if (op === 0 || keys.length === 0) {
    const k =
      c.dictionary.length > 0 && rng.next() < 0.7 ? rng.pick(c.dictionary) : rng.pick(ODD_STRINGS);
    obj[k] = oddValue(rng);
  } else if (op === 1) delete obj[rng.pick(keys)];
  else {
    const k = rng.pick(keys);
    obj[k] = tweak(obj[k], c);
  }
  return root;
}

/** A value near `v`: same type mostly, sometimes another. */
function tweak(v: unknown, c: MutationContext): unknown {
  const { rng } = c;
  if (rng.next() < 0.25) return oddValue(rng);
  if (typeof v === 'number') {
    return rng.pick([v + 1, v - 1, -v, v * 2, v + 0.5, rng.pick(ODD_NUMBERS)]);
  }
  if (typeof v === 'string') {
    const choices = [
      v + rng.pick(ODD_STRINGS),
      v.slice(0, rng.int(v.length + 1)),
      v.repeat(2),
      v.toUpperCase(),
      c.dictionary.length ? rng.pick(c.dictionary) : v,
    ];
    return rng.pick(choices);
  }
  if (typeof v === 'boolean') return !v;
  return oddValue(rng);
}

/** Mutates one JSON line of an input made of lines; undefined when no line parses. */
function mutateJsonLines(b: Buffer, c: MutationContext): Buffer | undefined {
  const { rng } = c;
  const lines = b.toString('utf8').split('\n');
  const parsed = lines.map((l) => {
    try {
      return { ok: true as const, v: JSON.parse(l) as unknown };
    } catch {
      return { ok: false as const, v: undefined };
    }
  });
  const ok = parsed.map((p, i) => (p.ok ? i : -1)).filter((i) => i >= 0);
  if (ok.length === 0) return undefined;
  const r = rng.int(10);
  if (r === 0 && lines.length > 1) {
    lines.splice(rng.int(lines.length), 1); // drop a line
  } else if (r === 1) {
    const i = rng.pick(ok);
    lines.splice(rng.int(lines.length + 1), 0, lines[i]!); // repeat a line
  } else if (r === 2) {
    const o = c.other().toString('utf8').split('\n');
    lines.splice(rng.int(lines.length + 1), 0, rng.pick(o)); // a line of another input
  } else {
    const i = rng.pick(ok);
    lines[i] = JSON.stringify(mutateJsonValue(parsed[i]!.v, c)) ?? 'null';
  }
  return Buffer.from(lines.join('\n'));
}

/** One to four stacked mutations of `input` (which is left untouched). */
export function mutate(input: Buffer, c: MutationContext, json: boolean): Buffer {
  let b: Buffer = Buffer.from(input);
  const n = 1 + c.rng.int(4);
  for (let k = 0; k < n; k++) {
    const j = json && c.rng.next() < 0.6 ? mutateJsonLines(b, c) : undefined;
    b = j ?? c.rng.pick(byteMutators)(b, c);
  }
  if (b.length > c.maxLen) b = b.subarray(0, c.maxLen);
  return b;
}
