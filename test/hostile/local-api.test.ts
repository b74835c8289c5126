/**
 * The local API's credential (issue 11, finding 18), played by another local process: without the
 * peer's API token (or, on a GET, a URL key made from it) every route answers 401, whatever else
 * it sends; the token lives in `<data>/api-token`, readable by the owner only. No cookie opens
 * anything: a browser sends its cookies for 127.0.0.1 to every port of it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createTestnet, signIn, tempDir } from '../testnet.js';
import { spawnHchat } from '../processes.js';
import { openPage } from '../browser.js';

/** A URL key of `token` (src/peer/api-auth.ts), expiring `ahead` seconds from now. */
function urlKey(token: string, ahead = 3600): string {
  const expiry = Math.floor(Date.now() / 1000) + ahead;
  const mac = crypto
    .createHmac('sha256', token)
    .update(`hchat url key v1 ${expiry}`)
    .digest('base64url');
  return `${expiry}.${mac}`;
}

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

  it('refuses a wrong token, a token in the wrong place, and another peer’s URL key', async () => {
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
      'token as the page’s cookie': ['/api/me', { cookie: `hchat_api_${A.port}=${t}` }],
      'token as URL key': [`/api/me?key=${t}`, {}],
      'URL key of a wrong token': [`/api/me?key=${urlKey(flipped)}`, {}],
      'URL key expired': [`/api/me?key=${urlKey(t, -5)}`, {}],
      'URL key beyond 12 hours': [`/api/me?key=${urlKey(t, 13 * 3600)}`, {}],
      'URL key cut short': [`/api/me?key=${urlKey(t).slice(0, -1)}`, {}],
    };
    for (const [what, [route, headers]] of Object.entries(tries))
      expect(await request(A.origin, 'GET', route, headers), what).toMatchObject(refused);

    // A URL key opens GETs (and WebSocket upgrades) of its own peer, nothing that writes.
    const key = urlKey(t);
    expect((await request(A.origin, 'GET', `/api/me?key=${key}`)).status).toBe(200);
    expect(await upgrade(A.origin, `/api/streams/${ID}/play?key=${key}`)).not.toBe(401);
    for (const [method, route, body] of ROUTES.filter(([m]) => m !== 'GET'))
      expect(
        await request(A.origin, method, `${route}?key=${key}`, {}, body),
        `${method} ${route} with a URL key`,
      ).toMatchObject(refused);
    // ... and nothing at another peer on the same host.
    expect(await request(B.origin, 'GET', `/api/session?key=${key}`)).toMatchObject(refused);
    expect(await upgrade(B.origin, `/api/streams/${ID}/play?key=${key}`)).toBe(401);
    expect((await request(B.origin, 'GET', `/api/session?key=${urlKey(B.token!)}`)).status).toBe(
      200,
    );
    // Nothing happened: alice is still logged in and online.
    expect((await a.call('GET', '/api/me')).body).toMatchObject({ status: 'online' });
  });

  it('serves the page at /?token= with no cookie, out of caches and referrers', async () => {
    const net = await createTestnet({ peers: 1 });
    const { origin, token } = door(net.peers[0]!.uiUrl);
    for (const t of [token!, 'nope']) {
      const r = await request(origin, 'GET', `/?token=${t}`);
      expect(r.status).toBe(200);
      expect(r.headers['set-cookie']).toBeUndefined();
      expect(r.headers['cache-control']).toBe('no-store');
      expect(r.headers['referrer-policy']).toBe('no-referrer');
    }
    expect((await request(origin, 'GET', '/')).status).toBe(200);
    // A path leaving the page's folder is refused, under the code PROTOCOL.md §7 pairs with 403
    // (it said E_BAD_REQUEST, found by test/outsider/attack9's attacker).
    const out = await request(origin, 'GET', '/assets/..%2f..%2fpackage.json');
    expect(out.status).toBe(403);
    expect(out.body).toEqual({ error: { code: 'E_FORBIDDEN', message: 'Forbidden' } });
  });

  it('gives the browser nothing another server on 127.0.0.1 can replay (the cookie leak)', async () => {
    const net = await createTestnet({ peers: 1 });
    const p = net.peers[0]!;
    await signIn(p, 'alice');
    const { origin, token } = door(p.uiUrl);
    // Another OS user's server on the same host, any port: it keeps whatever cookie comes in.
    let stolen = '';
    const evil = http.createServer((req, res) => {
      stolen ||= req.headers.cookie ?? '';
      res.setHeader('content-type', 'text/html');
      res.end('<!doctype html><p>nothing to see</p>');
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    try {
      // The user opens their UI as README says: logged in, the token out of the address bar.
      const { page } = await openPage(p.uiUrl);
      await page.getByRole('button', { name: 'Log out' }).waitFor();
      expect(page.url()).toBe(`${origin}/`);
      // Later, a link to a page of the other server.
      const evilUrl = `http://127.0.0.1:${(evil.address() as { port: number }).port}/hello`;
      await page.goto(evilUrl);
      // Replayed from outside any browser, with whatever the page's cookies and the browser's
      // cookie jar hold: refused, on reads, writes and the event stream.
      const jar = (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
      for (const cookie of [stolen, jar].filter((c) => c !== '')) {
        expect(await request(origin, 'GET', '/api/channels', { cookie })).toMatchObject(refused);
        expect(
          await request(
            origin,
            'POST',
            '/api/channels',
            { cookie },
            { name: 'x', allowVisitors: false },
          ),
        ).toMatchObject(refused);
        expect(await request(origin, 'GET', '/api/events', { cookie })).toMatchObject(refused);
      }
      expect(stolen).not.toMatch(/hchat_api_/);
      const cookies = await page.context().cookies();
      expect(cookies.filter((c) => c.name.startsWith('hchat_api_'))).toEqual([]);
      // The token itself, as a script sends it, still opens the API.
      expect(
        (await request(origin, 'GET', '/api/channels', { authorization: `Bearer ${token}` }))
          .status,
      ).toBe(200);
    } finally {
      evil.close();
    }
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
