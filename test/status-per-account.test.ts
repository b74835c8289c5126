/**
 * The status is the logged-in account's choice on its peer (README "Status", SPEC §3): logging
 * out ends it, so a peer its user took offline connects again (the server hears the logout it
 * owed, and anyone can log in); logging in is choosing to be reachable (an `offline` is over,
 * `invisible` stays); another account logged in next on the same peer has its own. A data folder
 * of an earlier version, left offline with nobody logged in, connects again too.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';

const login = (p: TestPeer, username: string) =>
  p.call('POST', '/api/login', { username, password: `${username}-pw` });

describe('the status, per account on a peer', () => {
  it('logging out while offline: the server hears that logout at once, the next login works and is online, and what was written offline goes once its author is back', async () => {
    const net = await createTestnet({ peers: 2 });
    const [host, p] = net.peers as [TestPeer, TestPeer];
    await signIn(host, 'carol');
    const room = (await host.call('POST', '/api/channels', { name: 'room', allowVisitors: false }))
      .body.id as string;
    expect(
      (await p.call('POST', '/api/register', { username: 'bob', password: 'bob-pw' })).status,
    ).toBe(201);
    await signIn(p, 'alice');
    expect((await p.call('POST', `/api/channels/${room}/join`)).status).toBe(200);
    const sid = (await p.call('GET', '/api/me')).body.sessionId as string;
    expect((await p.call('PUT', '/api/status', { status: 'offline' })).body).toEqual({
      status: 'offline',
    });
    const posted = await p.call('POST', `/api/channels/${room}/messages`, { text: 'on the train' });
    expect(posted.body.state).toBe('pending');
    expect((await p.call('POST', '/api/logout')).status).toBe(204);
    // The logout was owed (the server was not reachable by choice); the peer reaches it now.
    await waitFor(
      async () => (await net.server.store.getSession(sid))?.revoked === true,
      10_000,
      'the server to hear the logout made while offline',
    );
    const bob = await login(p, 'bob');
    expect(bob, JSON.stringify(bob.body)).toMatchObject({ status: 200, body: { username: 'bob' } });
    expect((await p.call('GET', '/api/me')).body).toMatchObject({
      username: 'bob',
      status: 'online',
      connection: 'connected',
      pending: 0,
    });
    // alice's message is not bob's to send.
    expect((await net.server.store.history(room, 10)).messages).toEqual([]);
    expect((await host.call('GET', `/api/channels/${room}/messages`)).body.messages).toEqual([]);

    // alice back: her offline ended with her session, she is online, and her message goes.
    expect((await login(p, 'alice')).status).toBe(200);
    expect((await p.call('GET', '/api/me')).body).toMatchObject({
      username: 'alice',
      status: 'online',
      connection: 'connected',
    });
    await waitFor(
      async () => (await p.call('GET', '/api/me')).body.pending === 0,
      10_000,
      'alice’s outbox drained',
    );
    expect(
      (await host.call('GET', `/api/channels/${room}/messages`)).body.messages.map(
        (m: { id: string; author: string }) => [m.id, m.author],
      ),
    ).toEqual([[posted.body.id, 'alice']]);
  });

  it('invisible is its account’s own: the next account on the peer is seen online, and the first is still invisible when back', async () => {
    const net = await createTestnet({ peers: 2 });
    const [host, p] = net.peers as [TestPeer, TestPeer];
    await signIn(host, 'carol');
    const room = (await host.call('POST', '/api/channels', { name: 'room', allowVisitors: false }))
      .body.id as string;
    expect(
      (await p.call('POST', '/api/register', { username: 'bob', password: 'bob-pw' })).status,
    ).toBe(201);
    await signIn(p, 'alice');
    expect((await p.call('POST', `/api/channels/${room}/join`)).status).toBe(200);
    expect((await p.call('PUT', '/api/status', { status: 'invisible' })).status).toBe(200);
    expect((await p.call('POST', '/api/logout')).status).toBe(204);

    expect((await login(p, 'bob')).status).toBe(200);
    expect((await p.call('POST', `/api/channels/${room}/join`)).status).toBe(200);
    expect((await p.call('GET', '/api/me')).body.status).toBe('online');
    // carol sees bob (he never chose invisible), not alice.
    const seen = (want: object[]) =>
      waitFor(
        async () =>
          JSON.stringify((await host.call('GET', `/api/channels/${room}/members`)).body) ===
          JSON.stringify(want),
        10_000,
        `carol's member list to be ${JSON.stringify(want)}`,
      );
    await seen([
      { username: 'bob', status: 'online' },
      { username: 'carol', status: 'online' },
      { username: 'alice', status: 'offline' },
    ]);

    expect((await p.call('POST', '/api/logout')).status).toBe(204);
    expect((await login(p, 'alice')).status).toBe(200);
    expect((await p.call('GET', '/api/me')).body).toMatchObject({
      status: 'invisible',
      connection: 'connected',
    });
    await seen([
      { username: 'carol', status: 'online' },
      { username: 'alice', status: 'offline' },
      { username: 'bob', status: 'offline' },
    ]);
  });

  it('a data folder of an earlier version, left offline with nobody logged in, connects and lets one log in', async () => {
    const net = await createTestnet({ peers: 1 });
    let p = net.peers[0]!;
    await signIn(p, 'alice');
    await p.close();
    // What an earlier version left: one `offline` for the whole peer, and no session.
    const db = new Database(path.join(p.dataDir, 'peer.db'));
    db.prepare(
      "INSERT INTO kv (key, value) VALUES ('status', 'offline') ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    ).run();
    db.close();
    fs.rmSync(path.join(p.dataDir, 'session.json'));
    p = await net.restartPeer(p);
    const back = await login(p, 'alice');
    expect(back, JSON.stringify(back.body)).toMatchObject({ status: 200 });
    expect((await p.call('GET', '/api/me')).body).toMatchObject({
      status: 'online',
      connection: 'connected',
    });
  });
});
