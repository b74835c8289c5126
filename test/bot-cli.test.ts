/**
 * `hchat bot` (issue 17 item 6) as a real process against a real testnet: carol makes a bot and
 * its token through her peer's local API, the bot runs examples/autoresponder.json; alice's
 * messages get their templated replies (mention, keyword, regex with a group), a message that
 * matches nothing and another bot's message get none (shown by a later control message's
 * reply), its own replies never feed back into it, and the away message answers a mention of
 * its owner only while she is offline. A bad config exits non-zero naming the field, before
 * connecting; `--help` explains the options and the config.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BotClient } from '../src/sdk/client.js';
import { runHchat, spawnHchat } from './processes.js';
import { botToken, createTestnet, signIn, tempDir, waitFor, type TestPeer } from './testnet.js';

const EXAMPLE = path.resolve(import.meta.dirname, '..', 'examples', 'autoresponder.json');

/** A message as the local API shows it. */
interface Shown {
  id: string;
  author: string;
  text?: string;
  replyTo?: { id: string };
  mentions?: string[];
  reactions?: Array<{ emoji: string; users: string[] }>;
}

describe('hchat bot', () => {
  it('answers mentions, keywords and regexes from its config, and nothing else', async () => {
    const net = await createTestnet({ peers: 2 });
    const [alice, carol] = net.peers as [TestPeer, TestPeer];
    await signIn(alice, 'alice');
    await signIn(carol, 'carol');
    const general = (
      await alice.call('POST', '/api/channels', { name: 'general', allowVisitors: false })
    ).body.id as string;
    expect((await carol.call('POST', `/api/channels/${general}/join`)).status).toBe(200);
    // carol owns the bot; alice owns another one, to show bots do not answer bots.
    expect((await carol.call('POST', '/api/bots', { username: 'helper' })).status).toBe(201);
    expect((await alice.call('POST', '/api/bots', { username: 'other' })).status).toBe(201);
    const token = async (p: TestPeer, account: string) =>
      (await p.call('POST', '/api/tokens', { name: account, account, scopes: ['read', 'write'] }))
        .body.token as string;
    const helperToken = await token(carol, 'helper');
    const other = await BotClient.connect({
      url: net.server.httpUrl,
      token: await token(alice, 'other'),
    });
    await other.join(general);

    // The example config, joining general, with the token in a file (not on the command line).
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'helper.token'), helperToken + '\n', { mode: 0o600 });
    const example = JSON.parse(fs.readFileSync(EXAMPLE, 'utf8'));
    const config = path.join(dir, 'bot.json');
    fs.writeFileSync(
      config,
      JSON.stringify({ ...example, channels: [general], tokenFile: 'helper.token' }),
    );
    const bot = await spawnHchat(
      ['bot', '--config', config, '--url', net.server.httpUrl],
      {},
      15_000,
      /^ready (bot=.*)$/m,
    );
    expect(bot.ready).toEqual({ bot: 'helper', channels: '1' });

    const messages = async () =>
      (await alice.call('GET', `/api/channels/${general}/messages?limit=100`)).body
        .messages as Shown[];
    const post = async (text: string) =>
      (await alice.call('POST', `/api/channels/${general}/messages`, { text })).body.id as string;
    const replyTo = (id: string) =>
      waitFor(
        async () => (await messages()).find((m) => m.replyTo?.id === id && m.author === 'helper'),
        10_000,
        () => `the bot's reply to ${id}; its output:\n${bot.output()}`,
      );

    // A mention: the templated reply, as a reply, mentioning the author; and a reaction.
    const t0 = performance.now();
    const hello = await post('@helper hello there');
    const answer = await replyTo(hello);
    console.log(`hchat bot: mention to answer ${Math.round(performance.now() - t0)} ms`);
    expect(answer.text).toBe('Hi @alice, you said: hello there');
    expect(answer.mentions).toEqual(['alice']);
    await waitFor(async () =>
      (await messages())
        .find((m) => m.id === hello)
        ?.reactions?.some((r) => r.emoji === '👋' && r.users.includes('helper')),
    );

    // A keyword, as a whole word in any case.
    const help = await post('Can anyone HELP?');
    expect((await replyTo(help)).text).toBe(
      'Mention me, or write "ticket 123" and I link the ticket.',
    );
    // A regex, with its group in the template.
    const ticket = await post('see ticket #42 please');
    expect((await replyTo(ticket)).text).toBe('Ticket 42: https://tracker.example/tickets/42');

    // Nothing matches; another bot's message that would match: neither gets an answer, as the
    // control message after them shows (the bot reads a channel in order).
    const nothing = await post('nothing to see here, helpful people');
    const fromBot = (await other.post(general, 'ticket 99')).id;
    const mentionOnline = await post('@carol are you there?');
    const control = await post('ticket 7');
    expect((await replyTo(control)).text).toBe('Ticket 7: https://tracker.example/tickets/7');
    const items = (await other.items(general, 0)).messages;
    const seq = (id: string) => items.find((m) => m.id === id)!.seq;
    expect(seq(fromBot)).toBeLessThan(seq(control));
    const all = await messages();
    for (const id of [nothing, fromBot, mentionOnline])
      expect(all.filter((m) => m.replyTo?.id === id)).toEqual([]);
    // Its own replies (which match its own regex) never fed back: one answer per question.
    expect(
      all
        .filter((m) => m.author === 'helper')
        .map((m) => m.replyTo?.id)
        .sort(),
    ).toEqual([hello, help, ticket, control].sort());

    // The owner offline: a mention of her gets the away message (and once only, for 10 minutes).
    expect((await carol.call('POST', '/api/logout')).status).toBeLessThan(300);
    await waitFor(async () => {
      const p = (await other.request('GET', '/presence')) as { peers: { username: string }[] };
      return !p.peers.some((e) => e.username === 'carol');
    });
    const away = await replyTo(await post('@carol are you still there?'));
    expect(away.text).toBe('@carol is away right now and will read this later.');
    expect(away.mentions).toEqual(['carol']);
    const again = await post('@carol hello?');
    await replyTo(await post('ticket 8'));
    expect((await messages()).filter((m) => m.replyTo?.id === again)).toEqual([]);

    // One line per action, and never the token.
    const out = bot.stdout();
    expect(out).toMatch(/^replied channel=general to=alice rule=0 message=\S+$/m);
    expect(out).toMatch(/^reacted channel=general to=alice rule=0 emoji=%F0%9F%91%8B$/m);
    expect(out).toMatch(/^replied channel=general to=alice rule=2 message=\S+$/m);
    expect(out).toMatch(/^away channel=general to=alice owner=carol message=\S+$/m);
    expect(bot.output()).not.toContain(helperToken.split('.')[1]);

    // Its token revoked, the bot stops at once, saying why.
    await carol.call('POST', '/api/login', { username: 'carol', password: 'carol-pw' });
    const id = helperToken.split('.')[0]!;
    expect((await carol.call('DELETE', `/api/tokens/${id}`)).status).toBe(204);
    expect(await bot.exited).toBe(1);
    expect(bot.stderr()).toContain('stopped: E_TOKEN_INVALID');
  }, 40_000);

  it("answers every mention of a burst past its token's budget, late rather than never", async () => {
    // A budget of 2 requests a second in bursts of 10: starting takes a few, 12 answers more.
    const net = await createTestnet({ peers: 1, server: { apiRate: 2, apiBurst: 10 } });
    const [alice] = net.peers as [TestPeer];
    await signIn(alice, 'alice');
    const general = (
      await alice.call('POST', '/api/channels', { name: 'general', allowVisitors: false })
    ).body.id as string;
    const token = await botToken(alice, 'pinger');
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'pinger.token'), token, { mode: 0o600 });
    const config = path.join(dir, 'bot.json');
    fs.writeFileSync(
      config,
      JSON.stringify({
        channels: [general],
        tokenFile: 'pinger.token',
        rules: [{ when: { regex: '^ping (\\d+)$' }, reply: 'pong {1}' }],
      }),
    );
    const bot = await spawnHchat(
      ['bot', '--config', config, '--url', net.server.httpUrl],
      {},
      15_000,
      /^ready (bot=.*)$/m,
    );
    for (let i = 0; i < 12; i++)
      await alice.call('POST', `/api/channels/${general}/messages`, { text: `@pinger ping ${i}` });
    const pongs = async () =>
      (
        (await alice.call('GET', `/api/channels/${general}/messages?limit=100`)).body
          .messages as Shown[]
      )
        .filter((m) => m.author === 'pinger')
        .map((m) => m.text);
    await waitFor(
      async () => (await pongs()).length >= 12,
      20_000,
      () => `12 answers; the bot's output:\n${bot.output()}`,
    );
    expect((await pongs()).sort()).toEqual(
      Array.from({ length: 12 }, (_, i) => `pong ${i}`).sort(),
    );
    // The budget did run out on the way (else this test shows nothing), and no answer failed.
    expect(bot.stdout()).toMatch(/^limited retry_ms=\d+$/m);
    expect(bot.stdout()).not.toMatch(/^error /m);
  }, 40_000);

  it("refuses to run on a person's token, saying how to make a bot's, and joins nothing", async () => {
    // A person's certificate does not say bot: two `hchat bot`s on their users' own tokens took
    // each other's replies for people's words and answered for ever (outside test 'hchat bot
    // run on two users' own tokens…'). Only a bot runs it, and bots never answer bots.
    const net = await createTestnet({ peers: 1 });
    const [alice] = net.peers as [TestPeer];
    await signIn(alice, 'alice');
    const general = (
      await alice.call('POST', '/api/channels', { name: 'general', allowVisitors: false })
    ).body.id as string;
    const token = (
      await alice.call('POST', '/api/tokens', { name: 'mine', scopes: ['read', 'write'] })
    ).body.token as string;
    const dir = tempDir();
    const config = path.join(dir, 'bot.json');
    fs.writeFileSync(
      config,
      JSON.stringify({ channels: [general], rules: [{ when: 'mention', reply: 'Hi @{author}' }] }),
    );
    const r = await runHchat(['bot', '--config', config, '--url', net.server.httpUrl], {
      HCHAT_TOKEN: token,
    });
    expect(r.code, r.out).toBe(1);
    expect(r.out).not.toMatch(/^ready /m);
    expect(r.out).toContain("the token acts as alice, a person's account, not a bot's");
    for (const s of ['Bots and tokens', 'POST /api/bots', '"account": "<bot>"'])
      expect(r.out).toContain(s);
    expect(r.out).not.toContain(token.split('.')[1]);
  }, 30_000);

  it('refuses a bad config, naming the field, before connecting', async () => {
    const dir = tempDir();
    // More refusals, without a process each: test/bot-rules.test.ts "names the field…".
    const cases: Array<[unknown, string]> = [
      [{ rules: [{ when: { regex: 'a'.repeat(201) }, reply: 'x' }] }, 'rules[0].when.regex'],
      [{ rules: [{ when: 'mention', reply: 'x' }], channels: ['general'] }, 'channels[0]'],
    ];
    await Promise.all(
      cases.map(async ([config, field], i) => {
        const file = path.join(dir, `bad${i}.json`);
        fs.writeFileSync(file, JSON.stringify(config));
        // Nothing to connect to there: a bot that tried would say it "cannot reach" it.
        const r = await runHchat([
          'bot',
          '--config',
          file,
          '--url',
          'http://127.0.0.1:9',
          '--token',
          'tok_x.y',
        ]);
        expect(r.code, r.out).not.toBe(0);
        expect(r.out).toContain(`config ${file}: ${field}`);
        expect(r.out).not.toMatch(/cannot reach|fetch failed/);
      }),
    );
  });

  it('--help explains the options and the config', async () => {
    const r = await runHchat(['bot', '--help']);
    expect(r.code).toBe(0);
    for (const s of ['--config', '--url', '--token', 'HCHAT_URL', 'HCHAT_TOKEN', 'tokenFile'])
      expect(r.out).toContain(s);
    for (const s of ['{author}', '{text}', '{1}', 'cooldownSeconds', 'away', 'docs/REST.md'])
      expect(r.out).toContain(s);
  });
});
