/**
 * A flood of bad bearer tokens at the REST API and its gateway (docs/SECURITY.md "The REST API v1
 * and its tokens", docs/REST.md "Errors and limits"), against a real `hchat server` process at its
 * default limits: failed tokens are budgeted per address group; past the budget the group's
 * requests are answered 429 `E_TOO_MANY_BAD_TOKENS` with `Retry-After`, without reading the store
 * (the server's `/metrics` count the token reads), while other address groups are served as
 * before.
 */
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { API_LIMITS } from '../../src/shared/limits.js';
import { spawnServer } from '../processes.js';
import { RawClient, publicKey } from './front-door-client.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
}

/** GET `url` with `token` as Bearer (none when undefined), from `localAddress`. */
function get(url: string, token: string | undefined, localAddress: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      localAddress,
      agent: false,
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        let body: any = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON: kept as text
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** The value of a counter series in a Prometheus text exposition (0 when absent). */
function metric(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

describe('hostile REST: a flood of bad tokens from one address group', () => {
  it('is answered 429 E_TOO_MANY_BAD_TOKENS with Retry-After past its budget, without a store read; other groups are served', async () => {
    const data = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-badtok-'));
    const srv = await spawnServer(data);
    const port = Number(/:(\d+)$/.exec(srv.ready.tcp!)![1]);
    const httpUrl = srv.ready.http!.replace(/\/$/, '');
    const api = (route: string) => `${httpUrl}/api/v1${route}`;

    // alice makes two tokens (PROTOCOL.md §11) and revokes one.
    const c = await RawClient.open(port);
    expect(
      (await c.request('register', { username: 'alice', password: 'pw-alice' })).body,
    ).toBeTruthy();
    const login = await c.request('login', {
      username: 'alice',
      password: 'pw-alice',
      publicKey: publicKey(),
    });
    expect(login.body?.username).toBe('alice');
    const made = async () =>
      (await c.request('token_create', { name: 't', scopes: ['read'] })).body as {
        id: string;
        token: string;
      };
    const good = (await made()).token;
    const revoked = await made();
    expect((await c.request('token_revoke', { id: revoked.id })).body).toBeTruthy();

    const ATTACKER = '127.0.5.1';
    const NEIGHBOUR = '127.0.5.77'; // the attacker's /24
    const OTHER = '127.0.6.1';
    const HOME = '127.0.0.1';
    expect((await get(api('/users/@me'), good, HOME)).status).toBe(200);

    // Every kind of bad token the documents name: unknown, wrong secret, revoked, malformed,
    // missing.
    const id = good.split('.')[0]!;
    const bad = [
      'tok_AAAAAAAAAAAAAAAAAAAAAA.' + 'A'.repeat(43),
      `${id}.${'B'.repeat(43)}`,
      revoked.token,
      'not a token',
      undefined,
    ];
    const budget = API_LIMITS.badTokenBurst;
    const flood: Answer[] = [];
    for (let i = 0; i < budget + 20; i++)
      flood.push(await get(api('/users/@me'), bad[i % bad.length], ATTACKER));
    const statuses = flood.map((a) => a.status);
    const count = (status: number) => statuses.filter((s) => s === status).length;
    console.log(`bad-token flood: ${count(401)} × 401, then ${count(429)} × 429`);
    // The budget is spent on 401s (a wait of 2 s may free one more while the flood runs).
    expect(statuses.slice(0, budget)).toEqual(Array(budget).fill(401));
    expect(count(429)).toBeGreaterThanOrEqual(15);
    const refused = flood.find((a) => a.status === 429)!;
    expect(refused.body.error.code).toBe('E_TOO_MANY_BAD_TOKENS');
    expect(refused.body.error.message).toMatch(/failed token/);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(refused.body.error.retryAfterMs).toBeGreaterThan(0);

    /**
     * Sends bad tokens from the attacker until one is refused with at least 1.5 s still to wait
     * (a 401 sets the wait to 2 s): the group stays throttled for a while from then on.
     */
    const throttledNow = async (): Promise<Answer> => {
      for (let i = 0; i < 10; i++) {
        const a = await get(api('/users/@me'), bad[0], ATTACKER);
        if (a.status !== 429) continue;
        if (a.body.error.retryAfterMs >= 1500) return a;
        await new Promise((r) => setTimeout(r, a.body.error.retryAfterMs));
      }
      throw new Error('the attacker was never throttled');
    };

    // Throttled, the group's requests read no token from the store: the server's metrics count
    // every token read, and every request refused before its read.
    const reads = (t: string) =>
      metric(t, 'hchat_api_token_reads_total{result="valid"}') +
      metric(t, 'hchat_api_token_reads_total{result="invalid"}');
    const throttled = (t: string) => metric(t, 'hchat_api_tokens_throttled_total');
    const scrape = async () => (await fetch(`${httpUrl}/metrics`)).text();
    await throttledNow();
    const before = await scrape();
    const more = 40;
    const again = await Promise.all(
      Array.from({ length: more }, (_, i) => get(api('/channels'), bad[i % bad.length], ATTACKER)),
    );
    const after = await scrape();
    const refusedNow = again.filter((a) => a.status === 429).length;
    // A wait of 2 s running out during the wave may let one more through (read, then 401).
    expect(refusedNow).toBeGreaterThanOrEqual(more / 2);
    expect(refusedNow + again.filter((a) => a.status === 401).length).toBe(more);
    expect(throttled(after) - throttled(before)).toBe(refusedNow);
    expect(reads(after) - reads(before), 'token reads: only of the requests not refused').toBe(
      more - refusedNow,
    );

    // Within the throttled group a good token waits too, as a right password does at a locked
    // login group (SECURITY.md): nothing tells a good token from a bad one without reading the
    // store. The gateway is refused before its upgrade, the same way.
    await throttledNow();
    const ws = new WebSocket(api('/gateway').replace(/^http/, 'ws'), {
      localAddress: ATTACKER,
      headers: { authorization: `Bearer ${bad[0]}` },
    });
    const [neighbour, upgrade] = await Promise.all([
      get(api('/users/@me'), good, NEIGHBOUR),
      new Promise<number>((resolve) => {
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => resolve(101));
        ws.on('error', () => resolve(0));
      }),
    ]);
    ws.terminate();
    expect(neighbour.status).toBe(429);
    expect(neighbour.body.error.code).toBe('E_TOO_MANY_BAD_TOKENS');
    expect(upgrade).toBe(429);

    // Other address groups are untouched: a good token works, a bad one is the usual 401.
    expect((await get(api('/users/@me'), good, HOME)).status).toBe(200);
    expect((await get(api('/users/@me'), good, OTHER)).status).toBe(200);
    const other = await get(api('/users/@me'), bad[0], OTHER);
    expect(other.status).toBe(401);
    expect(other.body.error.code).toBe('E_TOKEN_INVALID');
    // The server kept serving the framed port meanwhile.
    expect((await c.request('tokens', {})).body?.tokens?.length).toBeGreaterThan(0);
    c.close();
  });
});
