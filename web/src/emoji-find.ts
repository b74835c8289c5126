/**
 * Emoji found by name, for the React picker and the composer's `:name` suggestions: the one
 * named exactly so first, then those whose names start so, shortest first, then the rest, in
 * node-emoji's order (`heart` and `hea` find ❤️ first, as Discord does: the search alone put 😍,
 * `heart_eyes`, first and ❤️ eighth).
 */
import { search } from 'node-emoji';

export function findEmoji(q: string, most: number): { emoji: string; name: string }[] {
  const rank = (name: string) => (name === q ? 0 : name.startsWith(q) ? 1 : 2);
  return search(q)
    .map((e, i) => ({ e, i, r: rank(e.name) }))
    .sort((a, b) => a.r - b.r || (a.r === 1 ? a.e.name.length - b.e.name.length : 0) || a.i - b.i)
    .slice(0, most)
    .map(({ e }) => e);
}

/**
 * The `:name` being typed at `caret` (at least two characters after a colon that starts a word:
 * not a time, `12:30`, nor a link, `https://`), as `mentionAt` finds an `@name`.
 */
export function emojiAt(
  text: string,
  caret: number,
): { start: number; end: number; query: string } | null {
  const m = /(?:^|[\s(])(:([a-z0-9_+-]{2,32}))$/i.exec(text.slice(0, caret));
  if (!m) return null;
  const rest = /^[a-z0-9_+-]*:?/i.exec(text.slice(caret))![0];
  return { start: caret - m[1]!.length, end: caret + rest.length, query: m[2]! };
}
