/**
 * The public REST API v1 and its tokens (issue 17) on a real testnet: a user makes a bot and a
 * token through the peer's local API; the bot, on the SDK, joins a channel and posts signed
 * messages that members' peers verify and show; read-only and channel-limited tokens cannot
 * step outside their scopes; revocation holds at once; wrong, revoked and expired tokens get
 * one and the same refusal; the per-token limit answers 429 with its headers. Every answer is
 * checked against the served OpenAPI document (test/openapi-contract.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { describe, expect, it, onTestFinished } from 'vitest';
import { BotClient, ApiError } from '../src/sdk/client.js';
import { newSessionKeys, signMessage } from '../src/shared/signing.js';
import { messageId } from '../src/shared/message-id.js';
import { contract } from './openapi-contract.js';
import { botToken, createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';

type Net = Awaited<ReturnType<typeof createTestnet>>;

/** Calls the REST API with `token` and checks the answer against the document. */
async function rest(
  net: Net,
  check: Awaited<ReturnType<typeof contract>>['check'],
  token: string,
  method: string,
  route: string,
  body?: unknown,
) {
  const res = await fetch(new URL(`/api/v1${route}`, net.server.httpUrl), {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as any;
  check(method, `/api/v1${route}`, res.status, json);
  return { status: res.status, body: json, headers: res.headers };
}

async function world(server: Record<string, unknown> = {}) {
  const net = await createTestnet({ peers: 2, server });
  const [alice, bob] = net.peers as [TestPeer, TestPeer];
  await signIn(alice, 'alice');
  await signIn(bob, 'bob');
  const general = (
    await alice.call('POST', '/api/channels', { name: 'general', allowVisitors: false })
  ).body.id as string;
  const secret = (
    await alice.call('POST', '/api/channels', { name: 'secret', allowVisitors: false })
  ).body.id as string;
  expect((await bob.call('POST', `/api/channels/${general}/join`)).status).toBe(200);
  const { check } = await contract(net.server.httpUrl);
  const call = (token: string, method: string, route: string, body?: unknown) =>
    rest(net, check, token, method, route, body);
  return { net, alice, bob, general, secret, call };
}

describe('REST API v1', () => {
  it('a bot made in the local API joins, reads and posts signed messages that members verify', async () => {
    const { net, alice, bob, general, call } = await world();
    const bot = await alice.call('POST', '/api/bots', { username: 'helper' });
    expect(bot.status).toBe(201);
    expect(bot.body).toMatchObject({ username: 'helper', owner: 'alice' });
    const made = await alice.call('POST', '/api/tokens', {
      name: 'helper bot',
      account: 'helper',
      scopes: ['read', 'write'],
    });
    expect(made.status).toBe(201);
    const token = made.body.token as string;
    expect(token).toMatch(/^tok_[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
    // Listed without its secret.
    const list = await alice.call('GET', '/api/tokens');
    expect(list.body.tokens).toHaveLength(1);
    expect(JSON.stringify(list.body)).not.toContain(token.split('.')[1]);

    const me = await call(token, 'GET', '/users/@me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ username: 'helper', bot: true, owner: 'alice' });
    expect((await call(token, 'GET', '/channels')).body.channels.map((c: any) => c.name)).toEqual([
      'general',
      'secret',
    ]);
    expect((await call(token, 'POST', `/channels/${general}/join`)).status).toBe(200);
    // Presence, from the first call on (the account's channels are loaded before it runs).
    const online = (await call(token, 'GET', '/presence')).body.peers.map((p: any) => p.username);
    expect(online.sort()).toEqual(['alice', 'bob']);
    expect((await call(token, 'GET', `/channels/${general}`)).body.name).toBe('general');
    expect((await call(token, 'GET', `/channels/${general}/members`)).body.members).toContain(
      'helper',
    );
    expect((await call(token, 'GET', '/users/@me/channels')).body.channels).toHaveLength(1);
    // A user it shares a channel with is visible; the channels it shares with them too.
    expect((await call(token, 'GET', '/users/bob')).body).toEqual({ username: 'bob', bot: false });
    expect((await call(token, 'GET', '/users/bob/channels')).body.channels).toHaveLength(1);

    await alice.call('POST', `/api/channels/${general}/messages`, { text: 'hello bot' });
    const sdk = await BotClient.connect({ url: net.server.httpUrl, token });
    const page = await waitFor(async () => {
      const p = await sdk.history(general);
      return p.messages.length === 1 ? p : undefined;
    });
    expect(page.messages[0]).toMatchObject({ author: 'alice', text: 'hello bot' });
    const posted = await sdk.reply(page.messages[0]!, 'hello alice', { mentions: ['alice'] });
    expect(posted.duplicate).toBe(false);
    // Both members' peers verified it (a peer drops what does not verify) and show it.
    for (const p of [alice, bob]) {
      await waitFor(async () => {
        const m = await p.call('GET', `/api/channels/${general}/messages`);
        return m.body.messages.find((x: any) => x.text === 'hello alice' && x.author === 'helper');
      });
    }
    const items = await call(token, 'GET', `/channels/${general}/items?since=0`);
    expect(items.body.lastSeq).toBe(2);
    expect(items.body.messages.map((m: any) => m.text)).toEqual(['hello bot', 'hello alice']);
    // The bot's account has no password: no login ever matches it.
    const login = await bob.call('POST', '/api/login', {
      username: 'helper',
      password: 'helper-pw',
    });
    expect(login.body.error.code).toBe('E_BAD_CREDENTIALS');
    // The secret is never written down by the server.
    const logs = fs
      .readdirSync(path.join(net.dir, 'server'))
      .filter((f) => f.endsWith('.log'))
      .map((f) => fs.readFileSync(path.join(net.dir, 'server', f), 'utf8'))
      .join('');
    expect(logs).toContain(token.split('.')[0]);
    expect(logs).not.toContain(token.split('.')[1]);
  });

  it('a member removed by the owner takes its bots along: they read and post nothing more, and no bot of its joins again', async () => {
    const { net, alice, bob, general, call } = await world();
    const helper = await botToken(bob, 'bobhelper');
    expect((await call(helper, 'POST', `/channels/${general}/join`)).status).toBe(200);
    const sdk = await BotClient.connect({ url: net.server.httpUrl, token: helper });
    expect((await sdk.post(general, 'before')).duplicate).toBe(false);
    // alice's own bot is a member too, and stays one.
    const own = await botToken(alice, 'alicebot');
    expect((await call(own, 'POST', `/channels/${general}/join`)).status).toBe(200);

    expect((await alice.call('DELETE', `/api/channels/${general}/members/bob`)).status).toBe(200);
    // Removed for good (PROTOCOL.md §2.2), and so are the bots bob owns: the removed member
    // would otherwise read on through a bot it made before, or one it makes afterwards.
    const refused = await waitFor(async () => {
      const r = await call(helper, 'GET', `/channels/${general}/messages`);
      return r.status === 200 ? undefined : r;
    });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('E_FORBIDDEN');
    await expect(sdk.post(general, 'after')).rejects.toMatchObject({ status: 403 });
    expect((await call(helper, 'GET', '/users/@me/channels')).body.channels).toEqual([]);
    const rejoin = await call(helper, 'POST', `/channels/${general}/join`);
    expect(rejoin.status).toBe(403);
    expect(rejoin.body.error.code).toBe('E_FORBIDDEN');
    const later = await botToken(bob, 'bobhelper2');
    const fresh = await call(later, 'POST', `/channels/${general}/join`);
    expect(fresh.status).toBe(403);
    expect(fresh.body.error.code).toBe('E_FORBIDDEN');
    expect((await call(later, 'GET', `/channels/${general}/items?since=0`)).status).toBe(403);
    const members = (await call(own, 'GET', `/channels/${general}/members`)).body.members;
    expect(members).toContain('alicebot');
    expect(members).not.toContain('bobhelper');
    expect(members).not.toContain('bob');
    // Nothing bob's bot posted after the removal reached alice.
    const shown = await alice.call('GET', `/api/channels/${general}/messages`);
    expect(shown.body.messages.map((m: any) => m.text)).not.toContain('after');
  });

  it('the directory leaves out a channel whose owner removed the bot’s owner, for every bot of its: none may join it (PROTOCOL.md §2.2)', async () => {
    const { alice, bob, general, secret, call } = await world();
    const helper = await botToken(bob, 'bobhelper');
    const own = await botToken(alice, 'alicebot');
    const listed = async (token: string) =>
      ((await call(token, 'GET', '/channels')).body.channels as any[]).map((c) => c.id);
    expect(await listed(helper)).toEqual([general, secret]);
    expect((await alice.call('DELETE', `/api/channels/${general}/members/bob`)).status).toBe(200);
    await waitFor(async () => !(await listed(helper)).includes(general));
    expect(await listed(helper)).toEqual([secret]);
    const later = await botToken(bob, 'bobhelper2');
    expect(await listed(later)).toEqual([secret]);
    expect(await listed(own)).toEqual([general, secret]);
  });

  it('keeps a token inside its scopes and channels', async () => {
    const { net, alice, general, secret, call } = await world();
    const readOnly = (await alice.call('POST', '/api/tokens', { name: 'reader', scopes: ['read'] }))
      .body.token as string;
    const one = (
      await alice.call('POST', '/api/tokens', {
        name: 'general only',
        scopes: ['read', 'write'],
        channels: [general],
      })
    ).body.token as string;
    // Read-only: reads, and refuses every write, keys included.
    expect((await call(readOnly, 'GET', `/channels/${secret}/messages`)).status).toBe(200);
    for (const [method, route, body] of [
      ['POST', `/channels/${general}/join`, undefined],
      ['POST', '/keys', { publicKey: newSessionKeys().publicKey }],
      ['POST', '/channels', { name: 'x' }],
    ] as const) {
      const r = await call(readOnly, method, route, body);
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe('E_TOKEN_SCOPE');
    }
    // One channel: the other does not exist for it, in reads, writes and the directory.
    expect((await call(one, 'GET', `/channels/${general}/messages`)).status).toBe(200);
    for (const route of [
      `/channels/${secret}/messages`,
      `/channels/${secret}`,
      `/channels/${secret}/members`,
    ]) {
      const r = await call(one, 'GET', route);
      expect(r.status).toBe(404);
      expect(r.body.error.code).toBe('E_CHANNEL_NOT_FOUND');
    }
    expect((await call(one, 'GET', '/channels')).body.channels.map((c: any) => c.id)).toEqual([
      general,
    ]);
    expect((await call(one, 'GET', '/users/@me/channels')).body.channels).toHaveLength(1);
    expect((await call(one, 'POST', '/channels', { name: 'new' })).body.error.code).toBe(
      'E_TOKEN_SCOPE',
    );
    // Signed posts: into its channel, yes; into the other, which alice may write to, no.
    const sdk = await BotClient.connect({ url: net.server.httpUrl, token: one });
    expect(sdk.me.username).toBe('alice');
    expect((await sdk.post(general, 'from a script')).duplicate).toBe(false);
    await expect(sdk.post(secret, 'not here')).rejects.toMatchObject({
      status: 404,
      code: 'E_CHANNEL_NOT_FOUND',
    });
  });

  it('refuses wrong, malformed, revoked and expired tokens alike, and revocation holds at once', async () => {
    const { net, alice, call } = await world();
    const made = (await alice.call('POST', '/api/tokens', { name: 'a', scopes: ['read'] })).body;
    const token = made.token as string;
    expect((await call(token, 'GET', '/users/@me')).status).toBe(200);
    const [id, secretPart] = token.split('.') as [string, string];
    const wrong = `${id}.${secretPart.slice(0, -1)}${secretPart.endsWith('A') ? 'B' : 'A'}`;
    const unknown = `tok_${'A'.repeat(22)}.${secretPart}`;
    const answers = [];
    for (const t of [wrong, unknown, 'nonsense', `${token}x`])
      answers.push(await call(t, 'GET', '/users/@me'));
    expect((await alice.call('DELETE', `/api/tokens/${id}`)).status).toBe(204);
    answers.push(await call(token, 'GET', '/users/@me'));
    // Someone else's token id cannot be revoked by guessing it: alice's own list is what counts.
    expect((await alice.call('DELETE', `/api/tokens/${id}`)).body.error.code).toBe('E_NOT_FOUND');
    // Expired: the store's record says so (a token made to expire, moved into the past).
    const exp = (
      await alice.call('POST', '/api/tokens', { name: 'b', scopes: ['read'], expiresInDays: 1 })
    ).body.token as string;
    expect((await call(exp, 'GET', '/users/@me')).status).toBe(200);
    const later = Date.now() + 2 * 86_400_000;
    const tokens = (net.server as any).tokens;
    await expect(tokens.authenticate(`Bearer ${exp}`, later)).rejects.toMatchObject({
      code: 'E_TOKEN_INVALID',
    });
    for (const a of answers) {
      expect(a.status).toBe(401);
      expect(a.body).toEqual(answers[0]!.body);
    }
    expect(answers[0]!.body.error.code).toBe('E_TOKEN_INVALID');
    // No token at all: the same.
    const none = await fetch(new URL('/api/v1/users/@me', net.server.httpUrl));
    expect(await none.json()).toEqual(answers[0]!.body);
  });

  it('answers 429 with Retry-After and RateLimit headers past a token’s budget', async () => {
    const { alice, call } = await world({ apiRate: 1, apiBurst: 3 });
    const token = (await alice.call('POST', '/api/tokens', { name: 'r', scopes: ['read'] })).body
      .token as string;
    const first = await call(token, 'GET', '/users/@me');
    expect(first.headers.get('ratelimit-limit')).toBe('3');
    expect(first.headers.get('ratelimit-remaining')).toBe('2');
    await call(token, 'GET', '/users/@me');
    await call(token, 'GET', '/users/@me');
    const refused = await call(token, 'GET', '/users/@me');
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('E_RATE_LIMITED');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(refused.headers.get('ratelimit-remaining')).toBe('0');
  });

  it('refuses forged, misdirected and malformed posts with the wire protocol’s errors', async () => {
    const { net, alice, general, secret, call } = await world();
    const token = await botToken(alice, 'helper');
    await call(token, 'POST', `/channels/${general}/join`);
    const keys = newSessionKeys();
    const cert = (await call(token, 'POST', '/keys', { publicKey: keys.publicKey })).body;
    expect(cert.bot).toBe(true);
    const item = (author: string, channelId: string) => {
      const base = { channelId, author, ts: Date.now(), lc: 0, text: 'hi' };
      const id = messageId(base);
      const { author: _a, ...wire } = base;
      return { ...wire, id, sig: signMessage({ ...base, id }, keys), cert: cert.cert };
    };
    // Signed as alice with the bot's certificate: the certificate names helper.
    const forged = await call(
      token,
      'POST',
      `/channels/${general}/messages`,
      item('alice', general),
    );
    expect(forged.body.error.code).toBe('E_BAD_SIGNATURE');
    // The path's channel and the item's differ.
    const mis = await call(token, 'POST', `/channels/${general}/messages`, item('helper', secret));
    expect(mis.status).toBe(400);
    // Not a member of secret.
    const notMember = await call(
      token,
      'POST',
      `/channels/${secret}/messages`,
      item('helper', secret),
    );
    expect(notMember.body.error.code).toBe('E_NOT_MEMBER');
    const bad = await call(token, 'POST', `/channels/${general}/messages`, {
      text: 'no signature',
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('E_BAD_REQUEST');
    const ok = await call(token, 'POST', `/channels/${general}/messages`, item('helper', general));
    expect(ok.status).toBe(201);
    // A user sharing no channel with the bot is hidden exactly as one that does not exist.
    const link = await net.rawLink();
    await link.request('register', { username: 'carol', password: 'carol-pw' });
    expect((await call(token, 'GET', '/users/bob')).status).toBe(200);
    const carol = await call(token, 'GET', '/users/carol');
    expect(carol.status).toBe(404);
    expect(carol.body).toEqual((await call(token, 'GET', '/users/nobody')).body);
    expect((await call(token, 'GET', '/users/carol/channels')).body).toEqual(carol.body);
  });
});

describe('examples/echo-bot.ts', () => {
  it('runs as a newcomer would start it, and answers a mention', async () => {
    const { net, alice, general } = await world();
    await alice.call('POST', '/api/bots', { username: 'echo' });
    const token = (
      await alice.call('POST', '/api/tokens', {
        name: 'echo',
        account: 'echo',
        scopes: ['read', 'write'],
      })
    ).body.token as string;
    const sdk = await BotClient.connect({ url: net.server.httpUrl, token });
    await sdk.join(general);
    const proc = spawn(process.execPath, ['--import', 'tsx', 'examples/echo-bot.ts'], {
      env: { ...process.env, HCHAT_URL: net.server.httpUrl, HCHAT_TOKEN: token },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    onTestFinished(() => void proc.kill('SIGKILL'));
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(
      () => out.includes('ready in 1 channels'),
      20_000,
      () => `ready line: ${out}`,
    );
    // The host's member list learns of the bot; then "@echo" becomes a signed mention.
    await waitFor(async () => {
      const m = await alice.call('GET', `/api/channels/${general}/members`);
      return JSON.stringify(m.body).includes('echo');
    });
    const t0 = Date.now();
    await alice.call('POST', `/api/channels/${general}/messages`, { text: '@echo ping pong' });
    const reply = await waitFor(async () => {
      const m = await alice.call('GET', `/api/channels/${general}/messages`);
      return m.body.messages.find((x: any) => x.author === 'echo');
    });
    console.log(`echo bot: mention to answer seen by the poster in ${Date.now() - t0} ms`);
    expect(reply.text).toBe('ping pong');
  });
});

describe('the OpenAPI document', () => {
  it('is what the contract checks hold answers to: a wrong body or status fails them', async () => {
    const { net } = await world();
    const { spec, check } = await contract(net.server.httpUrl);
    expect(spec).toMatchObject({ openapi: '3.1.0' });
    expect(Object.keys(spec.paths)).toContain('/api/v1/users/{user_id}/channels');
    expect(() => check('GET', '/api/v1/channels', 200, { channels: [{ id: 1 }] })).toThrow();
    expect(() => check('GET', '/api/v1/channels', 418, {})).toThrow(/not documented/);
    expect(() => check('GET', '/api/v1/nowhere', 200, {})).toThrow(/no documented route/);
    check('GET', '/api/v1/channels', 200, { channels: [] });
    // The reference page is served from the server itself.
    const docs = await fetch(new URL('/api/v1/docs/', net.server.httpUrl));
    expect(docs.status).toBe(200);
    expect(await docs.text()).not.toMatch(/https?:\/\/(cdn|unpkg)/);
  });
});

describe('SDK', () => {
  it('surfaces API errors with their code and status', async () => {
    const { net } = await world();
    const e = await BotClient.connect({ url: net.server.httpUrl, token: 'tok_x.y' }).catch(
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(ApiError);
    expect(e).toMatchObject({ status: 401, code: 'E_TOKEN_INVALID' });
  });
});
