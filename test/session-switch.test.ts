/**
 * Changing who is logged in on a running peer (README "Local API": `POST /api/login`,
 * `POST /api/visitor`): a refused attempt leaves the current session as it was (its server
 * link, live events, local data), a successful one replaces it, and attempts made at once end
 * with one session, live on the server. Also: with `--server a,b` and a dead `a`, the peer is
 * usable as soon as it is started.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { newSessionKeys } from '../src/shared/signing.js';
import {
  collectEvents,
  createTestnet,
  peerLog,
  signIn,
  stablePort,
  waitFor,
  type ApiAnswer,
} from './testnet.js';

describe('session changes on a running peer', () => {
  it('a refused login or visitor entry while logged in changes nothing: session, server link, live events', async () => {
    const net = await createTestnet({ peers: 2 });
    const [p, q] = net.peers as [(typeof net.peers)[0], (typeof net.peers)[0]];
    await signIn(p, 'alice');
    await signIn(q, 'bob');
    const ch = (await q.call('POST', '/api/channels', { name: 'talk', allowVisitors: false })).body;
    expect((await p.call('POST', `/api/channels/${ch.id}/join`)).status).toBe(200);
    const before = (await p.call('GET', '/api/me')).body;
    const ev = collectEvents(p.uiUrl);
    await ev.ready;

    const bad = await p.call('POST', '/api/login', { username: 'bob', password: 'not-bobs-pw' });
    expect(bad).toMatchObject({ status: 401, body: { error: { code: 'E_BAD_CREDENTIALS' } } });
    const taken = await p.call('POST', '/api/visitor', { name: 'bob' });
    expect(taken).toMatchObject({ status: 409, body: { error: { code: 'E_NAME_TAKEN' } } });

    // The same session, still live on the server, still on its connection.
    expect((await p.call('GET', '/api/me')).body).toEqual(before);
    expect((await net.server.store.getSession(before.sessionId))?.revoked).toBe(false);
    expect((await p.call('GET', '/api/peers')).status).toBe(200);
    expect((await p.call('GET', '/api/channels')).body.map((c: any) => c.id)).toEqual([ch.id]);
    // The event stream opened before the attempts still carries what happens next.
    const m = await q.call('POST', `/api/channels/${ch.id}/messages`, { text: 'still here?' });
    expect(m.status).toBe(201);
    await waitFor(
      () =>
        ev.events.some((e) => e.event === 'message' && JSON.stringify(e.data).includes(m.body.id)),
      5_000,
      'the message event on the stream opened before the refused attempts',
    );
    // And what the server pushes reaches it (a new member of alice's channel, told by the server).
    const mine = (await p.call('POST', '/api/channels', { name: 'mine', allowVisitors: false }))
      .body;
    expect((await q.call('POST', `/api/channels/${mine.id}/join`)).status).toBe(200);
    await waitFor(
      () => ev.events.some((e) => e.event === 'members' && e.data?.channelId === mine.id),
      5_000,
      'the server’s member_joined push',
    );
  });

  it('a visitor whose entry under another name is refused stays the visitor it was (outside new user 1)', async () => {
    const net = await createTestnet({ peers: 2 });
    const [v, q] = net.peers as [(typeof net.peers)[0], (typeof net.peers)[0]];
    await signIn(q, 'alice');
    expect((await v.call('POST', '/api/visitor', { name: 'Vera V' })).status).toBe(200);
    const before = (await v.call('GET', '/api/me')).body;
    expect(before).toMatchObject({ username: 'Vera V', role: 'visitor' });
    const taken = await v.call('POST', '/api/visitor', { name: 'Alice' });
    expect(taken).toMatchObject({ status: 409, body: { error: { code: 'E_NAME_TAKEN' } } });
    const after = await v.call('GET', '/api/me');
    expect(after.status).toBe(200);
    expect(after.body).toEqual(before);
    expect((await net.server.store.getSession(before.sessionId))?.revoked).toBe(false);
    // Entering again under another free name, or its own, still works.
    const other = await v.call('POST', '/api/visitor', { name: 'Vera W' });
    expect(other.status).toBe(200);
    expect((await v.call('GET', '/api/me')).body.username).toBe('Vera W');
    const same = await v.call('POST', '/api/visitor', { name: 'Vera W' });
    expect(same.status).toBe(200);
    expect((await v.call('GET', '/api/me')).body.username).toBe('Vera W');
  });

  it('a login as another account while logged in switches: the new session is live, the last revoked, its channels unreadable', async () => {
    const net = await createTestnet({ peers: 1 });
    const p = net.peers[0]!;
    expect(
      (await p.call('POST', '/api/register', { username: 'bob', password: 'bob-pw' })).status,
    ).toBe(201);
    await signIn(p, 'alice');
    const alice = (await p.call('GET', '/api/me')).body;
    const diary = (await p.call('POST', '/api/channels', { name: 'diary', allowVisitors: false }))
      .body;
    await p.call('POST', `/api/channels/${diary.id}/messages`, { text: 'wombat secret' });

    const login = await p.call('POST', '/api/login', { username: 'bob', password: 'bob-pw' });
    expect(login.status).toBe(200);
    const me = (await p.call('GET', '/api/me')).body;
    expect(me).toMatchObject({ username: 'bob', sessionId: login.body.sessionId });
    expect(me.connection).toBe('connected');
    expect((await net.server.store.getSession(alice.sessionId))?.revoked).toBe(true);
    expect((await net.server.store.getSession(me.sessionId))?.revoked).toBe(false);
    expect((await p.call('GET', '/api/channels')).body).toEqual([]);
    expect((await p.call('GET', `/api/channels/${diary.id}/messages`)).status).toBe(403);
    // The server link carries bob's session: what bob makes is bob's.
    const own = await p.call('POST', '/api/channels', { name: 'bobs', allowVisitors: true });
    expect(own).toMatchObject({ status: 201, body: { owner: 'bob' } });

    // And on to a visitor.
    const v = await p.call('POST', '/api/visitor', { name: 'Guest' });
    expect(v).toMatchObject({ status: 200, body: { username: 'Guest', role: 'visitor' } });
    expect((await net.server.store.getSession(me.sessionId))?.revoked).toBe(true);
    expect((await p.call('GET', '/api/me')).body.connection).toBe('connected');
    const dir = (await p.call('GET', '/api/directory')).body.map((c: any) => c.id);
    expect(dir).toEqual([own.body.id]);
  });

  // SECURITY.md: a logout revokes the session at the server. Made while the server was away,
  // it only forgot the session here: its token and certificate stayed good at the server, for
  // whoever had copied them, until they expired. Now it is owed, kept on disk, and carried out
  // once the server answers again.
  it('a logout made while the server is away revokes the session once it is back, though the peer restarted meanwhile', async () => {
    const net = await createTestnet({ peers: 1 });
    let p = net.peers[0]!;
    await signIn(p, 'alice');
    const alice = (await p.call('GET', '/api/me')).body;
    const { token } = JSON.parse(fs.readFileSync(path.join(p.dataDir, 'session.json'), 'utf8'));
    await net.stopServer();
    await waitFor(
      async () => (await p.call('GET', '/api/me')).body.connection !== 'connected',
      5_000,
      'the peer sees the server gone',
    );
    expect((await p.call('POST', '/api/logout')).status).toBe(204);
    expect((await p.call('GET', '/api/me')).status).toBe(401);
    p = await net.restartPeer(p);
    await net.startServer();
    await waitFor(
      async () => (await net.server.store.getSession(alice.sessionId))?.revoked,
      10_000,
      "alice's session revoked at the server",
    );
    const raw = await net.rawLink();
    await expect(raw.request('resume', { token })).rejects.toMatchObject({
      code: 'E_SESSION_INVALID',
    });
    // Nobody is logged in on the peer, and it stays so; its log tells the logout's two steps.
    expect((await p.call('GET', '/api/me')).status).toBe(401);
    const told = peerLog(p)
      .filter((r) => r.ev === 'logout' && r.session === alice.sessionId)
      .map((r) => r.result);
    expect(told).toEqual(['owed', 'ok']);
  });

  // An owed token is good at its own deployment only, and is owed to it: a peer pointed at
  // another deployment meanwhile (--server, another signing key) neither hands it that server
  // (a bearer token of a live session, to an operator that could use it where it holds) nor
  // drops it as "gone" when that server does not know it (it was never logged out where it is).
  it("an owed logout is not carried to another deployment's server: kept, and paid where the session lives", async () => {
    const net = await createTestnet({ peers: 1 });
    const other = await createTestnet();
    let p = net.peers[0]!;
    await signIn(p, 'alice');
    const alice = (await p.call('GET', '/api/me')).body;
    await net.stopServer();
    await waitFor(
      async () => (await p.call('GET', '/api/me')).body.connection !== 'connected',
      5_000,
      'the peer sees the server gone',
    );
    expect((await p.call('POST', '/api/logout')).status).toBe(204);
    // The peer is pointed at another deployment for a while.
    p = await net.restartPeer(p, {
      serverPort: other.serverPort,
      serverFingerprint: other.server.fingerprint,
    });
    const yAddr = `${other.serverHost}:${other.serverPort}`;
    await waitFor(
      () => peerLog(p).some((r) => r.ev === 'open' && r.addr === yAddr),
      10_000,
      'the peer reaches the other deployment',
    );
    await new Promise((r) => setTimeout(r, 1_000));
    const logged = () =>
      peerLog(p)
        .filter((r) => r.ev === 'logout')
        .map((r) => `${r.result} ${r.session}`);
    expect(logged()).toEqual([`owed ${alice.sessionId}`]);
    // Back on its own deployment: the session is logged out there.
    p = await net.restartPeer(p);
    await net.startServer();
    await waitFor(
      async () => (await net.server.store.getSession(alice.sessionId))?.revoked,
      10_000,
      "alice's session revoked at her deployment",
    );
    await waitFor(() => logged().length === 2, 5_000, 'the logout logged');
    expect(logged()).toEqual([`owed ${alice.sessionId}`, `ok ${alice.sessionId}`]);
  });

  // A session the server link does not carry (its resume was refused for now: here a visitor's,
  // the address's visitor room being full) is still live at the server. A login then opened the
  // new session on that link and only forgot the last one here: it was never logged out.
  it('a login made while the current session is not resumed owes its logout: the session is revoked once the server can', async () => {
    const net = await createTestnet({ peers: 1, server: { maxVisitorsPerAddress: 1 } });
    let p = net.peers[0]!;
    expect(
      (await p.call('POST', '/api/register', { username: 'alice', password: 'alice-pw' })).status,
    ).toBe(201);
    const v = await p.call('POST', '/api/visitor', { name: 'guest1' });
    expect(v.status).toBe(200);
    const visitor = v.body.sessionId as string;
    const opens = () => peerLog(p).filter((r) => r.ev === 'open').length;
    const opened = opens();
    await net.stopServer();
    // The peer comes back slowly: another visitor from this address takes the one place first.
    p = await net.restartPeer(p, { minBackoffMs: 2_000, maxBackoffMs: 2_000 });
    await net.startServer();
    const raw = await net.rawLink();
    const guest2 = await raw.request('visitor', {
      name: 'guest2',
      publicKey: newSessionKeys().publicKey,
    });
    expect(guest2.role).toBe('visitor');
    await waitFor(() => opens() > opened, 10_000, 'the peer back on the server');
    await new Promise((r) => setTimeout(r, 500));
    // Its resume was refused (no room): the session stays, not carried by the link.
    const me = (await p.call('GET', '/api/me')).body;
    expect([me.sessionId, me.connection]).toEqual([visitor, 'connecting']);
    const login = await p.call('POST', '/api/login', { username: 'alice', password: 'alice-pw' });
    expect(login.status).toBe(200);
    // The place is free again; the next time the server answers, the visitor is logged out.
    await raw.request('logout', {});
    await net.restartServer();
    await waitFor(
      async () => (await net.server.store.getSession(visitor))?.revoked,
      10_000,
      "the visitor's session revoked at the server",
    );
    expect((await p.call('GET', '/api/me')).body.username).toBe('alice');
  });

  it('two logins at once while logged in: both answered, the peer ends with the last, live on the server', async () => {
    const net = await createTestnet({ peers: 1 });
    const p = net.peers[0]!;
    for (const u of ['bob', 'carol'])
      await p.call('POST', '/api/register', { username: u, password: `${u}-pw` });
    await signIn(p, 'alice');
    const [b, c] = (await Promise.all(
      ['bob', 'carol'].map((u) =>
        p.call('POST', '/api/login', { username: u, password: `${u}-pw` }),
      ),
    )) as [ApiAnswer, ApiAnswer];
    expect([b.status, c.status]).toEqual([200, 200]);
    const me = (await p.call('GET', '/api/me')).body;
    const won = me.sessionId === b.body.sessionId ? b : c;
    const lost = won === b ? c : b;
    expect(me).toMatchObject({ username: won.body.username, connection: 'connected' });
    expect((await net.server.store.getSession(lost.body.sessionId))?.revoked).toBe(true);
    expect((await net.server.store.getSession(won.body.sessionId))?.revoked).toBe(false);
    const own = await p.call('POST', '/api/channels', { name: 'x', allowVisitors: false });
    expect(own).toMatchObject({ status: 201, body: { owner: won.body.username } });
  });

  it('--server a,b with a dead a: a request made as soon as the peer started reaches b', async () => {
    const net = await createTestnet();
    const dead = await stablePort();
    // A long backoff: the next address is tried 500 ms after the first failed.
    const p = await net.addPeer('multi', {
      serverPort: dead,
      serverFingerprint: undefined,
      otherServers: [
        { host: net.serverHost, port: net.serverPort, fingerprint: net.server.fingerprint },
      ],
      minBackoffMs: 1000,
      maxBackoffMs: 1000,
    });
    const r = await p.call('POST', '/api/register', { username: 'multi', password: 'multi-pw' });
    expect(r).toEqual({ status: 201, body: { username: 'multi' } });
  });
});
