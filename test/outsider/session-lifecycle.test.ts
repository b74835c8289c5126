// Outside attacks on the lifecycle of accounts and sessions, written from README.md,
// docs/PROTOCOL.md (§3.2–§3.7, §4.1, §11), docs/SECURITY.md and docs/REST.md only.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  certClaims,
  checkSession,
  killAll,
  names,
  newKey,
  p2pConnect,
  registerLogin,
  serverHello,
  sharedServer,
  signMessage,
  sleep,
  startPeer,
  startServer,
  uuid7,
} from './lib.js';

const OPEN = ['--max-registrations-per-address', '1000'];
const GRACE = 1500;

afterEach(async () => {
  await killAll();
});

/**
 * The servers the tests that neither restart a server nor count what it holds share, each test
 * with users and visitors of its own (`names`): one with the default visitor grace, one with
 * GRACE. Visitors from 127.0.0.1 add up across tests: their per-address budget is raised.
 */
const VISITORS = ['--max-visitors-per-address', '1000'];
const open = sharedServer([...OPEN, ...VISITORS]);
const graced = sharedServer([...OPEN, ...VISITORS, '--visitor-grace-ms', String(GRACE)]);
afterAll(async () => {
  await open.end();
  await graced.end();
});

async function waitFor<T>(f: () => Promise<T> | T, ok: (v: T) => boolean, ms = 8000) {
  const end = Date.now() + ms;
  let v = await f();
  while (!ok(v) && Date.now() < end) {
    await sleep(100);
    v = await f();
  }
  return v;
}

describe('session lifecycle (outsider)', () => {
  it('a connection that logs out and logs in as another account keeps none of the first account’s subscriptions (§3.3 subscribe: "the readable ones")', async () => {
    const srv = await open.get();
    const n = names();
    const a = await registerLogin(srv, n('alice'));
    // alice's private channel: the connection is subscribed to it by channel_create.
    const channelId = uuid7();
    const cr = await a.c.req('channel_create', {
      id: channelId,
      name: 'secret',
      allowVisitors: false,
    });
    expect(cr.error).toBeUndefined();
    const sub = await a.c.req('subscribe', { channelIds: [channelId] });
    expect(sub.body.channelIds).toEqual([channelId]);
    // alice logs out on that connection; mallory logs in on the same one.
    expect((await a.c.req('logout', {})).error).toBeUndefined();
    await a.c.req('register', { username: n('mallory'), password: 'pw-mallory' });
    const mk = newKey();
    const ml = await a.c.req('login', {
      username: n('mallory'),
      password: 'pw-mallory',
      publicKey: mk.pk,
    });
    expect(ml.body?.username).toBe(n('mallory'));
    // alice posts and types from another session.
    const a2 = await serverHello(srv);
    const k2 = newKey();
    const l2 = await a2.c.req('login', {
      username: n('alice'),
      password: a.password,
      publicKey: k2.pk,
    });
    await a2.c.req('submit_info', { ip: '127.0.0.1', port: 9, udpPort: 9, status: 'online' });
    const before = a.c.events.length;
    const msg = signMessage(k2, l2.body.cert, channelId, n('alice'), 'for alice only');
    const p = await a2.c.req('post', { message: msg });
    expect(p.body?.seq).toBeGreaterThan(0);
    await a2.c.req('typing', { channelId });
    await sleep(800);
    const leaked = a.c.events
      .slice(before)
      .filter((e: any) => JSON.stringify(e.body ?? e).includes(channelId));
    expect(leaked.map((e: any) => e.ev)).toEqual([]);
  });

  it('a logout closes every connection of the session, and a certificate renewed by resume elsewhere is dead after it (§3.2, §3.3 logout)', async () => {
    const srv = await open.get();
    const n = names();
    const a = await registerLogin(srv, n('alice'));
    const channelId = uuid7();
    await a.c.req('channel_create', { id: channelId, name: 'c', allowVisitors: false });
    // the same session resumed on a second connection: a renewed cert of the same key.
    const b = await serverHello(srv);
    const r = await b.c.req('resume', { token: a.token });
    expect(r.body?.sessionId).toBe(a.sessionId);
    const renewed = r.body.cert as string;
    expect(certClaims(renewed).sid).toBe(a.sessionId);
    // logout on the second connection
    expect((await b.c.req('logout', {})).error).toBeUndefined();
    // the first connection is closed with E_SESSION_INVALID
    await Promise.race([a.c.closeP, sleep(3000)]);
    const errs = a.c.frames
      .filter((f: any) => f.t === 'error')
      .map((f: any) => f.code ?? f.error?.code);
    expect(a.c.closed).toBe(true);
    expect(JSON.stringify(errs)).toContain('E_SESSION_INVALID');
    // the token resumes nowhere, and a post signed later under either cert is refused
    const c = await serverHello(srv);
    expect((await c.c.req('resume', { token: a.token })).error?.code).toBe('E_SESSION_INVALID');
    const other = await registerLogin(srv, n('bob'));
    expect(await checkSession(other, a.sessionId, a.key)).toBe(false);
  });

  it('a session retired by the 10-session cap, and a logged-out one, stay dead across a server restart (§3.3 login, logout, resume)', async () => {
    const srv = await startServer(OPEN);
    const first = await registerLogin(srv, 'carol');
    const tokens: string[] = [];
    for (let i = 0; i < 10; i++) {
      const s = await serverHello(srv);
      const l = await s.c.req('login', {
        username: 'carol',
        password: first.password,
        publicKey: newKey().pk,
      });
      expect(l.body?.token).toBeTruthy();
      tokens.push(l.body.token);
      s.c.close();
    }
    // the 11th login retired the first
    await Promise.race([first.c.closeP, sleep(3000)]);
    expect(first.c.closed).toBe(true);
    const lo = await serverHello(srv);
    expect((await lo.c.req('resume', { token: tokens[9] })).body?.sessionId).toBeTruthy();
    expect((await lo.c.req('logout', {})).error).toBeUndefined();
    lo.c.close();
    // restart the server on the same data and port
    await srv.kill();
    const srv2 = await startServer(OPEN, { data: srv.data, port: srv.port });
    const c = await serverHello(srv2);
    expect((await c.c.req('resume', { token: first.token })).error?.code).toBe('E_SESSION_INVALID');
    expect((await c.c.req('resume', { token: tokens[9] })).error?.code).toBe('E_SESSION_INVALID');
    const ok = await c.c.req('resume', { token: tokens[0] });
    expect(ok.body?.username).toBe('carol');
  });

  it('a visitor’s name is held through its grace, then free; the session does not resume after its grace (§3.3 visitor, resume; PROTOCOL.md "A visitor is present…")', async () => {
    const srv = await graced.get();
    const n = names();
    const v1 = await serverHello(srv);
    const k1 = newKey();
    const e1 = await v1.c.req('visitor', { name: n('zed'), publicKey: k1.pk });
    expect(e1.body?.role).toBe('visitor');
    v1.c.close();
    await sleep(200);
    // within the grace: nobody else may take it
    const v2 = await serverHello(srv);
    expect(
      (await v2.c.req('visitor', { name: n('zed'), publicKey: newKey().pk })).error?.code,
    ).toBe('E_NAME_TAKEN');
    // resumed within the grace: still present; closed again, a new grace
    const v1b = await serverHello(srv);
    expect((await v1b.c.req('resume', { token: e1.body.token })).body?.username).toBe(n('zed'));
    v1b.c.close();
    await sleep(GRACE + 1500);
    // A host it dials is told so (session_check with the dial of its hello, §4.1).
    const watcher = await registerLogin(srv, n('watcher'));
    expect(await checkSession(watcher, e1.body.sessionId, k1)).toBe(false);
    // after the grace the session is over even though nobody took the name
    const late = await serverHello(srv);
    expect((await late.c.req('resume', { token: e1.body.token })).error?.code).toBe(
      'E_SESSION_INVALID',
    );
    // and the name is free
    const v3 = await serverHello(srv);
    expect((await v3.c.req('visitor', { name: n('zed'), publicKey: newKey().pk })).body?.role).toBe(
      'visitor',
    );
    const again = await serverHello(srv);
    expect((await again.c.req('resume', { token: e1.body.token })).error?.code).toBe(
      'E_SESSION_INVALID',
    );
  });

  it('a visitor resumed on a second connection keeps its name and session when its first connection closes (§3.3 visitor: "present now")', async () => {
    const srv = await graced.get();
    const n = names();
    const v1 = await serverHello(srv);
    const k1 = newKey();
    const e1 = await v1.c.req('visitor', { name: n('quinn'), publicKey: k1.pk });
    expect(e1.body?.role).toBe('visitor');
    const v1b = await serverHello(srv);
    expect((await v1b.c.req('resume', { token: e1.body.token })).body?.username).toBe(n('quinn'));
    v1.c.close(); // the older connection ends; the session lives on v1b
    await sleep(GRACE + 1500);
    expect(v1b.c.closed).toBe(false);
    const watcher = await registerLogin(srv, n('watcher2'));
    expect(await checkSession(watcher, e1.body.sessionId, k1)).toBe(true);
    const thief = await serverHello(srv);
    expect(
      (await thief.c.req('visitor', { name: n('quinn'), publicKey: newKey().pk })).error?.code,
    ).toBe('E_NAME_TAKEN');
    expect((await v1b.c.req('directory', {})).error).toBeUndefined();
  });

  it('two visitors racing for one name: exactly one gets it (§3.3 visitor)', async () => {
    const srv = await open.get();
    const n = names();
    const conns = await Promise.all([0, 1, 2, 3].map(() => serverHello(srv)));
    const res = await Promise.all(
      conns.map((c, i) =>
        c.c.req('visitor', { name: i % 2 ? n('RACE') : n('race'), publicKey: newKey().pk }),
      ),
    );
    expect(res.filter((r) => r.body?.role === 'visitor').length).toBe(1);
    expect(res.filter((r) => r.error?.code === 'E_NAME_TAKEN').length).toBe(3);
  });

  async function hostWithLobby(
    srv: { host: string; port: number },
    name: string,
    extra: string[] = [],
  ) {
    const host = await startPeer(srv, extra);
    const reg = await host.api('POST', '/api/register', { username: name, password: 'pw-' + name });
    expect(reg.status).toBeLessThan(300);
    expect(
      (await host.api('POST', '/api/login', { username: name, password: 'pw-' + name })).status,
    ).toBe(200);
    const ch = await host.api('POST', '/api/channels', { name: 'lobby', allowVisitors: true });
    expect(ch.status).toBe(201);
    const channelId = (ch.body.id ?? ch.body.channel?.id) as string;
    expect(channelId).toMatch(/^[0-9a-f-]{36}$/);
    await host.api('POST', `/api/channels/${channelId}/messages`, { text: 'welcome' });
    await sleep(500);
    return { host, channelId };
  }

  for (const checkedBefore of [true, false]) {
    it(`a visitor whose grace ran out (its name taken by another visitor) is refused by a host ${checkedBefore ? 'that accepted it before' : 'it never met'} (§4.1: "its session not revoked"; §3.3 session_check)`, async () => {
      const srv = await graced.get();
      const n = names();
      const { host, channelId } = await hostWithLobby(srv, n('hoster'));
      const v = await serverHello(srv);
      const k = newKey();
      const e = await v.c.req('visitor', { name: n('vee'), publicKey: k.pk });
      const me = { cert: e.body.cert as string, key: k };
      if (checkedBefore) {
        const l1 = await p2pConnect(host, me);
        expect(l1.ok).toBe(true);
        expect((await l1.c.req('history', { channelId, limit: 10 })).error).toBeUndefined();
        l1.c.close();
      }
      // the visitor leaves the server; its grace runs out; another visitor takes the name
      v.c.close();
      await sleep(GRACE + 1500);
      const w = await registerLogin(srv, n('watcher3'));
      expect(await checkSession(w, e.body.sessionId, k)).toBe(false);
      const v2 = await serverHello(srv);
      expect(
        (await v2.c.req('visitor', { name: n('vee'), publicKey: newKey().pk })).body?.role,
      ).toBe('visitor');
      // the old visitor's certificate (30 days) at the host
      const l2 = await p2pConnect(host, me);
      let read: any = null;
      if (l2.ok) read = await l2.c.req('history', { channelId, limit: 10 }, 3000);
      const served = l2.ok && !l2.c.closed && !read?.error;
      expect({ served, read: served ? JSON.stringify(read).slice(0, 160) : null }).toEqual({
        served: false,
        read: null,
      });
    });
  }

  // The hole: a visitor opened a P2P link while in session; its session then ended with no event
  // to the host (its grace ran out, or it hid its views from the server and logged out), and the
  // link kept serving it, pushes and reads, for as long as it answered pings.
  for (const end of ['its grace ran out', 'it logged out after hiding its views'] as const) {
    it(`a visitor whose session ended (${end}) is cut from the host's P2P link it opened before: no more pushes, no more reads (§4.1 "asked again while its link is open")`, async () => {
      const CHECK = 500;
      const srv = await startServer([...OPEN, '--visitor-grace-ms', String(GRACE)]);
      const { host, channelId } = await hostWithLobby(srv, 'keeper', [
        '--visitor-check-ms',
        String(CHECK),
      ]);
      const v = await serverHello(srv);
      const k = newKey();
      const e = await v.c.req('visitor', { name: 'lingerer', publicKey: k.pk });
      expect((await v.c.req('channel_join', { channelId })).error).toBeUndefined();
      const link = await p2pConnect(host, { cert: e.body.cert, key: k });
      expect(link.ok).toBe(true);
      expect((await link.c.req('subscribe', { channelIds: [channelId] })).body?.channelIds).toEqual(
        [channelId],
      );
      const pushed = (from: number, text: string) =>
        link.c.events.slice(from).filter((f) => JSON.stringify(f).includes(text)).length;
      // In session: the host pushes to it.
      await host.api('POST', `/api/channels/${channelId}/messages`, { text: 'while in session' });
      expect(
        await waitFor(
          () => pushed(0, 'while in session'),
          (n) => n > 0,
        ),
      ).toBe(1);
      // Asked about a few times while in session: still served.
      await sleep(3 * CHECK);
      expect(link.c.closed).toBe(false);
      expect((await link.c.req('history', { channelId, limit: 10 })).error).toBeUndefined();

      if (end === 'its grace ran out') {
        v.c.close();
      } else {
        // No view left at the server: its logout's session_revoked reaches no host.
        expect((await v.c.req('subscribe', { channelIds: [] })).body?.channelIds).toEqual([]);
        expect((await v.c.req('logout', {})).error).toBeUndefined();
      }
      const w = await registerLogin(srv, 'watcher4');
      const live = await waitFor(
        () => checkSession(w, e.body.sessionId, k),
        (l) => l === false,
        GRACE + 5000,
      );
      expect(live).toBe(false);
      // Within a bound of the session's end (a check round, and one under way), the link is done.
      await sleep(2 * CHECK + 1000);
      const m0 = link.c.events.length;
      await host.api('POST', `/api/channels/${channelId}/messages`, { text: 'after the end' });
      await sleep(1500);
      const read = link.c.closed
        ? null
        : await link.c.req('history', { channelId, limit: 10 }, 3000).catch(() => null);
      expect({
        pushed: pushed(m0, 'after the end'),
        read: JSON.stringify(read ?? {}).includes('after the end'),
      }).toEqual({ pushed: 0, read: false });
    });
  }

  it('a visitor reads no more of a channel once it stops allowing visitors: not from the server, not from the host (PROTOCOL.md §2.2)', async () => {
    const srv = await open.get();
    const n = names();
    const { host, channelId } = await hostWithLobby(srv, n('owner1'));
    const v = await serverHello(srv);
    const k = newKey();
    const e = await v.c.req('visitor', { name: n('peeker'), publicKey: k.pk });
    expect((await v.c.req('channel_join', { channelId })).error).toBeUndefined();
    expect((await v.c.req('subscribe', { channelIds: [channelId] })).body?.channelIds).toEqual([
      channelId,
    ]);
    const link = await p2pConnect(host, { cert: e.body.cert, key: k });
    expect(link.ok).toBe(true);
    await link.c.req('subscribe', { channelIds: [channelId] });
    const pt = await host.api('PATCH', `/api/channels/${channelId}`, { allowVisitors: false });
    expect(pt.status).toBe(200);
    await sleep(1500);
    const n0 = v.c.events.length;
    const m0 = link.c.events.length;
    await host.api('POST', `/api/channels/${channelId}/messages`, { text: 'members only now' });
    await sleep(1500);
    const got = [...v.c.events.slice(n0), ...link.c.events.slice(m0)].filter((f) =>
      JSON.stringify(f).includes('members only now'),
    );
    expect(got.length).toBe(0);
    const h = await v.c.req('history', { channelId, limit: 10 });
    expect(JSON.stringify(h)).not.toContain('members only now');
    const h2 = link.c.closed ? null : await link.c.req('history', { channelId, limit: 10 }, 3000);
    expect(JSON.stringify(h2 ?? {})).not.toContain('members only now');
  });

  it('the peer’s local API shows the next account nothing of the last one’s (SECURITY.md "What an account reads of the peer’s copy")', async () => {
    const srv = await open.get();
    const n = names();
    const p = await startPeer(srv);
    for (const u of [n('anna'), n('bert'), n('cleo')])
      expect(
        (await p.api('POST', '/api/register', { username: u, password: 'pw-' + u })).status,
      ).toBeLessThan(300);
    expect(
      (await p.api('POST', '/api/login', { username: n('anna'), password: 'pw-' + n('anna') }))
        .status,
    ).toBe(200);
    const ch = await p.api('POST', '/api/channels', { name: 'anna-private', allowVisitors: false });
    const channelId = (ch.body.id ?? ch.body.channel?.id) as string;
    await p.api('POST', `/api/channels/${channelId}/messages`, { text: 'zebracode private' });
    const dm = await p.api('POST', '/api/dms', { members: [n('cleo')] });
    const dmId = dm.body?.id ?? dm.body?.conversation?.id;
    expect(dm.status, JSON.stringify(dm.body)).toBeLessThan(300);
    if (dmId) await p.api('POST', `/api/dms/${dmId}/messages`, { text: 'zebradm secret' });
    await p.api('PUT', `/api/blocks/${n('cleo')}`);
    await sleep(500);
    expect((await p.api('POST', '/api/logout')).status).toBeLessThan(300);
    expect(
      (await p.api('POST', '/api/login', { username: n('bert'), password: 'pw-' + n('bert') }))
        .status,
    ).toBe(200);
    await sleep(500);
    const seen: Record<string, unknown> = {};
    const get = async (k: string, route: string) => {
      const r = await p.api('GET', route);
      const s = JSON.stringify(r.body);
      if (r.status === 200 && (/zebra|anna-private/.test(s) || s.includes(n('cleo'))))
        seen[k] = s.slice(0, 200);
    };
    await get('channels', '/api/channels');
    await get('messages', `/api/channels/${channelId}/messages`);
    await get('search', '/api/search?q=zebracode');
    await get('dms', '/api/dms');
    if (dmId) await get('dm-messages', `/api/dms/${dmId}/messages`);
    await get('blocks', '/api/blocks');
    await get('members', `/api/channels/${channelId}/members`);
    expect(seen).toEqual({});
  });

  it('a logout made on a peer while the server was away, the peer then killed and restarted, is carried out at the server once it is back (SECURITY.md "A logout the server did not hear is owed")', async () => {
    const srv = await startServer(OPEN);
    const p = await startPeer(srv);
    expect(
      (await p.api('POST', '/api/register', { username: 'owen', password: 'pw-owen' })).status,
    ).toBeLessThan(300);
    expect(
      (await p.api('POST', '/api/login', { username: 'owen', password: 'pw-owen' })).status,
    ).toBe(200);
    const sess = await p.api('GET', '/api/session');
    const sid = sess.body?.me?.sessionId as string;
    expect(sid, JSON.stringify(sess.body)).toBeTruthy();
    // The session's key, from the peer's own session file (what it signs its P2P dials with):
    // the watchers below ask as hosts it dialled would (§4.1).
    const saved = JSON.parse(fs.readFileSync(path.join(p.data, 'session.json'), 'utf8'));
    const key = {
      privateKey: crypto.createPrivateKey({
        key: Buffer.from(saved.key, 'base64'),
        format: 'der',
        type: 'pkcs8',
      }),
    };
    const w0 = await registerLogin(srv, 'watcher8');
    expect(await checkSession(w0, sid, key)).toBe(true);
    await srv.kill();
    await sleep(300);
    expect((await p.api('POST', '/api/logout')).status).toBeLessThan(300);
    await sleep(300);
    await p.kill();
    const srv2 = await startServer(OPEN, { data: srv.data, port: srv.port });
    await startPeer(srv2, [], { data: p.data });
    const w = await registerLogin(srv2, 'watcher9');
    const live = await waitFor(
      () => checkSession(w, sid, key),
      (v) => v === false,
      10000,
    );
    expect(live).toBe(false);
  });

  it('a REST token revoked stays revoked across a server restart, and a read token cannot write (REST.md Tokens)', async () => {
    const srv = await startServer(OPEN);
    const m = srv.ready.match(/http=(\S+)/)!;
    const a = await registerLogin(srv, 'tokuser');
    const t1 = await a.c.req('token_create', { name: 'r', scopes: ['read'] });
    const t2 = await a.c.req('token_create', { name: 'rw', scopes: ['read', 'write'] });
    expect(t1.body?.token).toBeTruthy();
    const call = async (
      base: string,
      tok: string,
      method = 'GET',
      route = 'users/@me',
      body?: unknown,
    ) => {
      const r = await fetch(base + 'api/v1/' + route, {
        method,
        headers: {
          authorization: 'Bearer ' + tok,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      });
      return r.status;
    };
    expect(await call(m[1]!, t1.body.token)).toBe(200);
    expect(await call(m[1]!, t1.body.token, 'POST', 'channels', { name: 'x' })).toBe(403);
    expect((await a.c.req('token_revoke', { id: t2.body.id })).error).toBeUndefined();
    expect(await call(m[1]!, t2.body.token)).toBe(401);
    await srv.kill();
    const srv2 = await startServer(OPEN, { data: srv.data, port: srv.port });
    const m2 = srv2.ready.match(/http=(\S+)/)!;
    expect(await call(m2[1]!, t2.body.token)).toBe(401);
    expect(await call(m2[1]!, t1.body.token)).toBe(200);
  });
});
