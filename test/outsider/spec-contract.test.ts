// SPEC §3–§7, §9 and §10 as an outside tester reads them, with README "Local API" and
// docs/PROTOCOL.md §6: real `bin/hchat` processes on 127.0.0.1 and HTTP to each peer's local API.
// Promises the other outsider files leave alone: one user's second device, the connection log's
// rotation and its naming of each transfer's other end, unread counts across an offline spell,
// the offline status's answers, and the documented rules for names.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  killAll,
  names,
  registerLogin,
  sharedServer,
  sleep,
  startPeer,
  startServer,
  uuid7,
} from './lib.js';
import { waitFor } from '../testnet.js';

const shared = sharedServer();
afterAll(async () => {
  await killAll();
  await shared.end();
});

type Peer = Awaited<ReturnType<typeof startPeer>>;

/** Registers and logs `name` in on `p`. */
async function signIn(p: Peer, name: string, password = `${name}-secret`): Promise<void> {
  const r = await p.api('POST', '/api/register', { username: name, password });
  if (r.status !== 201 && r.body?.error?.code !== 'E_USERNAME_TAKEN')
    throw new Error(`register ${name}: ${JSON.stringify(r)}`);
  const l = await p.api('POST', '/api/login', { username: name, password });
  if (l.status !== 200) throw new Error(`login ${name}: ${JSON.stringify(l)}`);
}

/** The lines of a process's connections.log (or of `file` in its data folder). */
function logLines(data: string, file = 'connections.log'): string[] {
  return fs.readFileSync(path.join(data, file), 'latin1').trimEnd().split('\n');
}

/** A channel of `GET /api/channels` on `p`, by id (undefined when it is not listed). */
async function listed(p: Peer, id: string): Promise<any> {
  const r = await p.api('GET', '/api/channels');
  expect(r.status).toBe(200);
  return (r.body as any[]).find((c) => c.id === id);
}

describe('SPEC §2 and §4: one user on several peers', () => {
  it('a channel joined, created or left on one device shows (or goes) on the user’s other device at once', async () => {
    // SPEC §2: "one user may be logged in on several peers"; §4: users "list the channels they
    // joined"; README: `GET /api/channels` lists "joined and hosted channels", and event
    // `channel` comes "when … your membership changed (re-read GET /api/channels)". A user who
    // joins a channel on the laptop finds it on the desktop without logging in again there.
    const srv = await shared.get();
    const n = names();
    const [alice, bob] = [n('alice'), n('bob')];
    const [A, B1, B2] = await Promise.all([startPeer(srv), startPeer(srv), startPeer(srv)]);
    await signIn(A, alice);
    await signIn(B1, bob);
    await signIn(B2, bob); // the same account on a second device, logged in before the join
    const ch = (await A.api('POST', '/api/channels', { name: 'lobby', allowVisitors: false })).body;
    await A.api('POST', `/api/channels/${ch.id}/messages`, { text: 'welcome' });

    expect((await B1.api('POST', `/api/channels/${ch.id}/join`)).status).toBe(200);
    const seen = await waitFor(() => listed(B2, ch.id), 10_000, 'the join on the other device');
    expect(seen).toMatchObject({ id: ch.id, name: 'lobby', owner: alice, hosted: false });
    const page = await waitFor(async () => {
      const r = await B2.api('GET', `/api/channels/${ch.id}/messages`);
      return r.status === 200 && r.body.messages.length > 0 && r.body;
    });
    expect(page.messages.map((m: any) => m.text)).toEqual(['welcome']);
    const post = await B2.api('POST', `/api/channels/${ch.id}/messages`, { text: 'from desk' });
    expect(post.status).toBe(201);
    await waitFor(async () =>
      (await A.api('GET', `/api/channels/${ch.id}/messages`)).body.messages.some(
        (m: any) => m.text === 'from desk' && m.author === bob,
      ),
    );

    // A channel bob creates on his laptop is his on the desktop too.
    const own = (await B1.api('POST', '/api/channels', { name: 'bobs', allowVisitors: false }))
      .body;
    expect(await waitFor(() => listed(B2, own.id), 10_000, 'the creation')).toMatchObject({
      owner: bob,
    });

    // And one he leaves on the laptop leaves the desktop's list.
    expect((await B1.api('POST', `/api/channels/${ch.id}/leave`)).status).toBe(204);
    await waitFor(async () => !(await listed(B2, ch.id)), 10_000, 'the leave');
    expect((await B2.api('GET', `/api/channels/${ch.id}/messages`)).status).toBe(403);
  });

  it('`hosted` is true on the peer that hosts the channel only: the owner’s second device reads it from the first', async () => {
    // README: "A channel lives on the peer that created it (`hosted: true` there). Members read
    // and post through that peer while it is reachable"; `source` is `host` for the host "over
    // P2P". The owner's other device holds no primary copy: it is a reader like any member.
    const srv = await shared.get();
    const n = names();
    const alice = n('alice');
    const [A1, A2] = await Promise.all([startPeer(srv), startPeer(srv)]);
    await signIn(A1, alice);
    const ch = (await A1.api('POST', '/api/channels', { name: 'home', allowVisitors: false })).body;
    expect(ch.hosted).toBe(true);
    await A1.api('POST', `/api/channels/${ch.id}/messages`, { text: 'on the laptop' });
    await signIn(A2, alice);
    expect(await listed(A2, ch.id)).toMatchObject({ owner: alice, hosted: false });
    expect(await listed(A1, ch.id)).toMatchObject({ owner: alice, hosted: true });
    const page = await waitFor(async () => {
      const r = (await A2.api('GET', `/api/channels/${ch.id}/messages`)).body;
      return r.source === 'host' && r;
    });
    expect(page.messages.map((m: any) => m.text)).toEqual(['on the laptop']);
    const w = await A2.api('POST', `/api/channels/${ch.id}/messages`, { text: 'on the desk' });
    expect(w.body.state).toBe('delivered');
    await waitFor(async () =>
      (await A1.api('GET', `/api/channels/${ch.id}/messages`)).body.messages.some(
        (m: any) => m.text === 'on the desk',
      ),
    );
  });
});

describe('SPEC §9: the connection log', () => {
  it('at 10,000 records a new file starts, the previous one kept as connections.log.1', async () => {
    // Its own server, on a data folder whose log an earlier run left 40 records short of 10,000:
    // the count is of this file's records. A member's sync of its channel is a `sync` record
    // each (PROTOCOL.md §6), up to its reader's share of the log (120 a minute): 100 of them,
    // after its login, fill the file.
    const data = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'hc-rotate-'));
    const earlier = Array.from(
      { length: 10_000 - 40 },
      (_, i) => `t=2024-01-01T00:00:00.000Z ev=status status=online n=${i}`,
    );
    fs.writeFileSync(path.join(data, 'connections.log'), earlier.join('\n') + '\n');
    const srv = await startServer([], { data });
    const { c } = await registerLogin(srv, 'filler');
    const channelId = uuid7();
    await c.req('channel_create', { id: channelId, name: 'filler', allowVisitors: false });
    const answers = await Promise.all(
      Array.from({ length: 100 }, () => c.req('sync', { channelId, since: 0, limit: 1 })),
    );
    expect(answers.filter((a) => a.error)).toEqual([]);
    c.close();
    const current = await waitFor((): string[] | undefined => {
      if (!fs.existsSync(path.join(srv.data, 'connections.log.1'))) return undefined;
      const l = logLines(srv.data);
      return l.length >= 50 ? l : undefined;
    });
    const old = logLines(srv.data, 'connections.log.1');
    expect(old).toHaveLength(10_000);
    expect(old[0]).toMatch(/ ev=status status=online n=0$/);
    expect(old[10_000 - 40]).toMatch(/^t=\S+ ev=listen /);
    expect(old.at(-1)).toMatch(/ ev=sync peer=peer:filler@/);
    for (const l of [...old, ...current]) expect(l).toMatch(/^t=\S+ ev=[a-z_]+( [A-Za-z]+=\S+)*$/);
    expect(
      current.slice(0, 50).every((l) => / ev=sync peer=peer:filler@/.test(l)),
      current.slice(0, 3).join('\n'),
    ).toBe(true);
  });

  it('each transfer names its other end: host:<owner>@<its P2P address> while the host serves, server once it is gone', async () => {
    // SPEC §9: "per transfer (message posted, pushed, fetched, synced; notification), naming the
    // other end as `server` or `host:<user>@<ip>:<port>` so that one can tell where each piece
    // of data came from". The host's address is its P2P one, the `p2p=` of its ready line.
    const srv = await shared.get();
    const n = names();
    const [alice, bob, carol] = [n('alice'), n('bob'), n('carol')];
    const [A, B, C] = await Promise.all([startPeer(srv), startPeer(srv), startPeer(srv)]);
    await Promise.all([signIn(A, alice), signIn(B, bob), signIn(C, carol)]);
    const ch = (await A.api('POST', '/api/channels', { name: 'log', allowVisitors: false })).body;
    await B.api('POST', `/api/channels/${ch.id}/join`);
    await C.api('POST', `/api/channels/${ch.id}/join`);
    const host = `host:${alice}@127.0.0.1:${A.p2pPort}`;
    const a1 = (await A.api('POST', `/api/channels/${ch.id}/messages`, { text: 'a1' })).body;
    const b1 = (await B.api('POST', `/api/channels/${ch.id}/messages`, { text: 'b1' })).body;
    expect([a1.state, b1.state]).toEqual(['delivered', 'delivered']);
    await waitFor(async () => (await C.api('GET', `/api/channels/${ch.id}/messages`)).body);

    const rec = (data: string, ev: string, msg?: string) =>
      logLines(data).filter(
        (l) =>
          l.includes(` ev=${ev} `) &&
          l.includes(`channel=${ch.id}`) &&
          (msg === undefined || l.includes(`msg=${msg}`)),
      );
    // Records reach the file within a moment of the transfer: wait for each one looked at.
    await waitFor(() => rec(B.data, 'post', b1.id).length > 0 && rec(C.data, 'fetch').length > 0);
    // bob's own message: queued, then posted to the host; alice's pushed to him by the host.
    expect(rec(B.data, 'queue', b1.id)).toHaveLength(1);
    expect(rec(B.data, 'post', b1.id)).toEqual([expect.stringContaining(` to=${host} `)]);
    await waitFor(() => rec(C.data, 'push', b1.id).length > 0);
    expect(rec(C.data, 'push', b1.id)).toEqual([expect.stringContaining(` from=${host} `)]);
    expect(rec(C.data, 'fetch').every((l) => l.includes(` from=${host} `))).toBe(true);
    // The host names each member by its user and address; the server got each message once.
    await waitFor(() => rec(A.data, 'post', b1.id).length > 0);
    expect(rec(A.data, 'post', b1.id)).toEqual([
      expect.stringMatching(
        new RegExp(` peer=peer:${bob}@127\\.0\\.0\\.1:\\d+ channel=\\S+ msg=\\S+ seq=\\d+$`),
      ),
    ]);
    await waitFor(() => rec(srv.data, 'forward', b1.id).length === 1);
    // §6: a host writes the server's keys: `post` with `peer=` (a member's, never `to=`), and
    // `push to=members` with `recipients` for a message it passes on to its subscribers (the
    // poster's link left out: bob's subscribed link is among them, he subscribed before he
    // posted); its own message has no `post`, only its `forward` to the server.
    await waitFor(
      () => rec(A.data, 'forward', b1.id).length > 0 && rec(A.data, 'forward', a1.id).length > 0,
    );
    expect(rec(A.data, 'push', b1.id)).toEqual([
      expect.stringMatching(/ ev=push to=members channel=\S+ msg=\S+ recipients=\d+$/),
    ]);
    expect(rec(A.data, 'post', a1.id)).toEqual([]);
    expect(rec(A.data, 'forward', a1.id)).toEqual([
      expect.stringMatching(/ ev=forward to=server channel=\S+ msg=\S+ seq=\d+$/),
    ]);

    // The host goes away: what carol gets now came from the server, and her log says so.
    await A.kill();
    const b2 = (await B.api('POST', `/api/channels/${ch.id}/messages`, { text: 'b2' })).body;
    expect(b2.state).toBe('delivered');
    await waitFor(() => rec(B.data, 'post', b2.id).length > 0);
    expect(rec(B.data, 'post', b2.id)).toEqual([expect.stringContaining(' to=server ')]);
    await waitFor(async () =>
      (await C.api('GET', `/api/channels/${ch.id}/messages`)).body.messages.some(
        (m: any) => m.id === b2.id,
      ),
    );
    await waitFor(() => rec(C.data, 'push', b2.id).length > 0);
    expect(rec(C.data, 'push', b2.id)).toEqual([expect.stringContaining(' from=server ')]);
  });
});

describe('SPEC §3, §5, §6 and README "Local API": offline, unread, names', () => {
  it('status offline: writes wait as pending, calls needing the server are 503 E_OFFLINE; back online, what was missed counts as unread with its mentions', async () => {
    const srv = await shared.get();
    const n = names();
    const [alice, bob] = [n('alice'), n('bob')];
    const [A, B] = await Promise.all([startPeer(srv), startPeer(srv)]);
    await Promise.all([signIn(A, alice), signIn(B, bob)]);
    const ch = (await A.api('POST', '/api/channels', { name: 'un', allowVisitors: true })).body;
    await A.api('POST', `/api/channels/${ch.id}/messages`, { text: 'history' });
    await B.api('POST', `/api/channels/${ch.id}/join`);
    // README: "What was written before you joined a channel … is history, not unread".
    expect(await listed(B, ch.id)).toMatchObject({ unread: 0, mentions: 0 });

    expect((await B.api('PUT', '/api/status', { status: 'offline' })).body).toEqual({
      status: 'offline',
    });
    expect((await B.api('GET', '/api/me')).body).toMatchObject({ status: 'offline' });
    for (const [m, r, body] of [
      ['GET', '/api/peers'],
      ['GET', '/api/directory'],
      ['POST', '/api/channels', { name: 'x', allowVisitors: true }],
      ['POST', `/api/channels/${ch.id}/join`],
    ] as const) {
      const a = await B.api(m, r, body);
      expect([m, r, a.status, a.body.error?.code]).toEqual([m, r, 503, 'E_OFFLINE']);
    }
    // README: "Offline, it answers `pending` at once"; reads answer from the local copy.
    const w = await B.api('POST', `/api/channels/${ch.id}/messages`, { text: 'written offline' });
    expect(w).toMatchObject({ status: 201, body: { state: 'pending' } });
    const local = (await B.api('GET', `/api/channels/${ch.id}/messages`)).body;
    expect(local.source).toBe('local');
    expect(local.messages.at(-1)).toMatchObject({ id: w.body.id, state: 'pending' });

    await A.api('POST', `/api/channels/${ch.id}/messages`, { text: `hey @${bob}` });
    await A.api('POST', `/api/channels/${ch.id}/messages`, { text: 'plain' });
    await A.api('POST', `/api/channels/${ch.id}/messages`, { text: '@here all' });
    await sleep(300);
    expect((await A.api('GET', `/api/channels/${ch.id}/messages`)).body.messages).toHaveLength(4);
    // Nothing of bob's offline message has left his peer.
    expect(
      (await A.api('GET', `/api/channels/${ch.id}/messages`)).body.messages.map((m: any) => m.text),
    ).not.toContain('written offline');

    expect((await B.api('PUT', '/api/status', { status: 'online' })).status).toBe(200);
    await waitFor(async () => (await listed(B, ch.id))?.unread === 3, 10_000, 'unread 3');
    expect(await listed(B, ch.id)).toMatchObject({ unread: 3, mentions: 2 });
    await waitFor(async () =>
      (await B.api('GET', `/api/channels/${ch.id}/messages`)).body.messages.every(
        (m: any) => m.state === 'delivered',
      ),
    );
    expect((await B.api('POST', `/api/channels/${ch.id}/read`)).status).toBe(204);
    expect(await listed(B, ch.id)).toMatchObject({ unread: 0, mentions: 0 });
  });

  it('names follow the documented rules: usernames, passwords, visitor names, channel names', async () => {
    const srv = await shared.get();
    const n = names();
    const P = await startPeer(srv);
    const reg = (username: string, password = 'secret-pw') =>
      P.api('POST', '/api/register', { username, password });
    const code = (a: { status: number; body: any }) => `${a.status} ${a.body?.error?.code ?? ''}`;
    // README: "Usernames: 2–32 of `A-Z a-z 0-9 _ . -`, unique without regard to case."
    expect(code(await reg('a'))).toBe('400 E_BAD_REQUEST');
    expect(code(await reg('x'.repeat(33)))).toBe('400 E_BAD_REQUEST');
    expect(code(await reg('al ice'))).toBe('400 E_BAD_REQUEST');
    const ok = n('Ok.name-');
    expect(await reg(ok)).toEqual({ status: 201, body: { username: ok } });
    expect(code(await reg(ok.toUpperCase()))).toBe('409 E_USERNAME_TAKEN');
    // "Passwords: 6–256 characters."
    expect(code(await reg(n('pw5'), '12345'))).toBe('400 E_BAD_REQUEST');
    expect(code(await reg(n('pw257'), 'p'.repeat(257)))).toBe('400 E_BAD_REQUEST');
    expect((await reg(n('pw256'), 'p'.repeat(256))).status).toBe(201);
    // A wrong password and an unknown user are one error (PROTOCOL.md §7).
    const bad = await P.api('POST', '/api/login', { username: ok, password: 'wrong-pw' });
    const none = await P.api('POST', '/api/login', { username: n('nobody'), password: 'x-x-x-x' });
    expect([code(bad), code(none)]).toEqual(['401 E_BAD_CREDENTIALS', '401 E_BAD_CREDENTIALS']);
    // "Visitor names: 1–32 printable characters but `:` and `@`, not a registered username".
    const visit = (name: string) => P.api('POST', '/api/visitor', { name });
    for (const bad of ['', 'v'.repeat(33), 'a:b', 'a@b']) {
      expect([bad, code(await visit(bad))]).toEqual([bad, '400 E_BAD_REQUEST']);
    }
    expect(code(await visit(ok.toLowerCase()))).toBe('409 E_NAME_TAKEN');
    const guest = n('Guest one');
    expect((await visit(guest)).body).toMatchObject({ username: guest, role: 'visitor' });
    // "Channel names: 1–64 printable characters."
    await P.api('POST', '/api/login', { username: ok, password: 'secret-pw' });
    const mk = (name: string) => P.api('POST', '/api/channels', { name, allowVisitors: false });
    expect(code(await mk(''))).toBe('400 E_BAD_REQUEST');
    expect(code(await mk('c'.repeat(65)))).toBe('400 E_BAD_REQUEST');
    expect((await mk('c'.repeat(64))).status).toBe(201);
  });
});
