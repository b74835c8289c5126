/**
 * Mentions (SPEC §11, README "Messages"): `@name` of a channel member and `@here` (every online
 * member), found in a message's text when it is written and signed with it as its `mentions`.
 */
import { MENTION, SPECIAL_MENTIONS } from '../shared/mention-syntax.js';

/** The names a text mentions (lower case, each once, in order), and `here`. */
export function mentionedNames(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(MENTION)) out.add(m[1]!.replace(/\.+$/, '').toLowerCase());
  return [...out].filter((n) => n.length >= 2);
}

/** What a message mentions: the names among `members`, and `here` (at most 50 in all). */
export function resolveMentions(text: string, members: readonly string[]): string[] {
  const known = new Set(members.map((m) => m.toLowerCase()));
  return mentionedNames(text)
    .filter((n) => SPECIAL_MENTIONS.includes(n) || known.has(n))
    .slice(0, 50);
}
