import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  api,
  collectEvents,
  createTestnet,
  signIn,
  tempDir,
  waitFor,
  rawSession,
} from './testnet.js';
import { spawnHchat, spawnServer } from './processes.js';
import { ServerTrust } from '../src/peer/server-trust.js';
import { ServerLink } from '../src/peer/server-link.js';

describe('tracker', () => {
  it('lists every co-member peer with its address, and pushes joins and leaves', async () => {
    const net = await createTestnet({ peers: 4 });
    const [a, b, c, d] = net.peers as [any, any, any, any];
    await signIn(a, 'alice');
    const team = (await a.call('POST', '/api/channels', { name: 'team', allowVisitors: false }))
      .body.id;
    for (const [p, name] of [
      [b, 'bob'],
      [c, 'carol'],
    ] as const) {
      await signIn(p, name);
      await p.call('POST', `/api/channels/${team}/join`);
      await p.call('POST', '/api/logout');
    }
    const events = collectEvents(a.uiUrl);
    await events.ready;
    for (const [p, name] of [
      [b, 'bob'],
      [c, 'carol'],
    ] as const)
      await p.call('POST', '/api/login', { username: name, password: `${name}-pw` });
    // dave shares no channel with alice: she never learns his address (PROTOCOL.md §3.5).
    await signIn(d, 'dave');
    const list = (await a.call('GET', '/api/peers')).body;
    expect(list.map((e: any) => e.username).sort()).toEqual(['alice', 'bob', 'carol']);
    const bobEntry = list.find((e: any) => e.username === 'bob');
    expect(`${bobEntry.ip}:${bobEntry.port}`).toBe(b.p2p);
    expect(bobEntry).toMatchObject({ status: 'online', sessionId: expect.any(String) });
    await waitFor(
      () =>
        events.events.filter((e) => e.event === 'presence' && e.data.kind === 'joined').length ===
        2,
    );
    expect(events.events.some((e) => e.data?.peer?.username === 'dave')).toBe(false);
    await c.call('POST', '/api/logout');
    const left = await waitFor(() =>
      events.events.find((e) => e.event === 'presence' && e.data.kind === 'left'),
    );
    expect(left.data.peer.username).toBe('carol');
    expect((await a.call('GET', '/api/peers')).body.map((e: any) => e.username).sort()).toEqual([
      'alice',
      'bob',
    ]);
  });

  it('never shows an invisible user to others, in lists or events, while the user works normally', async () => {
    const net = await createTestnet({ peers: 2 });
    const [a, b] = net.peers as [any, any];
    await signIn(a, 'alice');
    await signIn(b, 'bob');
    const team = (await a.call('POST', '/api/channels', { name: 'team', allowVisitors: false }))
      .body.id;
    await b.call('POST', `/api/channels/${team}/join`);
    await waitFor(async () =>
      (await a.call('GET', '/api/peers')).body.some((e: any) => e.username === 'bob'),
    );
    const events = collectEvents(a.uiUrl);
    await events.ready;
    expect((await b.call('PUT', '/api/status', { status: 'invisible' })).body).toEqual({
      status: 'invisible',
    });
    await waitFor(() =>
      events.events.find(
        (e) => e.event === 'presence' && e.data.kind === 'left' && e.data.peer.username === 'bob',
      ),
    );
    expect((await a.call('GET', '/api/peers')).body.map((e: any) => e.username)).toEqual(['alice']);
    // Bob still sees himself, marked invisible, and can still chat.
    const own = (await b.call('GET', '/api/peers')).body.find((e: any) => e.username === 'bob');
    expect(own.status).toBe('invisible');
    const ch = (await b.call('POST', '/api/channels', { name: 'quiet', allowVisitors: false }))
      .body;
    expect(
      (await b.call('POST', `/api/channels/${ch.id}/messages`, { text: 'shh' })).body.state,
    ).toBe('delivered');
    // A restart keeps him invisible: no join is ever announced.
    await b.close();
    const b2 = await net.addPeer('peer1');
    await waitFor(async () => (await b2.call('GET', '/api/me')).body.connection === 'connected');
    await waitFor(async () =>
      (await b2.call('GET', '/api/peers')).body.some((e: any) => e.username === 'bob'),
    );
    expect((await a.call('GET', '/api/peers')).body.map((e: any) => e.username)).toEqual(['alice']);
    expect(
      events.events.filter(
        (e) => e.event === 'presence' && e.data.peer.username === 'bob' && e.data.kind === 'joined',
      ),
    ).toEqual([]);
    await b2.call('PUT', '/api/status', { status: 'online' });
    await waitFor(async () =>
      (await a.call('GET', '/api/peers')).body.some((e: any) => e.username === 'bob'),
    );
  });

  it('drops a SIGKILLed peer within the heartbeat timeout', async () => {
    const dir = tempDir();
    const server = await spawnServer(path.join(dir, 's'), {
      extra: ['--heartbeat-ms', '200', '--peer-timeout-ms', '1000'],
    });
    const [host, port] = server.ready.tcp!.split(':') as [string, string];
    const peer = await spawnHchat([
      'peer',
      '--server',
      `${host}:${port}`,
      '--data',
      path.join(dir, 'p'),
    ]);
    const ui = peer.ready.ui!;
    expect(
      (await api(ui, 'POST', '/api/register', { username: 'victim', password: 'victim-pw' }))
        .status,
    ).toBe(201);
    expect(
      (await api(ui, 'POST', '/api/login', { username: 'victim', password: 'victim-pw' })).status,
    ).toBe(200);
    // The victim hosts a channel that allows visitors: a visitor viewing it sees its entry.
    const lobby = (await api(ui, 'POST', '/api/channels', { name: 'lobby', allowVisitors: true }))
      .body.id;

    const watcher = new ServerLink({
      host,
      port: Number(port),
      trust: ServerTrust.pinned(host, Number(port), server.ready.fingerprint!),
      reconnect: false,
    });
    await watcher.start();
    await rawSession(watcher, { name: 'watcher' });
    await watcher.request('channel_join', { channelId: lobby });
    expect((await watcher.request('get_list', {})).peers.map((e) => e.username)).toContain(
      'victim',
    );
    const left = new Promise<number>((resolve) =>
      watcher.on('event', (name: string, body: any) => {
        if (name === 'peer_left' && body.entry.username === 'victim') resolve(Date.now());
      }),
    );
    // SIGSTOP freezes the peer without closing its socket (a pulled cable), then SIGKILL.
    peer.proc.kill('SIGSTOP');
    const t0 = Date.now();
    const at = await left;
    peer.proc.kill('SIGKILL');
    // No lower bound: a peer starved of CPU before the freeze may have missed pings already.
    // The close reason in the server's log (below) shows it was the heartbeat timeout.
    expect(at - t0).toBeLessThan(4000);
    expect((await watcher.request('get_list', {})).peers.map((e) => e.username)).not.toContain(
      'victim',
    );
    watcher.stop();
    // The server writes its log once per event-loop turn: the line may land just after the event.
    await waitFor(
      () =>
        /ev=close peer=peer:victim@127\.0\.0\.1:\d+ conn=\d+ reason=E_HEARTBEAT_TIMEOUT/.test(
          fs.readFileSync(path.join(dir, 's', 'connections.log'), 'utf8'),
        ),
      3000,
      "the server's log to say the victim timed out",
    );
  });
});
