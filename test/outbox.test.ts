import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { api, createTestnet, signIn, stablePort, tempDir, waitFor } from './testnet.js';
import { spawnHchat, spawnServer } from './processes.js';
import { createTestDatabase } from './pg-kit.js';
import { PostgresServerStore } from '../src/store/pg/pg-server-store.js';

describe('offline outbox', () => {
  it('keeps posts written offline through SIGKILL and restart, and delivers each exactly once', async () => {
    const net = await createTestnet({ peers: 1 });
    const alice = net.peers[0]!;
    await signIn(alice, 'alice');
    const ch = (
      await alice.call('POST', '/api/channels', { name: 'general', allowVisitors: false })
    ).body;

    const data = path.join(tempDir(), 'bob');
    const args = ['peer', '--server', `${net.serverHost}:${net.serverPort}`, '--data', data];
    let bob = await spawnHchat(args);
    let ui = bob.ready.ui!;
    expect(ui).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{43}$/);
    expect(bob.ready.p2p).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(bob.ready.udp).toMatch(/^127\.0\.0\.1:\d+$/);
    await api(ui, 'POST', '/api/register', { username: 'bob', password: 'bob-pw-1' });
    await api(ui, 'POST', '/api/login', { username: 'bob', password: 'bob-pw-1' });
    await api(ui, 'POST', `/api/channels/${ch.id}/join`);

    expect((await api(ui, 'PUT', '/api/status', { status: 'offline' })).body).toEqual({
      status: 'offline',
    });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await api(ui, 'POST', `/api/channels/${ch.id}/messages`, { text: `offline ${i}` });
      expect(r).toMatchObject({ status: 201, body: { state: 'pending' } });
      ids.push(r.body.id);
    }
    const local = (await api(ui, 'GET', `/api/channels/${ch.id}/messages`)).body;
    expect(local.source).toBe('local');
    expect(local.messages.map((m: any) => [m.text, m.state])).toEqual(
      ids.map((_, i) => [`offline ${i}`, 'pending']),
    );
    expect((await net.server.store.history(ch.id, 50)).messages).toEqual([]);

    bob.proc.kill('SIGKILL');
    await bob.exited;
    bob = await spawnHchat(args);
    ui = bob.ready.ui!;
    // Still offline after the restart (the user chose it), still pending, session resumed.
    expect((await api(ui, 'GET', '/api/me')).body).toMatchObject({
      username: 'bob',
      status: 'offline',
      pending: 5,
    });
    expect((await net.server.store.history(ch.id, 50)).messages).toEqual([]);

    await api(ui, 'PUT', '/api/status', { status: 'online' });
    await waitFor(
      async () => (await api(ui, 'GET', '/api/me')).body.pending === 0,
      10_000,
      'outbox drained',
    );
    // Drained to alice's peer (the host); the server gets its backup from her upload next.
    await waitFor(
      async () => (await net.server.store.history(ch.id, 50)).messages.length === 5,
      10_000,
      'the backup on the server',
    );
    const onServer = (await net.server.store.history(ch.id, 50)).messages;
    expect(onServer.map((m) => m.id)).toEqual(ids);
    expect(onServer.map((m) => m.author)).toEqual(Array(5).fill('bob'));
    const seen = (await alice.call('GET', `/api/channels/${ch.id}/messages`)).body.messages;
    expect(seen.map((m: any) => m.text)).toEqual(ids.map((_, i) => `offline ${i}`));
    const mine = (await api(ui, 'GET', `/api/channels/${ch.id}/messages`)).body.messages;
    expect(mine.map((m: any) => m.state)).toEqual(Array(5).fill('delivered'));
  });
});

// The same on SQLite (no --store) and on PostgreSQL (--store postgres://…, a database of its own).
describe.each([
  ['sqlite', false],
  ['postgres', true],
] as const)('offline outbox, server on %s', (_name, onPg) => {
  it('queues while the server is down and delivers once it is back, on a peer that never restarted', async () => {
    const dir = tempDir();
    const sdata = path.join(dir, 'server');
    const db = onPg ? await createTestDatabase() : undefined;
    const extra = db ? ['--store', db.url] : [];
    let server = await spawnServer(sdata, { port: await stablePort(), extra });
    const tcp = server.ready.tcp!;
    const peer = await spawnHchat(['peer', '--server', tcp, '--data', path.join(dir, 'peer')]);
    const ui = peer.ready.ui!;
    await api(ui, 'POST', '/api/register', { username: 'carol', password: 'carol-pw' });
    await api(ui, 'POST', '/api/login', { username: 'carol', password: 'carol-pw' });
    const ch = (await api(ui, 'POST', '/api/channels', { name: 'notes', allowVisitors: false }))
      .body;
    await api(ui, 'POST', `/api/channels/${ch.id}/messages`, { text: 'before' });

    server.proc.kill('SIGKILL');
    await server.exited;
    await waitFor(async () => (await api(ui, 'GET', '/api/me')).body.connection === 'connecting');
    const r = await api(ui, 'POST', `/api/channels/${ch.id}/messages`, { text: 'during' });
    expect(r.body.state).toBe('pending');

    server = await spawnServer(sdata, { port: Number(tcp.split(':')[1]), extra });
    await waitFor(
      async () => (await api(ui, 'GET', '/api/me')).body.pending === 0,
      15_000,
      'outbox drained',
    );
    const page = (await api(ui, 'GET', `/api/channels/${ch.id}/messages`)).body;
    // Carol hosts this channel: her own peer is its primary copy.
    expect(page.source).toBe('host');
    expect(page.messages.map((m: any) => [m.text, m.state])).toEqual([
      ['before', 'delivered'],
      ['during', 'delivered'],
    ]);
    if (db) {
      // The server's copy is in PostgreSQL, across its restart.
      server.proc.kill('SIGTERM');
      await server.exited;
      const store = await PostgresServerStore.open(db.url);
      const held = await store.history(ch.id, 10);
      await store.close();
      await db.drop();
      expect(held.messages.map((m) => m.text)).toEqual(['before', 'during']);
    }
  });
});
