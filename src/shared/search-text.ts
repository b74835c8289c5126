/**
 * What a search query means, the same at the peer and the server (docs/PROTOCOL.md §3.3
 * `search`): the user's words, each a prefix term, all required. User input never reaches
 * SQLite's FTS5 syntax: only runs of letters and digits are kept, each inside a double-quoted
 * string, so quotes, `NEAR`, `*`, `^`, parentheses and column filters are plain text.
 * Pure: no I/O.
 */
import { SEARCH_LIMITS } from './limits.js';

/** A run of letters, digits and combining marks: a word as the index tokenizes it. */
const WORD = /[\p{L}\p{N}\p{M}]+/gu;
const HAS_BASE = /[\p{L}\p{N}]/u;

/** Lower case, without diacritics: how the index compares words (unicode61 remove_diacritics 2). */
export function foldWord(w: string): string {
  return w.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

/** The words of a query: distinct, at most SEARCH_LIMITS.maxWords, each cut to maxWordChars. */
export function searchWords(query: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const m of query.slice(0, SEARCH_LIMITS.maxQueryChars).normalize('NFC').matchAll(WORD)) {
    const w = [...m[0]].slice(0, SEARCH_LIMITS.maxWordChars).join('');
    const key = foldWord(w);
    if (!HAS_BASE.test(w) || key === '' || seen.has(key)) continue;
    seen.add(key);
    out.push(w);
    if (out.length >= SEARCH_LIMITS.maxWords) break;
  }
  return out;
}

/** Characters of an indexed word kept (a query word is at most maxWordChars: prefixes still match). */
const INDEXED_WORD_CHARS = 256;

/**
 * The words of a text as an index without FTS5 keeps them (the PostgreSQL store's tsvector):
 * runs of letters and digits, folded as foldWord does, distinct, each cut to 256 characters. A
 * query word matches when it is the prefix of one of them, as FTS5's prefix terms do.
 */
export function indexWords(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.normalize('NFC').matchAll(WORD)) {
    if (!HAS_BASE.test(m[0])) continue;
    const w = [...foldWord(m[0])].slice(0, INDEXED_WORD_CHARS).join('');
    if (w !== '') out.add(w);
  }
  return [...out];
}

/**
 * The FTS5 MATCH expression of words: each a quoted prefix term (`"word"*`), joined by AND.
 * Undefined when there is no word (nothing to search for).
 */
export function ftsMatch(words: readonly string[]): string | undefined {
  if (words.length === 0) return undefined;
  return words.map((w) => `"${w.replaceAll('"', '""')}"*`).join(' AND ');
}

/** A piece of a snippet; `match` pieces are the words the query found (the UI marks them). */
export interface SnippetPart {
  text: string;
  match: boolean;
}

/**
 * The part of `text` to show for a search: the whole text when short, else about
 * SEARCH_LIMITS.snippetChars around its first match, cut into pieces where each word starting
 * with a query word is a `match`. Ranges, not markup: nothing in a message can forge a mark.
 */
export function snippet(text: string, words: readonly string[]): SnippetPart[] {
  const prefixes = words.map(foldWord).filter((w) => w !== '');
  const isMatch = (w: string) => {
    const f = foldWord(w);
    return prefixes.some((p) => f.startsWith(p));
  };
  const chars = [...text];
  let start = 0;
  let end = chars.length;
  const max = SEARCH_LIMITS.snippetChars;
  if (chars.length > max) {
    let first = 0;
    for (const m of text.matchAll(WORD)) {
      if (isMatch(m[0])) {
        first = [...text.slice(0, m.index)].length;
        break;
      }
    }
    start = Math.max(0, Math.min(first - Math.floor(max / 4), chars.length - max));
    end = start + max;
  }
  const shown = chars.slice(start, end).join('');
  const parts: SnippetPart[] = [];
  const push = (t: string, match: boolean) => {
    if (t === '') return;
    const last = parts[parts.length - 1];
    if (last && last.match === match) last.text += t;
    else parts.push({ text: t, match });
  };
  if (start > 0) push('…', false);
  let at = 0;
  for (const m of shown.matchAll(WORD)) {
    if (!isMatch(m[0])) continue;
    push(shown.slice(at, m.index), false);
    push(m[0], true);
    at = m.index + m[0].length;
  }
  push(shown.slice(at), false);
  if (end < chars.length) push('…', false);
  return parts;
}
