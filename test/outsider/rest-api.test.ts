// Outside attacks on the public REST API v1, its tokens and its gateway, written from
// docs/REST.md, docs/openapi.json, docs/PROTOCOL.md (§2, §3, §7, §11) and docs/SECURITY.md only.
// Each test quotes the promise it checks. Real `hchat server` processes on 127.0.0.1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import os from 'node:os';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { startCluster } from '../cluster-kit.js';
import Ajv2020 from 'ajv/dist/2020.js';
import {
  killAll,
  newKey,
  registerLogin,
  signMessage,
  sleep,
  startServer,
  uuid7,
  certClaims,
  idLayout,
  serverHello,
} from './lib.js';

const BIN = path.join(__dirname, '..', '..', 'bin', 'hchat');
process.env.HCHAT_TEST_PG ??= 'postgres://postgres@127.0.0.1:5432/postgres';

type User = Awaited<ReturnType<typeof registerLogin>>;
type Srv = Awaited<ReturnType<typeof startServer>>;

let srv: Srv;
let base: string; // http://127.0.0.1:PORT
let httpPort: number;

beforeAll(async () => {
  // Every caller here is 127.0.0.1: the failed-token budget of its address group is raised
  // (test/hostile/bad-tokens.test.ts attacks it at its default).
  srv = await startServer([
    '--max-registrations-per-address',
    '1000',
    '--api-bad-token-burst',
    '100000',
  ]);
  base = srv.ready.match(/http=(http:\/\/[\d.]+:\d+)\//)![1]!;
  httpPort = Number(base.split(':').at(-1));
}, 30_000);

afterAll(async () => {
  await killAll();
});

let n = 0;
const uname = (p: string) => `${p}${process.pid % 1000}x${n++}`;

async function user(prefix: string): Promise<User> {
  return registerLogin(srv, uname(prefix));
}

async function token(
  u: User,
  o: {
    scopes?: string[];
    channels?: string[];
    account?: string;
    expiresInDays?: number;
    name?: string;
  } = {},
): Promise<string> {
  const r = await u.c.req('token_create', {
    name: o.name ?? 't' + n++,
    scopes: o.scopes ?? ['read', 'write'],
    ...(o.channels ? { channels: o.channels } : {}),
    ...(o.account ? { account: o.account } : {}),
    ...(o.expiresInDays ? { expiresInDays: o.expiresInDays } : {}),
  });
  if (!r.body?.token) throw new Error('token_create ' + JSON.stringify(r));
  return r.body.token as string;
}

async function channel(u: User, allowVisitors = false): Promise<string> {
  const id = uuid7();
  const r = await u.c.req('channel_create', { id, name: 'ch ' + id.slice(-4), allowVisitors });
  if (r.error) throw new Error('channel_create ' + JSON.stringify(r.error));
  return id;
}

async function join(u: User, id: string) {
  const r = await u.c.req('channel_join', { channelId: id });
  if (r.error) throw new Error('join ' + JSON.stringify(r.error));
}

interface Answer {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

async function rest(
  tok: string | null,
  method: string,
  route: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const r = await fetch(base + '/api/v1' + route, {
    method,
    headers: {
      ...(tok ? { authorization: 'Bearer ' + tok } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json: any = undefined;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, headers: r.headers, body: json, text };
}

/** A raw HTTP/1.1 exchange (for what fetch will not send). */
function rawHttp(request: Buffer | string, ms = 5000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(httpPort, '127.0.0.1');
    let out = '';
    const t = setTimeout(() => (s.destroy(), resolve(out)), ms);
    s.on('data', (d) => {
      out += d.toString('latin1');
    });
    s.on('error', () => {});
    s.on('close', () => (clearTimeout(t), resolve(out)));
    s.write(request);
  });
}

/** The documented error shape: {"error": {"code", "message", "retryAfterMs"?}} and nothing else. */
function expectErrorShape(a: Answer, what: string) {
  expect(a.body, `${what}: body is the documented error object, got ${a.status} ${a.text}`).toEqual(
    {
      error: expect.objectContaining({ code: expect.any(String), message: expect.any(String) }),
    },
  );
  expect(
    Object.keys(a.body.error).every((k) => ['code', 'message', 'retryAfterMs'].includes(k)),
  ).toBe(true);
}

async function stillServes(tok: string) {
  const r = await rest(tok, 'GET', '/users/@me');
  expect(r.status, 'the server still serves').toBe(200);
}

function gateway(tok: string, query = ''): WebSocket {
  return new WebSocket(`ws://127.0.0.1:${httpPort}/api/v1/gateway${query}`, {
    headers: { authorization: 'Bearer ' + tok },
  });
}

interface Gw {
  ws: WebSocket;
  frames: any[];
  closed: Promise<{ code: number; reason: string }>;
  next: (pred: (f: any) => boolean, ms?: number) => Promise<any>;
}

async function openGateway(tok: string, query = ''): Promise<Gw> {
  const ws = gateway(tok, query);
  const frames: any[] = [];
  const waiters: Array<{ pred: (f: any) => boolean; res: (f: any) => void }> = [];
  ws.on('message', (d) => {
    const f = JSON.parse(String(d));
    frames.push(f);
    for (const w of [...waiters])
      if (w.pred(f)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.res(f);
      }
  });
  ws.on('error', () => {});
  const closed = new Promise<{ code: number; reason: string }>((r) =>
    ws.on('close', (code, reason) => r({ code, reason: String(reason) })),
  );
  const next = (pred: (f: any) => boolean, ms = 5000) =>
    new Promise<any>((resolve, reject) => {
      const have = frames.find(pred);
      if (have) return resolve(have);
      const t = setTimeout(
        () => reject(new Error('no such gateway frame; got ' + JSON.stringify(frames))),
        ms,
      );
      waiters.push({ pred, res: (f) => (clearTimeout(t), resolve(f)) });
    });
  await next((f) => f.t === 'ready' || f.t === 'resumed');
  return { ws, frames, closed, next };
}

async function certify(tok: string) {
  const key = newKey();
  const r = await rest(tok, 'POST', '/keys', { publicKey: key.pk });
  if (r.status !== 200) throw new Error('keys ' + r.text);
  return { key, cert: r.body.cert as string, exp: r.body.exp as number, bot: r.body.bot };
}

describe('REST API v1, attacked from outside', () => {
  it('GET /users/{other}/channels lists only the channels both share, and within a channel-limited token only its channels', async () => {
    // REST.md Routes: "`GET /users/{user_id}/channels` … another user: the channels both share".
    // REST.md Tokens: "`channels`: when given, the token sees only these channels: … the directory
    // and channel lists leave the others out".
    const alice = await user('al');
    const bob = await user('bo');
    const shared1 = await channel(alice);
    const shared2 = await channel(alice);
    const bobOnly = await channel(bob); // private, alice is no member
    await join(bob, shared1);
    await join(bob, shared2);
    const full = await token(alice, { scopes: ['read'] });
    const r = await rest(full, 'GET', `/users/${bob.username}/channels`);
    expect(r.status).toBe(200);
    const ids = (r.body.channels as any[]).map((c) => c.id).sort();
    expect(ids, 'only channels both share').toEqual([shared1, shared2].sort());
    expect(ids).not.toContain(bobOnly);

    const limited = await token(alice, { scopes: ['read'], channels: [shared1] });
    const l = await rest(limited, 'GET', `/users/${bob.username}/channels`);
    expect(l.status).toBe(200);
    expect(
      (l.body.channels as any[]).map((c) => c.id),
      'a token of one channel lists no other channel',
    ).toEqual([shared1]);
    const me = await rest(limited, 'GET', `/users/@me/channels`);
    expect((me.body.channels as any[]).map((c) => c.id)).toEqual([shared1]);
  });

  it('a member-less account reads nothing of a private channel by any read route', async () => {
    // PROTOCOL §3.3: `history`/`members` answer "to whoever may read the channel (`E_NOT_MEMBER`,
    // `E_CHANNEL_NOT_FOUND` otherwise)"; §7 `E_NOT_MEMBER` 403 "read or post in a channel not
    // joined". REST.md: `GET /channels/{channel_id}` "the channel, if the account may read it".
    const owner = await user('ow');
    const outsider = await user('ou');
    const priv = await channel(owner, false);
    const ownerTok = await token(owner);
    const { key, cert } = await certify(ownerTok);
    const m = signMessage(
      { privateKey: key.privateKey },
      cert,
      priv,
      owner.username,
      'secret words',
    );
    expect((await rest(ownerTok, 'POST', `/channels/${priv}/messages`, m)).status).toBe(201);

    const tok = await token(outsider, { scopes: ['read'] });
    for (const route of [
      `/channels/${priv}`,
      `/channels/${priv}/messages`,
      `/channels/${priv}/items?since=0`,
      `/channels/${priv}/members`,
    ]) {
      const r = await rest(tok, 'GET', route);
      expect([403, 404], `${route}: ${r.status} ${r.text}`).toContain(r.status);
      expectErrorShape(r, route);
      expect(r.text).not.toContain('secret words');
      expect(r.text).not.toContain(owner.username.toLowerCase() + '"]');
    }
  });

  it('presence shows neither a stranger nor an invisible co-member, and a channel token only its members', async () => {
    // REST.md Gateway: "by the tracker's visibility rule (shares a channel with the account; never
    // an invisible user); a token of some channels only hears of their members". REST.md Tokens:
    // "presence shows only their members". PROTOCOL §3.5: "An invisible entry is never sent to
    // another user in any event or list."
    const me = await user('pm');
    const friend = await user('pf');
    const other = await user('po');
    const ghost = await user('pg');
    const stranger = await user('ps');
    const a = await channel(me);
    const b = await channel(me);
    await join(friend, a);
    await join(other, b);
    await join(ghost, a);
    const sub = async (u: User, status: string, port: number) => {
      const r = await u.c.req('submit_info', { ip: '127.0.0.1', port, udpPort: port, status });
      if (r.error) throw new Error('submit_info ' + JSON.stringify(r.error));
    };
    await sub(friend, 'online', 40001);
    await sub(other, 'online', 40002);
    await sub(ghost, 'invisible', 40003);
    await sub(stranger, 'online', 40004);
    const full = await token(me, { scopes: ['read'] });
    const names = async (t: string) => {
      const r = await rest(t, 'GET', '/presence');
      expect(r.status, r.text).toBe(200);
      return (r.body.peers as any[]).map((p) => p.username.toLowerCase());
    };
    const seen = await names(full);
    expect(seen).toContain(friend.username.toLowerCase());
    expect(seen).toContain(other.username.toLowerCase());
    expect(seen, 'invisible co-member').not.toContain(ghost.username.toLowerCase());
    expect(seen, 'stranger').not.toContain(stranger.username.toLowerCase());
    const limited = await token(me, { scopes: ['read'], channels: [a] });
    const lseen = await names(limited);
    expect(lseen).toContain(friend.username.toLowerCase());
    expect(lseen, 'member of a channel outside the token').not.toContain(
      other.username.toLowerCase(),
    );
    // A presence entry's `hosts` is cut to the channels the account (and token) may see.
    const r = await rest(limited, 'GET', '/presence');
    for (const p of r.body.peers as any[]) for (const h of p.hosts ?? []) expect(h).toBe(a);
    // GET /users/{stranger}: 404 as for nobody; GET /users/{other} through the limited token: the
    // token does not see channel b, so it must not learn that `other` shares one with its account.
    expect((await rest(full, 'GET', `/users/${stranger.username}`)).status).toBe(404);
    const ou = await rest(limited, 'GET', `/users/${other.username}`);
    expect(ou.status, 'a co-member of a channel outside the token').toBe(404);
    const o = await rest(limited, 'GET', `/users/${other.username}/channels`);
    expect(o.status === 404 || (o.body?.channels ?? []).length === 0, o.text).toBe(true);
  });

  it('answers what the HTTP layer refuses in the documented error shape, naming what was wrong, and keeps serving', async () => {
    // REST.md Errors: "Errors answer `{"error": {"code", "message", "retryAfterMs"?}}` … 400
    // `E_BAD_REQUEST` (the message names the field …) … 413 (a body over 64 KiB)".
    const u = await user('eh');
    const tok = await token(u);
    const ch = await channel(u);
    const cases: Array<[string, () => Promise<Answer>, number[]]> = [
      [
        'empty JSON body on join',
        () =>
          rest(tok, 'POST', `/channels/${ch}/join`, undefined, {
            'content-type': 'application/json',
          }),
        [200, 400],
      ],
      ['invalid JSON', () => rest(tok, 'POST', '/channels', '{"name":', {}), [400]],
      [
        'text/plain body',
        () =>
          rest(tok, 'POST', '/channels', JSON.stringify({ name: 'x' }), {
            'content-type': 'text/plain',
          }),
        [400, 415],
      ],
      [
        '__proto__ key',
        () => rest(tok, 'POST', '/channels', '{"name":"p","__proto__":{"allowVisitors":true}}'),
        [201, 400],
      ],
      [
        'constructor.prototype key',
        () => rest(tok, 'POST', '/channels', '{"name":"q","constructor":{"prototype":{"x":1}}}'),
        [201, 400],
      ],
      [
        'JSON depth bomb under 64 KiB',
        () =>
          rest(tok, 'POST', '/channels', '{"name":' + '['.repeat(30000) + ']'.repeat(30000) + '}'),
        [400],
      ],
      [
        'body over 64 KiB',
        () => rest(tok, 'POST', '/channels', { name: 'x'.repeat(70_000) }),
        [413],
      ],
      ['unknown route', () => rest(tok, 'GET', '/nothing-here'), [404]],
      ['wrong method', () => rest(tok, 'DELETE', `/channels/${ch}`), [404, 405]],
      ['array body', () => rest(tok, 'POST', '/channels', '[]'), [400]],
      [
        'form-urlencoded body',
        () =>
          rest(tok, 'POST', '/channels', 'name=formed', {
            'content-type': 'application/x-www-form-urlencoded',
          }),
        [400, 415],
      ],
      [
        'utf-16 JSON',
        () =>
          fetch(base + '/api/v1/channels', {
            method: 'POST',
            headers: {
              authorization: 'Bearer ' + tok,
              'content-type': 'application/json; charset=utf-16le',
            },
            body: Buffer.from(JSON.stringify({ name: 'sixteen' }), 'utf16le'),
          }).then(async (r) => {
            const text = await r.text();
            let body: any;
            try {
              body = JSON.parse(text);
            } catch {}
            return { status: r.status, headers: r.headers, body, text };
          }),
        [201, 400, 415],
      ],
      ['JSON with a BOM', () => rest(tok, 'POST', '/channels', '\ufeff{"name":"bom"}'), [201, 400]],
      [
        'multipart body',
        () =>
          rest(
            tok,
            'POST',
            '/channels',
            '--x\r\nContent-Disposition: form-data; name="name"\r\n\r\nm\r\n--x--\r\n',
            {
              'content-type': 'multipart/form-data; boundary=x',
            },
          ),
        [400, 415],
      ],
      ['null body', () => rest(tok, 'POST', '/channels', 'null'), [400]],
    ];
    const failures: string[] = [];
    for (const [what, call, ok] of cases) {
      const a = await call();
      if (!ok.includes(a.status))
        failures.push(`${what}: status ${a.status} ${a.text.slice(0, 200)}`);
      if (a.status >= 400) {
        try {
          expectErrorShape(a, what);
        } catch {
          failures.push(`${what}: not the error shape: ${a.status} ${a.text.slice(0, 200)}`);
        }
        if (a.status === 400 && !/E_BAD_REQUEST/.test(a.body?.error?.code ?? ''))
          failures.push(`${what}: 400 with code ${a.body?.error?.code}`);
      }
    }
    await stillServes(tok);
    expect(failures).toEqual([]);
  });

  it('refuses a chunked body over 64 KiB with 413 and a slow endless body does not wedge the server', async () => {
    // REST.md Errors: "413 (a body over 64 KiB)"; SECURITY.md: "bodies at most 64 KiB".
    const u = await user('ck');
    const tok = await token(u);
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    const head =
      `POST /api/v1/channels HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${tok}\r\n` +
      `Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const parts: Buffer[] = [Buffer.from(head), Buffer.from('4\r\n{"a"\r\n')];
    for (let i = 0; i < 40; i++)
      parts.push(Buffer.from(chunk.length.toString(16) + '\r\n'), chunk, Buffer.from('\r\n'));
    parts.push(Buffer.from('0\r\n\r\n'));
    const out = await rawHttp(Buffer.concat(parts), 4000);
    expect(out.split('\r\n')[0], out.slice(0, 300)).toMatch(/^HTTP\/1\.1 413/);
    const body = out.slice(out.indexOf('\r\n\r\n') + 4);
    expect(body).toMatch(/"error"/);
    // A Content-Length that lies (claims 10 GB): refused up front, never buffered.
    const lie = await rawHttp(
      `POST /api/v1/channels HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${tok}\r\n` +
        `Content-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{"name":"x"`,
      3000,
    );
    expect(lie.split('\r\n')[0]).toMatch(/^HTTP\/1\.1 413/);
    await stillServes(tok);
  });

  it('pagination and cursor parameters: overflow, repeats and fractions are 400 naming the field', async () => {
    // openapi.json: `limit` integer 1–500 (default 50), `since` integer 0–2^53-1, `after` 1–600
    // characters; REST.md: "400 `E_BAD_REQUEST` (the message names the field …)"; PROTOCOL §3.3
    // `directory`: "`E_BAD_REQUEST` for a cursor that no `next` gave".
    const u = await user('pg');
    const tok = await token(u, { scopes: ['read'] });
    const ch = await channel(u);
    const bad: Array<[string, string]> = [
      [`/channels/${ch}/messages?limit=0`, 'limit'],
      [`/channels/${ch}/messages?limit=501`, 'limit'],
      [`/channels/${ch}/messages?limit=1.5`, 'limit'],
      [`/channels/${ch}/messages?limit=-1`, 'limit'],
      [`/channels/${ch}/messages?limit=1e400`, 'limit'],
      [`/channels/${ch}/messages?limit=99999999999999999999999`, 'limit'],
      [`/channels/${ch}/messages?limit=5&limit=6`, 'limit'],
      [`/channels/${ch}/messages?before=not-a-uuid`, 'before'],
      [`/channels/${ch}/items?since=-1`, 'since'],
      [`/channels/${ch}/items?since=9007199254740993`, 'since'],
      [`/channels/${ch}/items?since=0x10`, 'since'],
      [`/channels/${ch}/items?since=1&since=2`, 'since'],
      [`/channels/${ch}/items?limit=NaN`, 'limit'],
      [`/channels?after=${'A'.repeat(601)}`, 'after'],
      [`/channels?after=${'Zm9vYmFy'}`, 'after'],
    ];
    const failures: string[] = [];
    for (const [route, field] of bad) {
      const r = await rest(tok, 'GET', route);
      if (r.status !== 400 || r.body?.error?.code !== 'E_BAD_REQUEST')
        failures.push(`${route}: ${r.status} ${r.text.slice(0, 160)}`);
      else if (!r.body.error.message.includes(field))
        failures.push(`${route}: message does not name ${field}: ${r.body.error.message}`);
    }
    const top = await rest(tok, 'GET', `/channels/${ch}/items?since=9007199254740991&limit=500`);
    if (top.status !== 200) failures.push(`since=MAX_SAFE_INTEGER: ${top.status} ${top.text}`);
    await stillServes(tok);
    expect(failures).toEqual([]);
  });

  it('every answer to a token carries RateLimit-* headers, errors included, with the documented burst', async () => {
    // REST.md Errors and limits: "Each token may make 20 requests a second, in bursts of 100 …
    // Every answer carries `RateLimit-Limit` (the burst), `RateLimit-Remaining` and
    // `RateLimit-Reset`".
    const u = await user('rl');
    const tok = await token(u);
    const ch = await channel(u);
    // Each request spends one: `remaining` falls by one, less what the 20 a second put back
    // between two requests (on a loaded machine a request can take 50 ms, one token's refill).
    const calls: Array<() => Promise<Awaited<ReturnType<typeof rest>>>> = [
      () => rest(tok, 'GET', '/users/@me'),
      () => rest(tok, 'GET', `/channels/${ch}/messages?limit=0`),
      () => rest(tok, 'GET', `/channels/${uuid7()}`),
      () => rest(tok, 'POST', '/channels', { name: '' }),
      () => rest(tok, 'POST', '/channels', '{bad json'),
      () => rest(tok, 'GET', '/users/nobody-here-at-all'),
    ];
    const answers: Array<{ a: Awaited<ReturnType<typeof rest>>; start: number; end: number }> = [];
    for (const call of calls) {
      const start = Date.now();
      const a = await call();
      answers.push({ a, start, end: Date.now() });
    }
    const failures: string[] = [];
    let prev = Infinity;
    for (const [i, { a }] of answers.entries()) {
      const lim = a.headers.get('ratelimit-limit');
      const rem = a.headers.get('ratelimit-remaining');
      const reset = a.headers.get('ratelimit-reset');
      if (lim !== '100' || rem === null || reset === null)
        failures.push(`answer ${i} (${a.status}): limit=${lim} remaining=${rem} reset=${reset}`);
      else {
        const gapMs = i === 0 ? 0 : answers[i]!.end - answers[i - 1]!.start;
        const refill = Math.ceil((20 * gapMs) / 1000);
        if (!(Number(rem) < prev + refill))
          failures.push(
            `answer ${i}: remaining ${rem} after ${prev} (${gapMs} ms: ${refill} back)`,
          );
        prev = Number(rem);
      }
    }
    expect(Number(answers[0]!.a.headers.get('ratelimit-remaining'))).toBeLessThan(100);
    expect(failures).toEqual([]);
  });

  it('POST /keys certifies the token’s account: bot flag, token id as sid, expiry no later than the token’s', async () => {
    // REST.md Signing: "the certificate says `bot: true` for a bot account, and expires after 30
    // days or with the token, whichever comes first". PROTOCOL §2.1: a bot's key "is certified with
    // `"bot": true` and `sid` its API token's id".
    const owner = await user('ky');
    const botName = uname('kb');
    const b = await owner.c.req('bot_create', { username: botName });
    expect(b.error, JSON.stringify(b.error)).toBeUndefined();
    const tokStr = await token(owner, { account: botName, expiresInDays: 1 });
    const tokenId = tokStr.split('.')[0]!;
    const t0 = Date.now();
    const c = await certify(tokStr);
    const claims = certClaims(c.cert);
    expect(c.bot).toBe(true);
    expect(claims.bot).toBe(true);
    expect(claims.u.toLowerCase()).toBe(botName.toLowerCase());
    expect(claims.sid).toBe(tokenId);
    expect(claims.exp).toBe(c.exp);
    expect(c.exp, 'certificate outlives its 1-day token').toBeLessThanOrEqual(
      t0 + 86_400_000 + 5_000,
    );
    // The owner's own token: not a bot.
    const own = await certify(await token(owner));
    expect(own.bot).toBe(false);
    expect(certClaims(own.cert).bot ?? false).toBe(false);
  });

  it('a token cannot post another user’s genuinely signed item (replay under its own account)', async () => {
    // REST.md Signing: "An item signed as anyone else, or for another channel than the path's, is
    // refused (`E_BAD_SIGNATURE`, `E_BAD_REQUEST`)". PROTOCOL §3.3: "The author of a posted message
    // is the session's user, whatever the client claims."
    const alice = await user('ra');
    const bob = await user('rb');
    const ch = await channel(bob); // alice is no member
    // alice's item, signed with her own real session certificate (from login)
    const m = signMessage(
      { privateKey: alice.key.privateKey },
      alice.cert,
      ch,
      alice.username,
      'alice never said this here',
    );
    const bobTok = await token(bob);
    const r = await rest(bobTok, 'POST', `/channels/${ch}/messages`, m);
    expect(r.status, r.text).toBe(403);
    expect(r.body.error.code).toBe('E_BAD_SIGNATURE');
    const h = await rest(bobTok, 'GET', `/channels/${ch}/messages`);
    expect(h.text).not.toContain('alice never said this here');
    // A bot token replaying its owner's item: refused too.
    const botName = uname('rbb');
    await bob.c.req('bot_create', { username: botName });
    const botTok = await token(bob, { account: botName });
    expect((await rest(botTok, 'POST', `/channels/${ch}/join`)).status).toBe(200);
    const mb = signMessage(
      { privateKey: bob.key.privateKey },
      bob.cert,
      ch,
      bob.username,
      'owner words',
    );
    const rb = await rest(botTok, 'POST', `/channels/${ch}/messages`, mb);
    expect(rb.status, rb.text).toBe(403);
    expect(rb.body.error.code).toBe('E_BAD_SIGNATURE');
  });

  it('re-posting the same item answers 200 duplicate:true with the same seq; a changed text under the same id is refused', async () => {
    // REST.md Routes: "a signed item (below) → 201 `{id, seq, duplicate}` (200 when it was there
    // already)"; PROTOCOL §2.1: "The server … refuse an item whose `id` is not this value
    // (`E_BAD_SIGNATURE`)".
    const u = await user('dp');
    const tok = await token(u);
    const ch = await channel(u);
    const { key, cert } = await certify(tok);
    const m = signMessage({ privateKey: key.privateKey }, cert, ch, u.username, 'once');
    const a = await rest(tok, 'POST', `/channels/${ch}/messages`, m);
    expect(a.status).toBe(201);
    expect(a.body).toEqual({ id: m.id, seq: expect.any(Number), duplicate: false });
    const b = await rest(tok, 'POST', `/channels/${ch}/messages`, m);
    expect(b.status, b.text).toBe(200);
    expect(b.body).toEqual({ id: m.id, seq: a.body.seq, duplicate: true });
    const c = await rest(tok, 'POST', `/channels/${ch}/messages`, { ...m, text: 'twice' });
    expect(c.status).toBe(403);
    expect(c.body.error.code).toBe('E_BAD_SIGNATURE');
    const items = await rest(tok, 'GET', `/channels/${ch}/items?since=0`);
    expect(items.body.messages.filter((x: any) => x.id === m.id)).toHaveLength(1);
    expect(items.body.messages.find((x: any) => x.id === m.id).text).toBe('once');
  });

  it('the running server answers as docs/openapi.json says: served document, statuses and shapes', async () => {
    // REST.md: "Its machine-readable description is the OpenAPI 3.1 document at
    // `/api/v1/openapi.json`, generated from the same zod schemas the server validates every
    // request with".
    const doc = JSON.parse(
      fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'openapi.json'), 'utf8'),
    );
    const served = await fetch(base + '/api/v1/openapi.json');
    expect(served.status).toBe(200);
    const servedDoc = await served.json();
    expect(servedDoc.paths, 'served document = docs/openapi.json').toEqual(doc.paths);

    const ajv = new (Ajv2020 as any)({ strict: false, validateFormats: false, allErrors: true });
    ajv.addSchema({ $id: 'doc', components: doc.components });
    const deref = (s: any): any =>
      JSON.parse(JSON.stringify(s).replace(/"#\/components\//g, '"doc#/components/'));
    const failures: string[] = [];
    const check = (method: string, tmpl: string, a: Answer) => {
      const op = doc.paths['/api/v1' + tmpl]?.[method.toLowerCase()];
      if (!op) return failures.push(`${method} ${tmpl}: not in the document`);
      const res = op.responses[String(a.status)];
      if (!res)
        return failures.push(
          `${method} ${tmpl}: status ${a.status} not documented (${a.text.slice(0, 120)})`,
        );
      const schema = res.content?.['application/json']?.schema;
      if (!schema) return;
      const v = ajv.compile(deref(schema));
      if (!v(a.body))
        failures.push(
          `${method} ${tmpl} ${a.status}: ${ajv.errorsText(v.errors).slice(0, 300)} body=${a.text.slice(0, 200)}`,
        );
    };
    const owner = await user('oa');
    const other = await user('ob');
    const tok = await token(owner);
    const ro = await token(owner, { scopes: ['read'] });
    const otherTok = await token(other);
    const ch = await channel(owner);
    const { key, cert } = await certify(tok);
    const m = signMessage({ privateKey: key.privateKey }, cert, ch, owner.username, 'shape');
    const C = '/channels/{channel_id}';
    const calls: Array<[string, string, string, any?, string?]> = [
      ['GET', '/users/{user_id}', '/users/@me'],
      ['GET', '/users/{user_id}', `/users/${other.username}`],
      ['GET', '/users/{user_id}/channels', '/users/@me/channels'],
      ['GET', '/channels', '/channels'],
      ['POST', '/channels', '/channels', { name: 'shape ch' }],
      ['POST', '/channels', '/channels', { name: 'dup', id: ch }],
      ['POST', '/channels', '/channels', { name: 'ro' }, ro],
      ['GET', C, `/channels/${ch}`],
      ['GET', C, `/channels/${uuid7()}`],
      ['GET', C + '/members', `/channels/${ch}/members`],
      ['POST', C + '/messages', `/channels/${ch}/messages`, m],
      ['POST', C + '/messages', `/channels/${ch}/messages`, m],
      ['POST', C + '/messages', `/channels/${ch}/messages`, { ...m, ts: Date.now() + 3_600_000 }],
      ['GET', C + '/messages', `/channels/${ch}/messages?limit=10`],
      ['GET', C + '/items', `/channels/${ch}/items?since=0`],
      ['GET', C + '/messages', `/channels/${ch}/messages`, undefined, otherTok],
      ['POST', C + '/join', `/channels/${ch}/join`, undefined, otherTok],
      ['POST', C + '/leave', `/channels/${ch}/leave`, undefined, otherTok],
      ['POST', C + '/leave', `/channels/${ch}/leave`],
      ['GET', '/presence', '/presence'],
      ['POST', '/keys', '/keys', { publicKey: newKey().pk }],
      ['POST', '/keys', '/keys', { publicKey: 'AAAA' }],
      ['GET', '/users/{user_id}', '/users/@me', undefined, 'tok_nope.nope'],
      ['POST', '/channels', '/channels', { name: 'x'.repeat(70_000) }],
    ];
    const shapeBot = uname('sb');
    await owner.c.req('bot_create', { username: shapeBot });
    const shapeBotTok = await token(owner, { account: shapeBot, channels: [ch], expiresInDays: 2 });
    await rest(shapeBotTok, 'POST', `/channels/${ch}/join`);
    calls.push(
      ['GET', '/users/{user_id}', '/users/@me', undefined, shapeBotTok],
      ['GET', '/users/{user_id}', `/users/${shapeBot}`],
      ['GET', '/users/{user_id}/channels', `/users/${shapeBot}/channels`],
      ['GET', C + '/members', `/channels/${ch}/members`, undefined, shapeBotTok],
      ['POST', '/keys', '/keys', { publicKey: newKey().pk }, shapeBotTok],
      ['POST', '/channels', '/channels', { name: 'limited' }, shapeBotTok],
      ['GET', '/users/{user_id}', '/users/no-such-user-here'],
      ['GET', '/users/{user_id}', '/users/x'],
      ['GET', C + '/items', `/channels/${ch}/items?since=-1`],
    );
    for (const [method, tmpl, route, body, t] of calls) {
      const a = await rest(t ?? tok, method, route, body);
      check(method, tmpl, a);
    }
    expect(failures).toEqual([]);
  });

  it('gateway: a fifth session closes the oldest with 4005, a resume elsewhere closes the old socket with 4009, ping answers pong', async () => {
    // REST.md Gateway Closes: "4005 more than 4 sessions for the token (the oldest goes); 4009 the
    // session was resumed on another socket"; frames: "`{t:"pong"}` the answer to `{"t":"ping"}`".
    const u = await user('gw');
    const tok = await token(u, { scopes: ['read'] });
    const gws: Gw[] = [];
    for (let i = 0; i < 4; i++) gws.push(await openGateway(tok));
    gws[1]!.ws.send(JSON.stringify({ t: 'ping' }));
    await gws[1]!.next((f) => f.t === 'pong');
    const fifth = await openGateway(tok);
    const first = await Promise.race([gws[0]!.closed, sleep(3000).then(() => null)]);
    expect(first?.code, 'the oldest of five sessions closes with 4005').toBe(4005);
    // resume session 2 (still open) from a new socket
    const ready2 = gws[2]!.frames.find((f) => f.t === 'ready');
    const again = await openGateway(tok, `?resume=${ready2.session}&seq=0`);
    expect(again.frames.some((f) => f.t === 'resumed')).toBe(true);
    const old = await Promise.race([gws[2]!.closed, sleep(3000).then(() => null)]);
    expect(old?.code, 'the resumed-from socket closes with 4009').toBe(4009);
    for (const g of [...gws, fifth, again]) g.ws.terminate();
  });

  it('gateway: leaving a channel through REST stops its events at once; garbage and oversize client frames do not break the server', async () => {
    // REST.md Gateway Channels: "A join, leave or channel creation through the REST API on the
    // same instance subscribes the session at once".
    const owner = await user('lo');
    const bot = await user('lb');
    const ch = await channel(owner);
    await join(bot, ch);
    const botTok = await token(bot);
    const ownerTok = await token(owner);
    const { key, cert } = await certify(ownerTok);
    const g = await openGateway(botTok);
    expect(g.frames[0].channels).toContain(ch);
    const post = async (text: string) => {
      const m = signMessage({ privateKey: key.privateKey }, cert, ch, owner.username, text);
      expect((await rest(ownerTok, 'POST', `/channels/${ch}/messages`, m)).status).toBe(201);
      return m.id;
    };
    const id1 = await post('before leaving');
    await g.next((f) => f.t === 'event' && f.type === 'message' && f.data.message.id === id1);
    expect((await rest(botTok, 'POST', `/channels/${ch}/leave`)).status).toBe(200);
    const id2 = await post('after leaving');
    await sleep(500);
    expect(
      g.frames.some((f) => f.t === 'event' && f.data?.message?.id === id2),
      'a left channel still pushes to the gateway',
    ).toBe(false);
    // Joining again through REST subscribes the session at once.
    expect((await rest(botTok, 'POST', `/channels/${ch}/join`)).status).toBe(200);
    const id3 = await post('after joining again');
    await g.next((f) => f.t === 'event' && f.type === 'message' && f.data.message.id === id3, 2000);
    // Sequence numbers are 1, 2, 3, … without gaps.
    const seqs = g.frames.filter((f) => f.t === 'event').map((f) => f.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));

    // Garbage, binary and oversize client frames: the server survives and keeps serving others.
    const bad = await openGateway(botTok);
    bad.ws.send('not json at all');
    bad.ws.send(Buffer.from([0, 1, 2, 3]));
    bad.ws.send(JSON.stringify({ t: 'ping', x: 'y'.repeat(100) }));
    bad.ws.send(Buffer.alloc(8 * 1024 * 1024, 0x61), { binary: false });
    for (let i = 0; i < 2000; i++) bad.ws.send('{"t":"ping"}');
    await Promise.race([bad.closed, sleep(1500)]);
    bad.ws.terminate();
    await stillServes(botTok);
    const g2 = await openGateway(botTok);
    g2.ws.send(JSON.stringify({ t: 'ping' }));
    await g2.next((f) => f.t === 'pong');
    g.ws.terminate();
    g2.ws.terminate();
  });

  it('gateway: refused before the upgrade for a write-only or revoked token, with the documented status and body', async () => {
    // REST.md Gateway: "`GET /api/v1/gateway` upgrades to a WebSocket (scope `read`; … refused before
    // the upgrade with 401 `E_TOKEN_INVALID` or 403 `E_TOKEN_SCOPE`)"; Closes: "4004 the token was
    // revoked or expired".
    const u = await user('gr');
    const wo = await token(u, { scopes: ['write'] });
    const upgrade = (t: string) =>
      rawHttp(
        `GET /api/v1/gateway HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
          `Authorization: Bearer ${t}\r\n\r\n`,
        3000,
      );
    const a = await upgrade(wo);
    expect(a.split('\r\n')[0]).toMatch(/^HTTP\/1\.1 403/);
    expect(a).toContain('E_TOKEN_SCOPE');
    const rt = await token(u, { scopes: ['read'] });
    const g = await openGateway(rt);
    const list = await u.c.req('tokens', {});
    const id = (list.body.tokens as any[]).find((x) => rt.startsWith(x.id + '.')).id;
    expect((await u.c.req('token_revoke', { id })).error).toBeUndefined();
    const closed = await Promise.race([g.closed, sleep(3000).then(() => null)]);
    expect(closed?.code).toBe(4004);
    const b = await upgrade(rt);
    expect(b.split('\r\n')[0]).toMatch(/^HTTP\/1\.1 401/);
    expect(b).toContain('E_TOKEN_INVALID');
    // Revoking it again, or revoking someone else's token: E_NOT_FOUND.
    expect((await u.c.req('token_revoke', { id })).error?.code).toBe('E_NOT_FOUND');
    const v = await user('gv');
    const vt = await token(v);
    expect((await u.c.req('token_revoke', { id: vt.split('.')[0] })).error?.code).toBe(
      'E_NOT_FOUND',
    );
    expect((await rest(vt, 'GET', '/users/@me')).status).toBe(200);
  });

  it('token caps: 50 live tokens per user (its bots’ included), a revoked one frees a place; tokens list never shows a secret', async () => {
    // REST.md Tokens: "At most 50 live tokens per user"; PROTOCOL §11 `token_create`: "`E_FORBIDDEN`
    // past 50 live tokens per user"; `tokens`: "(never a secret)".
    const u = await user('cap');
    const botName = uname('capb');
    await u.c.req('bot_create', { username: botName });
    const made: string[] = [];
    for (let i = 0; i < 25; i++) made.push(await token(u, { scopes: ['read'] }));
    for (let i = 0; i < 25; i++) made.push(await token(u, { scopes: ['read'], account: botName }));
    const over = await u.c.req('token_create', {
      name: 'over',
      scopes: ['read'],
      account: botName,
    });
    expect(over.error?.code, JSON.stringify(over)).toBe('E_FORBIDDEN');
    const over2 = await u.c.req('token_create', { name: 'over', scopes: ['read'] });
    expect(over2.error?.code).toBe('E_FORBIDDEN');
    const list = await u.c.req('tokens', {});
    const text = JSON.stringify(list.body);
    for (const t of made) expect(text).not.toContain(t.split('.')[1]!);
    await u.c.req('token_revoke', { id: made[0]!.split('.')[0] });
    const again = await u.c.req('token_create', { name: 'again', scopes: ['read'] });
    expect(again.body?.token, JSON.stringify(again)).toBeTruthy();
    // PROTOCOL §11 `bot_create`: "`E_FORBIDDEN` past 10 bots per user" (one made above).
    for (let i = 0; i < 9; i++)
      expect((await u.c.req('bot_create', { username: uname('cb') })).error).toBeUndefined();
    const eleventh = await u.c.req('bot_create', { username: uname('cb') });
    expect(eleventh.error?.code, JSON.stringify(eleventh)).toBe('E_FORBIDDEN');
  });

  it('a token of some channels cannot widen itself by joining, and a bot token cannot reach a DM', async () => {
    // REST.md Tokens: "`channels`: when given, the token sees only these channels: any other
    // answers `E_CHANNEL_NOT_FOUND` as if it did not exist … and it cannot create a channel".
    // REST.md `hchat bot`: "direct messages are end-to-end encrypted … the REST API cannot read or
    // answer them".
    const u = await user('wd');
    const a = await channel(u);
    const b = await channel(u);
    const tok = await token(u, { channels: [a] });
    // POST /channels with the id of an existing channel outside the token: not E_CHANNEL_EXISTS
    // (that would confirm the channel exists) but E_TOKEN_SCOPE, as any creation.
    const c = await rest(tok, 'POST', '/channels', { name: 'probe', id: b });
    expect(c.status, c.text).toBe(403);
    expect(c.body.error.code).toBe('E_TOKEN_SCOPE');
    const unknown = await rest(tok, 'POST', `/channels/${uuid7()}/leave`);
    const hidden = await rest(tok, 'POST', `/channels/${b}/leave`);
    expect(hidden.status).toBe(unknown.status);
    expect(hidden.body.error.code).toBe(unknown.body.error.code);
    expect(hidden.body.error.code).toBe('E_CHANNEL_NOT_FOUND');
    // The directory hides b entirely, across pages.
    let after: string | undefined;
    const seen: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await rest(tok, 'GET', '/channels' + (after ? `?after=${after}` : ''));
      expect(r.status).toBe(200);
      seen.push(...r.body.channels.map((x: any) => x.id));
      if (!r.body.next) break;
      after = encodeURIComponent(r.body.next);
    }
    expect(seen).toContain(a);
    expect(seen).not.toContain(b);
    // No route names a DM.
    for (const route of ['/dms', '/users/@me/dms', '/dm', '/users/@me/devices'])
      expect((await rest(tok, 'GET', route)).status).toBe(404);
  });
});

/** PROTOCOL §2.1/§2.2: digest, id and signature of an item of any kind. */
function signItem(
  key: { privateKey: crypto.KeyObject },
  cert: string,
  channelId: string,
  author: string,
  m: {
    kind?: string;
    target?: string;
    text?: string;
    replyTo?: string;
    mentions?: string[];
    emoji?: string;
    files?: Array<{ id: string; name: string; size: number; type: string }>;
    change?: {
      name?: string;
      topic?: string;
      allowVisitors?: boolean;
      remove?: string;
      deleted?: true;
    };
  },
  ts = Date.now(),
  lc = 0,
) {
  const ch = m.change;
  const digest = crypto
    .createHash('sha256')
    .update(
      JSON.stringify([
        'hchat/body/1',
        m.text ?? null,
        m.replyTo ?? null,
        m.mentions ?? null,
        m.emoji ?? null,
        ch
          ? [
              ch.name ?? null,
              ch.topic ?? null,
              ch.allowVisitors ?? null,
              ch.remove ?? null,
              ch.deleted ?? null,
            ]
          : null,
        ...(m.files ? [m.files.map((f) => [f.id, f.name, f.size, f.type, null, null, null])] : []),
      ]),
      'utf8',
    )
    .digest('base64url');
  const header = [
    channelId,
    author.toLowerCase(),
    ts,
    lc,
    m.kind ?? 'message',
    m.target ?? null,
    digest,
  ];
  const h = crypto
    .createHash('sha256')
    .update(JSON.stringify(['hchat/item-id/2', ...header]), 'utf8')
    .digest();
  const id = idLayout(ts, h);
  const sig = crypto
    .sign(
      null,
      Buffer.from(JSON.stringify(['hchat/item/2', id, ...header]), 'utf8'),
      key.privateKey,
    )
    .toString('base64url');
  return { id, channelId, ts, lc, ...m, sig, cert };
}

function envWithout(...names: string[]) {
  const env = { ...process.env };
  for (const k of names) delete env[k];
  return env;
}

describe('hchat bot, budgets, gateway sessions and tokens, attacked from outside', () => {
  it('hchat bot: a reply mentions only the names its template writes, never @here or a name from the message, and a bot is never answered', async () => {
    // README "hchat bot" / `hchat bot --help`: "A reply mentions only the names its template writes
    // (@alice, @{author}, @{owner}), never one from someone's text"; SECURITY.md: "(`{text}` holding
    // `@here` pings nobody)"; "a template is filled in one pass (a `{author}` inside a message stays
    // text)"; "Messages by the bot itself or by any other bot … are never answered".
    const owner = await user('bo');
    const victim = await user('bv');
    const botName = uname('auto');
    expect((await owner.c.req('bot_create', { username: botName })).error).toBeUndefined();
    const ch = await channel(owner);
    await join(victim, ch);
    const botTok = await token(owner, { account: botName });
    // An attacker whose username is `here` (a valid username: ^[A-Za-z0-9_.-]{2,32}$), if the
    // server lets anyone take it; else a plain attacker.
    const reg = await registerLogin(srv, 'here').catch(() => null);
    const attacker = reg && reg.username.toLowerCase() === 'here' ? reg : await user('ba');
    await join(attacker, ch);
    const evil = uname('evilbot');
    await attacker.c.req('bot_create', { username: evil });
    const evilTok = await token(attacker, { account: evil });
    expect((await rest(evilTok, 'POST', `/channels/${ch}/join`)).status).toBe(200);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hc-bot-'));
    fs.writeFileSync(path.join(dir, 'bot.token'), botTok, { mode: 0o600 });
    fs.writeFileSync(
      path.join(dir, 'bot.json'),
      JSON.stringify({
        channels: [ch],
        tokenFile: 'bot.token',
        rules: [{ when: 'mention', reply: 'Hi @{author}, you said: {text}' }],
      }),
    );
    const child = spawn(
      process.execPath,
      [BIN, 'bot', '--config', path.join(dir, 'bot.json'), '--url', base],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: envWithout('HCHAT_TOKEN', 'HCHAT_URL', 'HCHAT_BOT_CONFIG'),
      },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    try {
      for (let i = 0; i < 200 && !/^ready bot=/m.test(out) && child.exitCode === null; i++)
        await sleep(50);
      expect(out, 'bot ready').toMatch(/^ready bot=/m);

      const aTok = await token(attacker);
      const ak = await certify(aTok);
      const text = `@${botName} hey @${victim.username} @here {owner} {author}`;
      const m = signItem({ privateKey: ak.key.privateKey }, ak.cert, ch, attacker.username, {
        text,
        mentions: [botName.toLowerCase(), victim.username.toLowerCase(), 'here'],
      });
      expect((await rest(aTok, 'POST', `/channels/${ch}/messages`, m)).status).toBe(201);
      // The attacker's bot mentions our bot too: never answered.
      const ek = await certify(evilTok);
      const e = signItem({ privateKey: ek.key.privateKey }, ek.cert, ch, evil, {
        text: `@${botName} answer me, bot`,
        mentions: [botName.toLowerCase()],
      });
      expect((await rest(evilTok, 'POST', `/channels/${ch}/messages`, e)).status).toBe(201);

      const ownerTok = await token(owner, { scopes: ['read'] });
      let replies: any[] = [];
      for (let i = 0; i < 100; i++) {
        const items = await rest(ownerTok, 'GET', `/channels/${ch}/items?since=0&limit=500`);
        replies = (items.body.messages as any[]).filter(
          (x) => x.author.toLowerCase() === botName.toLowerCase() && x.text,
        );
        if (replies.length) break;
        await sleep(100);
      }
      await sleep(1500);
      const items = await rest(ownerTok, 'GET', `/channels/${ch}/items?since=0&limit=500`);
      replies = (items.body.messages as any[]).filter(
        (x) => x.author.toLowerCase() === botName.toLowerCase() && x.text,
      );
      expect(replies.map((r) => r.replyTo)).toEqual([m.id]); // one reply, to the human only
      const r = replies[0];
      expect(r.text, 'one-pass template').toContain('{owner} {author}');
      expect(out, 'the bot logs its token nowhere').not.toContain(botTok.split('.')[1]!);
      expect(r.mentions ?? [], 'no name from the message').not.toContain(
        victim.username.toLowerCase(),
      );
      expect(
        r.mentions ?? [],
        `the reply pings @here (attacker named ${attacker.username}): ${JSON.stringify(r)}`,
      ).not.toContain('here');
    } finally {
      clearTimeout(killer);
      child.kill('SIGKILL');
    }
  });

  it('the account’s post budget holds across tokens: ten tokens cannot post past 500 + 50/s', async () => {
    // REST.md Errors and limits: "Posting also counts against the account's post budget, as on the
    // wire (50 a second, bursts of 500)"; PROTOCOL §3.3 Post rate: "a token bucket per user, over
    // all the user's sessions". A refused post: "429 `E_RATE_LIMITED`" with `retryAfterMs`.
    const u = await user('pb');
    const ch = await channel(u);
    const toks = await Promise.all(Array.from({ length: 10 }, () => token(u)));
    const keys = await Promise.all(toks.map((t) => certify(t)));
    const t0 = Date.now();
    const bodies = toks.flatMap((t, i) =>
      Array.from({ length: 90 }, (_, j) => ({
        t,
        m: signMessage(
          { privateKey: keys[i]!.key.privateKey },
          keys[i]!.cert,
          ch,
          u.username,
          `p ${i} ${j}`,
          t0,
          i * 100 + j,
        ),
      })),
    );
    const answers = await Promise.all(
      bodies.map(({ t, m }) => rest(t, 'POST', `/channels/${ch}/messages`, m)),
    );
    const secs = (Date.now() - t0) / 1000;
    const ok = answers.filter((a) => a.status === 201).length;
    const limited = answers.filter((a) => a.status === 429);
    const other = answers.filter((a) => a.status !== 201 && a.status !== 429);
    expect(other.map((a) => a.status + ' ' + a.text.slice(0, 100)).slice(0, 3)).toEqual([]);
    expect(ok, `${ok} posts stored in ${secs.toFixed(1)} s`).toBeLessThanOrEqual(
      500 + Math.ceil(50 * secs) + 5,
    );
    for (const l of limited.slice(0, 5)) {
      expect(l.body.error.code).toBe('E_RATE_LIMITED');
      expect(l.body.error.retryAfterMs).toEqual(expect.any(Number));
      expect(l.headers.get('retry-after')).toMatch(/^\d+$/);
    }
  });

  it('gateway: a reader that does not read is closed (4008) once more than 1 MiB waits for it', async () => {
    // REST.md Gateway: "**Back-pressure.** A socket with more than 1 MiB unsent is closed (4008,
    // slow consumer): resume."; SECURITY.md: "closes a reader more than 1 MiB behind".
    const owner = await user('sc');
    const reader = await user('sr');
    const ch = await channel(owner);
    await join(reader, ch);
    const rt = await token(reader, { scopes: ['read'] });
    const sock = net.connect(httpPort, '127.0.0.1');
    sock.on('error', () => {});
    let head = '';
    // Bytes past the HTTP head that came in its segment (the `ready` frame, on a loaded machine).
    let early = Buffer.alloc(0);
    await new Promise<void>((resolve) => {
      const onData = (d: Buffer) => {
        head += d.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end >= 0) {
          early = Buffer.from(head.slice(end + 4), 'latin1');
          head = head.slice(0, end + 4);
          sock.off('data', onData);
          sock.pause();
          resolve();
        }
      };
      sock.on('data', onData);
      sock.write(
        `GET /api/v1/gateway HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
          `Authorization: Bearer ${rt}\r\n\r\n`,
      );
    });
    expect(head.split('\r\n')[0]).toMatch(/^HTTP\/1\.1 101/);
    let closedWhilePaused = false;
    sock.on('close', () => (closedWhilePaused = true));
    // ~16 KB a message (4000 characters of 4 UTF-8 bytes): 400 of them are 6.4 MB of events.
    const toks = await Promise.all(Array.from({ length: 5 }, () => token(owner)));
    const keys = await Promise.all(toks.map((t) => certify(t)));
    const t0 = Date.now();
    const big = '\u{1F600}'.repeat(3990);
    const answers = await Promise.all(
      toks.flatMap((t, i) =>
        Array.from({ length: 80 }, (_, j) =>
          rest(
            t,
            'POST',
            `/channels/${ch}/messages`,
            signMessage(
              { privateKey: keys[i]!.key.privateKey },
              keys[i]!.cert,
              ch,
              owner.username,
              big + ` ${i} ${j}`,
              t0,
              i * 100 + j,
            ),
          ),
        ),
      ),
    );
    expect(answers.filter((a) => a.status === 201).length).toBeGreaterThan(350);
    await sleep(1000);
    // Now read what was queued: it must end with a close frame 4008 (or the socket is gone).
    const chunks: Buffer[] = [early];
    sock.on('data', (d) => chunks.push(d));
    sock.resume();
    // On a loaded machine the last events may still be on their way: the close ends the wait.
    await Promise.race([new Promise((r) => sock.once('close', r)), sleep(10_000)]);
    const buf = Buffer.concat(chunks);
    let off = 0;
    let closeCode: number | null = null;
    let frames = 0;
    let firstPayload: Buffer | undefined;
    while (off + 2 <= buf.length) {
      const op = buf[off]! & 0x0f;
      let len = buf[off + 1]! & 0x7f;
      let p = off + 2;
      if (len === 126) {
        len = buf.readUInt16BE(p);
        p += 2;
      } else if (len === 127) {
        len = Number(buf.readBigUInt64BE(p));
        p += 8;
      }
      if (p + len > buf.length) break;
      frames++;
      if (frames === 1) firstPayload = buf.subarray(p, p + len);
      if (op === 8) closeCode = len >= 2 ? buf.readUInt16BE(p) : 1005;
      off = p + len;
    }
    sock.destroy();
    // The first frame is `ready`: its session is resumable ("closed (4008, slow consumer): resume";
    // "keeping its last 1,000 events").
    const ready = JSON.parse(firstPayload!.toString('utf8'));
    expect(ready.t).toBe('ready');
    const again = await openGateway(rt, `?resume=${ready.session}&seq=0`);
    await again.next((f) => f.t === 'resumed', 8000);
    const evs = again.frames.filter((f) => f.t === 'event' && f.type === 'message');
    const resumed = again.frames.find((f) => f.t === 'resumed');
    expect(evs.length, 'events replayed after the slow-consumer close').toBeGreaterThan(350);
    expect(resumed.seq).toBe(evs.at(-1).seq);
    expect(evs.map((f) => f.seq)).toEqual(evs.map((_, i) => i + 1));
    again.ws.terminate();
    expect(
      closeCode === 4008 || (closedWhilePaused && closeCode === null),
      `slow reader: ${frames} frames (${buf.length} bytes) queued, close code ${closeCode}, closed while paused ${closedWhilePaused}`,
    ).toBe(true);
    // SECURITY.md Limits: "answers cut to 1 MiB like a page on the wire"; PROTOCOL §3.3 `sync`: "The
    // page is cut …, keeping the oldest: the peer asks again from its new cursor".
    const rt2 = await token(reader, { scopes: ['read'] });
    const MiB = 1024 * 1024;
    const page = await rest(rt2, 'GET', `/channels/${ch}/items?since=0&limit=500`);
    expect(page.status).toBe(200);
    expect(Buffer.byteLength(page.text), 'items page bytes').toBeLessThanOrEqual(MiB);
    expect(page.body.messages.length).toBeGreaterThan(0);
    expect(page.body.lastSeq).toBeGreaterThan(page.body.messages.at(-1).seq);
    const hist = await rest(rt2, 'GET', `/channels/${ch}/messages?limit=500`);
    expect(hist.status).toBe(200);
    expect(Buffer.byteLength(hist.text), 'history page bytes').toBeLessThanOrEqual(MiB);
    expect(hist.body.hasMore).toBe(true);
  });

  it('mass assignment: body members that name an owner, author, seq or time are not taken from the caller', async () => {
    // PROTOCOL §3.3 `channel_create`: "channel (owner = caller …)"; "The author of a posted message is
    // the session's user, whatever the client claims"; §2.1 `seq` "is the server's per-channel
    // arrival number: 1, 2, 3, … with no gaps". REST.md: each route "runs the wire operation … as the
    // token's account".
    const mallory = await user('ma');
    const victim = await user('mv');
    const tok = await token(mallory);
    const c = await rest(tok, 'POST', '/channels', {
      name: 'mine',
      owner: victim.username,
      createdAt: 1,
      topic: 'forged topic',
    });
    expect([201, 400], c.text).toContain(c.status);
    if (c.status === 201) {
      expect(c.body.owner.toLowerCase()).toBe(mallory.username.toLowerCase());
      expect(c.body.createdAt).toBeGreaterThan(Date.now() - 60_000);
    }
    const ch = c.status === 201 ? c.body.id : await channel(mallory);
    await join(victim, ch);
    const { key, cert } = await certify(tok);
    const m = signMessage(
      { privateKey: key.privateKey },
      cert,
      ch,
      mallory.username,
      'who wrote me',
    );
    const p = await rest(tok, 'POST', `/channels/${ch}/messages`, {
      ...m,
      author: victim.username,
      seq: 999_999,
    });
    expect([201, 400], p.text).toContain(p.status);
    const vt = await token(victim, { scopes: ['read'] });
    const items = await rest(vt, 'GET', `/channels/${ch}/items?since=0`);
    for (const it of items.body.messages as any[]) {
      expect(it.author.toLowerCase()).toBe(mallory.username.toLowerCase());
      expect(it.seq).toBeLessThan(100);
    }
    // Joining "as" someone else: the caller joins, never the named user.
    const other = await channel(mallory);
    const vw = await token(victim);
    const j = await rest(vw, 'POST', `/channels/${other}/join`, {
      username: mallory.username,
    });
    expect([200, 400], j.text).toContain(j.status);
  });

  it('bot names: a look-alike of someone else’s name, or a visitor session, gets no bot and no token', async () => {
    // PROTOCOL §11 `bot_create`: "`E_USERNAME_TAKEN` (also for a look-alike)"; §3.3: "A new
    // username's skeleton MUST NOT match an account's" (Unicode TR39); `token_create`/`bot_create`
    // have access `user` (§11 table), and §3.3: "Every request may also be answered …
    // `E_VISITOR_READ_ONLY` (per its access)".
    const victim = await registerLogin(srv, `mollie${n++}`);
    const mallory = await user('lk');
    const v = victim.username;
    const looks = [
      v.toUpperCase(),
      v.replace('m', 'rn'),
      v.replace('l', '1'),
      v.replace('l', 'I'),
      v.replace('o', '0'),
    ];
    const made: string[] = [];
    for (const name of looks) {
      const r = await mallory.c.req('bot_create', { username: name });
      if (r.error?.code !== 'E_USERNAME_TAKEN')
        made.push(`${name}: ${JSON.stringify(r.error ?? r.body)}`);
    }
    expect(made, 'look-alike bots of ' + v).toEqual([]);
    // A visitor session asks for a token and a bot.
    const { c } = await serverHello(srv);
    const vis = await c.req('visitor', { name: 'Guest ' + n++, publicKey: newKey().pk });
    expect(vis.body?.role, JSON.stringify(vis)).toBe('visitor');
    const t = await c.req('token_create', { name: 'v', scopes: ['read'] });
    expect(t.body?.token, JSON.stringify(t)).toBeUndefined();
    const b = await c.req('bot_create', { username: uname('vb') });
    expect(b.body?.username, JSON.stringify(b)).toBeUndefined();
    c.close();
  });

  it('a malformed token of any length gets the one 401 body; presence events on the gateway follow the visibility rule', async () => {
    // REST.md Tokens: "A missing, malformed, unknown, wrong, revoked or expired token gets one and
    // the same answer, 401 `E_TOKEN_INVALID`". REST.md Gateway `peer_joined`: "by the tracker's
    // visibility rule (shares a channel with the account; never an invisible user)".
    const ref = await rest('tok_AAAAAAAAAAAAAAAAAAAAAA.' + 'A'.repeat(43), 'GET', '/users/@me');
    expect(ref.status).toBe(401);
    for (const t of [
      'x'.repeat(8000),
      'tok_' + 'A'.repeat(22) + '.' + 'A'.repeat(6000),
      'tok_.',
      '.',
    ]) {
      const r = await rest(t, 'GET', '/users/@me');
      expect(r.status, t.slice(0, 30)).toBe(401);
      expect(r.body).toEqual(ref.body);
    }
    const me = await user('gp');
    const friend = await user('gf');
    const ghost = await user('gh');
    const stranger = await user('gs');
    const ch = await channel(me);
    await join(friend, ch);
    await join(ghost, ch);
    const g = await openGateway(await token(me, { scopes: ['read'] }));
    const sub = (u: User, status: string, port: number) =>
      u.c.req('submit_info', { ip: '127.0.0.1', port, udpPort: port, status });
    await sub(stranger, 'online', 41001);
    await sub(ghost, 'invisible', 41002);
    await sub(friend, 'online', 41003);
    await g.next((f) => f.type === 'peer_joined' && f.data.entry.username === friend.username);
    await sleep(300);
    const heard = g.frames
      .filter((f) => f.type === 'peer_joined' || f.type === 'peer_left')
      .map((f) => f.data.entry.username);
    expect(heard).not.toContain(stranger.username);
    expect(heard).not.toContain(ghost.username);
    g.ws.terminate();
  });

  it('a bot removed from a channel by its owner reads nothing more of it by any route, even a channel open to visitors', async () => {
    // PROTOCOL §2.2 Channel items: "a removed member leaves the member list for good (it can neither
    // read nor post, even in a channel that allows visitors: `history`, `sync`, `members`, `search`
    // and `channel_join` answer `E_FORBIDDEN` …, `post` answers `E_NOT_MEMBER`)"; REST.md Gateway:
    // `member_left` "a user … removed from a subscribed channel"; the session stops hearing it.
    const owner = await user('rm');
    const botName = uname('rmb');
    await owner.c.req('bot_create', { username: botName });
    const ch = await channel(owner, true);
    const botTok = await token(owner, { account: botName });
    expect((await rest(botTok, 'POST', `/channels/${ch}/join`)).status).toBe(200);
    const g = await openGateway(botTok);
    expect(g.frames[0].channels).toContain(ch);
    const ownerTok = await token(owner);
    const ok = await certify(ownerTok);
    const remove = signItem({ privateKey: ok.key.privateKey }, ok.cert, ch, owner.username, {
      kind: 'channel',
      change: { remove: botName.toLowerCase() },
    });
    const r = await rest(ownerTok, 'POST', `/channels/${ch}/messages`, remove);
    expect(r.status, r.text).toBe(201);
    await sleep(300);
    const secret = signMessage(
      { privateKey: ok.key.privateKey },
      ok.cert,
      ch,
      owner.username,
      'after the removal',
      Date.now(),
      1,
    );
    expect((await rest(ownerTok, 'POST', `/channels/${ch}/messages`, secret)).status).toBe(201);
    const bk = await certify(botTok);
    const failures: string[] = [];
    for (const [method, route, body, want] of [
      ['GET', `/channels/${ch}`, undefined, [403]],
      ['GET', `/channels/${ch}/messages`, undefined, [403]],
      ['GET', `/channels/${ch}/items?since=0`, undefined, [403]],
      ['GET', `/channels/${ch}/members`, undefined, [403]],
      ['POST', `/channels/${ch}/join`, undefined, [403]],
      [
        'POST',
        `/channels/${ch}/messages`,
        signMessage({ privateKey: bk.key.privateKey }, bk.cert, ch, botName, 'still here'),
        [403],
      ],
    ] as Array<[string, string, unknown, number[]]>) {
      const a = await rest(botTok, method, route, body);
      if (!want.includes(a.status) || a.text.includes('after the removal'))
        failures.push(`${method} ${route}: ${a.status} ${a.text.slice(0, 150)}`);
    }
    await sleep(300);
    if (g.frames.some((f) => f.data?.message?.id === secret.id))
      failures.push('the gateway still pushes the channel to the removed bot');
    const mine = await rest(botTok, 'GET', '/users/@me/channels');
    if ((mine.body.channels as any[]).some((c) => c.id === ch))
      failures.push('still listed in @me/channels');
    g.ws.terminate();
    expect(failures).toEqual([]);
  });

  it('two instances: a revocation holds on the other instance from the very next request, its gateway ends 4004, its key signs nothing more', async () => {
    // REST.md Tokens: "Revocation is read by every call, on every instance: it holds from the next
    // request"; Gateway Closes: "4004 the token was revoked … (final; a revocation reaches every
    // instance at once over the bus)"; Signing: "once the token is revoked, the server refuses what
    // the key signs after the revocation, `E_BAD_SIGNATURE`, on every instance"; "Several
    // instances. … a resume on another gets `invalid_session`".
    const cl = await startCluster(['--max-registrations-per-address', '1000']);
    const httpOf = (i: number) => (cl.servers[i]!.ready as any).http.replace(/\/$/, '') as string;
    const call = async (i: number, tok: string, method: string, route: string, body?: unknown) => {
      const r = await fetch(httpOf(i) + '/api/v1' + route, {
        method,
        headers: {
          authorization: 'Bearer ' + tok,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await r.text();
      return { status: r.status, text, body: text ? JSON.parse(text) : undefined };
    };
    const alice = await registerLogin(cl.at(0), uname('ca'));
    const bob = await registerLogin(cl.at(1), uname('cb'));
    const ch = uuid7();
    expect(
      (await alice.c.req('channel_create', { id: ch, name: 'c', allowVisitors: false })).error,
    ).toBeUndefined();
    expect((await bob.c.req('channel_join', { channelId: ch })).error).toBeUndefined();
    const t = (await alice.c.req('token_create', { name: 'c', scopes: ['read', 'write'] })).body
      .token as string;
    const id = t.split('.')[0]!;
    // A gateway session of instance 0 resumed on instance 1: invalid_session, then ready.
    const port = (i: number) => Number(httpOf(i).split(':').at(-1));
    const ws0 = new WebSocket(`ws://127.0.0.1:${port(0)}/api/v1/gateway`, {
      headers: { authorization: 'Bearer ' + t },
    });
    const ready0 = await new Promise<any>((r, j) => {
      ws0.on('message', (d) => r(JSON.parse(String(d))));
      ws0.on('error', j);
    });
    ws0.terminate();
    const ws1 = new WebSocket(
      `ws://127.0.0.1:${port(1)}/api/v1/gateway?resume=${ready0.session}&seq=0`,
      {
        headers: { authorization: 'Bearer ' + t },
      },
    );
    const f1: any[] = [];
    ws1.on('message', (d) => f1.push(JSON.parse(String(d))));
    const closed1 = new Promise<number>((r) => ws1.on('close', (c) => r(c)));
    ws1.on('error', () => {});
    for (let i = 0; i < 100 && !f1.some((f) => f.t === 'ready'); i++) await sleep(50);
    expect(f1.map((f) => f.t)).toEqual(['invalid_session', 'ready']);
    const key = newKey();
    const k = await call(1, t, 'POST', '/keys', { publicKey: key.pk });
    expect(k.status).toBe(200);
    expect((await call(1, t, 'GET', '/users/@me')).status).toBe(200);
    // Revoke through instance 0; the very next request on instance 1 is refused.
    const rv = await alice.c.req('token_revoke', { id });
    expect(rv.error).toBeUndefined();
    const after = await call(1, t, 'GET', '/users/@me');
    expect(after.status, 'instance 1 right after the revocation').toBe(401);
    const code = await Promise.race([closed1, sleep(2000).then(() => -1)]);
    expect(code, 'the gateway on instance 1 ends with 4004').toBe(4004);
    // What the key signs now is refused on instance 1, by a post of alice's own wire session there.
    await sleep(5);
    const m = signMessage(
      { privateKey: key.privateKey },
      k.body.cert,
      ch,
      alice.username,
      'after revocation',
    );
    const bobTok = (await bob.c.req('token_create', { name: 'b', scopes: ['read'] })).body
      .token as string;
    const alice1 = await registerLogin(cl.at(1), alice.username, alice.password);
    const p = await alice1.c.req('post', { message: m });
    expect(p.error?.code, JSON.stringify(p)).toBe('E_BAD_SIGNATURE');
    const items = await call(1, bobTok, 'GET', `/channels/${ch}/items?since=0`);
    expect(items.text).not.toContain('after revocation');
    for (const c of [alice.c, bob.c, alice1.c]) c.close();
  }, 30_000);

  it('requests with a token’s id and a wrong secret do not spend the real token’s budget', async () => {
    // REST.md: "Each token may make 20 requests a second, in bursts of 100"; a wrong secret is "401
    // `E_TOKEN_INVALID`". Token ids are not secret (the connection log names a token by its id, and
    // `tokens` lists them), so a budget spent by wrong-secret calls would let anyone starve a bot.
    const u = await user('ds');
    const t = await token(u, { scopes: ['read'] });
    const id = t.split('.')[0]!;
    const wrong = id + '.' + 'B'.repeat(43);
    const bad = await Promise.all(
      Array.from({ length: 150 }, () => rest(wrong, 'GET', '/users/@me')),
    );
    expect(new Set(bad.map((a) => a.status))).toEqual(new Set([401]));
    const r = await rest(t, 'GET', '/users/@me');
    expect(r.status, 'the real token after 150 wrong-secret calls').toBe(200);
    expect(Number(r.headers.get('ratelimit-remaining'))).toBeGreaterThanOrEqual(90);
    // RateLimit-Reset: seconds until the budget is full again (100 at 20/s: 5 s when spent).
    const burst = await Promise.all(Array.from({ length: 99 }, () => rest(t, 'GET', '/users/@me')));
    const last = burst
      .filter((a) => a.status === 200)
      .sort(
        (a, b) =>
          Number(a.headers.get('ratelimit-remaining')) -
          Number(b.headers.get('ratelimit-remaining')),
      )[0]!;
    const reset = Number(last.headers.get('ratelimit-reset'));
    expect(reset, 'RateLimit-Reset when nearly spent').toBeGreaterThanOrEqual(3);
    expect(reset).toBeLessThanOrEqual(6);
  });

  it('hchat bot run on two users’ own tokens: the two bots never answer each other in a loop', async () => {
    // REST.md `hchat bot`: "It skips messages whose certificate says `bot: true`, its own included,
    // so bots never answer each other"; README: "bots (its own messages included) are never
    // answered, so two bots cannot loop". A token may act as "the user's own (default)" account
    // (REST.md Tokens), whose certificate does not say bot.
    const ua = await user('la');
    const ub = await user('lb');
    const ch = await channel(ua);
    await join(ub, ch);
    const ta = await token(ua);
    const tb = await token(ub);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hc-bot2-'));
    const kids: ReturnType<typeof spawn>[] = [];
    const outs: string[] = ['', ''];
    for (const [i, t] of [ta, tb].entries()) {
      fs.writeFileSync(path.join(dir, `t${i}`), t, { mode: 0o600 });
      fs.writeFileSync(
        path.join(dir, `b${i}.json`),
        JSON.stringify({
          channels: [ch],
          tokenFile: `t${i}`,
          rules: [{ when: 'mention', reply: 'Hi @{author}' }],
        }),
      );
      const child = spawn(
        process.execPath,
        [BIN, 'bot', '--config', path.join(dir, `b${i}.json`), '--url', base],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: envWithout('HCHAT_TOKEN', 'HCHAT_URL', 'HCHAT_BOT_CONFIG'),
        },
      );
      child.stdout!.on('data', (d) => (outs[i] += d));
      child.stderr!.on('data', (d) => (outs[i] += d));
      kids.push(child);
    }
    const killer = setTimeout(() => kids.forEach((k) => k.kill('SIGKILL')), 25_000);
    try {
      for (
        let i = 0;
        i < 200 &&
        !outs.every((o) => /^ready bot=/m.test(o)) &&
        kids.every((k) => k.exitCode === null);
        i++
      )
        await sleep(50);
      if (!outs.every((o) => /^ready bot=/m.test(o))) {
        // Refusing to run on a person's token keeps the promise too.
        expect(outs.join('\n')).toMatch(/bot/i);
        return;
      }
      // ub (a person, by another client) mentions ua: ua's bot answers "Hi @ub", ub's bot answers …
      const k = await certify(tb);
      const m = signItem({ privateKey: k.key.privateKey }, k.cert, ch, ub.username, {
        text: `@${ua.username} hello`,
        mentions: [ua.username.toLowerCase()],
      });
      expect((await rest(tb, 'POST', `/channels/${ch}/messages`, m)).status).toBe(201);
      await sleep(3000);
      const items = await rest(
        await token(ua, { scopes: ['read'] }),
        'GET',
        `/channels/${ch}/items?since=0&limit=500`,
      );
      expect(items.status, items.text).toBe(200);
      const replies = (items.body.messages as any[]).filter((x) => x.replyTo);
      expect(
        replies.length,
        `replies after 3 s: ${replies
          .map((r) => r.author + ': ' + r.text)
          .slice(0, 6)
          .join(' | ')}`,
      ).toBeLessThanOrEqual(2);
    } finally {
      clearTimeout(killer);
      kids.forEach((k) => k.kill('SIGKILL'));
    }
  });

  it('a deleted channel’s id taken again by someone else carries none of its items or members', async () => {
    // PROTOCOL §2.2: "a deleted channel is dropped with its items and members (later requests about it
    // answer `E_CHANNEL_NOT_FOUND`)"; §2.1: `seq` is "1, 2, 3, … with no gaps". POST /channels takes
    // `{name, allowVisitors?, id?}` (REST.md).
    const alice = await user('da');
    const bob = await user('db');
    const mallory = await user('dm');
    const x = await channel(alice);
    await join(bob, x);
    const at = await token(alice);
    const ak = await certify(at);
    const secret = signMessage(
      { privateKey: ak.key.privateKey },
      ak.cert,
      x,
      alice.username,
      'the old secret',
    );
    expect((await rest(at, 'POST', `/channels/${x}/messages`, secret)).status).toBe(201);
    const del = signItem(
      { privateKey: ak.key.privateKey },
      ak.cert,
      x,
      alice.username,
      { kind: 'channel', change: { deleted: true } },
      Date.now(),
      1,
    );
    const d = await rest(at, 'POST', `/channels/${x}/messages`, del);
    expect(d.status, d.text).toBe(201);
    expect((await rest(at, 'GET', `/channels/${x}/items?since=0`)).body?.error?.code).toBe(
      'E_CHANNEL_NOT_FOUND',
    );
    const mt = await token(mallory);
    const c = await rest(mt, 'POST', '/channels', { name: 'reborn', id: x });
    expect([201, 409], c.text).toContain(c.status);
    if (c.status !== 201) return;
    const items = await rest(mt, 'GET', `/channels/${x}/items?since=0`);
    expect(items.status).toBe(200);
    expect(items.text).not.toContain('the old secret');
    expect(items.body.messages).toEqual([]);
    expect(items.body.lastSeq).toBe(0);
    const members = await rest(mt, 'GET', `/channels/${x}/members`);
    expect(members.body.members.map((m: string) => m.toLowerCase())).toEqual([
      mallory.username.toLowerCase(),
    ]);
    // Bob, a member of the old channel, is no member of the new one.
    const bt = await token(bob, { scopes: ['read'] });
    const bh = await rest(bt, 'GET', `/channels/${x}/messages`);
    expect(bh.status).toBe(403);
    expect((await rest(bt, 'GET', '/users/@me/channels')).text).not.toContain(x);
  });

  it('the reference page is bundled (no CDN) and a refused gateway upgrade’s socket is closed at once', async () => {
    // REST.md: "a reference page is at **`/api/v1/docs`** (bundled with the server, no CDN)";
    // SECURITY.md: "The gateway … is refused before the upgrade like any call (a refused upgrade's
    // socket is closed, not left open)".
    const page = await fetch(base + '/api/v1/docs');
    expect(page.status).toBe(200);
    const html = await page.text();
    const external = [...html.matchAll(/(?:src|href)\s*=\s*["']?((?:https?:)?\/\/[^"' >]+)/gi)].map(
      (m) => m[1],
    );
    expect(external, 'external resources of /api/v1/docs').toEqual([]);
    const t0 = Date.now();
    const out = await rawHttp(
      `GET /api/v1/gateway HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
        `Authorization: Bearer tok_nothing.nothing\r\n\r\n`,
      4000,
    );
    expect(out.split('\r\n')[0]).toMatch(/^HTTP\/1\.1 401/);
    expect(Date.now() - t0, 'the refused socket closes by itself').toBeLessThan(2000);
  });

  it('a small-order public key gets no certificate, and its universal signature is refused', async () => {
    // PROTOCOL §2.1: "The server checks signatures with libsodium's rules, which are stricter than RFC
    // 8032's minimum: a non-canonical signature (S ≥ L) or a small-order public key is refused." A
    // certificate is public (every message carries one): a certified identity-point key lets anyone
    // "sign" any item as its account for a verifier that is only RFC 8032 (node:crypto accepts R =
    // identity, S = 0 for every message under it).
    const u = await user('so');
    const t = await token(u);
    const ch = await channel(u);
    const identity = Buffer.alloc(32);
    identity[0] = 1;
    const k = await rest(t, 'POST', '/keys', { publicKey: identity.toString('base64url') });
    const failures: string[] = [];
    if (k.status === 200)
      failures.push('POST /keys certified the identity point (a small-order key)');
    const cert = k.status === 200 ? (k.body.cert as string) : u.cert;
    // The universal signature (R = identity, S = 0) on an item under that certificate.
    const text = 'forged by anyone';
    const ts = Date.now();
    const m = signMessage({ privateKey: u.key.privateKey }, cert, ch, u.username, text, ts, 0);
    const universal = Buffer.alloc(64);
    universal[0] = 1;
    const p = await rest(t, 'POST', `/channels/${ch}/messages`, {
      ...m,
      sig: universal.toString('base64url'),
    });
    if (p.status !== 403 || p.body?.error?.code !== 'E_BAD_SIGNATURE')
      failures.push(`universal signature: ${p.status} ${p.text.slice(0, 150)}`);
    // A login with a small-order key: refused too.
    const { c } = await serverHello(srv);
    const l = await c.req('login', {
      username: u.username,
      password: u.password,
      publicKey: identity.toString('base64url'),
    });
    if (l.body?.cert) failures.push('login certified the identity point');
    c.close();
    expect(failures).toEqual([]);
  });

  it('the connection log stays one printable record a line, with the real address, whatever a client sends', async () => {
    // PROTOCOL §6: "one line per record, printable ASCII, `key=value` pairs …; Values with characters
    // outside `A-Z a-z 0-9 . _ : @ / + , = ~ -` are percent-encoded"; §11: "A REST call is logged as
    // the wire operation it runs, under `peer=<account>@<ip>:<port>` of the HTTP client". SECURITY.md:
    // the log "names a token by its id, never its secret".
    const u = await user('lg');
    const t = await token(u);
    const ch = await channel(u);
    const nasty = {
      'x-forwarded-for': '6.6.6.6',
      'x-real-ip': '6.6.6.6',
      forwarded: 'for=6.6.6.6',
      'user-agent': 'evil\u0085agent ev=forged',
    };
    await rest(t, 'GET', '/users/@me', undefined, nasty);
    await rest(t, 'GET', `/channels/${ch}/messages?limit=1%0Aev%3Dforged`, undefined, nasty);
    await rest(t, 'GET', '/channels/%0d%0at=2020-01-01T00:00:00Z%20ev=forged', undefined, nasty);
    await rest(t, 'POST', '/channels', { name: 'log\u202ename ev=forged' }, nasty);
    await rest(t, 'POST', `/channels/${ch}/join`, undefined, nasty);
    await sleep(1500); // the log is flushed in batches
    const logPath = path.join(srv.data, 'connections.log');
    const lines = fs.readFileSync(logPath, 'utf8').split('\n').filter(Boolean);
    const bad = lines.filter(
      (l) => !/^t=\S+ ev=[a-z_]+( [a-zA-Z0-9_]+=\S*)*$/.test(l) || /[^\x20-\x7e]/.test(l),
    );
    expect(bad.slice(0, 5)).toEqual([]);
    const mine = lines.filter((l) => l.toLowerCase().includes(u.username.toLowerCase() + '@'));
    expect(mine.length, 'REST calls are logged under the account').toBeGreaterThan(0);
    for (const l of mine) {
      expect(l).not.toContain('6.6.6.6');
      expect(l).toMatch(/@127\.0\.0\.1:\d+/);
    }
    expect(lines.join('\n')).not.toContain(t.split('.')[1]!);
    expect(lines.some((l) => / ev=forged/.test(l))).toBe(false);
  });

  it('a gateway client cannot subscribe itself beyond its token by frames or query parameters', async () => {
    // REST.md Gateway: `ready` … "subscribed to `channels` (the account's, within the token's)";
    // every frame client → server is `{"t":"ping"}` (the only one documented). REST.md Tokens: "the
    // token sees only these channels".
    const u = await user('gs');
    const owner = await user('go');
    const a = await channel(u);
    const b = await channel(u); // the account's, outside the token
    const priv = await channel(owner); // not the account's at all
    const tok = await token(u, { scopes: ['read'], channels: [a] });
    const q = `?channels=${b},${priv}&channelIds=${b}&subscribe=${priv}&channel=${b}`;
    const g = await openGateway(tok, q);
    expect(g.frames[0].channels).toEqual([a]);
    for (const f of [
      { t: 'subscribe', channelIds: [b, priv] },
      { t: 'subscribe', channels: [b, priv] },
      { t: 'req', id: 1, op: 'subscribe', body: { channelIds: [b, priv] } },
      { t: 'req', id: 2, op: 'channel_join', body: { channelId: priv } },
      { t: 'join', channelId: priv },
      { t: 'resume', session: g.frames[0].session, seq: 0, channels: [b] },
    ])
      g.ws.send(JSON.stringify(f));
    await sleep(300);
    const ut = await token(u);
    const ot = await token(owner);
    const uk = await certify(ut);
    const okk = await certify(ot);
    const mb = signMessage({ privateKey: uk.key.privateKey }, uk.cert, b, u.username, 'in b');
    const mp = signMessage(
      { privateKey: okk.key.privateKey },
      okk.cert,
      priv,
      owner.username,
      'in priv',
    );
    const ma = signMessage(
      { privateKey: uk.key.privateKey },
      uk.cert,
      a,
      u.username,
      'in a',
      Date.now() + 1,
    );
    expect((await rest(ut, 'POST', `/channels/${b}/messages`, mb)).status).toBe(201);
    expect((await rest(ot, 'POST', `/channels/${priv}/messages`, mp)).status).toBe(201);
    expect((await rest(ut, 'POST', `/channels/${a}/messages`, ma)).status).toBe(201);
    await g.next((f) => f.t === 'event' && f.data?.message?.id === ma.id);
    await sleep(200);
    const heard = g.frames.filter((f) => f.t === 'event').map((f) => f.data?.channelId);
    expect(
      heard.filter((c) => c && c !== a),
      JSON.stringify(g.frames.slice(0, 8)),
    ).toEqual([]);
    expect(JSON.stringify(g.frames)).not.toContain('in priv');
    expect(JSON.stringify(g.frames)).not.toContain('in b');
    // Nor did a frame make the account a member of the channel it does not belong to.
    const m = await rest(ot, 'GET', `/channels/${priv}/members`);
    expect(m.body.members.map((x: string) => x.toLowerCase())).toEqual([
      owner.username.toLowerCase(),
    ]);
    g.ws.terminate();
  });

  it('hchat bot survives items that are not plain texts (files only, edits, deletes, reactions, channel changes) and keeps answering', async () => {
    // SECURITY.md: "`hchat bot` reads untrusted messages with a trusted config … no text crashes the
    // rules"; PROTOCOL §2.2: a `message` has "`text?` … (`text` or `files`, at least one)"; items of
    // every kind reach the gateway ("every item stored in a subscribed channel: messages, edits,
    // deletes, reactions, channel changes").
    const owner = await user('sv');
    const botName = uname('svb');
    await owner.c.req('bot_create', { username: botName });
    const ch = await channel(owner);
    const botTok = await token(owner, { account: botName });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hc-bot3-'));
    fs.writeFileSync(path.join(dir, 't'), botTok, { mode: 0o600 });
    fs.writeFileSync(
      path.join(dir, 'b.json'),
      JSON.stringify({
        channels: [ch],
        tokenFile: 't',
        rules: [
          { when: 'mention', reply: 'Hi @{author}: {text} in {channel}' },
          { when: { keyword: 'ping' }, react: '👍' },
        ],
      }),
    );
    const child = spawn(
      process.execPath,
      [BIN, 'bot', '--config', path.join(dir, 'b.json'), '--url', base],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: envWithout('HCHAT_TOKEN', 'HCHAT_URL', 'HCHAT_BOT_CONFIG'),
      },
    );
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    try {
      for (let i = 0; i < 200 && !/^ready bot=/m.test(out) && child.exitCode === null; i++)
        await sleep(50);
      expect(out).toMatch(/^ready bot=/m);
      const ot = await token(owner);
      const k = await certify(ot);
      const sign = (m: Parameters<typeof signItem>[4], lc: number) =>
        signItem({ privateKey: k.key.privateKey }, k.cert, ch, owner.username, m, Date.now(), lc);
      const mention = [botName.toLowerCase()];
      const first = sign({ text: `@${botName} first`, mentions: mention }, 0);
      const sent: Array<[string, any]> = [];
      const post = async (what: string, m: any) => {
        const r = await rest(ot, 'POST', `/channels/${ch}/messages`, m);
        sent.push([what, r.status]);
      };
      await post(
        'files only, mentioning the bot',
        sign(
          {
            files: [{ id: 'A'.repeat(43), name: 'x.txt', size: 1, type: 'text/plain' }],
            mentions: mention,
          },
          1,
        ),
      );
      await post('first', first);
      await post(
        'edit',
        sign(
          { kind: 'edit', target: first.id, text: `@${botName} edited ping`, mentions: mention },
          2,
        ),
      );
      await post('react', sign({ kind: 'react', target: first.id, emoji: '🔥' }, 3));
      await post('rename', sign({ kind: 'channel', change: { name: '{author} {text} @here' } }, 4));
      await post('delete', sign({ kind: 'delete', target: first.id }, 5));
      await sleep(800);
      const last = sign({ text: `@${botName} still there?`, mentions: mention }, 6);
      await post('last', last);
      let reply: any;
      for (let i = 0; i < 60 && !reply; i++) {
        const items = await rest(ot, 'GET', `/channels/${ch}/items?since=0&limit=500`);
        reply = (items.body.messages as any[]).find((x) => x.replyTo === last.id);
        if (!reply) await sleep(100);
      }
      expect(child.exitCode, 'the bot process is still running: ' + out.slice(-500)).toBeNull();
      expect(
        reply,
        `no answer to the last mention; posts ${JSON.stringify(sent)}; bot said: ${out.slice(-600)}`,
      ).toBeTruthy();
      expect(reply.mentions ?? []).not.toContain('here');
    } finally {
      clearTimeout(killer);
      child.kill('SIGKILL');
    }
  });

  it('token_create refuses out-of-range fields, naming them (a name is printable: no C0/C1, U+2028/U+2029)', async () => {
    // PROTOCOL §11 `token_create`: "`{name: 1–64 printable, account?: username, scopes: ["read"/"write"]
    // (1–2), channels?: [uuid] (1–100), expiresInDays?: 1–365}`"; §7 `E_BAD_REQUEST`: "the message names
    // the fields"; §2.1: "_Printable_ means without C0/C1 control characters and without
    // U+2028/U+2029".
    const u = await user('tc');
    const ch = await channel(u);
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ name: '', scopes: ['read'] }, 'name'],
      [{ name: 'x'.repeat(65), scopes: ['read'] }, 'name'],
      [{ name: 'line\nbreak', scopes: ['read'] }, 'name'],
      [{ name: 'bell\u0007', scopes: ['read'] }, 'name'],
      [{ name: 'ls\u2028', scopes: ['read'] }, 'name'],
      [{ name: 'ps\u2029', scopes: ['read'] }, 'name'],
      [{ name: 'c1\u0085', scopes: ['read'] }, 'name'],
      [{ name: 'del\u007f', scopes: ['read'] }, 'name'],
      [{ name: 'n', scopes: [] }, 'scopes'],
      [{ name: 'n', scopes: ['admin'] }, 'scopes'],
      [{ name: 'n', scopes: ['read', 'write', 'read'] }, 'scopes'],
      [{ name: 'n', scopes: ['read'], channels: [] }, 'channels'],
      [{ name: 'n', scopes: ['read'], channels: ['not-a-uuid'] }, 'channels'],
      [
        { name: 'n', scopes: ['read'], channels: Array.from({ length: 101 }, () => ch) },
        'channels',
      ],
      [{ name: 'n', scopes: ['read'], expiresInDays: 0 }, 'expiresInDays'],
      [{ name: 'n', scopes: ['read'], expiresInDays: 366 }, 'expiresInDays'],
      [{ name: 'n', scopes: ['read'], expiresInDays: -1 }, 'expiresInDays'],
      [{ name: 'n', scopes: ['read'], expiresInDays: 1e308 }, 'expiresInDays'],
      [{ name: 'n', scopes: ['read'], expiresInDays: 0.0001 }, 'expiresInDays'],
    ];
    const failures: string[] = [];
    for (const [body, field] of bad) {
      const r = await u.c.req('token_create', body);
      if (r.body?.token) failures.push(`${JSON.stringify(body).slice(0, 80)}: a token was made`);
      else if (r.error?.code !== 'E_BAD_REQUEST' || !String(r.error.message).includes(field))
        failures.push(`${JSON.stringify(body).slice(0, 80)}: ${JSON.stringify(r.error)}`);
    }
    expect(failures).toEqual([]);
  });

  it('gateway sessions end 1001 when the server stops', async () => {
    // REST.md Gateway Closes: "1001 the server is shutting down".

    // 1001 on shutdown: a server of its own, stopped with SIGTERM and a short drain.
    const s2 = await startServer(['--drain-ms', '500']);
    const base2 = s2.ready.match(/http=(http:\/\/[\d.]+:\d+)\//)![1]!;
    const v = await registerLogin(s2, uname('sd'));
    const vt = (await v.c.req('token_create', { name: 'sd', scopes: ['read'] })).body
      .token as string;
    const ws = new WebSocket(base2.replace('http', 'ws') + '/api/v1/gateway', {
      headers: { authorization: 'Bearer ' + vt },
    });
    ws.on('error', () => {});
    await new Promise((r) => ws.once('message', r));
    const closed = new Promise<number>((r) => ws.on('close', (c) => r(c)));
    s2.child.kill('SIGTERM');
    const code = await Promise.race([closed, sleep(5000).then(() => -1)]);
    expect(code, 'gateway close code on shutdown').toBe(1001);
    v.c.close();
  });

  it('gateway: sessions whose socket dropped still count toward the 4 per token (no pile of detached sessions)', async () => {
    // REST.md Gateway: "The session outlives its socket for 60 s, still subscribed, keeping its last
    // 1,000 events"; Closes: "4005 more than 4 sessions for the token (the oldest goes)". A detached
    // session is a session: were it not counted, one token could keep any number of them, each
    // subscribed and holding up to 1,000 events for a minute.
    const u = await user('dt');
    const tok = await token(u, { scopes: ['read'] });
    const sessions: string[] = [];
    for (let i = 0; i < 12; i++) {
      const g = await openGateway(tok);
      sessions.push(g.frames[0].session);
      g.ws.terminate();
      await g.closed;
    }
    await sleep(200);
    // Only the newest 4 may still be resumable; the oldest must be gone. (The newest first: a failed
    // resume opens a new session, which retires the oldest.)
    const alive: number[] = [];
    for (const i of [11, 0, 1, 2, 3, 7]) {
      const g = await openGateway(tok, `?resume=${sessions[i]}&seq=0`);
      if (g.frames.some((f) => f.t === 'resumed')) alive.push(i);
      g.ws.terminate();
      await g.closed;
    }
    expect(
      alive.filter((i) => i < 8),
      `resumable of 12 detached sessions: ${alive}`,
    ).toEqual([]);
  });

  it('names are printable wherever a channel takes one: POST /channels and channel items', async () => {
    // PROTOCOL §2.1: channel `name: 1–64 printable characters after trimming`, `topic?: ≤ 256 printable
    // characters`; "_Printable_ means without C0/C1 control characters and without U+2028/U+2029".
    const u = await user('pn');
    const t = await token(u);
    const ch = await channel(u);
    const k = await certify(t);
    const failures: string[] = [];
    for (const bad of ['a\u2028b', 'a\u2029b', 'a\u0085b', 'a\u007fb', 'a\u0000b', '   ']) {
      const c = await rest(t, 'POST', '/channels', { name: bad });
      if (c.status !== 400) failures.push(`POST /channels ${JSON.stringify(bad)}: ${c.status}`);
      for (const change of [{ name: bad }, { topic: bad }]) {
        if (bad === '   ' && 'topic' in change) continue;
        const m = signItem(
          { privateKey: k.key.privateKey },
          k.cert,
          ch,
          u.username,
          { kind: 'channel', change },
          Date.now(),
          failures.length,
        );
        const r = await rest(t, 'POST', `/channels/${ch}/messages`, m);
        if (r.status !== 400)
          failures.push(
            `channel item ${JSON.stringify(change)}: ${r.status} ${r.text.slice(0, 100)}`,
          );
      }
    }
    expect(failures).toEqual([]);
  });

  it('after its user logs out, a token still works but the logged-out session’s key signs nothing through it', async () => {
    // PROTOCOL §3.3 `logout`: "revokes the session (token and certificate are refused from now on:
    // whatever its key signed with a `ts` after the revocation … is `E_BAD_SIGNATURE`"; REST.md: each
    // route "is checked exactly as a peer's request would be (… signatures …)"; a token "lasts until
    // revoked".
    const u = await user('lo');
    const ch = await channel(u);
    const t = await token(u);
    const before = signMessage(
      { privateKey: u.key.privateKey },
      u.cert,
      ch,
      u.username,
      'before logout',
    );
    expect((await rest(t, 'POST', `/channels/${ch}/messages`, before)).status).toBe(201);
    expect((await u.c.req('logout', {})).error).toBeUndefined();
    await sleep(5);
    const after = signMessage(
      { privateKey: u.key.privateKey },
      u.cert,
      ch,
      u.username,
      'after logout',
      Date.now(),
      1,
    );
    const r = await rest(t, 'POST', `/channels/${ch}/messages`, after);
    expect(r.status, r.text).toBe(403);
    expect(r.body.error.code).toBe('E_BAD_SIGNATURE');
    // The token itself is not a session: it still reads, and its own certified key still writes.
    expect((await rest(t, 'GET', `/channels/${ch}/messages`)).status).toBe(200);
    const k = await certify(t);
    const own = signMessage(
      { privateKey: k.key.privateKey },
      k.cert,
      ch,
      u.username,
      'by the token key',
      Date.now(),
      2,
    );
    expect((await rest(t, 'POST', `/channels/${ch}/messages`, own)).status).toBe(201);
  });

  it('presence and typing through the API: no visitor entry, no typing of an invisible member', async () => {
    // PROTOCOL §3.5 Tracker visibility: "a _user_ sees the entries of the users it shares a channel
    // with … Nothing else reaches it"; §3.3 Typing: "It also drops, as quietly, a typing from a session
    // whose tracker entry is not `online`, so an invisible user is never revealed by its typing".
    // REST.md Gateway: `typing` "a member typing in a subscribed channel".
    const me = await user('ty');
    const friend = await user('tf');
    const ghost = await user('tg');
    const ch = await channel(me, true);
    await join(friend, ch);
    await join(ghost, ch);
    const { c: vc } = await serverHello(srv);
    const vis = await vc.req('visitor', { name: 'Viewer ' + n++, publicKey: newKey().pk });
    expect(vis.body?.role).toBe('visitor');
    await vc.req('channel_join', { channelId: ch });
    await vc.req('submit_info', { ip: '127.0.0.1', port: 42001, udpPort: 42001, status: 'online' });
    await friend.c.req('submit_info', {
      ip: '127.0.0.1',
      port: 42002,
      udpPort: 42002,
      status: 'online',
    });
    await ghost.c.req('submit_info', {
      ip: '127.0.0.1',
      port: 42003,
      udpPort: 42003,
      status: 'invisible',
    });
    const t = await token(me, { scopes: ['read'] });
    const g = await openGateway(t);
    const p = await rest(t, 'GET', '/presence');
    const names = (p.body.peers as any[]).map((e) => `${e.role}:${e.username}`);
    expect(names).toContain(`user:${friend.username}`);
    expect(
      names.filter((x) => x.startsWith('visitor:')),
      'visitor entries',
    ).toEqual([]);
    expect(names).not.toContain(`user:${ghost.username}`);
    await ghost.c.req('typing', { channelId: ch });
    await friend.c.req('typing', { channelId: ch });
    await g.next((f) => f.type === 'typing' && f.data.username === friend.username);
    await sleep(300);
    const typists = g.frames.filter((f) => f.type === 'typing').map((f) => f.data.username);
    expect(typists, 'typing heard').not.toContain(ghost.username);
    g.ws.terminate();
    vc.close();
  });

  it('item members out of their rules are refused 400 through the API: mentions, emoji, text', async () => {
    // PROTOCOL §2.2: "`mentions` is an array of at most 50 distinct strings, each a username in lower
    // case or `here`"; "`emoji` is 1–32 printable characters without spaces"; §2.1: `text` "1–4000
    // characters, not blank (at most 16,000 UTF-8 bytes)"; §7 `E_BAD_REQUEST` "names the fields".
    const u = await user('im');
    const t = await token(u);
    const ch = await channel(u);
    const k = await certify(t);
    const first = signMessage({ privateKey: k.key.privateKey }, k.cert, ch, u.username, 'target');
    expect((await rest(t, 'POST', `/channels/${ch}/messages`, first)).status).toBe(201);
    let lc = 1;
    const sign = (m: Parameters<typeof signItem>[4]) =>
      signItem({ privateKey: k.key.privateKey }, k.cert, ch, u.username, m, Date.now(), lc++);
    const cases: Array<[string, any, string]> = [
      ['duplicate mentions', sign({ text: 'hi', mentions: ['here', 'here'] }), 'mentions'],
      [
        'upper-case mention',
        sign({ text: 'hi', mentions: [u.username.toUpperCase()] }),
        'mentions',
      ],
      [
        '51 mentions',
        sign({ text: 'hi', mentions: Array.from({ length: 51 }, (_, i) => `user${i}`) }),
        'mentions',
      ],
      ['emoji with a space', sign({ kind: 'react', target: first.id, emoji: '👍 👍' }), 'emoji'],
      ['emoji with U+2028', sign({ kind: 'react', target: first.id, emoji: '👍\u2028' }), 'emoji'],
      [
        'emoji of 33 characters',
        sign({ kind: 'react', target: first.id, emoji: 'x'.repeat(33) }),
        'emoji',
      ],
      ['blank text', sign({ text: ' \n\t ' }), 'text'],
      ['text over 16,000 bytes', sign({ text: '\u{1F600}'.repeat(4001) }), 'text'],
      ['react without a target', sign({ kind: 'react', emoji: '👍' }), 'target'],
      ['message with a target', sign({ kind: 'message', text: 'x', target: first.id }), 'target'],
    ];
    const failures: string[] = [];
    for (const [what, m, field] of cases) {
      const r = await rest(t, 'POST', `/channels/${ch}/messages`, m);
      if (r.status !== 400 || r.body?.error?.code !== 'E_BAD_REQUEST')
        failures.push(`${what}: ${r.status} ${r.text.slice(0, 120)}`);
      else if (!r.body.error.message.includes(field))
        failures.push(`${what}: message does not name ${field}: ${r.body.error.message}`);
    }
    expect(failures).toEqual([]);
  });
});
