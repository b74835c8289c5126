/**
 * The local API's credential (issue 11, finding 18), played by another local process: without the
 * peer's API token (or the cookie its page gets for it) every route answers 401, whatever else it
 * sends; the token lives in `<data>/api-token`, readable by the owner only.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createTestnet, signIn, tempDir } from '../testnet.js';
import { spawnHchat } from '../processes.js';

const ID = '00000000-0000-4000-8000-000000000000';

/** Every route of README "Local API" and "Livestream API", with a body where one is needed. */
const ROUTES: Array<[string, string, unknown?]> = [
  ['POST', '/api/register', { username: 'mallory', password: 'mallory-pw' }],
  ['POST', '/api/login', { username: 'alice', password: 'alice-pw' }],
  ['POST', '/api/visitor', { name: 'mallory' }],
  ['POST', '/api/logout'],
  ['GET', '/api/me'],
  ['GET', '/api/session'],
  ['PUT', '/api/status', { status: 'offline' }],
  ['GET', '/api/peers'],
  ['GET', '/api/directory'],
  ['GET', '/api/channels'],
  ['POST', '/api/channels', { name: 'x', allowVisitors: false }],
  ['POST', `/api/channels/${ID}/join`],
  ['GET', `/api/channels/${ID}/messages`],
  ['POST', `/api/channels/${ID}/messages`, { text: 'hi' }],
  ['GET', `/api/channels/${ID}/members`],
  ['POST', `/api/channels/${ID}/read`],
  ['GET', '/api/events'],
  ['GET', '/api/events?since=0'],
  ['POST', `/api/channels/${ID}/streams`, { source: 'synthetic' }],
  ['GET', '/api/streams'],
  ['DELETE', `/api/streams/${ID}`],
  ['POST', `/api/streams/${ID}/watch`],
  ['DELETE', `/api/streams/${ID}/watch`],
  ['GET', `/api/streams/${ID}/stats`],
  ['POST', `/api/streams/${ID}/forward`, { host: '127.0.0.1', port: 5004 }],
  ['GET', `/api/streams/${ID}/sdp`],
  ['GET', '/api/nothing-here'],
];

/** One raw request as another local process would send it; the body is read up to 4 KiB. */
function request(
  origin: string,
  method: string,
  route: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: any }> {
  const u = new URL(route, origin);
  const text = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method,
        headers: text ? { 'content-type': 'application/json', ...headers } : headers,
      },
      (res) => {
        let got = '';
        res.on('data', (d) => {
          got += d;
          // An event stream never ends: what came first is enough.
          if (got.length > 4096 || res.headers['content-type']?.includes('event-stream'))
            res.destroy();
        });
        const done = () => {
          let parsed: unknown = got;
          try {
            parsed = JSON.parse(got);
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode!, headers: res.headers, body: parsed });
        };
        res.on('end', done);
        res.on('close', done);
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

/** The answer to a WebSocket upgrade: 'open', or the HTTP status that refused it. */
function upgrade(origin: string, route: string, headers: Record<string, string> = {}) {
  return new Promise<'open' | number>((resolve) => {
    const ws = new WebSocket(new URL(route, origin.replace('http', 'ws')), { headers });
    ws.on('open', () => {
      ws.terminate();
      resolve('open');
    });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('error', () => resolve(0));
  });
}

/** What another local process knows of a peer: its port (the token is what it lacks). */
function door(uiUrl: string): { origin: string; token: string | null; port: string } {
  const u = new URL(uiUrl);
  return { origin: u.origin, token: u.searchParams.get('token'), port: u.port };
}

const refused = { status: 401, body: { error: { code: 'E_API_TOKEN' } } };

describe('local API credential', () => {
  it('answers 401 on every route, event stream and WebSocket without the token', async () => {
    const net = await createTestnet({ peers: 1 });
    const p = net.peers[0]!;
    await signIn(p, 'alice');
    const { origin } = door(p.uiUrl);
    for (const [method, route, body] of ROUTES) {
      const r = await request(origin, method, route, {}, body);
      expect(r, `${method} ${route}`).toMatchObject(refused);
    }
    for (const route of [`/api/streams/${ID}/publish`, `/api/streams/${ID}/play`])
      expect(await upgrade(origin, route), route).toBe(401);
    // Nothing happened: alice is still logged in, online, and nobody registered.
    expect((await p.call('GET', '/api/me')).body).toMatchObject({
      username: 'alice',
      status: 'online',
    });
  });

  it('refuses a wrong token, a token in the wrong place, and another peer’s cookie', async () => {
    const net = await createTestnet({ peers: 2 });
    const [a, b] = net.peers as [(typeof net.peers)[0], (typeof net.peers)[0]];
    await signIn(a, 'alice');
    const A = door(a.uiUrl);
    const B = door(b.uiUrl);
    expect(A.token).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    const t = A.token!;
    const flipped = (t[0] === 'A' ? 'B' : 'A') + t.slice(1);
    const tries: Record<string, [string, Record<string, string>]> = {
      'wrong token': ['/api/me', { authorization: `Bearer ${flipped}` }],
      'token cut short': ['/api/me', { authorization: `Bearer ${t.slice(0, -1)}` }],
      'token plus a byte': ['/api/me', { authorization: `Bearer ${t}x` }],
      'empty bearer': ['/api/me', { authorization: 'Bearer ' }],
      'other peer’s token': ['/api/me', { authorization: `Bearer ${B.token}` }],
      'scheme Token': ['/api/me', { authorization: `Token ${t}` }],
      'scheme Basic': [
        '/api/me',
        { authorization: `Basic ${Buffer.from(`:${t}`).toString('base64')}` },
      ],
      'X-Api-Token header': ['/api/me', { 'x-api-token': t }],
      'X-Api-Key header': ['/api/me', { 'x-api-key': t }],
      'token in the query': [`/api/me?token=${t}`, {}],
      'raw token as cookie': ['/api/me', { cookie: `token=${t}` }],
    };
    for (const [what, [route, headers]] of Object.entries(tries))
      expect(await request(A.origin, 'GET', route, headers), what).toMatchObject(refused);

    // A cookie peer B's page got is worth nothing at peer A (same host, another port).
    const exchange = await request(B.origin, 'GET', `/?token=${B.token}`);
    expect(exchange.status).toBe(303);
    const bCookie = String(exchange.headers['set-cookie']![0]).split(';')[0]!;
    expect((await request(B.origin, 'GET', '/api/session', { cookie: bCookie })).status).toBe(200);
    expect(await request(A.origin, 'GET', '/api/me', { cookie: bCookie })).toMatchObject(refused);
    const [, bValue] = bCookie.split('=');
    expect(
      await request(A.origin, 'GET', '/api/me', { cookie: `hchat_api_${A.port}=${bValue}` }),
    ).toMatchObject(refused);
    expect(await upgrade(A.origin, `/api/streams/${ID}/play`, { cookie: bCookie })).toBe(401);
  });

  it('swaps the token in the URL for an HttpOnly SameSite=Strict cookie and a clean address', async () => {
    const net = await createTestnet({ peers: 1 });
    const { origin, token } = door(net.peers[0]!.uiUrl);
    const r = await request(origin, 'GET', `/?token=${token}`);
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe('/');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
    const cookie = String(r.headers['set-cookie']![0]);
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    expect(cookie).toMatch(/Path=\//);
    expect(cookie).not.toContain(token!);
    const pair = cookie.split(';')[0]!;
    expect((await request(origin, 'GET', '/api/session', { cookie: pair })).status).toBe(200);
    // A wrong token in the URL gets no cookie; the page itself is served to anyone.
    const wrong = await request(origin, 'GET', '/?token=nope');
    expect(wrong.status).toBe(303);
    expect(wrong.headers['set-cookie']).toBeUndefined();
    expect((await request(origin, 'GET', '/')).status).toBe(200);
  });

  it('keeps the token in an owner-only file, reused across restarts; --api-token sets it', async () => {
    const net = await createTestnet({ peers: 1 });
    const p = net.peers[0]!;
    const file = path.join(p.dataDir, 'api-token');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file, 'utf8').trim()).toBe(door(p.uiUrl).token);
    const again = await net.restartPeer(p);
    expect(door(again.uiUrl).token).toBe(door(p.uiUrl).token);

    const dir = tempDir();
    const chosen = 'a-token-chosen-by-the-user-0123456789';
    const byEnv = await spawnHchat(['peer', '--server', '127.0.0.1:1', '--data', dir], {
      HCHAT_API_TOKEN: chosen,
    });
    expect(byEnv.ready.ui).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/\\?token=${chosen}$`));
    const o = new URL(byEnv.ready.ui!).origin;
    expect((await request(o, 'GET', '/api/session')).status).toBe(401);
    expect(
      (await request(o, 'GET', '/api/session', { authorization: `Bearer ${chosen}` })).status,
    ).toBe(200);
  });

  it('is documented in the README: how scripts authenticate', () => {
    const readme = fs.readFileSync(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Local API'));
    expect(section).toContain('Authorization: Bearer');
    expect(section).toContain('api-token');
    expect(section).toContain('E_API_TOKEN');
    expect(section).toContain('--api-token');
  });
});
