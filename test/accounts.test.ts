import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTestnet, rawSession, signIn, signed, tempDir } from './testnet.js';
import { addressPrefix } from '../src/shared/address-prefix.js';
import { LoginGuard } from '../src/server/login-guard.js';
import { AccountService } from '../src/server/account-service.js';
import { SqliteServerStore } from '../src/store/sqlite-server-store.js';
import { lookAlikeKeys } from '../src/shared/look-alike.js';
import { ScryptQueue } from '../src/server/scrypt-queue.js';
import type { ServerLink } from '../src/peer/server-link.js';
import type { HchatError } from '../src/protocol/errors.js';

describe('accounts', () => {
  it('registers, logs in, reports the session, and logs out', async () => {
    const net = await createTestnet({ peers: 1 });
    const p = net.peers[0]!;
    expect(await p.call('GET', '/api/me')).toMatchObject({
      status: 401,
      body: { error: { code: 'E_AUTH_REQUIRED' } },
    });
    expect(
      await p.call('POST', '/api/register', { username: 'alice', password: 'correct horse' }),
    ).toEqual({
      status: 201,
      body: { username: 'alice' },
    });
    const login = await p.call('POST', '/api/login', {
      username: 'alice',
      password: 'correct horse',
    });
    expect(login.status).toBe(200);
    expect(login.body).toMatchObject({ username: 'alice', role: 'user' });
    expect(login.body.sessionId).toMatch(/^[A-Za-z0-9_-]{8,}$/);
    const me = await p.call('GET', '/api/me');
    expect(me.body).toMatchObject({
      username: 'alice',
      role: 'user',
      status: 'online',
      sessionId: login.body.sessionId,
    });
    expect((await p.call('POST', '/api/logout')).status).toBe(204);
    expect((await p.call('GET', '/api/me')).status).toBe(401);
  });

  it('stores only a salted scrypt hash, never the password, and keeps the session file owner-only', async () => {
    const net = await createTestnet({ peers: 1 });
    const p = net.peers[0]!;
    await signIn(p, 'alice');
    const files = ['server.db', 'server.db-wal'].map((f) => path.join(net.dir, 'server', f));
    const bytes = Buffer.concat(
      files.filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f)),
    );
    expect(bytes.includes(Buffer.from('alice-pw'))).toBe(false);
    expect(bytes.includes(Buffer.from('scrypt$'))).toBe(true);
    expect((await net.server.store.getUser('alice'))!.passHash).toMatch(
      /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/,
    );
    const mode = fs.statSync(path.join(p.dataDir, 'session.json')).mode & 0o777;
    expect(mode).toBe(0o600);
    const logs = fs.readFileSync(path.join(net.dir, 'server', 'connections.log'), 'utf8');
    expect(logs).not.toContain('alice-pw');
    const token = JSON.parse(fs.readFileSync(path.join(p.dataDir, 'session.json'), 'utf8'))
      .token as string;
    expect(logs).not.toContain(token.split('.')[1]);
  });

  it('answers unknown user and wrong password with the same error, and refuses duplicates', async () => {
    const net = await createTestnet({ peers: 1 });
    const p = net.peers[0]!;
    await signIn(p, 'alice');
    const wrong = await p.call('POST', '/api/login', {
      username: 'alice',
      password: 'not-the-one',
    });
    const unknown = await p.call('POST', '/api/login', {
      username: 'nobody',
      password: 'not-the-one',
    });
    expect(wrong).toEqual(unknown);
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('E_BAD_CREDENTIALS');
    const dup = await p.call('POST', '/api/register', { username: 'ALICE', password: 'whatever1' });
    expect(dup).toMatchObject({ status: 409, body: { error: { code: 'E_USERNAME_TAKEN' } } });
  });

  it('rate-limits failed logins per user', async () => {
    const net = await createTestnet({
      peers: 1,
      server: { loginMaxFailures: 3, loginWindowMs: 60_000 },
    });
    const p = net.peers[0]!;
    await signIn(p, 'alice');
    for (let i = 0; i < 3; i++) {
      expect(
        (await p.call('POST', '/api/login', { username: 'alice', password: 'guess-' + i })).status,
      ).toBe(401);
    }
    const limited = await p.call('POST', '/api/login', { username: 'alice', password: 'alice-pw' });
    expect(limited).toMatchObject({ status: 429, body: { error: { code: 'E_RATE_LIMITED' } } });
  });

  it('validates bodies and names with 400 and a message naming the field', async () => {
    const net = await createTestnet({ peers: 1 });
    const p = net.peers[0]!;
    const bad = await p.call('POST', '/api/register', { username: 'a b', password: 'secret1' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'E_BAD_REQUEST' });
    expect(bad.body.error.message).toContain('username');
    const short = await p.call('POST', '/api/register', { username: 'alice', password: '123' });
    expect(short.body.error.message).toContain('password');
    expect((await p.call('POST', '/api/register', '{"username":')).status).toBe(400);
    expect((await p.call('POST', '/api/visitor', { name: '' })).status).toBe(400);
  });

  it('lets one user be logged in on several peers at once', async () => {
    const net = await createTestnet({ peers: 2 });
    const [a, b] = net.peers as [any, any];
    await signIn(a, 'alice');
    const l = await b.call('POST', '/api/login', { username: 'alice', password: 'alice-pw' });
    expect(l.status).toBe(200);
    const sessions = new Set((await a.call('GET', '/api/peers')).body.map((e: any) => e.sessionId));
    expect(sessions.size).toBe(2);
  });

  it('resumes the session after a restart on the same data, without the password', async () => {
    const net = await createTestnet({ peers: 1 });
    const p = net.peers[0]!;
    await signIn(p, 'alice');
    const before = (await p.call('GET', '/api/me')).body;
    await p.close();
    const again = await net.addPeer('peer0');
    expect(again.dataDir).toBe(p.dataDir);
    const me = (await again.call('GET', '/api/me')).body;
    expect(me).toMatchObject({ username: 'alice', sessionId: before.sessionId });
  });
});

describe('visitors', () => {
  it('enter with a name, see only channels that allow visitors, and cannot write', async () => {
    const net = await createTestnet({ peers: 2 });
    const [host, guest] = net.peers as [any, any];
    await signIn(host, 'alice');
    const open = (await host.call('POST', '/api/channels', { name: 'lobby', allowVisitors: true }))
      .body;
    const closed = (
      await host.call('POST', '/api/channels', { name: 'staff', allowVisitors: false })
    ).body;
    await host.call('POST', `/api/channels/${open.id}/messages`, { text: 'hello visitors' });

    const v = await guest.call('POST', '/api/visitor', { name: 'Guest 1' });
    expect(v).toMatchObject({ status: 200, body: { username: 'Guest 1', role: 'visitor' } });
    const dir = (await guest.call('GET', '/api/directory')).body.map((c: any) => c.name);
    expect(dir).toEqual(['lobby']);
    expect((await guest.call('POST', `/api/channels/${closed.id}/join`)).body.error.code).toBe(
      'E_CHANNEL_NOT_FOUND',
    );
    expect((await guest.call('POST', `/api/channels/${open.id}/join`)).status).toBe(200);
    const msgs = (await guest.call('GET', `/api/channels/${open.id}/messages`)).body;
    expect(msgs.messages.map((m: any) => m.text)).toEqual(['hello visitors']);

    const post = await guest.call('POST', `/api/channels/${open.id}/messages`, {
      text: 'let me in',
    });
    expect(post).toMatchObject({ status: 403, body: { error: { code: 'E_VISITOR_READ_ONLY' } } });
    const create = await guest.call('POST', '/api/channels', { name: 'mine', allowVisitors: true });
    expect(create.body.error.code).toBe('E_VISITOR_READ_ONLY');
  });

  it("may not take a registered user's name", async () => {
    const net = await createTestnet({ peers: 2 });
    await signIn(net.peers[0]!, 'alice');
    const v = await net.peers[1]!.call('POST', '/api/visitor', { name: 'alice' });
    expect(v).toMatchObject({ status: 409, body: { error: { code: 'E_NAME_TAKEN' } } });
  });

  it('are refused by the server itself, whatever the client sends', async () => {
    const net = await createTestnet({ peers: 1 });
    await signIn(net.peers[0]!, 'alice');
    const ch = (
      await net.peers[0]!.call('POST', '/api/channels', { name: 'lobby', allowVisitors: true })
    ).body;
    const raw = await net.rawLink();
    const mallory = await rawSession(raw, { name: 'mallory' });
    await raw.request('channel_join', { channelId: ch.id });
    const message = signed(mallory, {
      channelId: ch.id,
      ts: Date.now(),
      lc: 0,
      text: 'forged',
    });
    await expect(raw.request('post', { message })).rejects.toMatchObject({
      code: 'E_VISITOR_READ_ONLY',
    });
    await expect(
      raw.request('channel_create', {
        id: '01900000-0000-7000-8000-000000000002',
        name: 'x',
        allowVisitors: true,
      }),
    ).rejects.toMatchObject({
      code: 'E_VISITOR_READ_ONLY',
    });
    // Nothing was stored.
    expect((await net.server.store.history(ch.id, 10)).messages).toEqual([]);
    // And the connection still works after the refusal.
    expect((await raw.request('directory', {})).channels).toHaveLength(1);
  });
});

/** The error a raw link was closed with (it does not reconnect). */
function closedWith(link: ServerLink): Promise<HchatError | undefined> {
  return new Promise((resolve) => link.once('down', (reason?: HchatError) => resolve(reason)));
}

describe('why a session is closed (PROTOCOL.md §3.2: error E_SESSION_INVALID says what happened)', () => {
  it('a visitor whose session was logged out from another connection is told so', async () => {
    const net = await createTestnet();
    const first = await net.rawLink();
    const v = await rawSession(first, { name: 'vee' });
    const second = await net.rawLink();
    await second.request('resume', { token: v.token });
    const closed = closedWith(first);
    await second.request('logout', {});
    const why = await closed;
    expect(why?.code).toBe('E_SESSION_INVALID');
    expect(why?.message).toBe('session ended: logged out from another connection');
  });

  it('a user whose session a newer login retired (past the sessions per account) is told so', async () => {
    const net = await createTestnet({ server: { sessionsPerAccount: 2 } });
    const first = await net.rawLink();
    await first.request('register', { username: 'alice', password: 'alice-pw' });
    await rawSession(first, { username: 'alice', password: 'alice-pw' });
    const closed = closedWith(first);
    for (let i = 0; i < 2; i++)
      await rawSession(await net.rawLink(), { username: 'alice', password: 'alice-pw' });
    const why = await closed;
    expect(why?.code).toBe('E_SESSION_INVALID');
    expect(why?.message).toBe(
      'session ended: a newer login of this account retired it (too many sessions at once)',
    );
  });
});

describe('front-door pieces', () => {
  it('groups addresses by /24 and /64, configurable', () => {
    expect(addressPrefix('127.0.0.2')).toBe('127.0.0.0/24');
    expect(addressPrefix('::ffff:10.1.2.3')).toBe('10.1.2.0/24');
    expect(addressPrefix('10.1.2.3', { ipv4PrefixBits: 16, ipv6PrefixBits: 64 })).toBe(
      '10.1.0.0/16',
    );
    expect(addressPrefix('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2:0:0:0:0/64');
    expect(addressPrefix('2001:db8:1:2::9')).toBe(addressPrefix('2001:db8:1:2:ffff::1'));
    expect(addressPrefix('::1')).toBe('0:0:0:0:0:0:0:0/64');
  });

  it('locks a guessing pair with doubling backoff, and never a known place for strangers', async () => {
    const store = new SqliteServerStore(path.join(tempDir(), 'server.db'));
    const g = new LoginGuard(store, {
      failuresPerAccountAddress: 2,
      failuresPerAccountUnknownAddresses: 3,
      queuedPerKey: 1,
    });
    const limited = (retryAfterMs?: number) =>
      expect.objectContaining({
        code: 'E_RATE_LIMITED',
        ...(retryAfterMs ? { retryAfterMs } : {}),
      });
    await g.succeed(await g.begin('alice', 'home', 0), 0);
    for (let i = 0; i < 2; i++) await g.fail(await g.begin('alice', 'evil', 1), 1);
    await expect(g.begin('alice', 'evil', 2)).rejects.toEqual(limited(60_000 - 1));
    // One probe after the lock: the lock doubles.
    await g.fail(await g.begin('alice', 'evil', 60_001), 60_001);
    await expect(g.begin('alice', 'evil', 60_002)).rejects.toEqual(limited(120_000 - 1));
    // The account-wide budget (3, from unknown places) is spent: new places wait, home does not.
    await expect(g.begin('alice', 'elsewhere', 60_003)).rejects.toEqual(limited());
    await g.succeed(await g.begin('alice', 'home', 60_004), 60_004);
    // A login from a known place with no failures writes nothing: home's record is from time 0.
    expect(await store.knownLoginPrefixes('alice')).toEqual([{ prefix: 'home', lastAt: 0 }]);
    // A success clears its pair's failures (in the store, for every instance).
    await g.fail(await g.begin('alice', 'home', 60_005), 60_005);
    expect((await store.loginBudgets(['pair|alice|home'], 60_006, 3600_000)).size).toBe(1);
    await g.succeed(await g.begin('alice', 'home', 60_006), 60_006);
    expect((await store.loginBudgets(['pair|alice|home'], 60_007, 3600_000)).size).toBe(0);
    // In-flight checks count before they finish: past inFlightPerKey (2) a login waits its turn,
    // past queuedPerKey (1 here) it is refused.
    const a = await g.begin('bob', 'x', 0);
    await g.begin('bob', 'x', 0);
    let third: 'waiting' | 'in' = 'waiting';
    const waiting = g.begin('bob', 'x', 0).then((t) => ((third = 'in'), t));
    await expect(g.begin('bob', 'x', 0)).rejects.toEqual(limited());
    await new Promise((r) => setTimeout(r, 50));
    expect(third).toBe('waiting');
    g.cancel(a);
    await expect(waiting).resolves.toBeDefined();
    // Failures in progress fill the budget: a waiter is refused once they are counted.
    const c1 = await g.begin('carol', 'y', 60_010);
    const c2 = await g.begin('carol', 'y', 60_010);
    const behind = g.begin('carol', 'y', 60_010);
    await g.fail(c1);
    await g.fail(c2);
    await expect(behind).rejects.toEqual(limited());
    // A second guard on the same store (another instance) sees the same locks and known places.
    const other = new LoginGuard(store, {
      failuresPerAccountAddress: 2,
      failuresPerAccountUnknownAddresses: 3,
    });
    await expect(other.begin('alice', 'evil', 60_005)).rejects.toEqual(limited());
    await expect(other.begin('alice', 'home', 60_005)).resolves.toBeDefined();
    await store.close();
  });

  it('sweeps the store of forgotten login budgets and registrations out of their window', async () => {
    const store = new SqliteServerStore(path.join(tempDir(), 'server.db'));
    const accounts = new AccountService(
      store,
      { prefixBits: { ipv4PrefixBits: 24, ipv6PrefixBits: 64 }, registrationWindowMs: 1000 },
      [],
    );
    const backoff = { backoffBaseMs: 10, backoffMaxMs: 10, forgetAfterMs: 3600_000 };
    await store.addLoginFailures([{ key: 'pair|x|p', limit: 5 }], 0, backoff);
    await store.addLoginFailures([{ key: 'pair|y|p', limit: 5 }], 3600_000, backoff);
    await store.takeRegistration('p', 0, 10, 1000);
    await store.takeRegistration('p', 3599_000, 10, 1000);
    await store.takeRegistration('p', 3600_000, 10, 1000);
    // At 1 h + 1 ms: the first budget (idle over forgetAfterMs) goes, and the registrations out
    // of this server's window (1 s, not the default hour).
    expect(await accounts.sweep(3600_001)).toBe(3);
    expect(await accounts.sweep(3600_001)).toBe(0);
    accounts.close();
    await store.close();
  });

  it('runs logins before registrations and refuses past a full queue', async () => {
    const q = new ScryptQueue({ concurrency: 1, maxQueuedRegistrations: 2, maxQueuedLogins: 5 });
    const order: string[] = [];
    const job = (name: string) => () =>
      new Promise<void>((r) => setTimeout(() => (order.push(name), r()), 5));
    const all = [
      q.run('register', job('r1')),
      q.run('register', job('r2')),
      q.run('register', job('r3')),
    ];
    expect(() => q.run('register', job('r4'))).toThrowError(
      expect.objectContaining({ code: 'E_RATE_LIMITED' }),
    );
    all.push(q.run('login', job('l1')));
    await Promise.all(all);
    expect(order).toEqual(['r1', 'l1', 'r2', 'r3']);
  });

  it('gives look-alike names one key, case-insensitively', () => {
    const k = (s: string) => lookAlikeKeys(s);
    const same = (a: string, b: string) => k(a).some((x) => k(b).includes(x));
    expect(same('alice', '\u0430lice')).toBe(true);
    expect(same('alice', 'ALICE')).toBe(true);
    expect(same('alice', 'AIice')).toBe(true);
    expect(same('paypal', '\uff50\uff41\uff59\uff50\uff41\uff4c')).toBe(true);
    expect(same('alice', 'bob')).toBe(false);
    expect(same('guest 1', 'guest 2')).toBe(false);
  });
});
