/**
 * The coverage-guided loop (the libFuzzer/AFL scheme, in TypeScript on V8's block coverage):
 * run every seed and keep it; then repeatedly take a corpus entry, mutate it, run it, and keep the
 * result when it reached a block (or a block's hit-count bucket) never reached before. Any throw of
 * the target, uncaught exception, unhandled rejection or hang is a crash: its input is minimised
 * and written to the crash folder with the error, and the run ends non-zero.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BlockCoverage } from './coverage.js';
import { tokensOf } from './autodict.js';
import { Rng, mutate } from './mutate.js';
import type { FuzzTarget } from './target.js';

/** How long and where a run goes. */
export interface FuzzOptions {
  /** Stop after this many seconds of mutation (seeds always run). */
  seconds: number;
  /** Stop after this many mutated inputs (whichever comes first). */
  maxRuns?: number;
  seed: number;
  /** Seed files (fuzz/seeds/<target>/); read, never written. */
  seedDir?: string;
  /** Where new corpus entries are written and read back next time; none: kept in memory only. */
  corpusDir?: string;
  /** Where crashing inputs are written. */
  crashDir: string;
  /** Stop after this many distinct crashes (default 5). */
  maxCrashes?: number;
  /** Keep no new input (a control run without coverage feedback, for comparison). */
  blind?: boolean;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

/** One distinct crash. */
export interface Crash {
  signature: string;
  error: string;
  /** The minimised input, and where it was written. */
  input: Buffer;
  file: string;
}

/** What a run did. */
export interface FuzzReport {
  target: string;
  runs: number;
  seconds: number;
  corpus: number;
  features: number;
  /** Blocks of the covered files that ran at least once / blocks seen in functions that ran. */
  blocksCovered: number;
  blocksKnown: number;
  crashes: Crash[];
  /** Mutated inputs run when the first crash was found (0: a seed crashed). */
  firstCrashAt?: number;
}

/** Fuzzes one target; coverage must already have been started (see run.ts). */
export async function fuzz(
  target: FuzzTarget,
  coverage: BlockCoverage,
  opts: FuzzOptions,
): Promise<FuzzReport> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const rng = new Rng(opts.seed);
  const maxLen = target.maxLen ?? 4096;
  const timeoutMs = target.timeoutMs ?? 10_000;
  const corpus: Buffer[] = [];
  const seen = new Set<string>();
  const crashes = new Map<string, Crash>();
  let runs = 0;

  // Errors that escape the target asynchronously belong to the input running at the time.
  let escaped: unknown[] = [];
  const onEscape = (err: unknown) => escaped.push(err);
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);

  /** Runs one input; the error it caused, if any. */
  const exec = async (input: Buffer): Promise<unknown> => {
    escaped = [];
    let error: unknown;
    try {
      const r = target.run(input);
      if (r instanceof Promise) await withTimeout(r, timeoutMs);
    } catch (err) {
      error = err;
    }
    if (escaped.length > 0 && error === undefined) error = escaped[0];
    return error;
  };

  const keep = (input: Buffer, features: Set<string>): boolean => {
    let fresh = false;
    for (const f of features) {
      if (!seen.has(f)) {
        seen.add(f);
        fresh = true;
      }
    }
    if (fresh) corpus.push(input);
    return fresh;
  };

  let firstCrashAt: number | undefined;
  const crashed = async (input: Buffer, err: unknown): Promise<void> => {
    firstCrashAt ??= runs;
    const signature = signatureOf(err);
    if (crashes.has(signature)) return;
    const small = await minimise(input, signature, exec);
    fs.mkdirSync(opts.crashDir, { recursive: true });
    const hash = crypto.createHash('sha1').update(small).digest('hex').slice(0, 16);
    const file = path.join(opts.crashDir, `${target.name}-${hash}`);
    const text = describe(err);
    fs.writeFileSync(file, small);
    fs.writeFileSync(
      `${file}.txt`,
      `${signature}\n\n${text}\n\ninput (JSON string):\n${JSON.stringify(small.toString('latin1'))}\n`,
    );
    crashes.set(signature, { signature, error: text, input: small, file });
    log(`[${target.name}] CRASH ${signature}\n  input written to ${file}`);
    coverage.take(); // the minimisation's coverage is not the next input's
  };

  await target.setup?.();
  const t0 = Date.now();
  try {
    // Seeds: built-in, then files, then what earlier runs kept.
    const initial = [...target.seeds(), ...readDir(opts.seedDir), ...readDir(opts.corpusDir)].map(
      (b) => (b.length > maxLen ? b.subarray(0, maxLen) : b),
    );
    if (initial.length === 0) initial.push(Buffer.alloc(0));
    coverage.take();
    for (const input of initial) {
      const err = await exec(input);
      const features = coverage.take();
      if (err !== undefined) await crashed(input, err);
      if (!keep(input, features) && !corpus.includes(input)) corpus.push(input);
    }
    log(`[${target.name}] seeds: ${initial.length} inputs, ${seen.size} features`);

    // Seconds of mutation, as the option says: seeds that took long (a loaded machine, a target
    // that answers over HTTP) do not eat the pass (CI once saw a 2 s pass with 0 mutations).
    const deadline = Date.now() + opts.seconds * 1000;
    const maxCrashes = opts.maxCrashes ?? 5;
    let lastReport = Date.now();
    const dictionary = target.dictionary ?? [];
    const tokens = [...dictionary.map((w) => Buffer.from(w)), ...tokensOf(coverage.scripts)];
    log(`[${target.name}] dictionary: ${tokens.length} tokens`);
    const ctx = { rng, other: () => rng.pick(corpus), dictionary, tokens, maxLen };
    while (Date.now() < deadline && (opts.maxRuns === undefined || runs < opts.maxRuns)) {
      if (crashes.size >= maxCrashes) break;
      // Favour recent finds a little: they sit at the frontier of what has been reached.
      const parent =
        rng.next() < 0.3
          ? corpus[corpus.length - 1 - rng.int(Math.min(8, corpus.length))]!
          : rng.pick(corpus);
      const input = mutate(parent, ctx, target.json ?? false);
      runs++;
      const err = await exec(input);
      const features = coverage.take();
      if (err !== undefined) {
        await crashed(input, err);
        continue;
      }
      if (!opts.blind && keep(input, features) && opts.corpusDir) {
        fs.mkdirSync(opts.corpusDir, { recursive: true });
        const hash = crypto.createHash('sha1').update(input).digest('hex').slice(0, 16);
        fs.writeFileSync(path.join(opts.corpusDir, hash), input);
      }
      if (Date.now() - lastReport > 5000) {
        lastReport = Date.now();
        const s = coverage.stats;
        log(
          `[${target.name}] #${runs} blocks ${s.covered}/${s.known} features ${seen.size} corpus ${corpus.length} ` +
            `${Math.round(runs / ((Date.now() - t0) / 1000))} exec/s`,
        );
      }
    }
  } finally {
    await target.teardown?.();
    process.off('uncaughtException', onEscape);
    process.off('unhandledRejection', onEscape);
  }
  const s = coverage.stats;
  return {
    target: target.name,
    runs,
    seconds: Math.round((Date.now() - t0) / 100) / 10,
    corpus: corpus.length,
    features: seen.size,
    blocksCovered: s.covered,
    blocksKnown: s.known,
    crashes: [...crashes.values()],
    firstCrashAt,
  };
}

/** Shrinks a crashing input while it still crashes the same way (bounded number of tries). */
async function minimise(
  input: Buffer,
  signature: string,
  exec: (b: Buffer) => Promise<unknown>,
): Promise<Buffer> {
  let best = input;
  let tries = 0;
  for (let chunk = Math.max(1, best.length >> 1); chunk >= 1 && tries < 300; chunk >>= 1) {
    for (let i = 0; i < best.length && tries < 300;) {
      const cand = Buffer.concat([best.subarray(0, i), best.subarray(i + chunk)]);
      tries++;
      const err = await exec(cand);
      if (err !== undefined && signatureOf(err) === signature) best = cand;
      else i += chunk;
    }
  }
  return best;
}

/** Groups crashes: error kind, message with numbers blanked, first frame in the project. */
function signatureOf(err: unknown): string {
  if (!(err instanceof Error)) return `non-error ${typeof err}: ${String(err).slice(0, 80)}`;
  const code = (err as { code?: unknown }).code;
  const where = (err.stack ?? '')
    .split('\n')
    .slice(1)
    .find((l) => /\/(src|fuzz\/targets)\//.test(l))
    ?.trim()
    .replace(/:\d+\)?$/, '');
  const kind = (err as { kind?: unknown }).kind;
  const msg = (typeof kind === 'string' ? kind : err.message).replace(/\d+/g, 'N').slice(0, 100);
  return `${err.name}${typeof code === 'string' ? `[${code}]` : ''}: ${msg}${where ? ` (${where})` : ''}`;
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`;
  return String(err);
}

function readDir(dir: string | undefined): Buffer[] {
  if (!dir || !fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => !f.startsWith('.') && !f.endsWith('.md'))
    .sort()
    .map((f) => fs.readFileSync(path.join(dir, f)));
}

async function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      p,
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`input still running after ${ms} ms (hang)`)),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
