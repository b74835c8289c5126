/**
 * What `hchat bot` does with a message, decided without I/O (so it is property-tested): which
 * messages it looks at, which rule fires, the reply's text from its template and whom it
 * mentions, and the cooldowns. Message texts are untrusted: a regex only ever sees the first
 * BOT_LIMITS.regexInputChars characters, a template is filled in one pass (a `{author}` inside
 * someone's text stays text), and a reply mentions only the names its template put there.
 */
import { MAX_TEXT, SPECIAL_MENTIONS, type StoredMessage } from '../protocol/common.js';
import { mentionedNames, namedMentions } from '../shared/mention-syntax.js';
import { BOT_LIMITS } from '../shared/limits.js';
import { readClaims } from '../shared/tokens.js';
import type { BotRule } from './config.js';

/** A message as the rules see it. */
export interface SeenMessage {
  author: string;
  /** Its text as written. */
  text: string;
  /**
   * The names it mentions (lower case), as signed with it. Only those its text names count
   * (`mentions`, below): a signed name the text does not show pings nobody (PROTOCOL.md §2.2).
   */
  mentions: readonly string[];
  /** The name of its channel. */
  channel: string;
}

/** The values a template may use. */
export interface TemplateVars {
  author: string;
  /** The text without the bot's own mention. */
  text: string;
  channel: string;
  /** The bot's owner. */
  owner: string;
  /** What the rule's regex (or keyword) matched, and the regex's groups. */
  match: string;
  groups: readonly (string | undefined)[];
}

/** What to do about a message: the rule that fired, its reply (if any) and reaction (if any). */
export interface RuleAction {
  rule: BotRule;
  reply?: { text: string; mentions: string[] };
  react?: string;
}

/**
 * Whether the bot looks at an item at all: a message with text, by someone else, and not by a
 * bot (its certificate says `bot: true`), so that two bots never answer each other for ever.
 * The certificate is read without checking: the server checked it before storing the item.
 */
export function isForBot(m: StoredMessage, me: string): boolean {
  if ((m.kind ?? 'message') !== 'message' || m.text === undefined) return false;
  if (m.author.toLowerCase() === me.toLowerCase()) return false;
  return readClaims(m.cert)?.bot !== true;
}

/** The text without `@me` (however cased), and without what was left dangling at its start. */
export function withoutMention(text: string, me: string): string {
  const name = me.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // As peer/mentions.ts reads a mention: not after a name character, trailing dots not part of it.
  const re = new RegExp(`(?<![A-Za-z0-9_.@-])@${name}\\.*(?=$|[^A-Za-z0-9_.-])`, 'gi');
  // Removing one can make the next a mention ("@me@me"): until none is left.
  let out = text;
  for (let before = ''; before !== out;) {
    before = out;
    out = out.replace(re, ' ');
  }
  return out
    .replace(/[ \t]{2,}/g, ' ')
    .replace(/^[\s,:;]+/, '')
    .trim();
}

/** Fills `{author}`, `{text}`, `{channel}`, `{owner}`, `{match}`, `{1}`…`{9}` in one pass. */
export function fillTemplate(template: string, v: TemplateVars): string {
  return template.replace(/\{(author|text|channel|owner|match|[1-9])\}/g, (_, k: string) => {
    if (k >= '1' && k <= '9') return v.groups[Number(k)] ?? '';
    return v[k as 'author' | 'text' | 'channel' | 'owner' | 'match'];
  });
}

/**
 * A filled template as a message's text: trimmed and cut to what a message may hold (never in
 * the middle of a character); undefined when nothing is left.
 */
export function messageText(filled: string): string | undefined {
  let t = filled.trim();
  if (t.length > MAX_TEXT) {
    t = t.slice(0, MAX_TEXT);
    if (/[\uD800-\uDBFF]$/.test(t)) t = t.slice(0, -1);
    t = t.trimEnd();
  }
  return t.length > 0 ? t : undefined;
}

/**
 * Whom a reply mentions: the names written in its template (`@alice`, `@here`), and the author
 * or owner where the template says `@{author}` or `@{owner}`; never a name that came in with
 * someone's text (a `{text}` holding `@here` pings nobody), and never a special mention
 * (`here`) that a filled-in value spelt: only a literal `@here` in the template pings everyone.
 * The server refuses such names (PROTOCOL.md §3.3), but an account made before that, or
 * another server, may hold one.
 */
export function replyMentions(template: string, text: string, v: TemplateVars): string[] {
  const literal = new Set(mentionedNames(template));
  const allowed = new Set(literal);
  for (const k of ['author', 'owner'] as const)
    if (template.includes(`@{${k}}`) && v[k]) allowed.add(v[k].toLowerCase());
  return mentionedNames(text)
    .filter((n) => allowed.has(n) && (!SPECIAL_MENTIONS.includes(n) || literal.has(n)))
    .slice(0, 50);
}

/** Last times something fired, by key; a key fires again once its cooldown has passed. */
export class Cooldowns {
  private readonly last = new Map<string, number>();

  /** Whether `key` may fire at `now` with a cooldown of `ms`. */
  ready(key: string, ms: number, now: number): boolean {
    const t = this.last.get(key);
    return ms <= 0 || t === undefined || now - t >= ms;
  }

  /** Notes that `key` fired at `now`. */
  mark(key: string, now: number): void {
    this.last.set(key, now);
  }
}

/** The rule a message triggers (the first that matches), and what it matched. */
export function firstMatch(
  rules: readonly BotRule[],
  m: SeenMessage,
  me: string,
): { rule: BotRule; text: string; match: string; groups: (string | undefined)[] } | undefined {
  const text = withoutMention(m.text, me);
  const input = text.slice(0, BOT_LIMITS.regexInputChars);
  for (const rule of rules) {
    const t = rule.trigger;
    if (t.kind === 'mention') {
      if (mentions(m).includes(me.toLowerCase())) return { rule, text, match: '', groups: [] };
      continue;
    }
    const found = t.pattern.exec(input);
    if (found) return { rule, text, match: found[0], groups: [...found] };
  }
  return undefined;
}

/**
 * What the rules do about a message at `now`: the first rule that matches decides; when it is
 * cooling down in this channel, nothing happens (a later rule does not stand in for it).
 */
export function decide(
  rules: readonly BotRule[],
  m: SeenMessage & { channelId: string },
  who: { me: string; owner?: string },
  cooldowns: Cooldowns,
  now: number,
): RuleAction | undefined {
  const hit = firstMatch(rules, m, who.me);
  if (!hit) return undefined;
  const key = `rule:${hit.rule.index}:${m.channelId}`;
  if (!cooldowns.ready(key, hit.rule.cooldownMs, now)) return undefined;
  cooldowns.mark(key, now);
  const vars: TemplateVars = {
    author: m.author,
    text: hit.text,
    channel: m.channel,
    owner: who.owner ?? '',
    match: hit.match,
    groups: hit.groups,
  };
  const action: RuleAction = { rule: hit.rule, react: hit.rule.react };
  if (hit.rule.reply !== undefined) {
    const text = messageText(fillTemplate(hit.rule.reply, vars));
    if (text !== undefined)
      action.reply = { text, mentions: replyMentions(hit.rule.reply, text, vars) };
  }
  return action;
}

/** Whether a message calls for the away message: it mentions the owner, and is not the owner's. */
export function mentionsOwner(m: SeenMessage, owner: string | undefined): owner is string {
  return (
    owner !== undefined &&
    m.author.toLowerCase() !== owner.toLowerCase() &&
    mentions(m).includes(owner.toLowerCase())
  );
}

/** The mentions of a message that count: signed with it and named in its text. */
function mentions(m: SeenMessage): string[] {
  return namedMentions(m.text, m.mentions);
}

/** The away message's text and mentions for a message. */
export function awayReply(
  template: string,
  m: SeenMessage,
  who: { me: string; owner: string },
): { text: string; mentions: string[] } | undefined {
  const vars: TemplateVars = {
    author: m.author,
    text: withoutMention(m.text, who.me),
    channel: m.channel,
    owner: who.owner,
    match: '',
    groups: [],
  };
  const text = messageText(fillTemplate(template, vars));
  return text === undefined ? undefined : { text, mentions: replyMentions(template, text, vars) };
}
