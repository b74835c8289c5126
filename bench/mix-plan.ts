/**
 * The realistic mix's world, decided before anything starts (bench/mix.ts): channel sizes by
 * Zipf's law, which channels have their host online, which member process holds each channel,
 * which host peer hosts it, and which sessions are its members. Pure: no I/O.
 */

/** Sizes are clamped to [MIN_SIZE, MAX_SIZE]: "a few of 500, most of 5–20" (issue 19). */
export const MAX_SIZE = 500;
export const MIN_SIZE = 5;

/** One channel of the plan, by rank (0 is the largest). */
export interface PlannedChannel {
  rank: number;
  size: number;
  /** Its members are sessions [first, first + size). */
  first: number;
  /** A host peer is online for it (every other rank, the largest first). */
  hosted: boolean;
  /** The member process that holds all its members (so it sees every post and delivery). */
  worker: number;
  /** For a hosted channel: which host peer owns it. */
  host?: number;
}

/** Sizes C / rank clamped to [min, max], summing to exactly `total` (largest first). */
export function zipfSizes(channels: number, total: number, max = MAX_SIZE, min = MIN_SIZE) {
  if (channels * min > total)
    throw new Error(`${channels} channels of at least ${min} need ${channels * min} sessions`);
  const sizes = (c: number) =>
    Array.from({ length: channels }, (_, r) =>
      Math.min(max, Math.max(min, Math.round(c / (r + 1)))),
    );
  const sum = (c: number) => sizes(c).reduce((a, b) => a + b, 0);
  // The sum grows with C: bisect for the C whose sum is closest below `total`.
  let lo = 0;
  let hi = max * channels;
  for (let k = 0; k < 60; k++) {
    const mid = (lo + hi) / 2;
    if (sum(mid) <= total) lo = mid;
    else hi = mid;
  }
  const out = sizes(lo);
  // Rounding leaves a few sessions over: one more member each for the first channels below max.
  let left = total - out.reduce((a, b) => a + b, 0);
  for (let r = 0; left > 0; r = (r + 1) % channels) {
    if (out[r]! < max || out.every((s) => s >= max)) (out[r]!++, left--);
  }
  return out;
}

/**
 * The plan: `sessions` sessions in `channels` channels (each session in exactly one), every
 * other channel by rank hosted (so about half the memberships, the largest channel included),
 * hosted channels dealt to `hosts` host peers in turn, channels dealt to `workers` processes
 * largest first to the one with the least work (deliveries: size²).
 */
export function planMix(
  sessions: number,
  channels: number,
  hosts: number,
  workers = 2,
): PlannedChannel[] {
  const sizes = zipfSizes(channels, sessions);
  // A channel's deliveries grow as its size squared (posts ∝ size, each to size − 1 members):
  // that is the work a member process does, so that is what is balanced.
  const load = new Array<number>(workers).fill(0);
  let first = 0;
  let hosted = 0;
  return sizes.map((size, rank) => {
    const worker = load.indexOf(Math.min(...load));
    load[worker]! += size * size;
    const c: PlannedChannel = { rank, size, first, hosted: rank % 2 === 0, worker };
    if (c.hosted) c.host = hosted++ % hosts;
    first += size;
    return c;
  });
}

/** A few figures of a plan, for the report. */
export function describePlan(plan: readonly PlannedChannel[]) {
  const sizes = plan.map((c) => c.size);
  const at = (q: number) => sizes[Math.min(sizes.length - 1, Math.floor(q * sizes.length))]!;
  return {
    channels: plan.length,
    sessions: sizes.reduce((a, b) => a + b, 0),
    largest: sizes.slice(0, 5),
    medianSize: at(0.5),
    channelsOf5to20: sizes.filter((s) => s >= 5 && s <= 20).length,
    channelsOver100: sizes.filter((s) => s > 100).length,
    hostedChannels: plan.filter((c) => c.hosted).length,
    hostedSessions: plan.filter((c) => c.hosted).reduce((a, c) => a + c.size, 0),
  };
}
