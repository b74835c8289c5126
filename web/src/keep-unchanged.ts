/**
 * A list asked again (the channel list, refreshed on every read and message elsewhere) keeps the
 * objects that did not change, and the whole array when none did: the views given them (memoized
 * rows, the open pane) are not rendered again for nothing.
 */
export function keepUnchanged<T>(old: T[], next: T[], key: (t: T) => string): T[] {
  const before = new Map(old.map((t) => [key(t), t]));
  let same = old.length === next.length;
  const kept = next.map((t, i) => {
    const had = before.get(key(t));
    const keep = had !== undefined && JSON.stringify(had) === JSON.stringify(t) ? had : t;
    if (keep !== old[i]) same = false;
    return keep;
  });
  return same ? old : kept;
}
