/**
 * An outsider's contract test: drives `bin/hchat` as separate processes and each peer's local JSON
 * API exactly as SPEC §10 (and README "Local API") define them, with no knowledge of src/.
 * Tests that fail here are places where the running product differs from that contract.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { api, authHeaders, waitFor, type ApiAnswer } from '../testnet.js';

const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'bin/hchat');
const TOP = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-contract-'));
const live = new Set<ChildProcess>();
const streams = new Set<AbortController>();

afterAll(() => {
  for (const c of streams) c.abort();
  for (const p of live) p.kill('SIGKILL');
  fs.rmSync(TOP, { recursive: true, force: true });
});

interface Proc {
  child: ChildProcess;
  ready: string;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
  kill(sig?: NodeJS.Signals): Promise<void>;
}

/** Runs `bin/hchat args…`, waits for its first stdout line matching `ready` (or any line for demo). */
function run(args: string[], until: RegExp = /^ready /m, ms = 20_000): Promise<Proc> {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HCHAT_LOG_LEVEL: 'warn' },
  });
  live.add(child);
  // Every process stops by itself, whatever the test does.
  const guard = setTimeout(() => child.kill('SIGKILL'), 120_000);
  guard.unref();
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      live.delete(child);
      clearTimeout(guard);
      resolve(code);
    }),
  );
  child.stderr!.on('data', (d) => (err += d));
  return new Promise<Proc>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`no ready line from hchat ${args.join(' ')}\nstdout: ${out}\nstderr: ${err}`),
      );
    }, ms);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = until.exec(out);
      if (m) {
        clearTimeout(timer);
        const line = out.slice(m.index).split('\n')[0]!;
        resolve({
          child,
          ready: line,
          out: () => out,
          err: () => err,
          exited,
          async kill(sig: NodeJS.Signals = 'SIGTERM') {
            if (child.exitCode !== null || child.signalCode !== null) return;
            child.kill(sig);
            await exited;
          },
        });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`hchat ${args.join(' ')} exited ${code}\nstdout: ${out}\nstderr: ${err}`));
    });
  });
}

const SERVER_READY =
  /^ready tcp=(\d+\.\d+\.\d+\.\d+):(\d+) http=http:\/\/(\d+\.\d+\.\d+\.\d+):(\d+)\/ fingerprint=([A-Za-z0-9_-]{43})$/;
const PEER_READY =
  /^ready ui=http:\/\/127\.0\.0\.1:(\d+)\/\?token=([A-Za-z0-9_.~-]+) p2p=(\d+\.\d+\.\d+\.\d+):(\d+) udp=(\d+\.\d+\.\d+\.\d+):(\d+)$/;

interface Server extends Proc {
  tcp: string;
  http: string;
  fp: string;
  data: string;
}
async function startServer(name = 'srv', port = 0): Promise<Server> {
  const data = path.join(TOP, name);
  const p = await run(['server', '--port', String(port), '--http-port', '0', '--data', data]);
  const m = SERVER_READY.exec(p.ready);
  if (!m) throw new Error(`server ready line: ${p.ready}`);
  return Object.assign(p, {
    tcp: `${m[1]}:${m[2]}`,
    http: `http://${m[3]}:${m[4]}/`,
    fp: m[5]!,
    data,
  });
}

interface Peer extends Proc {
  ui: string;
  data: string;
  args: string[];
  call<T = any>(method: string, route: string, body?: unknown): Promise<ApiAnswer<T>>;
}
async function startPeer(data: string, serverArg: string, extra: string[] = []): Promise<Peer> {
  const args = ['peer', '--server', serverArg, '--data', data, ...extra];
  const p = await run(args);
  if (!PEER_READY.test(p.ready)) throw new Error(`peer ready line: ${p.ready}`);
  const ui = p.ready.split(' ')[1]!.slice(3);
  return Object.assign(p, {
    ui,
    data,
    args,
    call: <T = any>(method: string, route: string, body?: unknown) =>
      api<T>(ui, method, route, body),
  });
}
/** Stops (SIGKILL by default: a crash) and starts a peer again on the same data and flags. */
async function restart(p: Peer, sig: NodeJS.Signals = 'SIGKILL'): Promise<Peer> {
  await p.kill(sig);
  const again = await run(p.args);
  const ui = again.ready.split(' ')[1]!.slice(3);
  return Object.assign(again, {
    ui,
    data: p.data,
    args: p.args,
    call: <T = any>(method: string, route: string, body?: unknown) =>
      api<T>(ui, method, route, body),
  });
}

let userN = 0;
/** Registers and logs in a fresh user on `p`; answers the user's name. */
async function signUp(p: Peer, base: string): Promise<string> {
  const username = `${base}${++userN}${process.pid % 1000}`;
  const r = await p.call('POST', '/api/register', { username, password: `${username}-pw` });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  const l = await p.call('POST', '/api/login', { username, password: `${username}-pw` });
  expect(l.status, JSON.stringify(l.body)).toBe(200);
  return username;
}

type Msg = { id: string; author: string; ts: number; text: string; state: string };
async function page(p: Peer, ch: string, q = ''): Promise<{ messages: Msg[]; source: string }> {
  const r = await p.call('GET', `/api/channels/${ch}/messages${q}`);
  if (r.status !== 200) throw new Error(`messages ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}
async function texts(p: Peer, ch: string): Promise<string[]> {
  return (await page(p, ch, '?limit=500')).messages.map((m) => m.text);
}

/** A process's connections.log, parsed (`key=value`, %XX decoded). */
function readLog(dir: string): Array<Record<string, string>> {
  const file = path.join(dir, 'connections.log');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const rec: Record<string, string> = {};
      for (const kv of line.split(' ')) {
        const i = kv.indexOf('=');
        rec[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1));
      }
      return rec;
    });
}
function rawLog(dir: string): string {
  const file = path.join(dir, 'connections.log');
  return fs.existsSync(file) ? fs.readFileSync(file, 'latin1') : '';
}

function expectError(r: ApiAnswer, status: number, code?: string): void {
  const what = `${r.status} ${JSON.stringify(r.body)}`;
  expect(r.status, what).toBe(status);
  expect(r.body?.error, what).toBeTruthy();
  expect(typeof r.body.error.code, what).toBe('string');
  expect(typeof r.body.error.message, what).toBe('string');
  expect(r.body.error.message.length, what).toBeGreaterThan(0);
  if (code) expect(r.body.error.code, what).toBe(code);
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

type Ev = { id: number; event: string; data: any };
/** Reads a peer's `GET /api/events` (SSE) until the file ends. */
function collectEvents(base: string): { events: Ev[]; ready: Promise<void> } {
  const events: Ev[] = [];
  const ctrl = new AbortController();
  streams.add(ctrl);
  const ready = (async () => {
    const res = await fetch(new URL('/api/events', base), {
      signal: ctrl.signal,
      headers: authHeaders(base),
    });
    if (res.status !== 200) throw new Error(`events: ${res.status}`);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    void (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buf += decoder.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const e: Record<string, string> = {};
            for (const line of block.split('\n')) {
              const m = /^(\w+): ?(.*)$/.exec(line);
              if (m) e[m[1]!] = m[2]!;
            }
            if (e.event)
              events.push({ id: Number(e.id), event: e.event, data: JSON.parse(e.data ?? 'null') });
          }
        }
      } catch {
        // aborted at the end
      }
    })();
  })();
  return { events, ready };
}

// ---------------------------------------------------------------------------------------------

describe('SPEC §10 command lines', () => {
  let srv: Server;

  it('hchat server with port 0 prints exactly one ready line: tcp=IP:PORT http=http://IP:PORT/ fingerprint=…', async () => {
    srv = await startServer();
    expect(srv.ready).toMatch(SERVER_READY);
    // The ready line is the only stdout line (§10: "it prints one line").
    await new Promise((r) => setTimeout(r, 200));
    expect(srv.out().trim().split('\n')).toEqual([srv.ready]);
    const h = await fetch(new URL('/health', srv.http));
    expect(h.status).toBe(200);
  });

  it('hchat peer prints one ready line ui=…?token= p2p= udp=, and --server host:port#fingerprint pins the key', async () => {
    const p = await startPeer(path.join(TOP, 'pin'), `${srv.tcp}#${srv.fp}`, [
      '--p2p-port',
      '0',
      '--udp-port',
      '0',
      '--ui-port',
      '0',
      '--host',
      '127.0.0.1',
    ]);
    expect(p.ready).toMatch(PEER_READY);
    const u = await signUp(p, 'pin');
    const me = await p.call('GET', '/api/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ username: u, role: 'user', status: 'online' });
    expect(typeof me.body.sessionId).toBe('string');
    await p.kill();
  });

  it('a wrong pinned fingerprint is refused: the API answers 502 E_SERVER_KEY_MISMATCH (README)', async () => {
    const wrong = 'A'.repeat(43);
    const p = await startPeer(path.join(TOP, 'wrongpin'), `${srv.tcp}#${wrong}`);
    const r = await p.call('POST', '/api/register', {
      username: 'nobodyhere',
      password: 'secret-pw',
    });
    expectError(r, 502, 'E_SERVER_KEY_MISMATCH');
    await p.kill();
  });

  it('--server a:PORT,b:PORT: a dead first address, the peer uses the next that answers', async () => {
    const dead = await freePort();
    const p = await startPeer(path.join(TOP, 'multi'), `127.0.0.1:${dead},${srv.tcp}`);
    await signUp(p, 'multi');
    const me = await p.call('GET', '/api/me');
    expect(me.body.connection).toBe('connected');
    await p.kill();
  });

  it('three users logging in at the same moment on one machine are all let in (no 429 for honest logins)', async () => {
    const ps = await Promise.all(
      ['l1', 'l2', 'l3'].map((n) => startPeer(path.join(TOP, n), srv.tcp)),
    );
    const names = ps.map((_, i) => `par${i}x${process.pid % 1000}`);
    for (let i = 0; i < 3; i++) {
      const r = await ps[i]!.call('POST', '/api/register', {
        username: names[i],
        password: 'parallel-pw',
      });
      expect(r.status).toBe(201);
    }
    const logins = await Promise.all(
      ps.map((p, i) =>
        p.call('POST', '/api/login', { username: names[i], password: 'parallel-pw' }),
      ),
    );
    await Promise.all(ps.map((p) => p.kill()));
    expect(logins.map((l) => `${l.status} ${l.body?.error?.code ?? l.body.username}`)).toEqual(
      names.map((n) => `200 ${n}`),
    );
  });

  it('restarted on the same --data, a peer resumes its session (no new login) and its token', async () => {
    const p = await startPeer(path.join(TOP, 'resume'), srv.tcp);
    const u = await signUp(p, 'resume');
    const before = (await p.call('GET', '/api/me')).body;
    const token = new URL(p.ui).searchParams.get('token');
    const q = await restart(p, 'SIGTERM');
    expect(new URL(q.ui).searchParams.get('token')).toBe(token);
    const after = await q.call('GET', '/api/me');
    expect(after.status, JSON.stringify(after.body)).toBe(200);
    expect(after.body).toMatchObject({ username: u, role: 'user', sessionId: before.sessionId });
    await q.kill();
  });

  it('hchat demo prints a server and peers alice, bob, carol with ui= URLs; the peers are logged in', async () => {
    const demo = await run(['demo'], /Ctrl-C/, 40_000);
    try {
      const out = demo.out();
      const byName: Record<string, string> = {};
      for (const name of ['alice', 'bob', 'carol']) {
        const m = new RegExp(
          `^peer ${name} +(ui=http://127\\.0\\.0\\.1:\\d+/\\?token=\\S+) p2p=\\S+ udp=\\S+`,
          'm',
        ).exec(out);
        expect(m, out).toBeTruthy();
        byName[name] = m![1]!.slice(3);
      }
      expect(out).toMatch(/^server tcp=\S+ http=http:\/\/\S+\/ fingerprint=\S+/m);
      const me = await api(byName.bob!, 'GET', '/api/me');
      expect(me.body).toMatchObject({ username: 'bob', role: 'user' });
      const ch = await api(byName.carol!, 'GET', '/api/channels');
      expect(ch.body.map((c: any) => c.name)).toContain('general');
    } finally {
      await demo.kill('SIGINT');
    }
  });

  it('npm start runs the demo (package.json "start")', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.scripts.start).toMatch(/hchat(\.js)? demo|bin\/hchat demo/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('SPEC §10 local API: answers, errors, visitors, events', () => {
  let srv: Server;
  let A: Peer; // alice: hosts `open` (visitors allowed) and `closed`
  let B: Peer; // bob: a member
  let V: Peer; // a visitor
  let alice: string;
  let bob: string;
  let open: any;
  let closed: any;
  let evB: ReturnType<typeof collectEvents>;
  let srvPort: number;

  it('register 201 {username}, login {username, role:"user", sessionId}, me, status, peers, channels', async () => {
    srvPort = await freePort();
    srv = await startServer('srv2', srvPort);
    [A, B, V] = await Promise.all([
      startPeer(path.join(TOP, 'a2'), srv.tcp),
      startPeer(path.join(TOP, 'b2'), srv.tcp),
      startPeer(path.join(TOP, 'v2'), srv.tcp),
    ]);
    alice = `alice${process.pid % 1000}`;
    const reg = await A.call('POST', '/api/register', {
      username: alice,
      password: 'alice-secret',
    });
    expect(reg.status).toBe(201);
    expect(reg.body).toEqual({ username: alice });
    const login = await A.call('POST', '/api/login', { username: alice, password: 'alice-secret' });
    expect(login.status).toBe(200);
    expect(login.body).toMatchObject({ username: alice, role: 'user' });
    expect(typeof login.body.sessionId).toBe('string');
    const me = await A.call('GET', '/api/me');
    expect(me.body).toMatchObject({
      username: alice,
      role: 'user',
      status: 'online',
      sessionId: login.body.sessionId,
    });
    const st = await A.call('PUT', '/api/status', { status: 'online' });
    expect(st.status).toBe(200);
    expect(st.body).toEqual({ status: 'online' });

    const c1 = await A.call('POST', '/api/channels', { name: 'open', allowVisitors: true });
    expect(c1.status).toBe(201);
    open = c1.body;
    expect(open).toMatchObject({
      name: 'open',
      owner: alice,
      allowVisitors: true,
      hosted: true,
      unread: 0,
    });
    expect(typeof open.id).toBe('string');
    const c2 = await A.call('POST', '/api/channels', { name: 'closed', allowVisitors: false });
    closed = c2.body;

    bob = await signUp(B, 'bob');
    evB = collectEvents(B.ui);
    await evB.ready;
    const peers = await B.call('GET', '/api/peers');
    expect(peers.status).toBe(200);
    for (const e of peers.body) {
      expect(typeof e.username).toBe('string');
      expect(typeof e.ip).toBe('string');
      expect(typeof e.port).toBe('number');
      expect(typeof e.sessionId).toBe('string');
      expect(typeof e.status).toBe('string');
    }
    const dir = await B.call('GET', '/api/directory');
    expect(dir.body.map((c: any) => c.id)).toEqual(expect.arrayContaining([open.id, closed.id]));
    const j = await B.call('POST', `/api/channels/${open.id}/join`);
    expect(j.status).toBe(200);
    expect(j.body).toMatchObject({
      id: open.id,
      name: 'open',
      owner: alice,
      allowVisitors: true,
      hosted: false,
    });
    const mine = await B.call('GET', '/api/channels');
    const row = mine.body.find((c: any) => c.id === open.id);
    expect(row).toMatchObject({
      id: open.id,
      name: 'open',
      owner: alice,
      allowVisitors: true,
      hosted: false,
    });
    expect(typeof row.unread).toBe('number');
  });

  it('posting answers 201 {id, state}; messages answer {messages:[{id, author, ts, text, state}], source:"host"}', async () => {
    const texts0 = ['m1', 'm2', 'm3', 'm4', 'm5'];
    for (const t of texts0) {
      const who = t === 'm3' ? A : B;
      const r = await who.call('POST', `/api/channels/${open.id}/messages`, { text: t });
      expect(r.status).toBe(201);
      expect(Object.keys(r.body).sort()).toEqual(expect.arrayContaining(['id', 'state']));
      expect(['pending', 'delivered']).toContain(r.body.state);
    }
    const pb = await waitFor(async () => {
      const p = await page(B, open.id);
      return p.messages.length === 5 ? p : null;
    });
    expect(pb.source).toBe('host');
    expect(pb.messages.map((m) => m.text)).toEqual(texts0);
    for (const m of pb.messages) {
      expect(typeof m.id).toBe('string');
      expect(typeof m.author).toBe('string');
      expect(typeof m.ts).toBe('number');
      expect(m.state).toBe('delivered');
    }
    const pa = await page(A, open.id);
    expect(pa.source).toBe('host'); // README: "this peer itself for channels it hosts"
    expect(pa.messages.map((m) => m.id)).toEqual(pb.messages.map((m) => m.id));
  });

  it('GET /api/openapi.json serves docs/local-api.openapi.json (README "The API\'s description")', async () => {
    const served = await B.call('GET', '/api/openapi.json');
    expect(served.status).toBe(200);
    const doc = JSON.parse(fs.readFileSync(path.join(ROOT, 'docs/local-api.openapi.json'), 'utf8'));
    expect(served.body).toEqual(doc);
  });

  it('events: reconnecting with ?since=<id> replays what came after it', async () => {
    const ev = collectEvents(B.ui);
    await ev.ready;
    const r1 = await A.call('POST', `/api/channels/${open.id}/messages`, { text: 'since-1' });
    const e1 = await waitFor(() =>
      ev.events.find((e) => e.event === 'message' && e.data.message?.id === r1.body.id),
    );
    const r2 = await A.call('POST', `/api/channels/${open.id}/messages`, { text: 'since-2' });
    await waitFor(() =>
      ev.events.find((e) => e.event === 'message' && e.data.message?.id === r2.body.id),
    );
    const res = await fetch(new URL(`/api/events?since=${e1.id}`, B.ui), {
      headers: authHeaders(B.ui),
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    const deadline = Date.now() + 3000;
    while (!text.includes(r2.body.id) && Date.now() < deadline) {
      const { value, done } = await Promise.race([
        reader.read(),
        new Promise<{ value: undefined; done: true }>((r) =>
          setTimeout(() => r({ value: undefined, done: true }), 3000),
        ),
      ]);
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    await reader.cancel();
    expect(text).toContain(r2.body.id);
    expect(text).not.toContain(`"id":"${r1.body.id}","channelId"`);
  });

  it('?limit=&before= pages back through history, oldest first, without gaps or repeats', async () => {
    const all = (await page(B, open.id)).messages.map((m) => m.id);
    const p1 = (await page(B, open.id, '?limit=2')).messages.map((m) => m.id);
    expect(p1).toEqual(all.slice(-2));
    const p2 = (await page(B, open.id, `?limit=2&before=${p1[0]}`)).messages.map((m) => m.id);
    expect(p2).toEqual(all.slice(-4, -2));
    const p3 = (await page(B, open.id, `?limit=500&before=${p2[0]}`)).messages.map((m) => m.id);
    expect(p3).toEqual(all.slice(0, -4));
  });

  it('live events: a message event reaches a member without polling', async () => {
    const r = await A.call('POST', `/api/channels/${open.id}/messages`, { text: 'pushed' });
    const e = await waitFor(() =>
      evB.events.find((x) => x.event === 'message' && x.data?.message?.id === r.body.id),
    );
    expect(e.data.channelId).toBe(open.id);
    expect(e.data.message).toMatchObject({ id: r.body.id, author: alice, text: 'pushed' });
    // joining a hosted channel is told as `sync` events (switch to the host, catch-up done)
    expect(evB.events.some((x) => x.event === 'sync' && x.data.channelId === open.id)).toBe(true);
  });

  it('bad input answers {"error":{code,message}} with a fitting status', async () => {
    expectError(
      await B.call('POST', '/api/register', {
        username: alice.toUpperCase(),
        password: 'whatever1',
      }),
      409,
    );
    expectError(
      await B.call('POST', '/api/register', { username: 'x y', password: 'whatever1' }),
      400,
    );
    expectError(await B.call('POST', '/api/register', { username: 'okname' }), 400);
    expectError(await B.call('PUT', '/api/status', { status: 'away' }), 400);
    expectError(await B.call('POST', '/api/channels', { allowVisitors: true }), 400);
    expectError(await B.call('POST', '/api/channels', { name: 'v', allowVisitors: 'yes' }), 400);
    expectError(await B.call('POST', `/api/channels/${open.id}/messages`, { text: '' }), 400);
    expectError(
      await B.call('POST', `/api/channels/${open.id}/messages`, { text: 'x'.repeat(4001) }),
      400,
    );
    expectError(await B.call('POST', `/api/channels/${open.id}/messages`, '{"text":'), 400);
    expectError(await B.call('GET', `/api/channels/${open.id}/messages?limit=0`), 400);
    expectError(await B.call('GET', `/api/channels/${open.id}/messages?limit=abc`), 400);
    expectError(await B.call('GET', `/api/channels/${open.id}/messages?before=not-an-id`), 400);
    expectError(await B.call('GET', '/api/channels/not-a-channel/messages'), 400);
    expectError(
      await B.call('POST', `/api/channels/${closed.id}/messages`, { text: 'not joined' }),
      403,
      'E_NOT_MEMBER',
    );
    expectError(await B.call('GET', `/api/channels/${closed.id}/messages`), 403, 'E_NOT_MEMBER');
    expectError(await B.call('GET', '/api/nothing'), 404);
    const nope = await fetch(new URL('/api/me', B.ui));
    expectError({ status: nope.status, body: await nope.json() }, 401, 'E_API_TOKEN');
  });

  it('text of 4000 characters is accepted (README: text 1–4000 characters), also when they are emoji', async () => {
    const a = await B.call('POST', `/api/channels/${open.id}/messages`, { text: 'x'.repeat(4000) });
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    const e = await B.call('POST', `/api/channels/${open.id}/messages`, {
      text: '😀'.repeat(4000),
    });
    expect(e.status, JSON.stringify(e.body)).toBe(201);
  });

  it('a channel that does not exist is 404 E_CHANNEL_NOT_FOUND for join, read and post (not "join it first")', async () => {
    const ghost = '01a23f22-0000-7000-8000-000000000000';
    expectError(await B.call('POST', `/api/channels/${ghost}/join`), 404, 'E_CHANNEL_NOT_FOUND');
    expectError(await B.call('GET', `/api/channels/${ghost}/messages`), 404, 'E_CHANNEL_NOT_FOUND');
    expectError(
      await B.call('POST', `/api/channels/${ghost}/messages`, { text: 'hello?' }),
      404,
      'E_CHANNEL_NOT_FOUND',
    );
  });

  it('a failed login attempt (wrong password) leaves the current session logged in', async () => {
    const bad = await B.call('POST', '/api/login', { username: bob, password: 'wrong-password' });
    expectError(bad, 401, 'E_BAD_CREDENTIALS');
    const me = await B.call('GET', '/api/me');
    try {
      expect(me.status, JSON.stringify(me.body)).toBe(200);
      expect(me.body.username).toBe(bob);
    } finally {
      // log in again, so that the next tests run as bob whatever happened
      await B.call('POST', '/api/login', { username: bob, password: `${bob}-pw` });
      evB = collectEvents(B.ui);
      await evB.ready;
    }
  });

  it('a refused visitor entry (409 E_NAME_TAKEN) leaves the current session logged in', async () => {
    const bad = await B.call('POST', '/api/visitor', { name: alice });
    expectError(bad, 409, 'E_NAME_TAKEN');
    const me = await B.call('GET', '/api/me');
    try {
      expect(me.status, JSON.stringify(me.body)).toBe(200);
      expect(me.body.username).toBe(bob);
    } finally {
      await B.call('POST', '/api/login', { username: bob, password: `${bob}-pw` });
      evB = collectEvents(B.ui);
      await evB.ready;
    }
  });

  it('visitors: POST /api/visitor, read a channel that allows visitors, never one that does not, write nothing', async () => {
    const evA = collectEvents(A.ui);
    await evA.ready;
    const v = await V.call('POST', '/api/visitor', { name: 'Guest Reader' });
    expect(v.status).toBe(200);
    expect(v.body).toMatchObject({ username: 'Guest Reader', role: 'visitor' });
    expect(typeof v.body.sessionId).toBe('string');
    const me = await V.call('GET', '/api/me');
    expect(me.body).toMatchObject({ role: 'visitor', sessionId: v.body.sessionId });
    const dir = await V.call('GET', '/api/directory');
    const ids = dir.body.map((c: any) => c.id);
    expect(ids).toContain(open.id);
    expect(ids).not.toContain(closed.id);
    const j = await V.call('POST', `/api/channels/${open.id}/join`);
    expect(j.status).toBe(200);
    const pg = await waitFor(async () => {
      const p = await page(V, open.id);
      return p.messages.length >= 6 ? p : null;
    });
    expect(pg.messages.map((m) => m.text)).toContain('m1');
    expect(pg.source).toBe('host');
    expectError(
      await V.call('POST', `/api/channels/${open.id}/messages`, { text: 'spam' }),
      403,
      'E_VISITOR_READ_ONLY',
    );
    expectError(
      await V.call('POST', '/api/channels', { name: 'mine', allowVisitors: true }),
      403,
      'E_VISITOR_READ_ONLY',
    );
    const jc = await V.call('POST', `/api/channels/${closed.id}/join`);
    expect(jc.status).toBeGreaterThanOrEqual(400);
    expect(jc.status).toBeLessThan(500);
    const rc = await V.call('GET', `/api/channels/${closed.id}/messages`);
    expect(rc.status).toBeGreaterThanOrEqual(400);
    expect(JSON.stringify(rc.body)).not.toContain('m1');
    // the visitor's join is a presence the host can see? At least a presence event for a peer.
    expect((await A.call('GET', '/api/channels')).body.length).toBe(2);
  });

  it('logout answers 204 and ends the session', async () => {
    const r = await fetch(new URL('/api/logout', V.ui), {
      method: 'POST',
      headers: { authorization: `Bearer ${new URL(V.ui).searchParams.get('token')}` },
    });
    expect(r.status).toBe(204);
    expectError(await V.call('GET', '/api/me'), 401);
  });

  it('presence events: a member going offline and back shows as left / joined', async () => {
    const evA = collectEvents(A.ui);
    await evA.ready;
    await B.call('PUT', '/api/status', { status: 'offline' });
    await waitFor(
      () =>
        evA.events.find(
          (e) =>
            e.event === 'presence' &&
            e.data.kind === 'left' &&
            JSON.stringify(e.data).includes(bob),
        ),
      8000,
      'presence left',
    );
    // The peer that left is shown as it is now: offline (found by this tester: it said online).
    const left = evA.events.find(
      (e) =>
        e.event === 'presence' && e.data.kind === 'left' && JSON.stringify(e.data).includes(bob),
    );
    expect(left?.data.peer.status).toBe('offline');
    await B.call('PUT', '/api/status', { status: 'online' });
    await waitFor(
      () =>
        evA.events.find(
          (e) =>
            e.event === 'presence' &&
            e.data.kind === 'joined' &&
            JSON.stringify(e.data).includes(bob),
        ),
      8000,
      'presence joined',
    );
  });

  it('stream events: going live in a channel is told to its members', async () => {
    const r = await A.call('POST', `/api/channels/${open.id}/streams`, {
      source: 'synthetic',
      fps: 5,
      bitrateKbps: 100,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const e = await waitFor(
      () =>
        evB.events.find(
          (x) =>
            x.event === 'stream' && x.data.streamId === r.body.streamId && x.data.state === 'live',
        ),
      8000,
      'stream live event',
    );
    expect(e.data).toMatchObject({ channelId: open.id, streamer: alice });
    const del = await fetch(new URL(`/api/streams/${r.body.streamId}`, A.ui), {
      method: 'DELETE',
      headers: { authorization: `Bearer ${new URL(A.ui).searchParams.get('token')}` },
    });
    expect(del.status).toBe(204);
    await waitFor(
      () =>
        evB.events.find(
          (x) =>
            x.event === 'stream' && x.data.streamId === r.body.streamId && x.data.state === 'ended',
        ),
      8000,
      'stream ended event',
    );
  });

  it('the connection log is printable ASCII key=value lines naming `server` or `host:<user>@ip:port`', async () => {
    for (const dir of [A.data, B.data, srv.data]) {
      const raw = rawLog(dir);
      expect(raw.length).toBeGreaterThan(0);
      expect(/^[\x20-\x7e\n]*$/.test(raw)).toBe(true);
      for (const line of raw.trim().split('\n'))
        expect(line).toMatch(/^t=\S+ ev=\S+( [A-Za-z0-9_]+=\S*)*$/);
    }
    const logB = readLog(B.data);
    expect(logB.some((r) => r.peer === 'server')).toBe(true);
    // the server names peers peer:<user>@ip:port
    expect(
      readLog(srv.data).some((r) =>
        new RegExp(`^peer:${bob}@127\\.0\\.0\\.1:\\d+$`).test(r.peer ?? ''),
      ),
    ).toBe(true);
    expect(logB.some((r) => r.from?.startsWith(`host:${alice}@127.0.0.1:`))).toBe(true);
  });

  it('one user on two peers (SPEC §2): both sessions listed, the second device has the same channels and messages', async () => {
    const B2 = await startPeer(path.join(TOP, 'b2bis'), srv.tcp);
    try {
      const l = await B2.call('POST', '/api/login', { username: bob, password: `${bob}-pw` });
      expect(l.status, JSON.stringify(l.body)).toBe(200);
      await waitFor(
        async () =>
          (await A.call('GET', '/api/peers')).body.filter((e: any) => e.username === bob).length ===
          2,
        8000,
        "two bob sessions in alice's list",
      );
      const chans = await waitFor(
        async () => {
          const c = await B2.call('GET', '/api/channels');
          return c.body.some?.((x: any) => x.id === open.id) ? c.body : null;
        },
        8000,
        'the second device lists the joined channel',
      );
      expect(chans.find((x: any) => x.id === open.id).hosted).toBe(false);
      const r = await B2.call('POST', `/api/channels/${open.id}/messages`, {
        text: 'from my laptop',
      });
      expect(r.status).toBe(201);
      await waitFor(
        async () => (await texts(B, open.id)).includes('from my laptop'),
        8000,
        'seen on the first device',
      );
      expect(await texts(B2, open.id)).toContain('m1');
    } finally {
      await B2.call('POST', '/api/logout');
      await B2.kill();
    }
  });

  it('invisible: works normally, but other users see the user as gone (peers, presence, members)', async () => {
    const evA = collectEvents(A.ui);
    await evA.ready;
    expect((await B.call('PUT', '/api/status', { status: 'invisible' })).body).toEqual({
      status: 'invisible',
    });
    await waitFor(
      async () => !(await A.call('GET', '/api/peers')).body.some((e: any) => e.username === bob),
      8000,
      'bob hidden',
    );
    const members = await A.call('GET', `/api/channels/${open.id}/members`);
    expect(members.body.find((m: any) => m.username === bob)?.status).toBe('offline');
    const r = await B.call('POST', `/api/channels/${open.id}/messages`, {
      text: 'from the shadows',
    });
    expect(r.body.state).toBe('delivered');
    await waitFor(async () => (await texts(A, open.id)).includes('from the shadows'));
    expect(
      evA.events.some(
        (e) => e.event === 'presence' && e.data.kind === 'left' && e.data.peer?.username === bob,
      ),
    ).toBe(true);
    expect((await B.call('PUT', '/api/status', { status: 'online' })).status).toBe(200);
  });

  it('restart on the same --data resumes session, caches and outbox: read and write with the server down', async () => {
    await srv.kill('SIGKILL');
    B = await restart(B, 'SIGKILL');
    const me = await B.call('GET', '/api/me');
    expect(me.status, JSON.stringify(me.body)).toBe(200);
    expect(me.body.username).toBe(bob);
    // the host is still up: bob may read it P2P, or his own copy; never nothing
    const pg = await page(B, open.id, '?limit=500');
    expect(['host', 'local']).toContain(pg.source);
    expect(pg.messages.map((m) => m.text)).toContain('m1');
    // bob goes offline (no link at all) and writes; then his process is killed
    await B.call('PUT', '/api/status', { status: 'offline' });
    expect((await page(B, open.id)).source).toBe('local');
    const w = await B.call('POST', `/api/channels/${open.id}/messages`, {
      text: 'written while down',
    });
    expect(w.status).toBe(201);
    expect(w.body.state).toBe('pending');
    B = await restart(B, 'SIGKILL');
    srv = await startServer('srv2', srvPort);
    expect((await B.call('PUT', '/api/status', { status: 'online' })).status).toBe(200);
    await waitFor(
      async () =>
        (await page(B, open.id, '?limit=500')).messages.find((m) => m.id === w.body.id)?.state ===
        'delivered',
      15_000,
      'delivered',
    );
    await waitFor(
      async () => (await texts(A, open.id)).includes('written while down'),
      15_000,
      'alice has it',
    );
    expect((await texts(A, open.id)).filter((t) => t === 'written while down').length).toBe(1);
  });

  it('shut down', async () => {
    await Promise.all([A.kill(), B.kill(), V.kill()]);
    await srv.kill('SIGINT');
  });
});

// ---------------------------------------------------------------------------------------------

/**
 * SPEC Appendix, the five synchronization scenarios, end to end with real processes: alice hosts
 * `sync`, bob (X) and carol (Y) are members. Every step checks that no message is lost or doubled.
 */
describe('SPEC Appendix: the five synchronization scenarios', () => {
  let srv: Server;
  let H: Peer; // host (owner)
  let X: Peer;
  let Y: Peer;
  let alice: string;
  let bob: string;
  let carol: string;
  let ch: string;
  const ids: Record<string, string> = {};

  async function post(p: Peer, text: string): Promise<string> {
    const r = await p.call('POST', `/api/channels/${ch}/messages`, { text });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    ids[text] = r.body.id;
    return r.body.id;
  }
  /** Waits until `p` shows exactly `want` (each once), in any order; answers the page. */
  async function sees(p: Peer, want: string[], ms = 10_000) {
    let last: string[] = [];
    return waitFor(
      async () => {
        const pg = await page(p, ch, '?limit=500');
        last = pg.messages.map((m) => m.text);
        return want.every((t) => last.filter((x) => x === t).length === 1) ? pg : null;
      },
      ms,
      () => `${want.join(',')} once each; has ${last.join(',')}`,
    );
  }
  function noDuplicates(list: string[]) {
    expect(list.length).toBe(new Set(list).size);
  }
  /** How many server log records `ev` name message `id`. */
  function serverCount(ev: string, id: string): number {
    return readLog(srv.data).filter((r) => r.ev === ev && r.msg === id).length;
  }

  it('setup: host online, two members joined, chat flows P2P (source host)', async () => {
    srv = await startServer('srv3');
    [H, X, Y] = await Promise.all([
      startPeer(path.join(TOP, 'h3'), srv.tcp),
      startPeer(path.join(TOP, 'x3'), srv.tcp),
      startPeer(path.join(TOP, 'y3'), srv.tcp),
    ]);
    alice = await signUp(H, 'alice');
    bob = await signUp(X, 'bob');
    carol = await signUp(Y, 'carol');
    ch = (await H.call('POST', '/api/channels', { name: 'sync', allowVisitors: false })).body.id;
    expect((await X.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
    expect((await Y.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
    await post(H, 'A0');
    await sees(X, ['A0']);
    await sees(Y, ['A0']);
    expect((await page(X, ch)).source).toBe('host');
  });

  it('3. livestream period: all chat goes through the host; the server gets one copy of each and serves none', async () => {
    const live = await H.call('POST', `/api/channels/${ch}/streams`, {
      source: 'synthetic',
      fps: 10,
      bitrateKbps: 200,
    });
    expect(live.status).toBe(201);
    // bob learns of the stream (GET /api/streams), then watches it
    await waitFor(
      async () => {
        const l = await X.call('GET', '/api/streams');
        return l.body.some?.((s: any) => s.streamId === live.body.streamId);
      },
      8000,
      'the stream listed at bob',
    );
    const w = await X.call('POST', `/api/streams/${live.body.streamId}/watch`);
    expect(w.status, JSON.stringify(w.body)).toBe(200);
    const mine: string[] = [];
    for (let i = 0; i < 4; i++) {
      mine.push(await post(H, `L-h${i}`), await post(X, `L-x${i}`), await post(Y, `L-y${i}`));
    }
    const want = [0, 1, 2, 3].flatMap((i) => [`L-h${i}`, `L-x${i}`, `L-y${i}`]);
    const [px, py, ph] = [await sees(X, want), await sees(Y, want), await sees(H, want)];
    expect(px.source).toBe('host');
    expect(py.source).toBe('host');
    expect(px.messages.map((m) => m.id)).toEqual(ph.messages.map((m) => m.id));
    expect(py.messages.map((m) => m.id)).toEqual(ph.messages.map((m) => m.id));
    // the server received each exactly once (forwarded by the host), and no member posted there
    await waitFor(
      () => mine.every((id) => serverCount('forward', id) >= 1),
      8000,
      'forwards at the server',
    );
    for (const id of mine) {
      expect(serverCount('forward', id) + serverCount('post', id), id).toBe(1);
      expect(serverCount('forward', id), id).toBe(1);
    }
    // the server served none of this channel to bob or carol while the host was reachable
    const served = readLog(srv.data).filter(
      (r) =>
        r.channel === ch &&
        ['fetch', 'sync', 'push'].includes(r.ev!) &&
        (r.peer?.includes(bob) ||
          r.peer?.includes(carol) ||
          (r.ev === 'push' && r.recipients !== '0')),
    );
    expect(served).toEqual([]);
    // stats say the stream reached bob
    const st = await waitFor(async () => {
      const s = await X.call('GET', `/api/streams/${live.body.streamId}/stats`);
      return s.status === 200 && s.body.framesComplete > 0 ? s.body : null;
    }, 8000);
    expect(st.role).toBe('viewer');
    await H.call('DELETE', `/api/streams/${live.body.streamId}`);
  });

  it('1. host goes offline (crash): members switch to the server, fetch A, X posts B, Y gets B pushed by the server', async () => {
    const evY = collectEvents(Y.ui);
    await evY.ready;
    await H.kill('SIGKILL');
    await waitFor(async () => (await page(X, ch)).source === 'server', 20_000, 'X on the server');
    await waitFor(async () => (await page(Y, ch)).source === 'server', 20_000, 'Y on the server');
    const b = await post(X, 'B1');
    // SPEC §6: pushed to Y by the server, without Y asking (Y's API is not called meanwhile)
    const pushed = await waitFor(
      () => evY.events.find((e) => e.event === 'message' && e.data.message?.id === b),
      5000,
    ).then(
      () => true,
      () => false,
    );
    expect((await X.call('POST', `/api/channels/${ch}/messages`, { text: 'B2' })).body.state).toBe(
      'delivered',
    );
    ids.B2 = (await page(X, ch)).messages.find((m) => m.text === 'B2')!.id;
    await sees(Y, ['A0', 'B1', 'B2']);
    expect(evY.events.some((e) => e.event === 'message' && e.data.message?.id === b)).toBe(true);
    expect(evY.events.some((e) => e.event === 'sync' && e.data.source === 'server')).toBe(true);
    // Y's log: B came from the server (pushed, or fetched), never from elsewhere
    const yGot = readLog(Y.data).filter(
      (r) => r.msg === b && ['push', 'sync', 'fetch'].includes(r.ev!),
    );
    expect(yGot.map((r) => r.from)).toContain('server');
    for (const r of yGot) expect(r.from).toBe('server');
    const xPost = readLog(X.data).filter((r) => r.ev === 'post' && r.msg === b);
    expect(xPost.map((r) => r.to)).toEqual(['server']);
    expect(pushed, 'B1 reached Y as a message event within 5 s, without Y polling').toBe(true);
    expect(
      readLog(Y.data).filter((r) => r.ev === 'push' && r.msg === b && r.from === 'server').length,
    ).toBe(1);
  });

  it('1. what the host writes while offline stays in its outbox (pending), also across a crash', async () => {
    // restart the host with its status offline: it stays offline across restarts (README)
    H = await restart(H, 'SIGKILL');
    expect((await H.call('PUT', '/api/status', { status: 'offline' })).body).toEqual({
      status: 'offline',
    });
    const r = await H.call('POST', `/api/channels/${ch}/messages`, { text: 'A-off' });
    expect(r.status).toBe(201);
    expect(r.body.state).toBe('pending');
    ids['A-off'] = r.body.id;
    H = await restart(H, 'SIGKILL');
    const pg = await page(H, ch, '?limit=500');
    // README: `host` is "this peer itself for channels it hosts"; `local` when it reaches nobody
    expect(['local', 'host']).toContain(pg.source);
    expect(pg.messages.find((m) => m.id === r.body.id)?.state).toBe('pending');
    expect((await H.call('GET', '/api/me')).body.status).toBe('offline');
    await new Promise((res) => setTimeout(res, 500));
    expect((await texts(X, ch)).includes('A-off')).toBe(false);
  });

  it('2. host goes online: syncs both ways, members switch back to P2P, logs name host:<owner>@…', async () => {
    const evX = collectEvents(X.ui);
    const evH = collectEvents(H.ui);
    await Promise.all([evX.ready, evH.ready]);
    expect((await H.call('PUT', '/api/status', { status: 'online' })).status).toBe(200);
    const all = ['A0', 'B1', 'B2', 'A-off'];
    await sees(H, all, 15_000);
    await sees(X, all, 15_000);
    await sees(Y, all, 15_000);
    const pgH = await page(H, ch, '?limit=500');
    expect(pgH.messages.find((m) => m.text === 'A-off')!.state).toBe('delivered');
    // the pending -> delivered change is an event too (README: "a state change of yours")
    await waitFor(
      () =>
        evH.events.find(
          (e) =>
            e.event === 'message' &&
            e.data.message?.id === ids['A-off'] &&
            e.data.message.state === 'delivered',
        ),
      5000,
      'a message event: A-off delivered',
    );
    await waitFor(async () => (await page(X, ch)).source === 'host', 15_000, 'X back on the host');
    await waitFor(async () => (await page(Y, ch)).source === 'host', 15_000, 'Y back on the host');
    expect(
      evX.events.some(
        (e) => e.event === 'sync' && e.data.source === 'host' && e.data.phase === 'switch',
      ),
    ).toBe(true);
    const b3 = await post(X, 'B3');
    await sees(Y, ['B3']);
    await sees(H, ['B3']);
    const xPost = readLog(X.data).filter((r) => r.ev === 'post' && r.msg === b3);
    expect(xPost.length).toBe(1);
    expect(xPost[0]!.to).toMatch(new RegExp(`^host:${alice}@127\\.0\\.0\\.1:\\d+$`));
    const yGot = readLog(Y.data).filter(
      (r) => r.msg === b3 && ['push', 'sync', 'fetch'].includes(r.ev!),
    );
    expect(yGot.length).toBeGreaterThan(0);
    for (const r of yGot) expect(r.from).toMatch(new RegExp(`^host:${alice}@`));
    await waitFor(() => serverCount('forward', b3) === 1, 8000, 'B3 forwarded once');
    expect(serverCount('post', b3)).toBe(0);
    expect(serverCount('forward', ids['A-off']!) + serverCount('post', ids['A-off']!)).toBe(1);
  });

  it('5. joined user goes offline: keeps writing, nobody sees it, nothing lost when its process is killed', async () => {
    expect((await Y.call('PUT', '/api/status', { status: 'offline' })).status).toBe(200);
    const r1 = await Y.call('POST', `/api/channels/${ch}/messages`, { text: 'Y-off1' });
    const r2 = await Y.call('POST', `/api/channels/${ch}/messages`, { text: 'Y-off2' });
    expect([r1.body.state, r2.body.state]).toEqual(['pending', 'pending']);
    await post(H, 'A-missed'); // Y misses this while away
    Y = await restart(Y, 'SIGKILL');
    const pg = await page(Y, ch, '?limit=500');
    expect(pg.source).toBe('local');
    expect(pg.messages.filter((m) => m.state === 'pending').map((m) => m.text)).toEqual([
      'Y-off1',
      'Y-off2',
    ]);
    await new Promise((res) => setTimeout(res, 500));
    const seenByX = await texts(X, ch);
    expect(seenByX).not.toContain('Y-off1');
    expect(seenByX).not.toContain('Y-off2');
  });

  it('4. joined user goes online: catches up from the host, its outbox goes to the host, to everyone once', async () => {
    expect((await Y.call('PUT', '/api/status', { status: 'online' })).status).toBe(200);
    const all = ['A0', 'B1', 'B2', 'A-off', 'B3', 'A-missed', 'Y-off1', 'Y-off2'];
    await sees(Y, all, 15_000);
    await sees(X, all, 15_000);
    await sees(H, all, 15_000);
    const yPg = await page(Y, ch, '?limit=500');
    expect(yPg.messages.every((m) => m.state === 'delivered')).toBe(true);
    const yPosts = readLog(Y.data).filter(
      (r) =>
        r.ev === 'post' && yPg.messages.some((m) => m.text.startsWith('Y-off') && m.id === r.msg),
    );
    expect(yPosts.length).toBe(2);
    // SPEC App. 4: "Whatever X wrote offline (its outbox) goes to the host if online, else to the server"
    expect(yPosts.map((r) => r.to)).toEqual([
      expect.stringMatching(new RegExp(`^host:${alice}@`)),
      expect.stringMatching(new RegExp(`^host:${alice}@`)),
    ]);
  });

  it('4b. a member back while the host is away sends its outbox to the server, and the host gets it once back', async () => {
    expect((await Y.call('PUT', '/api/status', { status: 'offline' })).status).toBe(200);
    const r = await Y.call('POST', `/api/channels/${ch}/messages`, { text: 'Y-off3' });
    expect(r.body.state).toBe('pending');
    await H.kill('SIGKILL');
    await waitFor(async () => (await page(X, ch)).source === 'server', 20_000, 'X on the server');
    expect((await Y.call('PUT', '/api/status', { status: 'online' })).status).toBe(200);
    await sees(X, ['Y-off3'], 15_000);
    const yPost = readLog(Y.data).filter((x) => x.ev === 'post' && x.msg === r.body.id);
    expect(yPost.map((x) => x.to)).toEqual(['server']);
    H = await restart(H, 'SIGKILL');
    await sees(H, ['Y-off3'], 15_000);
  });

  it('5+4 under crashes: a member killed while its outbox drains, and a host killed while it uploads, lose and double nothing', async () => {
    expect((await Y.call('PUT', '/api/status', { status: 'offline' })).status).toBe(200);
    expect((await H.call('PUT', '/api/status', { status: 'offline' })).status).toBe(200);
    const yTexts = Array.from({ length: 25 }, (_, i) => `Yk${i}`);
    const hTexts = Array.from({ length: 25 }, (_, i) => `Hk${i}`);
    for (let i = 0; i < 25; i++) {
      expect(
        (await Y.call('POST', `/api/channels/${ch}/messages`, { text: yTexts[i] })).body.state,
      ).toBe('pending');
      expect(
        (await H.call('POST', `/api/channels/${ch}/messages`, { text: hTexts[i] })).body.state,
      ).toBe('pending');
    }
    // both go online and are killed while sending
    await Promise.all([
      Y.call('PUT', '/api/status', { status: 'online' }),
      H.call('PUT', '/api/status', { status: 'online' }),
    ]);
    await new Promise((res) => setTimeout(res, 60));
    [Y, H] = await Promise.all([restart(Y, 'SIGKILL'), restart(H, 'SIGKILL')]);
    const want = [...yTexts, ...hTexts];
    await sees(H, want, 20_000);
    await sees(X, want, 20_000);
    await sees(Y, want, 20_000);
  });

  it('an invisible host: its channel is served by the server (README), the host still gets every message', async () => {
    expect((await H.call('PUT', '/api/status', { status: 'invisible' })).body).toEqual({
      status: 'invisible',
    });
    await waitFor(async () => (await page(X, ch)).source === 'server', 10_000, 'X on the server');
    expect((await X.call('GET', '/api/peers')).body.some((e: any) => e.username === alice)).toBe(
      false,
    );
    await post(X, 'to-invisible');
    await post(H, 'from-invisible');
    await sees(H, ['to-invisible', 'from-invisible']);
    await sees(Y, ['to-invisible', 'from-invisible']);
    expect((await H.call('PUT', '/api/status', { status: 'online' })).status).toBe(200);
    await waitFor(async () => (await page(X, ch)).source === 'host', 15_000, 'X back on the host');
  });

  it('every replica converges to the same set in the same order, nothing doubled', async () => {
    const [h, x, y] = await Promise.all([
      page(H, ch, '?limit=500'),
      page(X, ch, '?limit=500'),
      page(Y, ch, '?limit=500'),
    ]);
    const hi = h.messages.map((m) => m.id);
    noDuplicates(hi);
    expect(x.messages.map((m) => m.id)).toEqual(hi);
    expect(y.messages.map((m) => m.id)).toEqual(hi);
    // the order is (ts, id)
    const sorted = [...h.messages].sort(
      (a, b) => a.ts - b.ts || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );
    expect(sorted.map((m) => m.id)).toEqual(hi);
    await Promise.all([H.kill(), X.kill(), Y.kill()]);
    await srv.kill('SIGINT');
  });
});

// ---------------------------------------------------------------------------------------------

describe('SPEC §11: several instances on PostgreSQL and NATS; --server a:PORT,b:PORT fails over', () => {
  const db = `hchat_contract_${process.pid}`;
  const admin = process.env.HCHAT_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

  afterAll(async () => {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await c.end();
  });

  it('a peer given two instances moves to the second when the first dies, and keeps chatting', async () => {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    await c.query(`CREATE DATABASE ${db}`);
    await c.end();
    const key = crypto
      .generateKeyPairSync('ed25519')
      .privateKey.export({ type: 'pkcs8', format: 'pem' });
    const keyFile = path.join(TOP, 'signing-key.pem');
    fs.writeFileSync(keyFile, key, { mode: 0o600 });
    const store = admin.replace(/\/[^/]*$/, `/${db}`);
    const common = [
      '--store',
      store,
      '--bus',
      'nats://127.0.0.1:4222',
      '--bus-namespace',
      db,
      '--signing-key',
      keyFile,
    ];
    const s1 = await run([
      'server',
      '--port',
      '0',
      '--http-port',
      '0',
      '--data',
      path.join(TOP, 'c1'),
      ...common,
    ]);
    const s2 = await run([
      'server',
      '--port',
      '0',
      '--http-port',
      '0',
      '--data',
      path.join(TOP, 'c2'),
      ...common,
    ]);
    const a1 = SERVER_READY.exec(s1.ready)!;
    const a2 = SERVER_READY.exec(s2.ready)!;
    const list = `${a1[1]}:${a1[2]}#${a1[5]},${a2[1]}:${a2[2]}#${a2[5]}`;
    const [H, X] = await Promise.all([
      startPeer(path.join(TOP, 'ch'), list),
      startPeer(path.join(TOP, 'cx'), list),
    ]);
    try {
      const alice = await signUp(H, 'calice');
      await signUp(X, 'cbob');
      const ch = (await H.call('POST', '/api/channels', { name: 'scaled', allowVisitors: false }))
        .body.id;
      expect((await X.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
      await H.call('POST', `/api/channels/${ch}/messages`, { text: 'before' });
      await waitFor(async () => (await texts(X, ch)).includes('before'));
      await s1.kill('SIGKILL');
      // the host goes offline: bob must now read and post through the surviving instance
      await H.call('PUT', '/api/status', { status: 'offline' });
      await waitFor(
        async () => (await page(X, ch)).source === 'server',
        20_000,
        'bob on the server (instance 2)',
      );
      const r = await X.call('POST', `/api/channels/${ch}/messages`, {
        text: 'through instance 2',
      });
      expect(r.status).toBe(201);
      await waitFor(
        async () =>
          (await page(X, ch)).messages.find((m) => m.id === r.body.id)?.state === 'delivered',
        10_000,
        'delivered by instance 2',
      );
      await H.call('PUT', '/api/status', { status: 'online' });
      await waitFor(
        async () => (await texts(H, ch)).includes('through instance 2'),
        15_000,
        `${alice} gets it`,
      );
      expect((await texts(H, ch)).filter((t) => t === 'through instance 2').length).toBe(1);
    } finally {
      await Promise.all([H.kill(), X.kill(), s1.kill('SIGKILL'), s2.kill('SIGINT')]);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('SPEC §2 and §5: a clean leave at once, a silent one within the heartbeat bound; an unreachable host', () => {
  it('tracker: SIGTERM leaves the list at once; a frozen host leaves it in bounded time, members post through the server, nothing lost', async () => {
    const port = await freePort();
    const data = path.join(TOP, 'srv5');
    const srv = await run([
      'server',
      '--port',
      String(port),
      '--http-port',
      '0',
      '--data',
      data,
      '--heartbeat-ms',
      '500',
      '--peer-timeout-ms',
      '2000',
    ]);
    const tcp = `127.0.0.1:${port}`;
    let [H, X, Z] = await Promise.all([
      startPeer(path.join(TOP, 'h5'), tcp),
      startPeer(path.join(TOP, 'x5'), tcp),
      startPeer(path.join(TOP, 'z5'), tcp),
    ]);
    try {
      const alice = await signUp(H, 'falice');
      const bob = await signUp(X, 'fbob');
      const zed = await signUp(Z, 'fzed');
      const ch = (await H.call('POST', '/api/channels', { name: 'frozen', allowVisitors: false }))
        .body.id;
      expect((await X.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
      expect((await Z.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
      const listed = async (who: string) =>
        (await X.call('GET', '/api/peers')).body.some((e: any) => e.username === who);
      await waitFor(() => listed(zed), 5000, 'zed listed');
      // a clean stop: gone from the list at once
      const t0 = Date.now();
      await Z.kill('SIGTERM');
      await waitFor(async () => !(await listed(zed)), 5000, 'zed gone');
      expect(Date.now() - t0).toBeLessThan(1500);
      // a frozen host (no FIN, no heartbeat): unreachable
      await waitFor(async () => (await page(X, ch)).source === 'host', 8000, 'bob on the host');
      H.child.kill('SIGSTOP');
      const r = await X.call('POST', `/api/channels/${ch}/messages`, {
        text: 'while the host is frozen',
      });
      expect(r.status).toBe(201);
      await waitFor(async () => !(await listed(alice)), 6000, 'the frozen host gone from the list');
      await waitFor(
        async () =>
          (await page(X, ch)).messages.find((m) => m.id === r.body.id)?.state === 'delivered',
        8000,
        'delivered through the server',
      );
      expect((await page(X, ch)).source).toBe('server');
      H.child.kill('SIGCONT');
      await waitFor(
        async () => (await texts(H, ch)).includes('while the host is frozen'),
        15_000,
        'the host gets it',
      );
      await waitFor(
        async () => (await page(X, ch)).source === 'host',
        15_000,
        'bob back on the host',
      );
      expect((await texts(H, ch)).filter((t) => t === 'while the host is frozen').length).toBe(1);
      expect((await texts(X, ch)).filter((t) => t === 'while the host is frozen').length).toBe(1);
      expect(bob).toBeTruthy();
    } finally {
      H.child.kill('SIGCONT');
      await Promise.all([H.kill(), X.kill(), Z.kill()]);
      await srv.kill('SIGINT');
    }
  });
});
