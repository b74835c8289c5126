import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { authHeaders, createTestnet, signIn } from './testnet.js';

/** A raw request, so the Host header can be anything. */
function raw(
  url: string,
  headers: Record<string, string>,
  method = 'GET',
  body?: string,
): Promise<{ status: number; body: any }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname, method, headers },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () =>
          resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('local API door', () => {
  it('answers only requests that name this peer as Host, from its own origin', async () => {
    const net = await createTestnet({ peers: 1 });
    const p = net.peers[0]!;
    await signIn(p, 'alice');
    const port = new URL(p.uiUrl).port;
    const me = `${p.baseUrl}api/me`;
    const auth = authHeaders(p.uiUrl);
    expect((await raw(me, { host: `127.0.0.1:${port}`, ...auth })).status).toBe(200);
    expect((await raw(me, { host: `localhost:${port}`, ...auth })).status).toBe(200);
    for (const host of [
      'evil.example',
      `evil.example:${port}`,
      `127.0.0.1:1`,
      `127.0.0.1.nip.io:${port}`,
    ]) {
      const r = await raw(me, { host, ...auth });
      expect(r, host).toMatchObject({ status: 403, body: { error: { code: 'E_BAD_HOST' } } });
    }
    const cross = await raw(
      `${p.baseUrl}api/status`,
      {
        ...auth,
        host: `127.0.0.1:${port}`,
        origin: 'http://evil.example',
        'content-type': 'application/json',
      },
      'PUT',
      '{"status":"offline"}',
    );
    expect(cross).toMatchObject({ status: 403, body: { error: { code: 'E_BAD_ORIGIN' } } });
    expect((await p.call('GET', '/api/me')).body.status).toBe('online');
    const same = await raw(me, {
      ...auth,
      host: `127.0.0.1:${port}`,
      origin: `http://127.0.0.1:${port}`,
    });
    expect(same.status).toBe(200);
  });

  it('listens on 127.0.0.1 only', async () => {
    const net = await createTestnet({ peers: 1 });
    expect(new URL(net.peers[0]!.uiUrl).hostname).toBe('127.0.0.1');
    expect(net.peers[0]!.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(net.peers[0]!.uiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{43}$/);
  });

  it('answers unknown routes, bad JSON and oversized bodies with the error shape', async () => {
    const net = await createTestnet({ peers: 1 });
    const p = net.peers[0]!;
    expect(await p.call('GET', '/api/nothing')).toMatchObject({
      status: 404,
      body: { error: { code: 'E_NOT_FOUND' } },
    });
    expect(await p.call('POST', '/api/login', '{not json')).toMatchObject({
      status: 400,
      body: { error: { code: 'E_BAD_REQUEST' } },
    });
    const big = await p.call(
      'POST',
      '/api/login',
      JSON.stringify({ username: 'x'.repeat(100_000), password: 'y' }),
    );
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('E_BAD_REQUEST');
    expect((await p.call('POST', '/api/login', [1, 2])).status).toBe(400);
  });

  it('serves a page at / and streams events that resume after a given id', async () => {
    const net = await createTestnet({ peers: 1 });
    const p = net.peers[0]!;
    const home = await fetch(p.uiUrl);
    expect(home.headers.get('content-type')).toContain('text/html');
    await signIn(p, 'alice');
    await p.call('PUT', '/api/status', { status: 'invisible' });
    await p.call('PUT', '/api/status', { status: 'online' });
    const ctrl = new AbortController();
    const res = await fetch(`${p.baseUrl}api/events?since=0`, {
      signal: ctrl.signal,
      headers: authHeaders(p.uiUrl),
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('"status":"online"'))
      text += new TextDecoder().decode((await reader.read()).value);
    ctrl.abort();
    const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    expect(ids.length).toBeGreaterThan(1);
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
    expect(text).toContain('event: status');
  });
});
