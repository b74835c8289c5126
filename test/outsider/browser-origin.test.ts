// Outside attacker: a hostile web page, opened in the same browser as a peer's web UI, against
// that peer's local API and UI (SPEC §10; README "Local API"; docs/SECURITY.md "Local
// processes"; docs/local-api.openapi.json). Written from the docs only: real `hchat server` and
// `hchat peer` processes, Debian's Chromium, and an attacker's pages served by a node:http server
// of this file from other origins (another port of 127.0.0.1, `localhost`, and names that
// Chromium's --host-resolver-rules send to 127.0.0.1/127.0.0.2 to play DNS rebinding).
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { killAll, startPeer, startServer } from './lib.js';

type Peer = Awaited<ReturnType<typeof startPeer>>;

/** A whole 1×1 PNG, built by hand (signature, IHDR, IDAT, IEND with their CRCs). */
function png1x1(): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]);
  const idat = zlib.deflateSync(Buffer.from([0, 200, 30, 30]));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', idat),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A URL key as the docs define it: `<expiry>.<HMAC-SHA256(token, "hchat url key v1 " + expiry)>`. */
function urlKey(token: string, expiry = Math.floor(Date.now() / 1000) + 3600): string {
  const mac = crypto.createHmac('sha256', token).update(`hchat url key v1 ${expiry}`);
  return `${expiry}.${mac.digest('base64url')}`;
}

interface Seen {
  path: string;
  headers: http.IncomingHttpHeaders;
}

/**
 * The attacker's web server. `pages` maps a path to the HTML it answers; every request is kept
 * in `seen` (its headers: a Referer would show here). `forward`, when set, sends every other
 * request as it came (Host header included) to that port of 127.0.0.1: what the browser's
 * connection reaches once a rebinding name resolves to the peer.
 */
async function attackerServer(
  host: string,
  port: number,
  pages: Record<string, string>,
  forward?: number,
) {
  const seen: Seen[] = [];
  const srv = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    seen.push({ path: req.url ?? '', headers: req.headers });
    const html = pages[url.pathname];
    if (html !== undefined) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(html);
      return;
    }
    if (forward === undefined) {
      res.writeHead(404).end();
      return;
    }
    const up = http.request(
      { host: '127.0.0.1', port: forward, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  });
  await new Promise<void>((r) => srv.listen(port, host, () => r()));
  return {
    seen,
    port: (srv.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  };
}

const EMPTY = '<!doctype html><title>evil</title><body>hello</body>';

let server: Awaited<ReturnType<typeof startServer>>;
let peer: Peer;
let browser: Browser;
let evil: Awaited<ReturnType<typeof attackerServer>>;
let rebinder: Awaited<ReturnType<typeof attackerServer>>;
let channelId = '';
let fileId = '';
let peerOrigin = '';
/** The victim's API token, from its printed ui= URL. */
let token = '';

/** What the victim's peer holds: the state every attack below tries to read or change. */
async function snapshot() {
  const me = await peer.api('GET', '/api/me');
  const chans = await peer.api('GET', '/api/channels');
  const msgs = await peer.api('GET', `/api/channels/${channelId}/messages?limit=100`);
  const tokens = await peer.api('GET', '/api/tokens');
  const bots = await peer.api('GET', '/api/bots');
  return {
    me: { username: me.body.username, status: me.body.status, role: me.body.role },
    channels: (chans.body as Array<{ id: string; name: string }>).map((c) => c.name).sort(),
    texts: (msgs.body.messages as Array<{ text: string }>).map((m) => m.text).sort(),
    tokens: JSON.stringify(tokens.body),
    bots: JSON.stringify(bots.body),
  };
}

/** A fresh context; every answer the peer gives to it is kept (status and path). */
async function context(): Promise<{
  ctx: BrowserContext;
  peerAnswers: Array<{ status: number; method: string; path: string; auth: boolean }>;
}> {
  const ctx = await browser.newContext();
  const peerAnswers: Array<{ status: number; method: string; path: string; auth: boolean }> = [];
  ctx.on('response', (r) => {
    const u = new URL(r.url());
    if (u.port !== String(peer.uiPort)) return;
    peerAnswers.push({
      status: r.status(),
      method: r.request().method(),
      path: u.pathname + u.search,
      auth: 'authorization' in r.request().headers(),
    });
  });
  return { ctx, peerAnswers };
}

beforeAll(async () => {
  server = await startServer();
  peer = await startPeer(server);
  peerOrigin = `http://127.0.0.1:${peer.uiPort}`;
  token = peer.token!;
  expect(
    (await peer.api('POST', '/api/register', { username: 'alice', password: 'alice-pw-1' })).status,
  ).toBe(201);
  expect(
    (await peer.api('POST', '/api/login', { username: 'alice', password: 'alice-pw-1' })).status,
  ).toBe(200);
  const ch = await peer.api('POST', '/api/channels', { name: 'secret-room', allowVisitors: false });
  expect(ch.status).toBe(201);
  channelId = ch.body.id;
  const post = await peer.api('POST', `/api/channels/${channelId}/messages`, {
    text: 'the launch code is 0451',
  });
  expect(post.status).toBe(201);
  // A file of the channel and an avatar: their addresses are what <img> and friends load.
  const up = await fetch(`${peer.base}/api/channels/${channelId}/files?name=secret.txt`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
    body: 'top secret file body',
  });
  expect(up.status).toBe(201);
  fileId = ((await up.json()) as { id: string }).id;
  const av = await fetch(`${peer.base}/api/me/avatar`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'image/png' },
    body: new Uint8Array(png1x1()),
  });
  expect(av.status).toBe(200);

  evil = await attackerServer('127.0.0.1', 0, { '/': EMPTY, '/landing': EMPTY });
  // The rebinding attacker: `rebind.test` is served first by the attacker on 127.0.0.2 at the
  // peer's own port, and every request but its page reaches the peer as the browser sent it.
  rebinder = await attackerServer('127.0.0.2', peer.uiPort, { '/evil': EMPTY }, peer.uiPort);
  // launch() gives Chromium a fresh temporary --user-data-dir of its own, removed on close.
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--host-resolver-rules=MAP evil.test 127.0.0.1, MAP rebind.test 127.0.0.2',
    ],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await evil?.close();
  await rebinder?.close();
  await killAll();
});

describe('a hostile web page against the local API and web UI', () => {
  it('a page of another origin reads nothing: fetch/XHR with and without credentials, EventSource, WebSocket (SECURITY.md: "Web pages cannot use the API either… a browser\'s Origin must be the peer\'s own")', async () => {
    const before = await snapshot();
    const { ctx, peerAnswers } = await context();
    const page = await ctx.newPage();
    const origins = [
      `http://127.0.0.1:${evil.port}/`,
      `http://localhost:${evil.port}/`,
      `http://evil.test:${evil.port}/`,
    ];
    const leaks: string[] = [];
    for (const o of origins) {
      await page.goto(o);
      const got = await page.evaluate(
        async ({ base, channelId, fileId }) => {
          const out: string[] = [];
          const routes = [
            '/api/session',
            '/api/me',
            '/api/channels',
            `/api/channels/${channelId}/messages`,
            `/api/channels/${channelId}/files/${fileId}`,
            '/api/avatars/alice',
            '/api/tokens',
            '/api/openapi.json',
          ];
          for (const r of routes) {
            for (const init of [
              { mode: 'cors' as const, credentials: 'include' as const },
              { mode: 'cors' as const, credentials: 'omit' as const },
              { mode: 'no-cors' as const, credentials: 'include' as const },
            ]) {
              try {
                const res = await fetch(base + r, init);
                const text = await res.text();
                if (res.type !== 'opaque' || text.length > 0)
                  out.push(
                    `fetch ${init.mode}/${init.credentials} ${r}: ${res.status} ${text.slice(0, 80)}`,
                  );
              } catch {
                // refused by CORS: nothing read
              }
            }
            const xhr = await new Promise<string>((resolve) => {
              const x = new XMLHttpRequest();
              x.withCredentials = true;
              x.open('GET', base + r);
              x.onload = () => resolve(`${x.status} ${x.responseText.slice(0, 80)}`);
              x.onerror = () => resolve('');
              x.send();
            });
            if (xhr) out.push(`xhr ${r}: ${xhr}`);
          }
          for (const withCredentials of [false, true]) {
            const es = await new Promise<string>((resolve) => {
              const s = new EventSource(base + '/api/events', { withCredentials });
              const t = setTimeout(() => (s.close(), resolve('')), 1500);
              s.onmessage = (e) => (clearTimeout(t), s.close(), resolve(`message ${e.data}`));
              s.onopen = () => (clearTimeout(t), s.close(), resolve('open'));
              s.onerror = () => (clearTimeout(t), s.close(), resolve(''));
            });
            if (es) out.push(`EventSource(${withCredentials}): ${es}`);
          }
          for (const r of ['/api/events', '/api/streams/x/play', '/api/streams/x/publish']) {
            const ws = await new Promise<string>((resolve) => {
              const s = new WebSocket(base.replace('http', 'ws') + r);
              const t = setTimeout(() => (s.close(), resolve('')), 1500);
              s.onopen = () => (clearTimeout(t), s.close(), resolve('open'));
              s.onmessage = (e) => (clearTimeout(t), resolve(`message ${String(e.data)}`));
              s.onerror = () => (clearTimeout(t), resolve(''));
            });
            if (ws) out.push(`WebSocket ${r}: ${ws}`);
          }
          return out;
        },
        { base: peerOrigin, channelId, fileId },
      );
      leaks.push(...got.map((g) => `${o} ${g}`));
    }
    await ctx.close();
    // Nothing was readable by the page, and the peer itself answered no /api request with data.
    expect(leaks).toEqual([]);
    const answered = peerAnswers.filter((a) => a.path.startsWith('/api') && a.status < 400);
    expect(answered).toEqual([]);
    expect(await snapshot()).toEqual(before);
  });

  it('simple cross-origin POSTs that skip the preflight (forms: text/plain, urlencoded, multipart, from a sandboxed frame too; fetch no-cors; sendBeacon) change nothing (SECURITY.md: "a browser\'s Origin must be the peer\'s own"; every /api route needs the token)', async () => {
    const before = await snapshot();
    const { ctx, peerAnswers } = await context();
    const page = await ctx.newPage();
    await page.goto(`http://127.0.0.1:${evil.port}/`);
    await page.evaluate(
      async ({ base, channelId }) => {
        const json = (o: unknown) => JSON.stringify(o);
        const targets: Array<[string, string]> = [
          [`/api/channels/${channelId}/messages`, json({ text: 'pwned by a web page' })],
          ['/api/channels', json({ name: 'pwned-channel', allowVisitors: true })],
          ['/api/logout', ''],
          ['/api/login', json({ username: 'mallory', password: 'mallory-pw-1' })],
          ['/api/register', json({ username: 'mallory', password: 'mallory-pw-1' })],
          ['/api/tokens', json({ name: 'pwned', scopes: ['read', 'write'] })],
          ['/api/bots', json({ username: 'pwnbot' })],
          [`/api/channels/${channelId}/files?name=pwned.html`, '<script>alert(1)</script>'],
          [`/api/channels/${channelId}/leave`, ''],
        ];
        const frame = document.createElement('iframe');
        frame.name = 'sink';
        document.body.appendChild(frame);
        for (const [route, body] of targets) {
          for (const enctype of [
            'text/plain',
            'application/x-www-form-urlencoded',
            'multipart/form-data',
          ]) {
            const f = document.createElement('form');
            f.method = 'POST';
            f.action = base + route;
            f.enctype = enctype;
            f.target = 'sink';
            // text/plain sends `name=value`: a name ending in `{"x":"` makes the body JSON.
            const i = document.createElement('input');
            i.name = body.slice(0, -1) + ',"x":"';
            i.value = '"}';
            if (!body) {
              i.name = 'a';
              i.value = 'b';
            }
            f.appendChild(i);
            document.body.appendChild(f);
            f.submit();
            await new Promise((r) => setTimeout(r, 60));
          }
          for (const type of [
            'text/plain',
            'application/x-www-form-urlencoded',
            'multipart/form-data',
          ]) {
            await fetch(base + route, {
              method: 'POST',
              mode: 'no-cors',
              credentials: 'include',
              headers: { 'content-type': type },
              body,
            }).catch(() => undefined);
          }
          navigator.sendBeacon(base + route, new Blob([body], { type: 'text/plain' }));
        }
        // A sandboxed frame's form goes with `Origin: null`.
        const sandboxed = document.createElement('iframe');
        sandboxed.setAttribute('sandbox', 'allow-forms allow-scripts');
        sandboxed.srcdoc =
          `<form method=POST enctype=text/plain action="${base}/api/channels/${channelId}/messages">` +
          `<input name='{"text":"pwned from null","x":"' value='"}'></form>` +
          '<script>document.forms[0].submit()</' +
          'script>';
        document.body.appendChild(sandboxed);
        // Status and PUT/DELETE cannot go without a preflight; try them anyway.
        await fetch(base + '/api/status', {
          method: 'PUT',
          mode: 'no-cors',
          body: JSON.stringify({ status: 'invisible' }),
        }).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 800));
      },
      { base: peerOrigin, channelId },
    );
    await ctx.close();
    const accepted = peerAnswers.filter((a) => a.status < 400);
    expect(accepted).toEqual([]);
    expect(peerAnswers.length).toBeGreaterThan(0);
    expect(await snapshot()).toEqual(before);
  });

  it('embeds of API, file and avatar URLs load nothing: <img>, <script> (JSON hijacking), <link>, <video> (every /api route answers 401 without the token or a URL key)', async () => {
    const { ctx, peerAnswers } = await context();
    const page = await ctx.newPage();
    // Chromium's ORB drops most of these answers before Playwright sees them: the requests are
    // kept with the headers the browser sent, and replayed below to read the peer's answer.
    const sent: Array<{ url: string; headers: Record<string, string> }> = [];
    ctx.on('request', (r) => {
      if (new URL(r.url()).port === String(peer.uiPort))
        void r.allHeaders().then((headers) => sent.push({ url: r.url(), headers }));
    });
    await page.goto(`http://127.0.0.1:${evil.port}/`);
    const loaded = await page.evaluate(
      async ({ base, channelId, fileId }) => {
        const urls = [
          '/api/avatars/alice',
          '/api/avatars?users=alice',
          `/api/channels/${channelId}/files/${fileId}`,
          `/api/channels/${channelId}/files/${fileId}?download=1`,
          '/api/channels',
          `/api/channels/${channelId}/messages`,
          '/api/session',
        ].map((u) => base + u);
        const out: string[] = [];
        const load = (el: HTMLElement & { onload: unknown; onerror: unknown }, what: string) =>
          new Promise<void>((resolve) => {
            const t = setTimeout(() => resolve(), 1500);
            el.onload = () => {
              clearTimeout(t);
              if (el instanceof HTMLImageElement && el.naturalWidth === 0) return resolve();
              out.push(`${what} loaded`);
              resolve();
            };
            el.onerror = () => (clearTimeout(t), resolve());
            document.body.appendChild(el);
          });
        for (const u of urls) {
          const img = document.createElement('img');
          img.src = u;
          await load(img, `img ${u}`);
          const s = document.createElement('script');
          s.src = u;
          await load(s, `script ${u}`);
          const l = document.createElement('link');
          l.rel = 'stylesheet';
          l.href = u;
          await load(l, `link ${u}`);
          const v = document.createElement('video');
          v.src = u;
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, 800);
            v.onloadeddata = () => (clearTimeout(t), out.push(`video ${u} loaded`), resolve());
            v.onerror = () => (clearTimeout(t), resolve());
            document.body.appendChild(v);
          });
        }
        return out;
      },
      { base: peerOrigin, channelId, fileId },
    );
    await ctx.close();
    expect(loaded).toEqual([]);
    expect(peerAnswers.filter((a) => a.status < 400)).toEqual([]);
    expect(sent.length).toBeGreaterThan(20);
    const replayed: string[] = [];
    for (const r of sent) {
      const { host: _host, ...headers } = r.headers;
      const res = await fetch(r.url, { headers });
      if (res.status !== 401 && res.status !== 403) replayed.push(`${res.status} ${r.url}`);
    }
    expect(replayed).toEqual([]);
  });

  it('the web UI cannot be framed by another origin (clickjacking), not even at its /?token= address (ARCHITECTURE.md: a CSP "that allows only this origin")', async () => {
    const { ctx, peerAnswers } = await context();
    const page = await ctx.newPage();
    await page.goto(`http://127.0.0.1:${evil.port}/`);
    await page.evaluate(
      async ({ base, token }) => {
        for (const u of [`${base}/`, `${base}/?token=${token}`]) {
          const f = document.createElement('iframe');
          f.src = u;
          f.style.opacity = '0.01';
          document.body.appendChild(f);
          const o = document.createElement('object');
          o.data = u;
          document.body.appendChild(o);
        }
        await new Promise((r) => setTimeout(r, 2500));
      },
      { base: peerOrigin, token: token },
    );
    // A framed app would run: it would call /api/session with the token. None of its frames did.
    const rendered: string[] = [];
    for (const f of page.frames()) {
      if (f === page.mainFrame()) continue;
      const text = await f.evaluate(() => document.body?.innerText ?? '').catch(() => '');
      if (/secret-room|alice|Log out|ui= URL/i.test(text))
        rendered.push(`${f.url()}: ${text.slice(0, 80)}`);
    }
    await ctx.close();
    expect(rendered).toEqual([]);
    expect(peerAnswers.filter((a) => a.path.startsWith('/api'))).toEqual([]);
  });

  it('DNS rebinding: a page at another name that resolves to the peer is refused by the Host check, even with a leaked URL key (SECURITY.md: "the Host header must name the peer (no DNS rebinding)")', async () => {
    const before = await snapshot();
    const { ctx } = await context();
    const page = await ctx.newPage();
    // 1. The attacker's page at rebind.test on the peer's own port (first answered by the
    //    attacker), whose same-origin requests then reach the peer: they read the answers.
    const key = urlKey(token);
    await page.goto(`http://rebind.test:${peer.uiPort}/evil`);
    const got = await page.evaluate(
      async ({ channelId, key }) => {
        const out: Array<{ what: string; status: number; body: string }> = [];
        const routes = [
          '/',
          '/api/session',
          '/api/channels',
          `/api/channels/${channelId}/messages`,
          `/api/channels/${channelId}/messages?key=${key}`,
          `/api/events?key=${key}`,
          '/api/avatars/alice?key=' + key,
        ];
        for (const r of routes) {
          const res = await fetch(r);
          out.push({
            what: `GET ${r}`,
            status: res.status,
            body: (await res.text()).slice(0, 120),
          });
        }
        for (const r of [`/api/channels/${channelId}/messages`, '/api/logout']) {
          const res = await fetch(r, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ text: 'rebound' }),
          });
          out.push({
            what: `POST ${r}`,
            status: res.status,
            body: (await res.text()).slice(0, 120),
          });
        }
        const ws = await new Promise<string>((resolve) => {
          const s = new WebSocket(`ws://${location.host}/api/events?key=${key}`);
          const t = setTimeout(() => (s.close(), resolve('')), 1500);
          s.onopen = () => (clearTimeout(t), s.close(), resolve('open'));
          s.onerror = () => (clearTimeout(t), resolve(''));
        });
        if (ws) out.push({ what: 'WebSocket /api/events', status: 101, body: ws });
        return out;
      },
      { channelId, key },
    );
    const readable = got.filter((g) => !(g.status === 403 && g.body.includes('E_BAD_HOST')));
    // The rebinder did forward them: the peer saw Host rebind.test.
    expect(
      rebinder.seen.some(
        (s) => s.headers.host === `rebind.test:${peer.uiPort}` && s.path.startsWith('/api/'),
      ),
    ).toBe(true);
    // 2. The peer's port under a name that resolves to 127.0.0.1 (evil.test): no UI, no API.
    const nav = await page.goto(`http://evil.test:${peer.uiPort}/?token=${token}`);
    const navStatus = nav?.status();
    await ctx.close();
    expect(readable).toEqual([]);
    expect(navStatus).toBe(403);
    expect(await snapshot()).toEqual(before);
  });

  it('the token leaves the UI by no Referer, opener or address: a link in a message opens a page that gets none of them (SECURITY.md: Referrer-Policy no-referrer, history.replaceState; links rel="noopener noreferrer")', async () => {
    const { ctx, peerAnswers } = await context();
    const requests: Array<{ url: string; referer: string }> = [];
    ctx.on('request', (r) => requests.push({ url: r.url(), referer: r.headers().referer ?? '' }));
    const landing = `http://127.0.0.1:${evil.port}/landing`;
    const post = await peer.api('POST', `/api/channels/${channelId}/messages`, {
      text: `read [the minutes](${landing}) and ${landing}?plain=1`,
    });
    expect(post.status).toBe(201);
    const ui = await ctx.newPage();
    const doc = await ui.goto(`${peerOrigin}/?token=${token}`);
    expect(doc?.headers()['referrer-policy']).toBe('no-referrer');
    expect(doc?.headers()['cache-control']).toContain('no-store');
    await ui.getByText('secret-room').first().click();
    const link = ui.locator(`a[href="${landing}"]`).first();
    await link.waitFor();
    expect(ui.url()).not.toContain(token);
    // Its text is not its address: the page asks first, showing where it goes (README), then
    // opens it.
    await link.click();
    const [opened] = await Promise.all([
      ctx.waitForEvent('page'),
      ui
        .getByRole('dialog', { name: 'Leaving Hybrid Chat' })
        .getByRole('button', { name: 'Open link' })
        .click(),
    ]);
    await opened.waitForLoadState();
    const seenByAttacker = await opened.evaluate(() => ({
      referrer: document.referrer,
      opener: window.opener !== null,
      href: location.href,
      historyLength: history.length,
    }));
    // The attacker page now opens the peer's UI: a tab opened by it must not be logged in.
    const [popup] = await Promise.all([
      ctx.waitForEvent('page'),
      opened.evaluate((base) => void window.open(`${base}/`), peerOrigin),
    ]);
    await popup.waitForLoadState();
    await popup.waitForTimeout(1500);
    const popupText = await popup.locator('body').innerText();
    const landed = evil.seen.filter((s) => s.path.startsWith('/landing'));
    const tokenLeaks = requests.filter(
      (r) =>
        !r.url.startsWith(peerOrigin) &&
        (r.url.includes(token) || r.referer.includes(token) || r.referer.startsWith(peerOrigin)),
    );
    const popupAuthed = peerAnswers.filter((a) => a.auth && a.status < 400).length;
    await ctx.close();
    expect(seenByAttacker.referrer).toBe('');
    expect(seenByAttacker.opener).toBe(false);
    expect(landed.length).toBeGreaterThan(0);
    expect(landed.map((s) => s.headers.referer ?? '')).toEqual(landed.map(() => ''));
    expect(tokenLeaks).toEqual([]);
    expect(popupText).not.toContain('secret-room');
    expect(popupAuthed).toBeGreaterThan(0); // the UI tab itself did use its token
  });

  it('a page loaded in the UI\'s own tab cannot open the UI logged in (README: "A new tab opened at / without the token (not from the page) asks for the ui= URL again: the token lives per tab")', async () => {
    const before = await snapshot();
    const { ctx, peerAnswers } = await context();
    const tab = await ctx.newPage();
    await tab.goto(`${peerOrigin}/?token=${token}`);
    await tab.getByText('secret-room').first().waitFor();
    // Chromium copies a tab's sessionStorage (every origin's) into a window that a page of that
    // tab opens with window.open: the token the UI kept there goes with it, whoever opens it.
    // The victim goes on to the attacker's site in the same tab (types its address, follows a link).
    await tab.goto(`http://127.0.0.1:${evil.port}/`);
    const mark = peerAnswers.length;
    const [popup] = await Promise.all([
      ctx.waitForEvent('page'),
      tab.evaluate((base) => {
        (window as unknown as { w: Window | null }).w = window.open(`${base}/`);
      }, peerOrigin),
    ]);
    await popup.waitForLoadState();
    await popup.waitForTimeout(2000);
    // What the attacker can do with the window it holds: send it messages.
    await tab.evaluate(() => {
      const w = (window as unknown as { w: Window }).w;
      for (const m of [
        { type: 'token', token: 'x' },
        'logout',
        { text: 'pwned by postMessage' },
        { type: 'send', channel: 'secret-room', text: 'pwned by postMessage' },
      ])
        w.postMessage(m, '*');
    });
    await popup.waitForTimeout(500);
    const popupText = await popup.locator('body').innerText();
    // And opened without an opener (no handle for the page, and no opener to tell it by).
    const [detached] = await Promise.all([
      ctx.waitForEvent('page'),
      tab.evaluate((base) => void window.open(`${base}/`, '_blank', 'noopener'), peerOrigin),
    ]);
    await detached.waitForLoadState();
    await detached.waitForTimeout(2000);
    const detachedText = await detached.locator('body').innerText();
    const fromPopup = peerAnswers.slice(mark).filter((a) => a.auth && a.status < 400);
    await ctx.close();
    expect(await snapshot()).toEqual(before);
    expect({
      loggedInWindow: popupText.includes('secret-room'),
      loggedInWithoutOpener: detachedText.includes('secret-room'),
      authorizedCalls: fromPopup.length,
    }).toEqual({
      loggedInWindow: false,
      loggedInWithoutOpener: false,
      authorizedCalls: 0,
    });
  });

  it('what a page could hold of the token opens only what the docs say: a URL key reads by GET until its expiry, 12 h ahead at most; no cookie, query token or key opens a POST (SECURITY.md "No cookie opens anything")', async () => {
    const now = Math.floor(Date.now() / 1000);
    const get = async (route: string, headers: Record<string, string> = {}) =>
      (await fetch(peerOrigin + route, { headers })).status;
    const post = async (route: string, headers: Record<string, string> = {}) =>
      (
        await fetch(peerOrigin + route, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ text: 'posted with a URL key' }),
        })
      ).status;
    const msgs = `/api/channels/${channelId}/messages`;
    const got = {
      freshKeyGet: await get(`${msgs}?key=${urlKey(token, now + 3600)}`),
      expiredKeyGet: await get(`${msgs}?key=${urlKey(token, now - 5)}`),
      keyBeyond12h: await get(`${msgs}?key=${urlKey(token, now + 13 * 3600)}`),
      keyOtherToken: await get(`${msgs}?key=${urlKey('x'.repeat(43), now + 3600)}`),
      keyPost: await post(`${msgs}?key=${urlKey(token, now + 3600)}`),
      keyAsBearerPost: await post(msgs, { authorization: `Bearer ${urlKey(token, now + 3600)}` }),
      tokenInQueryGet: await get(`${msgs}?token=${token}`),
      tokenInCookieGet: await get(msgs, { cookie: `token=${token}; api-token=${token}` }),
      tokenInCookiePost: await post(msgs, { cookie: `token=${token}; hchat=${token}` }),
    };
    expect(got).toEqual({
      freshKeyGet: 200,
      expiredKeyGet: 401,
      keyBeyond12h: 401,
      keyOtherToken: 401,
      keyPost: 401,
      keyAsBearerPost: 401,
      tokenInQueryGet: 401,
      tokenInCookieGet: 401,
      tokenInCookiePost: 401,
    });
  });
});
