/**
 * The BOT tag's source (issue 17): the local API marks a message `bot: true` when, and only
 * when, its author's key certificate says the account is a bot (PROTOCOL.md §2.1). A bot's
 * message, a person's, and a person's own message posted through the REST API with a personal
 * token are read by the channel's host (its own copy) and by a member (pages from the host,
 * the live `message` event, search).
 */
import { describe, expect, it } from 'vitest';
import { BotClient } from '../src/sdk/client.js';
import { collectEvents, createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';

/** A token of `account` (alice's own when absent) made through alice's local API. */
async function tokenOf(alice: TestPeer, account?: string): Promise<string> {
  const made = await alice.call('POST', '/api/tokens', {
    name: `${account ?? 'alice'} token`,
    scopes: ['read', 'write'],
    ...(account ? { account } : {}),
  });
  expect(made.status).toBe(201);
  return made.body.token as string;
}

describe('the BOT tag', () => {
  it('marks the messages of bot certificates only, on every path the UI reads', async () => {
    const net = await createTestnet({ peers: 2 });
    const [alice, bob] = net.peers as [TestPeer, TestPeer];
    await signIn(alice, 'alice');
    await signIn(bob, 'bob');
    const general = (await alice.call('POST', '/api/channels', { name: 'general' })).body
      .id as string;
    await bob.call('POST', `/api/channels/${general}/join`);
    await waitFor(() => bob.node.sourceOf(general) === 'host');
    const live = collectEvents(bob.uiUrl);
    await live.ready;

    expect((await alice.call('POST', '/api/bots', { username: 'helper' })).status).toBe(201);
    const bot = await BotClient.connect({
      url: net.server.httpUrl,
      token: await tokenOf(alice, 'helper'),
    });
    expect(bot.me).toMatchObject({ username: 'helper', bot: true });
    await bot.join(general);
    // alice through her own personal token: a person, whatever door she writes through.
    const script = await BotClient.connect({
      url: net.server.httpUrl,
      token: await tokenOf(alice),
    });
    expect(script.me).toMatchObject({ username: 'alice', bot: false });

    await bob.call('POST', `/api/channels/${general}/messages`, { text: 'ping from bob' });
    await bot.post(general, 'pong from helper');
    await script.post(general, 'note from alice');

    const byText = (messages: any[]) =>
      Object.fromEntries(messages.map((m) => [m.text, { author: m.author, bot: m.bot }]));
    const want = {
      'ping from bob': { author: 'bob', bot: undefined },
      'pong from helper': { author: 'helper', bot: true },
      'note from alice': { author: 'alice', bot: undefined },
    };
    for (const p of [alice, bob]) {
      const page = await waitFor(async () => {
        const r = await p.call('GET', `/api/channels/${general}/messages`);
        return r.body.messages.length === 3 ? r.body : undefined;
      });
      expect(byText(page.messages)).toEqual(want);
      // `bot` is absent, not false, on a person's message.
      for (const m of page.messages) if (m.author !== 'helper') expect('bot' in m).toBe(false);
    }
    const pushed = await waitFor(() => {
      const ms = live.events.filter((e) => e.event === 'message').map((e) => e.data.message);
      return ms.length >= 3 ? ms : undefined;
    });
    expect(byText(pushed)).toEqual(want);
    const found = await bob.call('GET', `/api/search?q=from&channelId=${general}`);
    expect(byText(found.body.results.map((r: any) => r.message))).toEqual(want);
  });
});
