/**
 * `hchat bot`'s config and rules without I/O (src/bot/config.ts, src/bot/rules.ts): a bad config
 * names its field; the rules pick the first match and honour cooldowns; and, property-tested,
 * no message text or template crashes them, a filled template is always a valid message text,
 * a reply never mentions a name that only came in with someone's text, and a regex never sees
 * more than the first 4000 characters.
 */
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseBotConfig, BotConfigError, loadBotConfig } from '../src/bot/config.js';
import {
  Cooldowns,
  decide,
  fillTemplate,
  isForBot,
  messageText,
  replyMentions,
  withoutMention,
  type TemplateVars,
} from '../src/bot/rules.js';
import { Mentions, MessageText, type StoredMessage } from '../src/protocol/common.js';
import { mentionedNames } from '../src/peer/mentions.js';

const EXAMPLE = path.resolve(import.meta.dirname, '..', 'examples', 'autoresponder.json');
const seen = (text: string, mentions: string[] = []) => ({
  author: 'alice',
  text,
  mentions,
  channel: 'general',
  channelId: 'c1',
});
const who = { me: 'helper', owner: 'carol' };
const vars = (o: Partial<TemplateVars> = {}): TemplateVars => ({
  author: 'alice',
  text: '',
  channel: 'general',
  owner: 'carol',
  match: '',
  groups: [],
  ...o,
});

/** The field a config is refused for. */
function refusal(config: unknown): string {
  try {
    parseBotConfig(config);
  } catch (err) {
    if (err instanceof BotConfigError) return err.message;
    throw err;
  }
  return 'accepted';
}

describe('bot config', () => {
  it('loads the example', () => {
    const c = loadBotConfig(EXAMPLE);
    expect(c.rules.map((r) => r.trigger.kind)).toEqual(['mention', 'keyword', 'regex']);
    expect(c.away?.message).toContain('{owner}');
  });

  it('names the field of what it refuses', () => {
    const rule = { when: 'mention', reply: 'x' };
    expect(refusal({})).toMatch(/^rules: /);
    expect(refusal({ rules: [] })).toBe('rules: at least one rule');
    expect(refusal({ rules: [{ when: { regex: '(' }, reply: 'x' }] })).toMatch(
      /^rules\[0\]\.when\.regex: Invalid regular expression/,
    );
    expect(refusal({ rules: [{ when: { regex: 'a'.repeat(201) }, reply: 'x' }] })).toBe(
      'rules[0].when.regex: at most 200 characters',
    );
    expect(refusal({ rules: [{ when: { regex: 'a', flags: 'g' }, reply: 'x' }] })).toMatch(
      /^rules\[0\]\.when\.flags: /,
    );
    expect(refusal({ rules: [{ when: { keyword: 'a', regex: 'b' }, reply: 'x' }] })).toBe(
      'rules[0].when: expected exactly one of keyword or regex',
    );
    expect(refusal({ rules: [rule, { when: 'always', reply: 'x' }] })).toMatch(
      /^rules\[1\]\.when: /,
    );
    expect(refusal({ rules: [{ when: 'mention' }] })).toBe('rules[0]: expected a reply or a react');
    expect(refusal({ rules: [{ ...rule, react: 'two words' }] })).toMatch(/^rules\[0\]\.react: /);
    expect(refusal({ rules: [{ ...rule, cooldownSeconds: -1 }] })).toMatch(
      /^rules\[0\]\.cooldownSeconds: /,
    );
    expect(refusal({ rules: [rule], channels: ['general'] })).toMatch(/^channels\[0\]: /);
    expect(refusal({ rules: [rule], away: {} })).toMatch(/^away\.message: /);
    expect(refusal({ rules: [rule], token: 'tok_…' })).toMatch(/token/);
  });

  it('resolves tokenFile against the config’s folder', () => {
    const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'hchat-bot-'));
    try {
      const file = path.join(dir, 'bot.json');
      fs.writeFileSync(
        file,
        JSON.stringify({ tokenFile: 't', rules: [{ when: 'mention', react: '👍' }] }),
      );
      expect(loadBotConfig(file).tokenFile).toBe(path.join(dir, 't'));
      fs.writeFileSync(file, '{"rules": [');
      expect(() => loadBotConfig(file)).toThrow(/^not JSON: /);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('bot rules', () => {
  const example = loadBotConfig(EXAMPLE);

  it('the first matching rule answers, with its template filled', () => {
    const a = decide(example.rules, seen('@helper help me', ['helper']), who, new Cooldowns(), 0);
    expect(a?.rule.index).toBe(0);
    expect(a?.reply).toEqual({ text: 'Hi @alice, you said: help me', mentions: ['alice'] });
    expect(a?.react).toBe('👋');
    const t = decide(example.rules, seen('TICKET #123456 and ticket 2'), who, new Cooldowns(), 0);
    expect(t?.reply?.text).toBe('Ticket 123456: https://tracker.example/tickets/123456');
    expect(decide(example.rules, seen('helpful'), who, new Cooldowns(), 0)).toBeUndefined();
    // A mention of someone else is not one of the bot.
    expect(
      decide(example.rules, seen('@bob hi', ['bob']), who, new Cooldowns(), 0),
    ).toBeUndefined();
  });

  it('a rule cooling down in a channel answers nothing there, and again once it has passed', () => {
    const c = new Cooldowns();
    const help = (channelId: string, now: number) =>
      decide(example.rules, { ...seen('help'), channelId }, who, c, now)?.rule.index;
    expect(help('c1', 0)).toBe(1);
    expect(help('c1', 29_999)).toBeUndefined();
    expect(help('c2', 29_999)).toBe(1);
    expect(help('c1', 30_000)).toBe(1);
  });

  it('skips its own messages, other bots’, and items that are not messages', () => {
    const cert = (claims: object) =>
      `${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;
    const m = {
      id: 'm',
      channelId: 'c1',
      author: 'alice',
      ts: 1,
      lc: 0,
      seq: 1,
      sig: 's',
      text: 'help',
      cert: cert({ typ: 'key', u: 'alice' }),
    } as StoredMessage;
    expect(isForBot(m, 'helper')).toBe(true);
    expect(isForBot({ ...m, author: 'Helper' }, 'helper')).toBe(false);
    expect(
      isForBot({ ...m, author: 'other', cert: cert({ u: 'other', bot: true }) }, 'helper'),
    ).toBe(false);
    expect(isForBot({ ...m, kind: 'edit', target: 'x' }, 'helper')).toBe(false);
    expect(isForBot({ ...m, text: undefined }, 'helper')).toBe(false);
    expect(isForBot({ ...m, cert: 'not a cert' }, 'helper')).toBe(true);
  });

  it('runs a regex on the first 4000 characters only', () => {
    const c = parseBotConfig({ rules: [{ when: { regex: 'x$' }, reply: 'end' }] });
    expect(decide(c.rules, seen('a'.repeat(3999) + 'x'), who, new Cooldowns(), 0)).toBeDefined();
    expect(decide(c.rules, seen('a'.repeat(4000) + 'x'), who, new Cooldowns(), 0)).toBeUndefined();
  });

  it('fills a template in one pass: a placeholder inside someone’s text stays text', () => {
    expect(fillTemplate('{text} by {author}', vars({ text: '{author} {1}' }))).toBe(
      '{author} {1} by alice',
    );
    expect(fillTemplate('{1}-{2}-{9}-{x}', vars({ groups: ['ab', 'a'] }))).toBe('a---{x}');
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), (template, text, author) => {
        const out = fillTemplate(template, vars({ text, author }));
        if (!/\{(author|text|channel|owner|match|[1-9])\}/.test(template))
          expect(out).toBe(template);
        expect(fillTemplate('{text}', vars({ text }))).toBe(text);
      }),
    );
  });

  it('a reply mentions only names its template wrote', () => {
    const v = vars({ text: '@here @bob' });
    expect(replyMentions('{text}', '@here @bob', v)).toEqual([]);
    expect(replyMentions('@{author} @dave: {text}', '@alice @dave: @here @bob', v)).toEqual([
      'alice',
      'dave',
    ]);
    // A name filled in never becomes a special mention: an author named `here` (an account from
    // before the server refused the name, or another server) is not pinged as every member.
    const here = vars({ author: 'here', owner: 'HERE', text: '' });
    expect(replyMentions('Hi @{author}', 'Hi @here', here)).toEqual([]);
    expect(replyMentions('@{owner}: {text}', '@HERE: ', here)).toEqual([]);
    expect(replyMentions('@here: @{author} wrote', '@here: @here wrote', here)).toEqual(['here']);
    const piece = fc.constantFrom('@{author}', '@{owner}', '{text}', '{1}', '@', 'here', '.', ' ');
    const name = fc.constantFrom('here', 'HERE', 'here.', 'alice', '');
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 8 }).map((p) => p.join('')),
        fc.constantFrom('@here', 'here', '', '@{author} @here'),
        name,
        name,
        (template, text, author, owner) => {
          const v = vars({ text, author, owner, groups: ['', 'here'] });
          const ms = replyMentions(template, fillTemplate(template, v), v);
          if (!mentionedNames(template).includes('here')) expect(ms).not.toContain('here');
        },
      ),
    );
    fc.assert(
      fc.property(fc.string(), fc.string(), (template, text) => {
        const filled = fillTemplate(template, vars({ text }));
        const allowed = new Set([...mentionedNames(template), 'alice', 'carol']);
        for (const n of replyMentions(template, filled, vars({ text })))
          expect(allowed).toContain(n);
      }),
    );
  });

  it('no text crashes the rules, and every reply is a valid message', () => {
    const word = fc.stringMatching(/^[A-Za-z0-9_.-]{2,12}$/);
    const text = fc.oneof(
      fc.string({ maxLength: 6000 }),
      fc.string({ unit: 'grapheme', maxLength: 300 }),
      fc
        .array(
          fc.oneof(
            word.map((w) => `@${w}`),
            fc.constantFrom('@helper', ' ', 'ticket 5', '.', '{text}'),
          ),
          {
            maxLength: 20,
          },
        )
        .map((a) => a.join('')),
    );
    const template = fc
      .array(
        fc.oneof(
          fc.string({ maxLength: 50 }),
          fc.constantFrom('{text}', '{author}', '@{author}', '{1}', '{match}', ' '),
        ),
        { maxLength: 10 },
      )
      .map((a) => a.join(''));
    // Random patterns: those the config accepts run on any text without throwing.
    const pattern = fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.constantFrom('(\\w+)\\s+(\\d+)', '^$', '.*', '(a|b)*c'),
    );
    fc.assert(
      fc.property(text, template, pattern, fc.boolean(), (t, reply, regex, mentioned) => {
        let rules = example.rules;
        try {
          rules = [...parseBotConfig({ rules: [{ when: { regex }, reply }] }).rules, ...rules];
        } catch (err) {
          if (!(err instanceof BotConfigError)) throw err;
        }
        const a = decide(rules, seen(t, mentioned ? ['helper'] : []), who, new Cooldowns(), 0);
        if (a?.reply) {
          expect(MessageText.safeParse(a.reply.text).success).toBe(true);
          expect(Mentions.safeParse(a.reply.mentions).success).toBe(true);
        }
        expect(mentionedNames(withoutMention(t, 'helper'))).not.toContain('helper');
      }),
      { numRuns: 300 },
    );
  });

  it('cuts a long reply to a message’s size, never inside a character', () => {
    expect(messageText('  \n ')).toBeUndefined();
    const cut = messageText('a'.repeat(3999) + '😀 and more')!;
    expect(cut).toBe('a'.repeat(3999));
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 5000 }), (s) => {
        const t = messageText(s);
        if (t !== undefined) expect(MessageText.safeParse(t).success).toBe(true);
      }),
    );
  });
});
