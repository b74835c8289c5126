/** The median every part of the bench reports (each figure of a table is a median of runs). */

/** The median of some numbers: the middle one, or the mean of the two middle ones; NaN of none. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}
