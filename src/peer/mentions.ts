/**
 * Mentions (SPEC §11, README "Messages"): `@name` of a channel member and `@here` (every online
 * member), found in a message's text when it is written and signed with it as its `mentions`.
 */
import { SPECIAL_MENTIONS, mentionedNames } from '../shared/mention-syntax.js';

export { mentionedNames, namedMentions } from '../shared/mention-syntax.js';

/** What a message mentions: the names among `members`, and `here` (at most 50 in all). */
export function resolveMentions(text: string, members: readonly string[]): string[] {
  const known = new Set(members.map((m) => m.toLowerCase()));
  return mentionedNames(text)
    .filter((n) => SPECIAL_MENTIONS.includes(n) || known.has(n))
    .slice(0, 50);
}
