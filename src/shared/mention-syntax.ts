/**
 * How a mention is written in a message's text (README "Replies, reactions, mentions, edits"):
 * `@name` at the start or after a character that cannot be part of a name. The peer resolves
 * them when a message is written (peer/mentions.ts), and a receiver counts a signed mention only
 * when the text names it (`namedMentions`); the web UI's composer suggests names as one is typed
 * (web/src/MentionSuggest.tsx). Plain, so that the web UI can import it.
 */

/** Mentions that are no user's name: `@here` is every online member. */
export const SPECIAL_MENTIONS: readonly string[] = ['here'];

/** The characters of a name after `@` (usernames are made of these, PROTOCOL §3.3 register). */
const NAME_CHAR = 'A-Za-z0-9_.-';

/** A whole username: 2–32 of those characters (the `Username` schema of protocol/common.ts). */
export const USERNAME = new RegExp(`^[${NAME_CHAR}]{2,32}$`);

/** Every `@name` of a text: group 1 is the name (2–32 of its characters). */
export const MENTION = new RegExp(`(?:^|[^@${NAME_CHAR}])@([${NAME_CHAR}]{2,32})`, 'g');

/** The names a text mentions (lower case, each once, in order), and `here`. */
export function mentionedNames(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(MENTION)) out.add(m[1]!.replace(/\.+$/, '').toLowerCase());
  return [...out].filter((n) => n.length >= 2);
}

/**
 * The mentions of a message that count (PROTOCOL.md §2.2): those of its signed `mentions` that
 * its text names (`@name`, `@here`). A name signed in `mentions` but absent from the text pings
 * nobody: the message shows no mention of it, so it may not notify or count as one either.
 */
export function namedMentions(
  text: string | undefined,
  mentions: readonly string[] | undefined,
): string[] {
  if (!mentions?.length || !text) return [];
  const named = new Set(mentionedNames(text));
  return mentions.filter((n) => named.has(n));
}

/**
 * The mention being typed at `caret`: the `@` at `start`, the part of a name after it up to the
 * caret (possibly empty), and `end`, past the name's characters that follow the caret (what a
 * picked name replaces); or null when the caret is not in one.
 */
export function mentionAt(
  text: string,
  caret: number,
): { start: number; end: number; query: string } | null {
  const before = text.slice(0, caret);
  const m = new RegExp(`(?:^|[^@${NAME_CHAR}])@([${NAME_CHAR}]{0,32})$`).exec(before);
  if (!m) return null;
  const query = m[1]!;
  const rest = new RegExp(`^[${NAME_CHAR}]*`).exec(text.slice(caret))![0];
  return { start: caret - query.length - 1, end: caret + rest.length, query };
}
