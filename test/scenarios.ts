/**
 * The assignment's five synchronization scenarios (SPEC appendix) as functions of a swarm of real
 * `bin/hchat` processes (test/swarm.ts): a server and three peers, alice hosting "general" (made
 * by `hostedChannel`), bob (X) and carol (Y) its members. Each asserts what every user sees, in
 * what order, and where the logs say it came from. test/scenarios.test.ts plays them on
 * 127.0.0.1, test/scenarios-nat.test.ts with every peer behind a NAT.
 */
import { expect } from 'vitest';
import { waitFor } from './testnet.js';
import type { Swarm } from './swarm.js';

const msgs = (id: string) => `/api/channels/${id}/messages`;

/** Posts as `name` and returns the new message's id and state. */
export async function post(
  s: Swarm,
  name: string,
  ch: string,
  text: string,
): Promise<{ id: string; state: string }> {
  const r = await s.call(name, 'POST', msgs(ch), { text });
  expect(r.status, `${name} posting ${text}: ${JSON.stringify(r.body)}`).toBe(201);
  return r.body;
}

/** Where `name`'s connection log says each of these messages was posted (`post` lines, in order). */
export function postedTo(s: Swarm, name: string, ids: string[]): string[] {
  return s
    .log(name)
    .filter((r) => r.ev === 'post' && ids.includes(r.msg!))
    .map((r) => r.to!);
}

/**
 * `postedTo` once the log has a record for each of `ids`: a peer writes its log in batches, so
 * a post seen by others may not be in the file yet (a loaded CI run read it too early).
 */
export async function postedToWhenLogged(s: Swarm, name: string, ids: string[]): Promise<string[]> {
  await waitFor(
    () => postedTo(s, name, ids).length >= ids.length,
    10_000,
    `${name}'s log to record its posts`,
  );
  return postedTo(s, name, ids);
}

/** Scenario 1's steps; scenario 2 starts where it ends. */
async function hostOfflineSteps(s: Swarm, ch: string) {
  const A = await post(s, 'alice', ch, 'A');
  expect(A.state).toBe('delivered'); // the server acknowledged its backup copy
  await s.waitView('bob', ch, ['A'], 'host');
  await s.call('alice', 'PUT', '/api/status', { status: 'offline' });
  // X and Y notice (the tracker tells them) and switch to the server, which has A.
  await s.waitView('bob', ch, ['A'], 'server');
  await s.waitView('carol', ch, ['A'], 'server');
  const B = await post(s, 'bob', ch, 'B');
  expect(B.state).toBe('delivered');
  await s.waitView('carol', ch, ['A', 'B'], 'server');
  // What the host writes while offline stays in its outbox.
  const C = await post(s, 'alice', ch, 'C');
  expect(C.state).toBe('pending');
  return { A, B, C };
}

/** 1. The host goes offline: members switch to the server, which serves what the host had synced. */
export async function hostGoesOffline(s: Swarm, ch: string): Promise<void> {
  const { A, B, C } = await hostOfflineSteps(s, ch);
  expect((await s.serverMessages(ch)).map((m) => m.text)).toEqual(['A', 'B']);
  expect((await s.view('alice', ch)).states).toEqual(['delivered', 'pending']);
  expect((await s.view('alice', ch)).texts).toEqual(['A', 'C']);
  // Logs on X and Y show the server as the source.
  expect(s.log('bob')).toContainEqual(
    expect.objectContaining({ ev: 'fetch', from: 'server', channel: ch }),
  );
  expect(s.log('bob')).toContainEqual(
    expect.objectContaining({ ev: 'post', to: 'server', msg: B.id }),
  );
  expect(s.log('carol')).toContainEqual(
    expect.objectContaining({ ev: 'push', from: 'server', msg: B.id }),
  );
  expect(s.log('carol').some((r) => r.msg === C.id)).toBe(false);
  expect(A.id).not.toBe(B.id);
}

/** 2. The host goes online again: it syncs both ways with the server, and members switch back to P2P. */
export async function hostGoesOnline(s: Swarm, ch: string): Promise<void> {
  const { C } = await hostOfflineSteps(s, ch);
  await s.call('alice', 'PUT', '/api/status', { status: 'online' });
  // The host uploads C and downloads B; members read from the host again.
  await s.waitView('alice', ch, ['A', 'B', 'C'], 'host');
  await waitFor(async () => (await s.call('alice', 'GET', '/api/me')).body.pending === 0);
  for (const m of ['bob', 'carol']) await s.waitView(m, ch, ['A', 'B', 'C'], 'host');
  expect((await s.serverMessages(ch)).map((m) => m.text)).toEqual(['A', 'B', 'C']);
  expect(s.log('server').filter((r) => r.ev === 'forward' && r.msg === C.id)).toHaveLength(1);
  // New posts go P2P; the host forwards each to the server once.
  const D = await post(s, 'bob', ch, 'D');
  expect(D.state).toBe('delivered');
  for (const m of ['alice', 'bob', 'carol']) await s.waitView(m, ch, ['A', 'B', 'C', 'D'], 'host');
  await waitFor(async () => (await s.serverMessages(ch)).length === 4);
  const alice = `host:alice@${s.peers.alice!.p2p}`;
  expect(s.log('bob')).toContainEqual(
    expect.objectContaining({ ev: 'post', to: alice, msg: D.id }),
  );
  expect(s.log('carol')).toContainEqual(
    expect.objectContaining({ ev: 'push', from: alice, msg: D.id }),
  );
  expect(s.log('carol')).toContainEqual(
    expect.objectContaining({ ev: 'fetch', from: alice, channel: ch }),
  );
  expect(s.log('server').filter((r) => r.msg === D.id && r.ev === 'forward')).toHaveLength(1);
  expect(s.log('server').filter((r) => r.msg === D.id && r.ev === 'post')).toHaveLength(0);
}

/** 3. A livestream period: alice streams and busy chat flows P2P; the server receives one copy of
 * each message, serves none and carries no media. */
export async function livestream(s: Swarm, ch: string): Promise<void> {
  const live = await s.call('alice', 'POST', `/api/channels/${ch}/streams`, {
    source: 'synthetic',
    fps: 30,
    bitrateKbps: 500,
  });
  expect(live.status).toBe(201);
  const streamId = live.body.streamId as string;
  for (const m of ['bob', 'carol'])
    await waitFor(
      async () => (await s.call(m, 'POST', `/api/streams/${streamId}/watch`)).status === 200,
    );
  const before = await s.serverStats();
  const N = 40;
  const posts: Promise<unknown>[] = [];
  for (let i = 0; i < N; i++) {
    posts.push(post(s, ['alice', 'bob', 'carol'][i % 3]!, ch, `m${i}`));
    if (i % 10 === 9) await Promise.all(posts.splice(0));
  }
  const expected = Array.from({ length: N }, (_, i) => `m${i}`).sort();
  for (const m of ['alice', 'bob', 'carol']) {
    await waitFor(async () => (await s.view(m, ch)).texts.length === N);
    const v = await s.view(m, ch);
    expect(v.source).toBe('host');
    expect([...v.texts].sort()).toEqual(expected);
  }
  await waitFor(async () => (await s.serverMessages(ch)).length === N);
  // Every replica shows the same order.
  const order = (await s.view('alice', ch)).texts;
  for (const m of ['bob', 'carol']) expect((await s.view(m, ch)).texts).toEqual(order);
  expect((await s.serverMessages(ch)).map((m) => m.text)).toEqual(order);
  const after = await s.serverStats();
  expect(after.messages.forwarded - before.messages.forwarded).toBe(N);
  expect(after.messages.posted - before.messages.posted).toBe(0);
  expect(after.messages.duplicates - before.messages.duplicates).toBe(0);
  expect(after.messages.pushed - before.messages.pushed).toBe(0);
  const served = s
    .log('server')
    .filter((r) => (r.ev === 'sync' || r.ev === 'fetch') && r.channel === ch);
  expect(served).toEqual([]);
  // Meanwhile the stream went peer to peer: the viewers received it, the server none of it
  // (its bytes over the whole period are what 40 chat messages take).
  for (const m of ['bob', 'carol'])
    await waitFor(
      async () =>
        (await s.call(m, 'GET', `/api/streams/${streamId}/stats`)).body.framesComplete > 60,
    );
  const end = await s.serverStats();
  const streamer = (await s.call('alice', 'GET', `/api/streams/${streamId}/stats`)).body;
  const bytes = (t: Record<string, number>) => (t.bytesIn ?? 0) + (t.bytesOut ?? 0);
  const serverBytes = bytes(end.traffic) - bytes(before.traffic);
  expect(streamer.uploadBytes).toBeGreaterThan(250_000);
  expect(serverBytes).toBeLessThan(N * 3000);
  expect(s.log('bob').some((r) => r.ev === 'watching' && r.from?.startsWith('host:alice@'))).toBe(
    true,
  );
}

/** 4. A joined user goes online: it catches up from the host (then, with the host away, from the
 * server), and its outbox reaches everyone once. */
export async function joinedUserGoesOnline(s: Swarm, ch: string): Promise<void> {
  await s.call('bob', 'PUT', '/api/status', { status: 'offline' });
  await post(s, 'alice', ch, 'a1');
  await post(s, 'carol', ch, 'c1');
  const b1 = await post(s, 'bob', ch, 'b1');
  const b2 = await post(s, 'bob', ch, 'b2');
  expect([b1.state, b2.state]).toEqual(['pending', 'pending']);
  await s.call('bob', 'PUT', '/api/status', { status: 'online' });
  for (const m of ['alice', 'bob', 'carol'])
    await s.waitView(m, ch, ['a1', 'c1', 'b1', 'b2'], 'host');
  await waitFor(async () => (await s.serverMessages(ch)).length === 4);
  expect((await s.serverMessages(ch)).map((m) => m.text)).toEqual(['a1', 'c1', 'b1', 'b2']);
  const host = `host:alice@${s.peers.alice!.p2p}`;
  expect(s.log('bob')).toContainEqual(
    expect.objectContaining({ ev: 'sync', from: host, channel: ch }),
  );
  // The outbox went to the host (online, reachable), not to the server that came up first.
  expect(await postedToWhenLogged(s, 'bob', [b1.id, b2.id])).toEqual([host, host]);

  // With the host away, the same happens through the server.
  await s.call('alice', 'PUT', '/api/status', { status: 'offline' });
  await s.call('bob', 'PUT', '/api/status', { status: 'offline' });
  await s.waitView('carol', ch, ['a1', 'c1', 'b1', 'b2'], 'server');
  await post(s, 'carol', ch, 'c2');
  const b3 = await post(s, 'bob', ch, 'b3');
  expect(b3.state).toBe('pending');
  await s.call('bob', 'PUT', '/api/status', { status: 'online' });
  await s.waitView('bob', ch, ['a1', 'c1', 'b1', 'b2', 'c2', 'b3'], 'server');
  await s.waitView('carol', ch, ['a1', 'c1', 'b1', 'b2', 'c2', 'b3'], 'server');
  // No host listed: straight to the server, without waiting for one (a wait is 3 s).
  expect(await postedToWhenLogged(s, 'bob', [b3.id])).toEqual(['server']);
  const at = (r: Record<string, string> | undefined) => Date.parse(r!.t!);
  const online = s
    .log('bob')
    .filter((r) => r.ev === 'status' && r.status === 'online')
    .at(-1);
  const sent = s.log('bob').find((r) => r.ev === 'post' && r.msg === b3.id);
  expect(at(sent) - at(online)).toBeLessThan(2000);
  await s.call('alice', 'PUT', '/api/status', { status: 'online' });
  await s.waitView('alice', ch, ['a1', 'c1', 'b1', 'b2', 'c2', 'b3'], 'host');
  expect((await s.serverMessages(ch)).map((m) => m.text)).toEqual([
    'a1',
    'c1',
    'b1',
    'b2',
    'c2',
    'b3',
  ]);
}

/** 5. A joined user goes offline: its writes stay local, survive SIGKILL, and nobody sees them
 * until it is back. */
export async function joinedUserGoesOffline(s: Swarm, ch: string): Promise<void> {
  await post(s, 'alice', ch, 'hello');
  await s.waitView('bob', ch, ['hello'], 'host');
  await s.call('bob', 'PUT', '/api/status', { status: 'offline' });
  const xs: string[] = [];
  for (const t of ['x1', 'x2', 'x3']) {
    const x = await post(s, 'bob', ch, t);
    expect(x.state).toBe('pending');
    xs.push(x.id);
  }
  expect((await s.view('bob', ch)).source).toBe('local');
  expect((await s.view('bob', ch)).texts).toEqual(['hello', 'x1', 'x2', 'x3']);
  await new Promise((r) => setTimeout(r, 300));
  expect((await s.view('carol', ch)).texts).toEqual(['hello']);
  expect((await s.view('alice', ch)).texts).toEqual(['hello']);
  expect((await s.serverMessages(ch)).map((m) => m.text)).toEqual(['hello']);

  await s.kill('bob');
  await s.restart('bob');
  expect((await s.call('bob', 'GET', '/api/me')).body).toMatchObject({
    status: 'offline',
    pending: 3,
  });
  expect((await s.view('bob', ch)).texts).toEqual(['hello', 'x1', 'x2', 'x3']);
  await s.call('bob', 'PUT', '/api/status', { status: 'online' });
  for (const m of ['alice', 'bob', 'carol'])
    await s.waitView(m, ch, ['hello', 'x1', 'x2', 'x3'], 'host');
  await waitFor(async () => (await s.serverMessages(ch)).length === 4);
  expect((await s.serverMessages(ch)).map((m) => m.text)).toEqual(['hello', 'x1', 'x2', 'x3']);
  expect((await s.view('bob', ch)).states).toEqual([
    'delivered',
    'delivered',
    'delivered',
    'delivered',
  ]);
  // Restarted while offline, then online: its outbox still goes to the host.
  const host = `host:alice@${s.peers.alice!.p2p}`;
  expect(await postedToWhenLogged(s, 'bob', xs)).toEqual([host, host, host]);
}

/**
 * A SIGKILLed host loses nothing it accepted: members' posts reach the server once it is back.
 * `relayed` lists the members whose link to the host goes through the server's relay (across
 * NATs): that link ends with the server.
 */
export async function sigkilledHost(
  s: Swarm,
  ch: string,
  opts: { relayed?: string[] } = {},
): Promise<void> {
  // The server goes down: the host can accept posts but not forward them yet.
  await s.stopServer();
  const b = await post(s, 'bob', ch, 'accepted by the host');
  expect(b.state).toBe('delivered'); // the host acknowledged it: it is in the primary copy
  if (!opts.relayed?.includes('carol')) {
    await s.waitView('carol', ch, ['accepted by the host'], 'host');
  } else {
    // Without the relay carol has neither host nor server: she reads her own copy, which has
    // not got the post, while bob's direct link to the host still carries it.
    await s.waitView('bob', ch, ['accepted by the host'], 'host');
    await s.waitView('carol', ch, [], 'local');
  }
  await s.kill('alice');
  await s.restartServer();
  await s.restart('alice');
  await waitFor(
    async () => (await s.serverMessages(ch)).length === 1,
    15_000,
    'the server to get the backup',
  );
  expect((await s.serverMessages(ch)).map((m) => [m.author, m.text])).toEqual([
    ['bob', 'accepted by the host'],
  ]);
  for (const m of ['alice', 'bob', 'carol'])
    await s.waitView(m, ch, ['accepted by the host'], 'host');
}
