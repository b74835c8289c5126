/**
 * The config file of `hchat bot` (issue 17 item 6; README "Write a bot in 5 minutes"): its
 * schema, validated once at start, and the loading that turns it into rules ready to run
 * (regexes compiled). A bad config is refused with the field it is about, before any connection.
 * The config is trusted (whoever runs the bot wrote it); the limits on patterns are there so a
 * message (untrusted) cannot make a rule run for long: see BOT_LIMITS.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { Emoji, Uuid } from '../protocol/common.js';
import { BOT_LIMITS } from '../shared/limits.js';

/** A template: `{author}`, `{text}`, `{channel}`, `{owner}`, `{match}`, `{1}`…`{9}` are filled in. */
const Template = z.string().min(1, 'must not be empty').max(4000, 'at most 4000 characters');

const Flags = z
  .string()
  .regex(/^(?!.*(.).*\1)[imsu]*$/, 'expected some of i, m, s, u, each once (no g or y)');

/** A keyword or regex trigger; exactly one of the two. */
const Trigger = z
  .object({
    keyword: z
      .string()
      .min(1, 'must not be empty')
      .max(100, 'at most 100 characters')
      .refine((k) => k.trim() === k, 'no spaces around it')
      .optional(),
    regex: z
      .string()
      .min(1, 'must not be empty')
      .max(BOT_LIMITS.maxPatternChars, `at most ${BOT_LIMITS.maxPatternChars} characters`)
      .optional(),
    flags: Flags.optional(),
  })
  .strict()
  .superRefine((t, ctx) => {
    if ((t.keyword === undefined) === (t.regex === undefined))
      ctx.addIssue({ code: 'custom', message: 'expected exactly one of keyword or regex' });
    if (t.flags !== undefined && t.regex === undefined)
      ctx.addIssue({ code: 'custom', path: ['flags'], message: 'flags go with a regex' });
    if (t.regex !== undefined) {
      try {
        new RegExp(t.regex, t.flags);
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: ['regex'], message: (err as Error).message });
      }
    }
  });

const Rule = z
  .object({
    when: z.union([z.literal('mention'), Trigger], {
      error: 'expected "mention", {"keyword": "word"} or {"regex": "pattern", "flags"?: "i"}',
    }),
    reply: Template.optional(),
    react: Emoji.optional(),
    cooldownSeconds: z.number().int().min(0).max(86_400).optional(),
  })
  .strict()
  .refine((r) => r.reply !== undefined || r.react !== undefined, 'expected a reply or a react');

/** The config file's shape (JSON). */
export const BotConfigFile = z
  .object({
    /** Channels (ids) the bot joins at start; it also answers in those it is already in. */
    channels: z
      .array(Uuid)
      .max(BOT_LIMITS.maxChannels, `at most ${BOT_LIMITS.maxChannels}`)
      .optional(),
    /** A file holding the API token (read at start), so the secret is in no shell history. */
    tokenFile: z.string().min(1).optional(),
    rules: z
      .array(Rule)
      .min(1, 'at least one rule')
      .max(BOT_LIMITS.maxRules, `at most ${BOT_LIMITS.maxRules}`),
    away: z.object({ message: Template }).strict().optional(),
  })
  .strict();

export type BotConfigFile = z.infer<typeof BotConfigFile>;

/** What triggers a rule, ready to test. */
export type Trigger =
  | { kind: 'mention' }
  | { kind: 'keyword'; keyword: string; pattern: RegExp }
  | { kind: 'regex'; pattern: RegExp };

/** A rule as it runs. */
export interface BotRule {
  /** Its place in the config (logged as `rule=`). */
  index: number;
  trigger: Trigger;
  reply?: string;
  react?: string;
  cooldownMs: number;
}

/** A loaded config. */
export interface BotConfig {
  channels: string[];
  /** The token file's path, resolved against the config's folder. */
  tokenFile?: string;
  rules: BotRule[];
  away?: { message: string };
}

/** A config that cannot be used: `field` names where (`rules[0].when.regex`). */
export class BotConfigError extends Error {
  constructor(
    readonly field: string,
    why: string,
  ) {
    super(field ? `${field}: ${why}` : why);
  }
}

/** Reads, parses and validates a config file; throws BotConfigError. */
export function loadBotConfig(file: string): BotConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new BotConfigError('', `cannot read ${file}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new BotConfigError('', `not JSON: ${(err as Error).message}`);
  }
  const c = parseBotConfig(json);
  if (c.tokenFile !== undefined) c.tokenFile = path.resolve(path.dirname(file), c.tokenFile);
  return c;
}

/** Validates a parsed config and compiles its rules; throws BotConfigError naming the field. */
export function parseBotConfig(json: unknown): BotConfig {
  const r = BotConfigFile.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new BotConfigError(fieldName(issue.path), issue.message);
  }
  return {
    channels: r.data.channels ?? [],
    tokenFile: r.data.tokenFile,
    rules: r.data.rules.map((rule, index) => ({
      index,
      trigger: compile(rule.when),
      reply: rule.reply,
      react: rule.react,
      cooldownMs: (rule.cooldownSeconds ?? 0) * 1000,
    })),
    away: r.data.away,
  };
}

function compile(when: BotConfigFile['rules'][number]['when']): Trigger {
  if (when === 'mention') return { kind: 'mention' };
  if (when.keyword !== undefined) {
    // A whole word (or phrase), in any case: `help` fires on "Help!" but not on "helpful".
    const escaped = when.keyword.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    return {
      kind: 'keyword',
      keyword: when.keyword,
      pattern: new RegExp(`(?<![\\p{L}\\p{N}_])${escaped}(?![\\p{L}\\p{N}_])`, 'iu'),
    };
  }
  return { kind: 'regex', pattern: new RegExp(when.regex!, when.flags) };
}

/** `rules[0].when.regex` from zod's path. */
function fieldName(p: readonly PropertyKey[]): string {
  return p
    .map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i ? '.' : ''}${String(k)}`))
    .join('');
}
