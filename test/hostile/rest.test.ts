/**
 * The public REST API v1 and its gateway (issue 17), attacked from the documents alone
 * (docs/REST.md, docs/openapi.json, PROTOCOL.md §2.1, §3.3 `post`, §7, §11, SECURITY.md "The REST
 * API v1 and its tokens"): a token holder trying to step outside its scopes and channels, to
 * write as someone else, to enumerate accounts, to break the server with malformed input or
 * tokens in odd places, and to outspend its rate budget. Each test asserts the guarantee the
 * documents promise, so it fails if the guarantee breaks.
 */
import fs from 'node:fs';
import http from 'node:http';
import { connect as netConnect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';
import { newSessionKeys, signMessage, type SessionKeys } from '../../src/shared/signing.js';
import { messageId, type IdFields } from '../../src/shared/message-id.js';
import { createTestnet, signIn, waitFor, type TestPeer } from '../testnet.js';
import { launchHchat } from '../hchat-spawn.js';

type Net = Awaited<ReturnType<typeof createTestnet>>;

interface Answer {
  status: number;
  body: any;
  headers: Headers;
}

/** One REST call as an outsider makes it: `token` as Bearer (none when undefined). */
async function rest(
  net: Net,
  token: string | undefined,
  method: string,
  route: string,
  o: { body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {
    ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    ...(o.body === undefined ? {} : { 'content-type': 'application/json' }),
    ...o.headers,
  };
  const res = await fetch(new URL(`/api/v1${route}`, net.server.httpUrl), {
    method,
    headers,
    body: o.raw ?? (o.body === undefined ? undefined : JSON.stringify(o.body)),
  });
  const text = await res.text();
  let body: any = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: kept as text, and the test says so
  }
  return { status: res.status, body, headers: res.headers };
}

/** A raw HTTP/1.1 request, for what fetch will not send (repeated headers, odd spellings). */
function rawHttp(
  net: Net,
  path: string,
  headers: Array<[string, string]>,
): Promise<{ status: number; body: string }> {
  const url = new URL(net.server.httpUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname,
      port: url.port,
      path,
      method: 'GET',
      headers: [['host', url.host], ...headers].flat(),
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** alice owns general (bob a member) and secret (dave a member); carol shares nothing. */
async function world(server: Record<string, unknown> = {}) {
  const net = await createTestnet({ peers: 3, server });
  const [alice, bob, dave] = net.peers as [TestPeer, TestPeer, TestPeer];
  await signIn(alice, 'alice');
  await signIn(bob, 'bob');
  await signIn(dave, 'dave');
  const link = await net.rawLink();
  await link.request('register', { username: 'carol', password: 'carol-pw' });
  const general = (
    await alice.call('POST', '/api/channels', { name: 'general', allowVisitors: false })
  ).body.id as string;
  const secret = (
    await alice.call('POST', '/api/channels', { name: 'secret', allowVisitors: false })
  ).body.id as string;
  expect((await bob.call('POST', `/api/channels/${general}/join`)).status).toBe(200);
  expect((await dave.call('POST', `/api/channels/${secret}/join`)).status).toBe(200);
  const token = async (o: Record<string, unknown>) => {
    const r = await alice.call('POST', '/api/tokens', {
      name: 't',
      scopes: ['read', 'write'],
      ...o,
    });
    expect(r.status).toBe(201);
    return r.body.token as string;
  };
  const call = (t: string | undefined, method: string, route: string, body?: unknown) =>
    rest(net, t, method, route, { body });
  return { net, alice, bob, dave, link, general, secret, token, call };
}

/** The claims of a server-signed certificate (PROTOCOL.md §2.1). */
function claims(cert: string): any {
  return JSON.parse(Buffer.from(cert.split('.')[0]!, 'base64url').toString('utf8'));
}

/** A signed item as PROTOCOL.md §2.1 builds it; `wire` overrides what is sent. */
function item(
  author: string,
  keys: SessionKeys,
  cert: string,
  fields: Omit<IdFields, 'author' | 'ts' | 'lc'> & { ts?: number; lc?: number },
) {
  const base: IdFields = { ts: Date.now(), lc: 0, ...fields, author };
  const id = messageId(base);
  const { author: _a, ...wire } = base;
  return { ...wire, id, sig: signMessage({ ...base, id }, keys), cert };
}

/** A gateway client: frames got, refusal status, close code. */
function gateway(net: Net, token: string, query = '') {
  const url = `${net.server.httpUrl.replace(/^http/, 'ws')}api/v1/gateway${query}`;
  const frames: any[] = [];
  let closed: number | undefined;
  let refused: number | undefined;
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
  ws.on('message', (d) => frames.push(JSON.parse(String(d))));
  ws.on('close', (code) => (closed = code));
  ws.on('unexpected-response', (_req, res) => {
    refused = res.statusCode;
    ws.terminate();
  });
  ws.on('error', () => undefined);
  onTestFinished(() => ws.terminate());
  return { ws, frames, closed: () => closed, refused: () => refused };
}

function expectError(a: Answer, status: number, code: string, field?: string) {
  expect(a.status, JSON.stringify(a.body)).toBe(status);
  expect(a.body?.error?.code, JSON.stringify(a.body)).toBe(code);
  if (field) expect(a.body.error.message).toContain(field);
}

describe('hostile REST: scopes and channels', () => {
  it('a read-only token writes nothing, on any write route', async () => {
    const { net, general, secret, token, call, alice } = await world();
    const ro = await token({ scopes: ['read'] });
    const keys = newSessionKeys();
    const someItem = {
      channelId: general,
      id: general,
      ts: 1,
      lc: 0,
      text: 'x',
      sig: 'x',
      cert: 'x',
    };
    for (const [method, route, body] of [
      ['POST', '/channels', { name: 'x' }],
      ['POST', `/channels/${general}/join`, undefined],
      ['POST', `/channels/${secret}/leave`, undefined],
      ['POST', `/channels/${general}/messages`, someItem],
      ['POST', '/keys', { publicKey: keys.publicKey }],
    ] as const)
      expectError(await call(ro, method, route, body), 403, 'E_TOKEN_SCOPE');
    // Nothing changed: alice still owns and belongs to both, no channel "x".
    const mine = (await alice.call('GET', '/api/channels')).body;
    expect(JSON.stringify(mine)).toContain(secret);
    expect((await call(ro, 'GET', '/channels')).body.channels).toHaveLength(2);
    // A write-only token is refused at the gateway's door.
    const wo = await token({ scopes: ['write'] });
    const g = gateway(net, wo);
    await waitFor(() => g.refused());
    expect(g.refused()).toBe(403);
    expectError(await call(wo, 'GET', '/users/@me'), 403, 'E_TOKEN_SCOPE');
  });

  it('a channel-limited token never sees or touches another channel, by any route', async () => {
    const { alice, general, secret, token, call } = await world();
    const full = await token({});
    const one = await token({ channels: [general] });
    // Something to find in secret, and a message in general for paging.
    const s = await alice.call('POST', `/api/channels/${secret}/messages`, { text: 'the plans' });
    expect(s.status).toBe(201);
    await alice.call('POST', `/api/channels/${general}/messages`, { text: 'hello' });
    const secretMsg = await waitFor(async () => {
      const m = (await call(full, 'GET', `/channels/${secret}/messages`)).body.messages;
      return m?.[0]?.id as string | undefined;
    });
    const keys = newSessionKeys();
    const cert = (await call(one, 'POST', '/keys', { publicKey: keys.publicKey })).body.cert;
    const toSecret = item('alice', keys, cert, { channelId: secret, text: 'sneaky' });
    for (const [method, route, body] of [
      ['GET', `/channels/${secret}`],
      ['GET', `/channels/${secret}/members`],
      ['GET', `/channels/${secret}/messages`],
      ['GET', `/channels/${secret}/messages?before=${secretMsg}`],
      ['GET', `/channels/${secret}/items?since=0`],
      ['POST', `/channels/${secret}/join`],
      ['POST', `/channels/${secret}/leave`],
      ['POST', `/channels/${secret}/messages`, toSecret],
    ] as const)
      expectError(await call(one, method, route, body), 404, 'E_CHANNEL_NOT_FOUND');
    // `before` naming secret's message on general's route: no message of this channel.
    const cross = await call(one, 'GET', `/channels/${general}/messages?before=${secretMsg}`);
    expect(JSON.stringify(cross.body)).not.toContain('the plans');
    expectError(cross, 404, 'E_NOT_FOUND');
    // Still a member of secret: the leave above did nothing.
    expect((await call(full, 'GET', `/channels/${secret}/members`)).body.members).toContain(
      'alice',
    );
    // Lists: the directory on every page and cursor, its own channels, the shared channels.
    for (const after of ['', 'x', secret, Buffer.from(secret).toString('base64url')]) {
      const d = await call(one, 'GET', `/channels${after ? `?after=${after}` : ''}`);
      expect(d.status).toBeLessThan(500);
      expect(JSON.stringify(d.body)).not.toContain(secret);
    }
    expect(JSON.stringify((await call(one, 'GET', '/users/@me/channels')).body)).not.toContain(
      secret,
    );
    // dave shares only secret with alice: through this token he is as unknown as nobody.
    expect((await call(full, 'GET', '/users/dave')).status).toBe(200);
    const daveSeen = await call(one, 'GET', '/users/dave');
    const nobody = await call(one, 'GET', '/users/nobody');
    expect(nobody.status).toBe(404);
    expect(daveSeen.body).toEqual(nobody.body);
    const daveChannels = await call(one, 'GET', '/users/dave/channels');
    expect(JSON.stringify(daveChannels.body)).not.toContain(secret);
    // Presence: only general's members (alice, bob); dave's entry stays out.
    const seen = await waitFor(async () => {
      const p = (await call(full, 'GET', '/presence')).body.peers as any[];
      return p.some((e) => e.username === 'dave') ? p : undefined;
    });
    expect(seen.some((e) => e.username === 'dave')).toBe(true);
    const limited = (await call(one, 'GET', '/presence')).body.peers as any[];
    expect(limited.map((e) => e.username)).not.toContain('dave');
    expect(limited.map((e) => e.username)).toContain('bob');
  });

  it('a channel-limited gateway is subscribed to its channels only and gets nothing else', async () => {
    const { net, alice, general, secret, token } = await world();
    const one = await token({ channels: [general], scopes: ['read'] });
    const g = gateway(net, one);
    const ready = await waitFor(() => g.frames.find((f) => f.t === 'ready'));
    expect(ready.channels).toEqual([general]);
    await alice.call('POST', `/api/channels/${secret}/messages`, { text: 'not for the bot' });
    await alice.call('POST', `/api/channels/${general}/messages`, { text: 'for the bot' });
    await waitFor(() => g.frames.some((f) => f.data?.message?.text === 'for the bot'));
    await new Promise((r) => setTimeout(r, 300));
    expect(JSON.stringify(g.frames)).not.toContain('not for the bot');
    expect(JSON.stringify(g.frames)).not.toContain(secret);
  });
});

describe('hostile REST: identity of what is posted', () => {
  it('refuses items signed as someone else, misdirected, forged or not the poster’s to change', async () => {
    const { net, alice, general, secret, token, call, link } = await world();
    await alice.call('POST', '/api/bots', { username: 'helper' });
    const bot = await token({ account: 'helper' });
    const aliceTok = await token({});
    expect((await call(bot, 'POST', `/channels/${general}/join`)).status).toBe(200);
    const bk = newSessionKeys();
    const botCert = (await call(bot, 'POST', '/keys', { publicKey: bk.publicKey })).body;
    expect(botCert.bot).toBe(true);
    expect(claims(botCert.cert)).toMatchObject({ u: 'helper', bot: true, pk: bk.publicKey });
    const post = (t: string, body: unknown, channel = general) =>
      call(t, 'POST', `/channels/${channel}/messages`, body);
    // alice's key and certificate (from her own token), posted through the bot's token.
    const ak = newSessionKeys();
    const aliceCert = (await call(aliceTok, 'POST', '/keys', { publicKey: ak.publicKey })).body;
    expect(aliceCert.bot).toBe(false);
    expectError(
      await post(bot, item('alice', ak, aliceCert.cert, { channelId: general, text: 'as alice' })),
      403,
      'E_BAD_SIGNATURE',
    );
    // bob's person session certificate (a real login), posted through the bot's token.
    const bobKeys = newSessionKeys();
    const bobSession = await link.request('login', {
      username: 'bob',
      password: 'bob-pw',
      publicKey: bobKeys.publicKey,
    });
    expectError(
      await post(
        bot,
        item('bob', bobKeys, bobSession.cert, { channelId: general, text: 'as bob' }),
      ),
      403,
      'E_BAD_SIGNATURE',
    );
    // The bot's key under alice's certificate, authored helper: the cert names alice.
    expectError(
      await post(bot, item('helper', bk, aliceCert.cert, { channelId: general, text: 'x' })),
      403,
      'E_BAD_SIGNATURE',
    );
    // An id not derived from the content.
    const honest = item('helper', bk, botCert.cert, { channelId: general, text: 'honest' });
    expectError(await post(bot, { ...honest, text: 'altered' }), 403, 'E_BAD_SIGNATURE');
    // Another channel than the path's.
    expectError(
      await post(bot, item('helper', bk, botCert.cert, { channelId: secret, text: 'x' })),
      400,
      'E_BAD_REQUEST',
    );
    // Ahead of the server's clock by more than ε.
    expectError(
      await post(
        bot,
        item('helper', bk, botCert.cert, {
          channelId: general,
          text: 'x',
          ts: Date.now() + 600_000,
        }),
      ),
      400,
      'E_CLOCK_SKEW',
    );
    // A tombstone without deletedBy.
    const tomb = item('helper', bk, botCert.cert, { channelId: general, text: 'gone' });
    const { text: _t, ...tombWire } = tomb;
    const digest = (await import('../../src/shared/message-id.js')).bodyDigest({ text: 'gone' });
    expectError(await post(bot, { ...tombWire, digest }), 400, 'E_BAD_REQUEST');
    // Changes to alice's message: edit and delete are hers (or the owner's), channel items the owner's.
    const alicePosted = await alice.call('POST', `/api/channels/${general}/messages`, {
      text: 'mine',
    });
    expect(alicePosted.status).toBe(201);
    const target = await waitFor(async () => {
      const m = (await call(bot, 'GET', `/channels/${general}/messages`)).body.messages as any[];
      return m.find((x) => x.text === 'mine')?.id as string | undefined;
    });
    const change = (f: Record<string, unknown>) =>
      post(bot, item('helper', bk, botCert.cert, { channelId: general, ...f } as never));
    expectError(await change({ kind: 'edit', target, text: 'yours now' }), 403, 'E_FORBIDDEN');
    expectError(await change({ kind: 'delete', target }), 403, 'E_FORBIDDEN');
    expectError(await change({ kind: 'channel', change: { name: 'pwned' } }), 403, 'E_FORBIDDEN');
    expectError(await change({ kind: 'channel', change: { remove: 'bob' } }), 403, 'E_FORBIDDEN');
    // A target that is no message of this channel.
    expectError(
      await change({ kind: 'react', target: '00000000-0000-4000-8000-000000000000', emoji: '👍' }),
      404,
      'E_NOT_FOUND',
    );
    // None of it reached the log: only alice's message is there, unchanged.
    const items = (await call(bot, 'GET', `/channels/${general}/items?since=0`)).body;
    expect(items.messages.map((m: any) => [m.author, m.text])).toEqual([['alice', 'mine']]);
    expect((await call(bot, 'GET', `/channels/${general}`)).body.name).toBe('general');
    // The honest one still goes in.
    expect((await post(bot, honest)).status).toBe(201);
    void net;
  });
});

describe('hostile REST: a revoked token', () => {
  it('what a key certified for a revoked token signs is refused once it is revoked, by any path, whatever its stamp', async () => {
    // A key certified through POST /keys names its token, not a session: revoking the token
    // left its certificate good for 30 days (found in review of the avatar fix).
    const { alice, general, token, call } = await world();
    const doomed = await token({});
    const other = await token({});
    const keys = newSessionKeys();
    const cert = (await call(doomed, 'POST', '/keys', { publicKey: keys.publicKey })).body.cert;
    const early = item('alice', keys, cert, { channelId: general, text: 'before the revocation' });
    const id = claims(cert).sid as string;
    expect((await alice.call('DELETE', `/api/tokens/${id}`)).status).toBe(204);
    await new Promise((r) => setTimeout(r, 5));
    const late = item('alice', keys, cert, { channelId: general, text: 'with a leaked key' });
    // Through another live token of the same account: the signature is what is refused.
    expectError(
      await call(other, 'POST', `/channels/${general}/messages`, late),
      403,
      'E_BAD_SIGNATURE',
    );
    // Nor what says it was signed before: its stamp is the signer's to pick, so a leaked key
    // could backdate anything (test/outsider/attack9-revoked-key.test.ts). A token's posts go
    // through the API as they are made: none honest arrives after its revocation.
    expectError(
      await call(other, 'POST', `/channels/${general}/messages`, early),
      403,
      'E_BAD_SIGNATURE',
    );
  });
});

describe('hostile REST: tokens in odd places', () => {
  it('refuses tokens outside the header with the one 401, never a 5xx, and keeps serving', async () => {
    const { net, token, call } = await world();
    const t = await token({ scopes: ['read'] });
    const invalid = await call(undefined, 'GET', '/users/@me');
    expectError(invalid, 401, 'E_TOKEN_INVALID');
    for (const q of [`?token=${t}`, `?access_token=${t}`, `?authorization=Bearer%20${t}`])
      expect((await call(undefined, 'GET', `/users/@me${q}`)).body).toEqual(invalid.body);
    const [id, secretPart] = t.split('.') as [string, string];
    const odd: Array<Array<[string, string]>> = [
      [['authorization', `Basic ${Buffer.from(`${id}:${secretPart}`).toString('base64')}`]],
      [['authorization', t]],
      [['authorization', `Bearer ${id}`]],
      [['authorization', `Bearer ${t}\u0000`.replace('\u0000', '%00')]],
      [['authorization', `Bearer ${'A'.repeat(7000)}`]],
      [['authorization', `Bearer ${id}.${secretPart}.${secretPart}`]],
      [['authorization', `Bearer tok_${'A'.repeat(22)}.${secretPart}`]],
      // Two headers, a bad one first and a good one last, and the other way round.
      [
        ['authorization', 'Bearer nonsense'],
        ['authorization', `Bearer ${t}`],
      ],
    ];
    for (const headers of odd) {
      const r = await rawHttp(net, '/api/v1/users/@me', headers);
      expect(r.status, `${JSON.stringify(headers).slice(0, 80)} → ${r.body}`).toBe(401);

      expect(JSON.parse(r.body)).toEqual(invalid.body);
    }
    // Spellings RFC 9110 allows (scheme case, spaces) or not: never a 5xx, never another's answer.
    for (const h of [
      `bearer ${t}`,
      `BEARER ${t}`,
      `Bearer  ${t}`,
      ` Bearer ${t} `,
      `Bearer\t${t}`,
    ]) {
      const r = await rawHttp(net, '/api/v1/users/@me', [['authorization', h]]);
      expect([200, 401], `${JSON.stringify(h)} → ${r.status} ${r.body}`).toContain(r.status);
      if (r.status === 200) expect(JSON.parse(r.body).username).toBe('alice');
    }
    // A header past what HTTP servers take: a 4xx, and the server serves the next call.
    const huge = await rawHttp(net, '/api/v1/users/@me', [
      ['authorization', `Bearer ${'A'.repeat(100_000)}`],
    ]).catch(() => ({ status: 431, body: '' }));
    expect(huge.status).toBeGreaterThanOrEqual(400);
    expect(huge.status).toBeLessThan(500);
    expect((await call(t, 'GET', '/users/@me')).status).toBe(200);
  });

  it('keeps gateway sessions to their token and survives absurd resume cursors', async () => {
    const { net, alice, general, token } = await world();
    const t = await token({ scopes: ['read'] });
    const other = await token({ scopes: ['read'] });
    const a = gateway(net, t);
    const ready = await waitFor(() => a.frames.find((f) => f.t === 'ready'));
    await alice.call('POST', `/api/channels/${general}/messages`, { text: 'one' });
    await waitFor(() => a.frames.some((f) => f.t === 'event'));
    a.ws.terminate();
    await waitFor(() => a.closed() !== undefined);
    await alice.call('POST', `/api/channels/${general}/messages`, { text: 'missed' });
    // Another token of the same user asks for the session: it gets a new one, not the events.
    const b = gateway(net, other, `?resume=${ready.session}&seq=0`);
    await waitFor(() => b.frames.some((f) => f.t === 'ready'));
    expect(b.frames[0]).toEqual({ t: 'invalid_session' });
    expect(JSON.stringify(b.frames)).not.toContain('missed');
    // Absurd cursors on the right token: invalid_session or a refusal, never a crash or a replay
    // of someone else's stream.
    for (const seq of ['-1', '1e400', '99999999999999999999', 'NaN', '', '0x10']) {
      const c = gateway(net, t, `?resume=${ready.session}&seq=${seq}`);
      await waitFor(() => c.refused() !== undefined || c.frames.some((f) => f.t !== 'event'));
      if (c.refused() !== undefined) expect(c.refused()).toBe(400);
      else if (c.frames.some((f) => f.t === 'resumed'))
        // Resumed from a negative cursor: the events it holds, each once, in order.
        expect(c.frames.filter((f) => f.t === 'event').map((f) => f.seq)).toEqual([1, 2]);
      else expect(c.frames[0]?.t).toMatch(/^(invalid_session|ready)$/);
      c.ws.terminate();
    }
    // Garbage the client sends: the server answers or closes that socket, and serves the next.
    const d = gateway(net, t);
    await waitFor(() => d.frames.some((f) => f.t === 'ready'));
    for (const junk of ['not json', '{"t":"ping"', '[]', '{"t":"resume"}', 'x'.repeat(100_000)])
      d.ws.send(junk);
    d.ws.send('{"t":"ping"}');
    await new Promise((r) => setTimeout(r, 300));
    const e = gateway(net, t);
    await waitFor(() => e.frames.some((f) => f.t === 'ready'));
  });
});

describe('hostile REST: enumeration', () => {
  it('answers the same 404 for an unrelated user, a bot, any spelling and nobody', async () => {
    const { alice, bob, token, call } = await world();
    await bob.call('POST', '/api/bots', { username: 'bobsbot' });
    const t = await token({ scopes: ['read'] });
    const nobody = await call(t, 'GET', '/users/nobody');
    expectError(nobody, 404, nobody.body.error.code);
    for (const name of ['carol', 'CAROL', 'Carol', 'bobsbot', 'carol.', 'zz'])
      expect((await call(t, 'GET', `/users/${name}`)).body, name).toEqual(nobody.body);
    const nobodyCh = await call(t, 'GET', '/users/nobody/channels');
    for (const name of ['carol', 'CAROL', 'bobsbot'])
      expect((await call(t, 'GET', `/users/${name}/channels`)).body, name).toEqual(nobodyCh.body);
    // A shared channel's member is visible, in any case spelling.
    expect((await call(t, 'GET', '/users/BOB')).status).toBe(200);
    void alice;
  });
});

describe('hostile REST: input abuse', () => {
  it('answers malformed input with a 4xx naming the field, never a 5xx, and keeps serving', async () => {
    const { net, general, token, call } = await world();
    const t = await token({});
    const ok = async () => expect((await call(t, 'GET', '/users/@me')).status).toBe(200);
    // Every deviation is collected, so one run lists them all.
    const wrong: string[] = [];
    const fourxx = (a: Answer, what: string) => {
      const shaped = typeof a.body?.error?.code === 'string';
      if (a.status < 400 || a.status >= 500 || !shaped)
        wrong.push(`${what} → ${a.status} ${JSON.stringify(a.body).slice(0, 160)}`);
    };
    // Bodies over 64 KiB: 413, whatever the route.
    for (const route of ['/channels', `/channels/${general}/messages`, '/keys']) {
      const big = await rest(net, t, 'POST', route, {
        raw: JSON.stringify({ name: 'x'.repeat(70_000) }),
        headers: { 'content-type': 'application/json' },
      });
      expect(big.status, route).toBe(413);
      await ok();
    }
    // Not JSON, wrong content types, deep nesting, NUL bytes, unicode tricks.
    const bodies: Array<[string, string, string | undefined, string?]> = [
      ['not json', '{"name":', 'application/json'],
      ['text/plain', '{"name":"plain"}', 'text/plain'],
      ['no type', '{"name":"untyped"}', undefined],
      ['form', 'name=form', 'application/x-www-form-urlencoded'],
      ['deep', `${'['.repeat(30_000)}${']'.repeat(30_000)}`, 'application/json'],
      ['deep object', `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`, 'application/json'],
      ['array', '[]', 'application/json'],
      ['null', 'null', 'application/json'],
      ['NUL in name', JSON.stringify({ name: 'a\u0000b' }), 'application/json', 'name'],
      ['line separator', JSON.stringify({ name: 'a\u2028b' }), 'application/json', 'name'],
      ['C1 control', JSON.stringify({ name: 'a\u0085b' }), 'application/json', 'name'],
      ['blank name', JSON.stringify({ name: '   ' }), 'application/json', 'name'],
      ['long name', JSON.stringify({ name: '👋'.repeat(65) }), 'application/json', 'name'],
      ['bad id', JSON.stringify({ name: 'ok', id: '../../x' }), 'application/json', 'id'],
      [
        'upper id',
        JSON.stringify({ name: 'ok', id: general.toUpperCase() }),
        'application/json',
        'id',
      ],
      ['proto', '{"__proto__":{"admin":true},"name":1}', 'application/json'],
    ];
    for (const [what, raw, type, field] of bodies) {
      const a = await rest(net, t, 'POST', '/channels', {
        raw,
        headers: type ? { 'content-type': type } : {},
      });
      fourxx(a, what);
      if (field) {
        expect(a.status, what).toBe(400);
        expect(a.body.error.message, what).toContain(field);
      }
      await ok();
    }
    // 👋 × 64 is a valid name (64 code points), so the length rule counts characters.
    const wave = await call(t, 'POST', '/channels', { name: '👋'.repeat(64) });
    expect(wave.status).toBe(201);
    // Query parameters out of range or not numbers: 400 naming the parameter.
    for (const [route, field] of [
      [`/channels/${general}/messages?limit=0`, 'limit'],
      [`/channels/${general}/messages?limit=501`, 'limit'],
      [`/channels/${general}/messages?limit=-1`, 'limit'],
      [`/channels/${general}/messages?limit=NaN`, 'limit'],
      [`/channels/${general}/messages?limit=1.5`, 'limit'],
      [`/channels/${general}/messages?limit=`, 'limit'],
      [`/channels/${general}/messages?limit=1e999`, 'limit'],
      [`/channels/${general}/messages?before=../../etc`, 'before'],
      [`/channels/${general}/messages?before=%00`, 'before'],
      [`/channels/${general}/items?since=-1`, 'since'],
      [`/channels/${general}/items?since=abc`, 'since'],
      [`/channels/${general}/items?since=0&limit=100000`, 'limit'],
    ] as const) {
      const a = await call(t, 'GET', route);
      expectError(a, 400, 'E_BAD_REQUEST', field);
      await ok();
    }
    // Ids that are not uuids, traversal-ish or NUL: 4xx, never 5xx.
    for (const id of [
      '..%2F..%2Fusers%2F%40me',
      '%2e%2e',
      '%00',
      general.toUpperCase(),
      `${general}%00`,
      '%F0%9F%91%8B',
    ]) {
      for (const sub of ['', '/messages', '/members', '/items?since=0']) {
        const a = await call(t, 'GET', `/channels/${id}${sub}`);
        fourxx(a, `channel ${id.slice(0, 20)}${sub}`);
      }
      fourxx(await call(t, 'GET', `/users/${id}`), `user ${id.slice(0, 20)}`);
    }
    // Bad keys for /keys: 400 naming publicKey.
    for (const publicKey of ['', 'A'.repeat(42), 'A'.repeat(44), '+'.repeat(43), 12])
      expectError(await call(t, 'POST', '/keys', { publicKey }), 400, 'E_BAD_REQUEST', 'publicKey');
    // Unknown routes and methods: 404/405, never a 5xx.
    for (const [m, r] of [
      ['DELETE', `/channels/${general}`],
      ['PUT', '/users/@me'],
      ['GET', '/bots'],
      ['POST', '/tokens'],
    ] as const)
      fourxx(await call(t, m, r), `${m} ${r}`);
    await ok();
    expect(wrong).toEqual([]);
  });
});

describe('hostile REST: rate limit', () => {
  it('gives each token its own budget, answers 429 with Retry-After, and counts refused calls', async () => {
    const { token, call } = await world({ apiRate: 1, apiBurst: 3 });
    const a = await token({ scopes: ['read'] });
    const b = await token({ scopes: ['read'] });
    // Refused calls (scope, bad input) count as well, and carry the headers.
    const scope = await call(a, 'POST', '/channels', { name: 'x' });
    expect(scope.status).toBe(403);
    expect(scope.headers.get('ratelimit-remaining')).toBe('2');
    const bad = await call(a, 'GET', '/channels/nope/messages?limit=0');
    expect(bad.status).toBe(400);
    expect(bad.headers.get('ratelimit-remaining')).toBe('1');
    await call(a, 'GET', '/users/@me');
    const refused = await call(a, 'GET', '/users/@me');
    expectError(refused, 429, 'E_RATE_LIMITED');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(refused.body.error.retryAfterMs).toBeGreaterThan(0);
    expect(refused.headers.get('ratelimit-limit')).toBe('3');
    // The other token of the same user has its own budget, whole.
    const other = await call(b, 'GET', '/users/@me');
    expect(other.status).toBe(200);
    expect(other.headers.get('ratelimit-remaining')).toBe('2');
    // And it is spent like the first.
    await call(b, 'GET', '/users/@me');
    await call(b, 'GET', '/users/@me');
    expect((await call(b, 'GET', '/users/@me')).status).toBe(429);
  });
});

describe('hostile REST: bots', () => {
  it('a bot is never logged into, and no token mints bots or tokens', async () => {
    const { alice, bob, link, token, call, net } = await world();
    expect((await alice.call('POST', '/api/bots', { username: 'helper' })).status).toBe(201);
    const bot = await token({ account: 'helper' });
    // No password matches it: the unknown user's answer.
    const unknown = await link
      .request('login', {
        username: 'nosuchuser',
        password: 'whatever',
        publicKey: newSessionKeys().publicKey,
      })
      .catch((e: any) => e.code ?? String(e));
    expect(unknown).toBe('E_BAD_CREDENTIALS');
    // Four tries (the login lock is 5 failures per account and address: SECURITY.md).
    for (const [username, password] of [
      ['helper', 'helper-pw'],
      ['HELPER', 'alice-pw'],
      ['helper', 'x'.repeat(6)],
      ['helper', ''],
    ] as const)
      expect(
        await link
          .request('login', { username, password, publicKey: newSessionKeys().publicKey })
          .catch((e: any) => e.code ?? String(e)),
        `${username}/${password}`,
      ).toBe(password === '' ? 'E_BAD_REQUEST' : 'E_BAD_CREDENTIALS');
    // Its name is taken for registration and for another bot, in any case spelling.
    expect(
      await link
        .request('register', { username: 'Helper', password: 'helper-pw' })
        .catch((e: any) => e.code),
    ).toBe('E_USERNAME_TAKEN');
    expect((await bob.call('POST', '/api/bots', { username: 'HELPER' })).body.error.code).toBe(
      'E_USERNAME_TAKEN',
    );
    // Nobody else may make a token for it, nor alice one for bob.
    expect(
      (await bob.call('POST', '/api/tokens', { name: 'x', account: 'helper', scopes: ['read'] }))
        .body.error.code,
    ).toBe('E_NOT_FOUND');
    expect(
      (await alice.call('POST', '/api/tokens', { name: 'x', account: 'bob', scopes: ['read'] }))
        .body.error.code,
    ).toBe('E_NOT_FOUND');
    // The REST API has no route that makes a bot or a token, for the bot or for its owner.
    const own = await token({});
    for (const t of [bot, own])
      for (const route of ['/bots', '/tokens', '/users/@me/tokens', '/users/@me/bots']) {
        const r = await call(t, 'POST', route, { username: 'minted', name: 'm', scopes: ['read'] });
        expect(r.status, route).toBeGreaterThanOrEqual(400);
        expect(r.status, route).toBeLessThan(500);
      }
    expect((await alice.call('GET', '/api/bots')).body.bots.map((b: any) => b.username)).toEqual([
      'helper',
    ]);
    expect((await alice.call('GET', '/api/tokens')).body.tokens).toHaveLength(2);
    // A bot's certificate never outlives its token.
    const shortTok = await token({ account: 'helper', expiresInDays: 1 });
    const k = await call(shortTok, 'POST', '/keys', { publicKey: newSessionKeys().publicKey });
    expect(k.status).toBe(200);
    expect(k.body.bot).toBe(true);
    expect(k.body.exp).toBeLessThanOrEqual(Date.now() + 86_400_000 + 5_000);
    expect(claims(k.body.cert).exp).toBe(k.body.exp);
    void net;
  });
});

describe('hostile REST: errors the framework answers', () => {
  // HOLE (contract): a path parameter over fastify's length limit, or a malformed percent
  // escape, is answered by the framework, not in the documented `{"error": {code, message}}`
  // shape: `GET /api/v1/channels/<5000 × x>` → 414 `{"error":"Bad Request","code":
  // "FST_ERR_MAX_PARAM_LENGTH",…}`, `GET /api/v1/channels/%ZZ` → 400 `{"error":"Bad Request",
  // "code":"FST_ERR_BAD_URL",…}` (414 is not in docs/openapi.json either). Not fixable from test/.
  it('answers over-long and malformed path parameters in the documented error shape', async () => {
    const { net, token } = await world();
    const t = await token({ scopes: ['read'] });
    for (const route of [
      `/channels/${'x'.repeat(5000)}`,
      `/users/${'x'.repeat(5000)}`,
      '/channels/%ZZ',
    ]) {
      const a = await rest(net, t, 'GET', route);
      expect(a.status, route).toBe(400);
      expect(a.body.error.code, route).toBe('E_BAD_REQUEST');
    }
  });

  it('refuses a body whose strings are not Unicode text (a lone surrogate), naming it; nothing is stored', async () => {
    // A lone surrogate (a \uD800-\uDFFF escape without its pair) is valid JSON but no text:
    // stored, it came back as U+FFFD, so a signed message no longer matched its id, and a channel
    // name grew past its 64 characters and broke every peer's directory (PROTOCOL.md §1).
    const { general, token, call } = await world();
    const t = await token({});
    const keys = newSessionKeys();
    const cert = (await call(t, 'POST', '/keys', { publicKey: keys.publicKey })).body.cert;
    const bad = item('alice', keys, cert, { channelId: general, text: 'bad \udfff text' });
    expectError(
      await call(t, 'POST', `/channels/${general}/messages`, bad),
      400,
      'E_BAD_REQUEST',
      'lone surrogate',
    );
    expectError(
      await call(t, 'POST', '/channels', { name: '\udfff'.repeat(64), allowVisitors: true }),
      400,
      'E_BAD_REQUEST',
      'lone surrogate',
    );
    // A well-formed pair (an emoji escaped as JSON encoders may) is text, and goes through.
    const good = item('alice', keys, cert, { channelId: general, text: 'ok \ud83d\ude00' });
    expect((await call(t, 'POST', `/channels/${general}/messages`, good)).status).toBe(201);
    const page = await call(t, 'GET', `/channels/${general}/messages`);
    expect(page.body.messages.map((m: { text?: string }) => m.text)).toEqual(['ok 😀']);
  });
});

describe('hostile HTTP port: connections that only hold a descriptor', () => {
  // SECURITY.md "The server's HTTP port": one client holding idle connections had taken every
  // file descriptor of the server (new peers, /health and the REST API then refused).
  it('past the cap per address a connection is closed at once; one that sends nothing or half a request is closed at its deadline; the gateway stays', async () => {
    const { net, token } = await world({
      httpDoor: { perAddress: 20, firstRequestMs: 700, idleMs: 1500 },
    });
    const gw = gateway(net, await token({ scopes: ['read'] }));
    await waitFor(() => gw.ws.readyState === WebSocket.OPEN, 5000, 'the gateway open');
    const url = new URL(net.server.httpUrl);
    const t0 = Date.now();
    const closedAt: number[] = [];
    for (let i = 0; i < 30; i++) {
      const s = netConnect(Number(url.port), url.hostname);
      s.on('error', () => undefined);
      s.on('close', () => closedAt.push(Date.now() - t0));
      // Half of them send half a request, the rest nothing at all.
      if (i % 2) s.on('connect', () => s.write('GET /health HTTP/1.1\r\nHost: x\r\n'));
      onTestFinished(() => void s.destroy());
    }
    await new Promise((r) => setTimeout(r, 400));
    // The gateway holds one of the 20: 19 were let in, 11 closed at once.
    expect(closedAt.length).toBe(11);
    await waitFor(
      () => closedAt.length === 30,
      5000,
      () => `${closedAt.length} of 30 closed`,
    );
    expect(Math.min(...closedAt.slice(11))).toBeGreaterThanOrEqual(600);
    // An upgraded gateway is the gateway's: past idleMs without a byte, still open.
    await new Promise((r) => setTimeout(r, 1800));
    expect(gw.closed()).toBeUndefined();
    expect(gw.ws.readyState).toBe(WebSocket.OPEN);
    expect((await fetch(new URL('/health', net.server.httpUrl))).status).toBe(200);
  });

  it('a request that stalls in its body, or halfway through a second request, is closed once idle', async () => {
    const { net } = await world({ httpDoor: { firstRequestMs: 60_000, idleMs: 1000 } });
    const url = new URL(net.server.httpUrl);
    /** Sends `first`, then (once an answer came, when `then` is given) `then`; when it closed. */
    async function stall(first: string, then?: string): Promise<number> {
      const s = netConnect(Number(url.port), url.hostname);
      s.on('error', () => undefined);
      onTestFinished(() => void s.destroy());
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      const closed = new Promise<number>((resolve) => s.on('close', () => resolve(Date.now())));
      await new Promise((r) => s.once('connect', r));
      s.write(first);
      if (then !== undefined) {
        await waitFor(() => got.includes('\r\n\r\n'), 5000, 'the first answer');
        s.write(then);
      }
      const t = Date.now();
      const at = await Promise.race([
        closed,
        new Promise<number>((r) => setTimeout(() => r(0), 9000)),
      ]);
      expect(at, 'still open 9 s later').toBeGreaterThan(0);
      return at - t;
    }
    // Headers done, 10 of 100 body bytes, then nothing: idleMs.
    const body = await stall(
      'POST /api/v1/channels HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name": "',
    );
    expect(body).toBeLessThan(3000);
    // Half of a second request on a kept-alive connection (Node's keep-alive timeout is 5 s).
    const second = await stall(
      'GET /health HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /health HTTP/1.1\r\nHost: x\r\n',
    );
    expect(second).toBeLessThan(3000);
  }, 40_000);

  it('with 1,024 open files (ulimit -n), 1,050 idle connections from one address leave the server its peers’ port', async () => {
    // The attacker's own setting: the caps are an eighth of the process's descriptors per group.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-http-door-'));
    onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
    const l = launchHchat(
      ['server', '--port', '0', '--http-port', '0', '--data', dir],
      {},
      30_000,
      undefined,
      ['sh', '-c', 'ulimit -n 1024; exec "$@"', 'sh'],
    );
    onTestFinished(async () => {
      l.proc.kill('SIGKILL');
      await l.exited;
    });
    const { ready } = await l.ready;
    const http = new URL(ready.http!);
    const held: number[] = [];
    let closed = 0;
    const socks = Array.from({ length: 1050 }, () => {
      const s = netConnect(Number(http.port), http.hostname);
      s.on('error', () => undefined);
      s.on('connect', () => held.push(1));
      s.on('close', () => closed++);
      onTestFinished(() => void s.destroy());
      return s;
    });
    await waitFor(
      () => held.length === socks.length,
      10_000,
      () => `${held.length} connected`,
    );
    await waitFor(
      () => closed >= 1050 - 128,
      5000,
      () => `${closed} closed`,
    );
    // The peers' TLS port still takes a connection: the process has descriptors left.
    const [host, port] = ready.tcp!.split(/:(?=\d+$)/);
    const secure = await new Promise<string>((resolve) => {
      const t = tls.connect({ host, port: Number(port), rejectUnauthorized: false }, () => {
        t.destroy();
        resolve('secure');
      });
      t.on('error', (err) => resolve(err.message));
    });
    expect(secure).toBe('secure');
  }, 60_000);
});
