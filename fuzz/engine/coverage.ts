/**
 * Coverage feedback from V8's own block coverage, read through the in-process inspector
 * (`Profiler.startPreciseCoverage` with `callCount` and `detailed`), so no instrumentation step
 * and no native add-on are needed.
 *
 * V8 reports, per function, a list of nested source ranges with execution counts, and leaves out a
 * nested range whose count equals its parent's. So the count of every block ever seen is recovered
 * as the count of the innermost range that contains it in this report. A *feature* is a block
 * together with its count bucket (1, 2, 3, 4–7, 8–15, … as AFL does): an input that produces a
 * feature never seen before goes into the corpus.
 *
 * Each `take()` resets V8's counters, so it returns what ran since the previous one. Call `start()`
 * before importing the code to observe: V8 only gives block counters to code compiled after it.
 */
import inspector from 'node:inspector';

interface Range {
  startOffset: number;
  endOffset: number;
  count: number;
}
interface FunctionCoverage {
  functionName: string;
  ranges: Range[];
}
interface ScriptCoverage {
  url: string;
  functions: FunctionCoverage[];
}

/** Reads V8 block coverage of the scripts whose URL contains one of `include`. */
export class BlockCoverage {
  /** Fragments of script URLs to observe; may be set after `start()`. */
  readonly include: string[] = [];
  private readonly session = new inspector.Session();
  /** Every block seen, per function key: `url#fnStart` → block keys `start:end`. */
  private readonly known = new Map<string, Set<string>>();
  /** Blocks that ran at least once, over the whole run. */
  private readonly covered = new Set<string>();
  /** URLs of the observed scripts that ran. */
  readonly scripts = new Set<string>();

  /** Starts counting. */
  start(): void {
    this.session.connect();
    this.post('Profiler.enable');
    this.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
    this.take(); // drop what ran before
  }

  /** Stops counting and detaches. */
  stop(): void {
    this.post('Profiler.stopPreciseCoverage');
    this.post('Profiler.disable');
    this.session.disconnect();
  }

  /** The features of what ran since the previous call. */
  take(): Set<string> {
    const res = this.post('Profiler.takePreciseCoverage') as { result: ScriptCoverage[] };
    const features = new Set<string>();
    for (const script of res.result) {
      if (!this.include.some((p) => script.url.includes(p))) continue;
      this.scripts.add(script.url);
      for (const fn of script.functions) {
        const top = fn.ranges[0];
        if (!top || top.count === 0) continue;
        const fnKey = `${script.url}#${top.startOffset}`;
        let blocks = this.known.get(fnKey);
        if (!blocks) this.known.set(fnKey, (blocks = new Set()));
        for (const r of fn.ranges) blocks.add(`${r.startOffset}:${r.endOffset}`);
        for (const b of blocks) {
          const count = innermostCount(fn.ranges, b);
          if (count === 0) continue;
          const block = `${fnKey}@${b}`;
          this.covered.add(block);
          features.add(`${block}/${bucket(count)}`);
        }
      }
    }
    return features;
  }

  /** Blocks that ran at least once, and blocks seen (in functions that ran), so far. */
  get stats(): { covered: number; known: number } {
    let known = 0;
    for (const s of this.known.values()) known += s.size;
    return { covered: this.covered.size, known };
  }

  private post(method: string, params?: object): unknown {
    let out: unknown;
    let failure: Error | null = null;
    let done = false;
    this.session.post(method, params, (err, res) => {
      failure = err;
      out = res;
      done = true;
    });
    // The in-process session answers synchronously; anything else would make feedback lag.
    if (!done) throw new Error(`inspector ${method} did not answer synchronously`);
    if (failure) throw failure;
    return out;
  }
}

/** Count of the innermost reported range containing block `key` (`start:end`). */
function innermostCount(ranges: Range[], key: string): number {
  const sep = key.indexOf(':');
  const start = Number(key.slice(0, sep));
  const end = Number(key.slice(sep + 1));
  let best: Range | undefined;
  for (const r of ranges) {
    if (r.startOffset <= start && end <= r.endOffset) {
      if (!best || r.endOffset - r.startOffset <= best.endOffset - best.startOffset) best = r;
    }
  }
  return best ? best.count : 0;
}

/** AFL's hit-count buckets: 1, 2, 3, 4–7, 8–15, 16–31, 32–127, 128+. */
function bucket(n: number): number {
  if (n <= 3) return n;
  if (n < 8) return 4;
  if (n < 16) return 8;
  if (n < 32) return 16;
  if (n < 128) return 32;
  return 128;
}
