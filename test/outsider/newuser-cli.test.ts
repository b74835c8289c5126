// A new user at the command line: a developer who just cloned Hybrid Chat and knows Discord
// follows README.md from the top, as written (`bin/hchat --help`, `hchat server`, `hchat peer`
// with every flag README and SPEC §10 name, `hchat demo`, `hchat bot`, then the local API of
// SPEC §10 with curl-like calls), knowing only README.md, docs/*.md and SPEC.md. Real
// `bin/hchat` processes on 127.0.0.1. Tests that pass guard a promise; each test marked
// FINDING fails on the code it was written against and names the sentence it holds to.
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchHchat, type HchatProcess, type Launched } from '../hchat-spawn.js';
import { stablePort } from '../testnet.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'hchat');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-newcli-'));
const running = new Set<Launched>();

/** Starts `bin/hchat args…` and waits for its ready line; killed after the file at the latest. */
async function start(
  args: string[],
  env: Record<string, string> = {},
  until?: RegExp,
): Promise<HchatProcess> {
  const l = launchHchat(args, env, 20_000, until);
  running.add(l);
  void l.exited.then(() => running.delete(l));
  return l.ready;
}

/** Sends `signal` and waits (at most 8 s) for the exit: its code, or 'hung'. */
async function stop(
  p: HchatProcess,
  signal: NodeJS.Signals = 'SIGINT',
): Promise<number | null | 'hung'> {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return p.proc.exitCode;
  p.proc.kill(signal);
  const code = await Promise.race([p.exited, sleep(8_000).then(() => 'hung' as const)]);
  if (code === 'hung') p.proc.kill('SIGKILL');
  return code;
}

/** Runs `bin/hchat args…` to its end (killed after `ms`): exit code and output. */
function run(
  args: string[],
  opts: { env?: Record<string, string>; ms?: number; wrap?: string[] } = {},
): Promise<{ code: number | null; out: string; stdout: string; timedOut: boolean }> {
  const [cmd, ...pre] = [...(opts.wrap ?? []), process.execPath];
  const proc = spawn(cmd!, [...pre, BIN, ...args], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let stdout = '';
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill('SIGKILL');
  }, opts.ms ?? 15_000);
  proc.stdout.on('data', (d: Buffer) => ((out += d.toString()), (stdout += d.toString())));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) =>
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, stdout, timedOut });
    }),
  );
}

/** Maps `f` over `xs`, `n` at a time (two shared cores: a dozen node starts at once time out). */
async function pool<T, R>(xs: T[], n: number, f: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < xs.length) {
        const i = next++;
        out[i] = await f(xs[i]!);
      }
    }),
  );
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A stack trace, as a user would see it on the terminal. */
const STACK = /^\s+at .+[:(]\d+/m;

async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 10_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** A curl-like call to a peer's local API: `Authorization: Bearer`, JSON body when given. */
async function curl(
  base: string,
  token: string,
  method: string,
  route: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any }> {
  const r = await fetch(base + route, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json: any = text;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: r.status, body: json };
}

/** A UDP port free now. */
async function freeUdpPort(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const ok = await new Promise<boolean>((resolve) => {
      const s = dgram.createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
}

const SERVER_READY =
  /^ready tcp=127\.0\.0\.1:(\d+) http=http:\/\/127\.0\.0\.1:(\d+)\/ fingerprint=([A-Za-z0-9_-]{43})$/;
const PEER_READY =
  /^ready ui=http:\/\/127\.0\.0\.1:(\d+)\/\?token=([A-Za-z0-9_.~-]{22,256}) p2p=127\.0\.0\.1:(\d+) udp=127\.0\.0\.1:(\d+)$/;

interface Peer {
  p: HchatProcess;
  base: string;
  token: string;
  data: string;
  args: string[];
  p2p: number;
}

async function startPeer(
  name: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Peer> {
  const data = path.join(dir, name);
  const all = ['peer', ...args, ...(env.HCHAT_DATA ? [] : ['--data', data])];
  const p = await start(all, env);
  const m = PEER_READY.exec(p.stdout().trim().split('\n')[0]!);
  if (!m) throw new Error(`not SPEC §10's ready line: ${p.stdout()}`);
  return {
    p,
    base: `http://127.0.0.1:${m[1]}`,
    token: m[2]!,
    data,
    args: all,
    p2p: Number(m[3]),
  };
}

let server: HchatProcess;
let tcp = '';
let http = '';
let fp = '';
let alice: Peer;
let bob: Peer;
let channelId = '';
let latePeer: Peer | undefined;
let peerHelp = '';
let botToken = '';

beforeAll(async () => {
  // README "Running it yourself": `bin/hchat server --port 7000 --http-port 7080 --data ./server-data`
  // (port 0: any free port).
  server = await start(['server', '--port', '0', '--http-port', '0', '--data', `${dir}/server`]);
  const m = SERVER_READY.exec(server.stdout().trim());
  if (!m) throw new Error(`server ready line: ${server.stdout()}`);
  tcp = `127.0.0.1:${m[1]}`;
  http = `http://127.0.0.1:${m[2]}/`;
  fp = m[3]!;
}, 30_000);

afterAll(async () => {
  await Promise.all(
    [...running].map(async (l) => {
      if (l.proc.exitCode === null && l.proc.signalCode === null) {
        l.proc.kill('SIGKILL');
        await l.exited;
      }
    }),
  );
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('first contact: --help and mistakes on the command line', () => {
  it('hchat --help and each command’s --help answer at once, exit 0, and list every flag README and SPEC §10 name, each with its environment variable', async () => {
    const [top, srv, peer, demo, bot] = await Promise.all([
      run(['--help']),
      run(['server', '--help']),
      run(['peer', '--help']),
      run(['demo', '--help']),
      run(['bot', '--help']),
    ]);
    for (const r of [top, srv, peer, demo, bot]) {
      expect(r.code, r.out).toBe(0);
      expect(r.out).not.toMatch(STACK);
    }
    for (const c of ['server', 'peer', 'demo', 'bot']) expect(top.out).toContain(c);
    // SPEC §10: `hchat server [--host H] [--port P] [--http-port P] [--data DIR]`; README adds
    // the rest. README: "Every flag has an environment variable (…); `bin/hchat server --help`
    // and `bin/hchat peer --help` list them all."
    const serverFlags = [
      '--host',
      '--port',
      '--http-port',
      '--data',
      '--store',
      '--bus',
      '--bus-namespace',
      '--stun-port',
      '--relay-port',
      '--tls-cert',
      '--tls-key',
      '--signing-key',
      '--drain-ms',
      '--heartbeat-ms',
      '--peer-timeout-ms',
      '--verify-threads',
      '--log-level',
      '--max-registrations-per-address',
      '--max-visitors-per-address',
      '--visitor-grace-ms',
      '--max-tracker-entries-per-address',
      '--max-unauthenticated-per-address',
      '--max-unauthenticated',
      '--hello-timeout-ms',
      '--posts-per-second',
      '--post-burst',
      '--channels-per-account',
      '--sessions-per-account',
      '--max-clock-skew-ms',
      '--max-file-bytes',
      '--file-quota-bytes',
      '--api-rate',
      '--api-burst',
      '--api-bad-token-burst',
      '--dm-mailbox',
      '--ipv4-prefix',
      '--ipv6-prefix',
    ];
    const peerFlags = [
      '--server',
      '--server-fingerprint',
      '--host',
      '--p2p-port',
      '--udp-port',
      '--ui-port',
      '--data',
      '--api-token',
      '--stream-fanout',
      '--udp-loss',
      '--upload-limit',
      '--file-cache-bytes',
      '--max-file-bytes',
      '--max-clock-skew-ms',
    ];
    const flagsOf = (help: string) => {
      // commander's layout: each option starts a line with two spaces; its text may wrap.
      const blocks = help.split(/\n(?= {2}-)/);
      const m = new Map<string, string>();
      for (const b of blocks) {
        const f = /^\s*(?:-\w, )?(--[\w-]+)/.exec(b);
        if (f) m.set(f[1]!, b.replace(/\s+/g, ' '));
      }
      return m;
    };
    peerHelp = peer.out;
    const sf = flagsOf(srv.out);
    const pf = flagsOf(peer.out);
    for (const f of serverFlags) {
      expect(sf.has(f), `server --help lists ${f}`).toBe(true);
      expect(sf.get(f), `server ${f} names its HCHAT_ variable`).toMatch(/env: HCHAT_[A-Z0-9_]+/);
    }
    for (const f of peerFlags) {
      expect(pf.has(f), `peer --help lists ${f}`).toBe(true);
      expect(pf.get(f), `peer ${f} names its HCHAT_ variable`).toMatch(/env: HCHAT_[A-Z0-9_]+/);
    }
    for (const f of ['--config', '--url', '--token']) expect(bot.out).toContain(f);
  });

  it('FINDING: `hchat peer --help` says --server-fingerprint pins "the first --server address"; README and the peer pin every address with it', async () => {
    // README "Several server instances": "(pin every address with its `#fingerprint`, or none;
    // `--server-fingerprint` pins every address of a shared certificate)", and so the peer does
    // (given `--server a,b --server-fingerprint X`, b is refused for showing another key). Its
    // --help says "the TLS key fingerprint to pin for the first --server address": a user who
    // reads it expects the other addresses trusted on first use.
    const entry = /--server-fingerprint[\s\S]*?(?=\n {2}--)/
      .exec(peerHelp)![0]
      .replace(/\s+/g, ' ');
    expect(entry, entry).not.toMatch(/first --server address/);
    expect(entry).toMatch(/every|each|all/);
  });

  it("--server given the server's HTTP port says so: it does not speak TLS there, the tcp= port is wanted", async () => {
    const d = path.join(dir, 'http-port');
    const r = await run(['peer', '--server', new URL(http).host, '--data', d, '--ui-port', '0'], {
      ms: 4000,
    });
    expect(r.out).toMatch(/cannot be reached \(.*\): it does not speak TLS there/);
    expect(r.out).toMatch(/--server wants the tcp= port/);
    fs.rmSync(d, { recursive: true, force: true });
  });

  it('a wrong command, flag or value: non-zero at once, the error first naming what was wrong, no stack trace', async () => {
    const d = path.join(dir, 'never');
    const cases: Array<[string[], RegExp]> = [
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['server', '--prot', '7000', '--data', d], /unknown option '--prot'/],
      [['server', '--port', 'abc', '--data', d], /'--port <port>' argument 'abc' is invalid/],
      [
        ['peer', '--server', tcp, '--ui-port', '99999', '--data', d],
        /--ui-port <port>' argument '99999'/,
      ],
      [['peer', '--server', 'localhost', '--data', d], /argument 'localhost' is invalid/],
      [['peer', '--server', `${tcp}#short`, '--data', d], /fingerprint: 43 base64url/],
      [['peer', '--data', d], /required option '--server/],
      [['bot', '--url', http], /required option '--config/],
      // A typo in a required option names the typo (it read as the required one missing).
      [['peer', '--sever', tcp, '--data', d], /unknown option '--sever'/],
      [['bot', '--confg', 'x.json', '--url', http], /unknown option '--confg'/],
    ];
    const results = await pool(cases, 3, ([a]) => run(a, { env: { HCHAT_TOKEN: '' } }));
    results.forEach((r, i) => {
      const [args, want] = cases[i]!;
      expect(r.timedOut, `hchat ${args.join(' ')} ended`).toBe(false);
      expect(r.code, `hchat ${args.join(' ')}: ${r.out}`).not.toBe(0);
      expect(r.out.split('\n')[0], `hchat ${args.join(' ')}`).toMatch(want);
      expect(r.out).not.toMatch(STACK);
    });
    expect(fs.existsSync(d)).toBe(false);
  });

  it('a port already in use (--port, --ui-port, --udp-port): exit 1 naming the address, no stack trace', async () => {
    const tcpBusy = net.createServer();
    await new Promise<void>((r) => tcpBusy.listen(0, '127.0.0.1', () => r()));
    const busy = (tcpBusy.address() as net.AddressInfo).port;
    const udpBusy = dgram.createSocket('udp4');
    await new Promise<void>((r) => udpBusy.bind(0, '127.0.0.1', () => r()));
    const ubusy = udpBusy.address().port;
    try {
      const d = (n: string) => path.join(dir, `busy-${n}`);
      const cases: Array<[string[], number]> = [
        [['server', '--port', String(busy), '--http-port', '0', '--data', d('s1')], busy],
        [['peer', '--server', tcp, '--ui-port', String(busy), '--data', d('p1')], busy],
        [['peer', '--server', tcp, '--udp-port', String(ubusy), '--data', d('p3')], ubusy],
      ];
      const results = await pool(cases, 3, ([a]) => run(a));
      results.forEach((r, i) => {
        const [args, port] = cases[i]!;
        expect(r.code, `hchat ${args.join(' ')}: ${r.out}`).toBe(1);
        expect(r.out).toContain(`127.0.0.1:${port}`);
        expect(r.out).toMatch(/in use|EADDRINUSE/);
        expect(r.out).not.toMatch(STACK);
        expect(r.stdout).not.toMatch(/^ready /m);
      });
    } finally {
      tcpBusy.close();
      udpBusy.close();
    }
  });

  it('FINDING: --data naming a file says the folder is not a directory, not "file already exists, mkdir"', async () => {
    // The brief: "an error that does not say what was wrong (… unreadable --data …)". Today both
    // commands answer `hchat: EEXIST: file already exists, mkdir '<file>'`: the user meant that
    // file to be used, and nothing says that a folder is wanted.
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, 'not a folder\n');
    const [srv, peer] = await Promise.all([
      run(['server', '--port', '0', '--http-port', '0', '--data', file]),
      run(['peer', '--server', tcp, '--data', file]),
    ]);
    for (const r of [srv, peer]) {
      expect(r.code).toBe(1);
      expect(r.out).not.toMatch(STACK);
      expect(r.out).toContain(file);
      expect(r.out, r.out).toMatch(/not a (directory|folder)|--data/i);
    }
  });

  it.skipIf(process.getuid?.() !== 0)(
    'FINDING: a data folder this user may not write: the server names it (today "unable to open database file", no path)',
    async () => {
      // README: "A damaged `server.db`, `peer.db` or `session.json` stops the process at start
      // with a message naming the file"; SPEC §7 "Refusals carry a reason". A folder the user
      // cannot write is the commonest case of all (a folder made by root, a read-only mount):
      // the peer names the file it could not write; the server says only
      // `hchat: unable to open database file`, naming no file and no folder.
      const ro = path.join(dir, 'read-only');
      fs.mkdirSync(ro, { mode: 0o555 });
      fs.chmodSync(ro, 0o555);
      fs.chmodSync(dir, 0o755);
      const asNobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
      const [srv, peer] = await Promise.all([
        run(['server', '--port', '0', '--http-port', '0', '--data', ro], { wrap: asNobody }),
        run(['peer', '--server', tcp, '--data', ro], { wrap: asNobody }),
      ]);
      expect(peer.code, peer.out).toBe(1);
      expect(peer.out).toContain(ro);
      expect(srv.code, srv.out).toBe(1);
      expect(srv.out).not.toMatch(STACK);
      expect(srv.out, srv.out).toContain(ro);
    },
  );

  it('FINDING: a damaged TLS key, TLS certificate or signing key stops the server with a message naming the file (today an OpenSSL code alone)', async () => {
    // README: "A damaged `server.db`, `peer.db` or `session.json` stops the process at start
    // with a message naming the file", and it does for every database; the key files made at
    // first start (README: "`tls-key.pem`, `tls-cert.pem` in its data folder"; `--signing-key`
    // "default: <data>/server-key.pem") stop it with `hchat: error:1E08010C:DECODER
    // routines::unsupported` or `error:0480006C:PEM routines::no start line`: which file?
    const made = path.join(dir, 'server');
    const cases = ['tls-key.pem', 'tls-cert.pem', 'server-key.pem'];
    const results = await Promise.all(
      cases.map((f) => {
        const d = path.join(dir, `damaged-${f}`);
        fs.mkdirSync(d, { recursive: true });
        for (const k of cases) fs.copyFileSync(path.join(made, k), path.join(d, k));
        fs.writeFileSync(path.join(d, f), 'garbage\n');
        return run(['server', '--port', '0', '--http-port', '0', '--data', d]);
      }),
    );
    results.forEach((r, i) => {
      expect(r.code, r.out).toBe(1);
      expect(r.out).not.toMatch(STACK);
      expect(r.out, `damaged ${cases[i]}: ${r.out}`).toContain(cases[i]);
    });
  });
});

describe('hchat server and hchat peer, as README "Running it yourself" shows them', () => {
  it('the server prints exactly SPEC §10’s ready line on stdout, its log apart on stderr, and writes its key files 0600', () => {
    expect(server.stdout().trim()).toMatch(SERVER_READY);
    expect(server.stdout().trim().split('\n')).toHaveLength(1);
    for (const f of ['tls-key.pem', 'tls-cert.pem']) {
      expect(fs.statSync(path.join(dir, 'server', f)).mode & 0o777).toBe(0o600);
    }
  });

  it('a peer with every flag of SPEC §10 (--host, --p2p-port, --udp-port, --ui-port, --data, several --server addresses, the live one pinned): the ready line shows those ports; then the local API in a user’s order', async () => {
    const [ui, p2p, udp, dead] = [
      await stablePort(),
      await stablePort(),
      await freeUdpPort(),
      await stablePort(),
    ];
    // SPEC §10: "`--server` may name several instances (`a:7000,b:7000`) and may pin a
    // fingerprint (`host:port#fingerprint`)". README: a peer "prints its line once its link to
    // the server is up, or once every `--server` address failed once"; "pin every address with
    // its `#fingerprint`, or none".
    alice = await startPeer('alice', [
      '--server',
      `127.0.0.1:${dead}#${fp},${tcp}#${fp}`,
      '--host',
      '127.0.0.1',
      '--p2p-port',
      String(p2p),
      '--udp-port',
      String(udp),
      '--ui-port',
      String(ui),
    ]);
    expect(alice.p.stdout().trim()).toBe(
      `ready ui=http://127.0.0.1:${ui}/?token=${alice.token} p2p=127.0.0.1:${p2p} udp=127.0.0.1:${udp}`,
    );
    // README: the token is `<data>/api-token` (mode 0600).
    const tokenFile = path.join(alice.data, 'api-token');
    expect(fs.readFileSync(tokenFile, 'utf8').trim()).toBe(alice.token);
    expect(fs.statSync(tokenFile).mode & 0o777).toBe(0o600);

    // SPEC §10's table, in the order a user goes through it.
    const a = (m: string, r: string, b?: unknown) => curl(alice.base, alice.token, m, r, b);
    expect((await curl(alice.base, 'wrong-token-wrong-token', 'GET', '/api/me')).status).toBe(401);
    const reg = await a('POST', '/api/register', { username: 'alice', password: 'alice-password' });
    expect(reg).toEqual({ status: 201, body: { username: 'alice' } });
    const login = await a('POST', '/api/login', { username: 'alice', password: 'alice-password' });
    expect(login.status).toBe(200);
    expect(login.body).toMatchObject({ username: 'alice', role: 'user' });
    const me = await a('GET', '/api/me');
    expect(me.body).toMatchObject({ username: 'alice', role: 'user', status: 'online' });
    expect(me.body.sessionId).toBe(login.body.sessionId);
    const ch = await a('POST', '/api/channels', { name: 'general', allowVisitors: true });
    expect(ch.status).toBe(201);
    expect(ch.body).toMatchObject({
      name: 'general',
      owner: 'alice',
      allowVisitors: true,
      hosted: true,
    });
    channelId = ch.body.id;
    const post = await a('POST', `/api/channels/${channelId}/messages`, {
      text: 'hello from alice',
    });
    expect(post.status).toBe(201);
    expect(post.body.state).toBe('delivered');
    const page = await a('GET', `/api/channels/${channelId}/messages`);
    expect(page.body.source).toBe('host');
    expect(page.body.messages.map((m: any) => m.text)).toEqual(['hello from alice']);

    // bob: no fingerprint, trusted on first use and remembered (README); given by environment
    // variables this time (README: "Every flag has an environment variable").
    const bobUi = await stablePort();
    bob = await startPeer('bob', [], {
      HCHAT_SERVER: tcp,
      HCHAT_DATA: path.join(dir, 'bob'),
      HCHAT_UI_PORT: String(bobUi),
    });
    expect(bob.base).toBe(`http://127.0.0.1:${bobUi}`);
    expect(fs.readFileSync(path.join(bob.data, 'known_servers'), 'utf8')).toContain(`${tcp} ${fp}`);
    const b = (m: string, r: string, x?: unknown) => curl(bob.base, bob.token, m, r, x);
    expect(
      (await b('POST', '/api/register', { username: 'bob', password: 'bob-password' })).status,
    ).toBe(201);
    expect(
      (await b('POST', '/api/login', { username: 'bob', password: 'bob-password' })).status,
    ).toBe(200);
    const dirList = await b('GET', '/api/directory');
    expect(dirList.body.map((c: any) => c.id)).toContain(channelId);
    expect((await b('POST', `/api/channels/${channelId}/join`)).status).toBe(200);
    const peers = await b('GET', '/api/peers');
    expect(peers.body.find((p: any) => p.username === 'alice')).toMatchObject({
      ip: '127.0.0.1',
      port: p2p,
    });
    const read = await b('GET', `/api/channels/${channelId}/messages`);
    expect(read.body.source).toBe('host');
    expect(read.body.messages.map((m: any) => m.text)).toEqual(['hello from alice']);
    const bp = await b('POST', `/api/channels/${channelId}/messages`, {
      text: 'hi alice, bob here',
    });
    expect(bp.status).toBe(201);
    const list = await b('GET', '/api/channels');
    expect(list.body.find((c: any) => c.id === channelId)).toMatchObject({
      hosted: false,
      owner: 'alice',
    });
  });

  it('local API errors are {"error":{"code","message"}} with a fitting status, naming what is wrong', async () => {
    const a = (m: string, r: string, b?: unknown) => curl(alice.base, alice.token, m, r, b);
    const missing = await a('POST', `/api/channels/${channelId}/messages`, {});
    expect(missing.status).toBe(400);
    expect(missing.body.error.code).toBe('E_BAD_REQUEST');
    const bad = await a('POST', `/api/channels/${channelId}/messages`, '{not json');
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/JSON/);
    const route = await a('GET', '/api/nope');
    expect(route).toMatchObject({ status: 404, body: { error: { code: 'E_NOT_FOUND' } } });
    const limit = await a('GET', `/api/channels/${channelId}/messages?limit=1000`);
    expect(limit.status).toBe(400);
    expect(limit.body.error.message).toContain('limit');
  });

  it('FINDING: a POST without Content-Type (curl -d, the way curl sends JSON by default) is 400 per PROTOCOL §7 and says to send application/json', async () => {
    // README "Local API": "errors are `{"error":{"code","message"}}` with the status given in
    // PROTOCOL.md §7", where `E_BAD_REQUEST` is 400 and "the message names the fields". `curl
    // -d '{"text":"hi"}' …` without `-H 'content-type: application/json'` (curl sends
    // application/x-www-form-urlencoded) gets 415 `E_BAD_REQUEST` "Unsupported Media Type":
    // neither the documented status nor a word of what to send.
    const r = await curl(
      alice.base,
      alice.token,
      'POST',
      `/api/channels/${channelId}/messages`,
      '{"text":"hi"}',
      {
        'content-type': 'application/x-www-form-urlencoded',
      },
    );
    expect(r.body.error?.code).toBe('E_BAD_REQUEST');
    expect(r.body.error.message, r.body.error.message).toMatch(/application\/json|content-type/i);
    expect(r.status).toBe(400);
  });

  it('the connection log is ASCII key=value lines naming where each piece of data came from (SPEC §9, PROTOCOL §6)', async () => {
    const lines = fs
      .readFileSync(path.join(bob.data, 'connections.log'), 'latin1')
      .trimEnd()
      .split('\n');
    for (const l of lines) {
      expect(l).toMatch(/^[\x20-\x7e]*$/);
      expect(l).toMatch(/^t=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ev=[a-z_]+( [A-Za-z]+=\S+)*$/);
    }
    const host = `host:alice@127.0.0.1:${alice.p2p}`;
    // bob read alice's channel from her peer, and posted to it.
    expect(lines.some((l) => / ev=(fetch|sync) /.test(l) && l.includes(`from=${host}`))).toBe(true);
    expect(lines.some((l) => / ev=post /.test(l) && l.includes(`to=${host}`))).toBe(true);
    expect(lines.some((l) => / ev=trust /.test(l) && l.includes(`fingerprint=${fp}`))).toBe(true);
    // And the server's own log: where it listens, who came.
    const srv = fs.readFileSync(path.join(dir, 'server', 'connections.log'), 'latin1');
    expect(srv).toMatch(/^[\x20-\x7e\n]*$/);
    expect(srv).toMatch(new RegExp(`ev=listen tcp=${tcp} `));
    expect(srv).toMatch(/ev=register peer=peer:-@127\.0\.0\.1:\d+ user=bob/);
  });

  it('FINDING: a second peer on the same --data while the first runs is refused, clearly (today both run on one session and one database)', async () => {
    // SPEC §1: "Several [peers] may run on one host, each with its own ports and data folder."
    // A user who starts `hchat peer --data ./alice` in a second terminal (or a service manager
    // that starts it twice) gets a second ready line: both processes write one peer.db, one
    // connections.log, one outbox and one DM device's ratchets, and the tracker lists alice's
    // session twice, at two P2P addresses. Nothing says the folder is in use.
    const second = launchHchat(['peer', '--server', `${tcp}#${fp}`, '--data', alice.data]);
    running.add(second);
    // Its ready line, or (rejected) its exit with what it printed.
    const outcome = await second.ready.then(
      (r) => ({ ready: r.stdout().trim() }),
      (e: Error) => ({ refused: e.message }),
    );
    if ('ready' in outcome) {
      second.proc.kill('SIGKILL');
      await second.exited;
    }
    expect(outcome, JSON.stringify(outcome)).not.toHaveProperty('ready');
    expect(await second.exited).not.toBe(0);
    expect(JSON.stringify(outcome)).toContain(alice.data);
  });

  it('SIGTERM, SIGINT and SIGHUP stop a peer at once with exit 0; restarted on the same --data it resumes its session, status and outbox (README, SPEC §10)', async () => {
    const a = (m: string, r: string, b?: unknown) => curl(alice.base, alice.token, m, r, b);
    const session = (await a('GET', '/api/me')).body.sessionId;
    // Offline (README: "offline … keeps it closed (across restarts)"), a post waits in the outbox.
    expect((await a('PUT', '/api/status', { status: 'offline' })).body).toEqual({
      status: 'offline',
    });
    const queued = await a('POST', `/api/channels/${channelId}/messages`, {
      text: 'written offline',
    });
    expect(queued.body.state).toBe('pending');
    // SPEC appendix, scenario 1: with the host away, bob reads from the server, and his log
    // says so.
    await until('bob to read from the server', async () => {
      const r = await curl(bob.base, bob.token, 'GET', `/api/channels/${channelId}/messages`);
      return r.body.source === 'server';
    });
    // The log line comes with the read, or just after it (a clean-clone run read the file before
    // it had the line): waited for, as a reader of the log would.
    const fromServer = new RegExp(` ev=(fetch|sync) from=server channel=${channelId}`);
    const logFile = path.join(bob.data, 'connections.log');
    await until('bob’s log to say he read from the server', async () =>
      fromServer.test(fs.readFileSync(logFile, 'latin1')),
    ).catch(() => undefined);
    expect(fs.readFileSync(logFile, 'latin1')).toMatch(fromServer);
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
      const code = await stop(alice.p, sig);
      expect(code, `${sig}: ${alice.p.output()}`).toBe(0);
      expect(alice.p.output()).not.toMatch(STACK);
      const again = await start(alice.args);
      expect(again.stdout().trim()).toMatch(PEER_READY);
      alice = { ...alice, p: again };
      const me = await a('GET', '/api/me');
      expect(me.body).toMatchObject({ username: 'alice', sessionId: session, status: 'offline' });
      const mine = await a('GET', `/api/channels/${channelId}/messages`);
      expect(mine.body.messages.find((m: any) => m.text === 'written offline')?.state).toBe(
        'pending',
      );
    }
    expect((await a('PUT', '/api/status', { status: 'online' })).status).toBe(200);
    await until('the outbox to drain to bob', async () => {
      const r = await curl(bob.base, bob.token, 'GET', `/api/channels/${channelId}/messages`);
      return r.body.messages?.filter((m: any) => m.text === 'written offline').length === 1;
    });
  });

  it('FINDING: the connection log names a visitor called `alice@10.0.0.5` as `peer:alice@10.0.0.5@127.0.0.1:…`: alice, at another address, at a glance', async () => {
    // SPEC §9: the log names the other end "so that one can tell where each piece of data came
    // from"; PROTOCOL §6: `peer=peer:<user>@<ip>:<port>`, with `@` among the characters left
    // as they are. Usernames cannot hold `@`, but visitor names may (README: "1–32 printable
    // characters, not a registered username"; a colon is refused, `@` is not). A visitor who
    // calls itself `alice@10.0.0.5` is logged `peer=peer:alice@10.0.0.5@127.0.0.1:54124`: read
    // (or split at the first `@`) as alice, from 10.0.0.5. `@` in the name part should be
    // percent-encoded like a space is. (Fixed the other way: a visitor name may hold no `@`, as
    // it may hold no colon: it is refused with 400 naming the `@`, and no line of the log can
    // read so. README "Rules for names"; PROTOCOL §3.3.)
    const b = (m: string, r: string, x?: unknown) => curl(bob.base, bob.token, m, r, x);
    expect((await b('POST', '/api/logout')).status).toBe(204);
    const refused = await b('POST', '/api/visitor', { name: 'alice@10.0.0.5' });
    expect(refused.status, JSON.stringify(refused.body)).toBe(400);
    expect(refused.body.error.message).toMatch(/no @/);
    const v = await b('POST', '/api/visitor', { name: 'alice at 10.0.0.5' });
    expect(v.body).toMatchObject({ role: 'visitor', username: 'alice at 10.0.0.5' });
    expect((await b('POST', `/api/channels/${channelId}/join`)).status).toBe(200);
    const log = fs.readFileSync(path.join(dir, 'server', 'connections.log'), 'latin1');
    const named = log.split('\n').filter((l) => / role=visitor/.test(l) && / ev=join /.test(l));
    expect(named.length).toBeGreaterThan(0);
    for (const l of named) {
      const peer = / peer=(\S+)/.exec(l)![1]!;
      expect(peer, l).toMatch(/^peer:[^@]+@[\d.]+:\d+$/);
    }
  });

  it('FINDING: Ctrl-C while a peer waits for its server (before the ready line) kills it by the signal instead of a clean stop with exit 0', async () => {
    // README: "SIGINT, SIGTERM and SIGHUP stop a process cleanly". A peer whose server accepts
    // TCP but does not answer waits several seconds before its ready line (README: "once every
    // `--server` address failed once"); a user who presses Ctrl-C then (the likeliest moment:
    // "why is nothing printed?") gets a process ended by SIGINT itself (status 130 in a shell),
    // not the clean stop it gets a second later.
    let dialled = false;
    const mute = net.createServer(() => {
      dialled = true; // accepts, never speaks
    });
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (mute.address() as net.AddressInfo).port;
      const l = launchHchat(['peer', '--server', `127.0.0.1:${port}`, '--data', `${dir}/mute`]);
      running.add(l);
      l.ready.catch(() => undefined);
      // It is waiting for its server once it has dialled it (however slowly it started).
      await until('the peer to dial its server', async () => dialled);
      await sleep(500);
      expect(l.proc.stdout?.readableLength ?? 0).toBe(0);
      l.proc.kill('SIGINT');
      const code = await Promise.race([l.exited, sleep(8000).then(() => 'hung')]);
      expect({ code, signal: l.proc.signalCode }).toEqual({ code: 0, signal: null });
    } finally {
      mute.close();
    }
  });

  it('a pinned fingerprint that is not the server’s: "error: E_SERVER_KEY_MISMATCH: …" once, and the API answers it (502) with what to do', async () => {
    const wrong = 'A'.repeat(43);
    const p = await startPeer('mismatch', ['--server', `${tcp}#${wrong}`]);
    const r = await until('the mismatch', async () => {
      const x = await curl(p.base, p.token, 'POST', '/api/register', {
        username: 'zed',
        password: 'zed-password',
      });
      return x.status === 502 ? x : undefined;
    });
    expect(r.body.error.code).toBe('E_SERVER_KEY_MISMATCH');
    expect(r.body.error.message).toContain(fp);
    await sleep(1000);
    const said = p.p.output().match(/^error: E_SERVER_KEY_MISMATCH: .*$/gm) ?? [];
    expect(said).toHaveLength(1);
    expect(said[0]).toContain(tcp);
    expect(await stop(p.p)).toBe(0);
  });

  it('FINDING: a --server where nothing answers: the peer says so on the terminal, and the API names the address (today silence, and "set status online")', async () => {
    // README: a peer "prints its line … once every `--server` address failed once (it keeps
    // trying them)". After that, nothing: no line on stdout or stderr, nothing in
    // connections.log, and every call that needs the server answers 503 E_OFFLINE "not connected
    // to the central server; set status online or wait for reconnection", before login, when
    // no status can be set. A mistyped port looks exactly like a slow server, for ever. The
    // wrong-key case shows how it should be: `error: E_SERVER_KEY_MISMATCH: the server at
    // <addr> …`, once (README). SPEC §7: "the one link closes with a clear error".
    const nobody = await stablePort();
    const p = await startPeer('unreachable', ['--server', `127.0.0.1:${nobody}`]);
    latePeer = p;
    const r = await curl(p.base, p.token, 'POST', '/api/register', {
      username: 'zed',
      password: 'zed-password',
    });
    expect(r.status).toBe(503);
    await sleep(1000);
    const terminal = p.p.output().replace(/^ready .*\n/m, '');
    expect
      .soft(terminal, 'the terminal names the address that does not answer')
      .toContain(`127.0.0.1:${nobody}`);
    expect.soft(r.body.error.message, r.body.error.message).toContain(`127.0.0.1:${nobody}`);
    // What does hold (README: "it keeps trying them"): a server started there later is reached
    // by itself, and trusted on first use.
    await start(['server', '--port', String(nobody), '--http-port', '0', '--data', `${dir}/late`]);
    await until('the peer to reach the late server', async () => {
      const x = await curl(p.base, p.token, 'POST', '/api/register', {
        username: 'zed',
        password: 'zed-password',
      });
      return x.status === 201;
    });
  });

  it('FINDING: a peer stopped with SIGINT logs no `close` for its link to the server (SPEC §9: one line per connection, opened and closed)', async () => {
    // SPEC §9: "one line per connection (opened, closed, who, address)"; PROTOCOL §6: `open` /
    // `close` (all processes) "a connection opened … or closed", `reason` `eof` or an error
    // code. The server logs its side (`close … reason=eof`); the peer's own log ends with the
    // link open, as if the process had been killed: a reader of that log cannot tell a clean
    // stop from a crash.
    const p = latePeer!;
    expect(await stop(p.p, 'SIGINT')).toBe(0);
    const log = fs.readFileSync(path.join(p.data, 'connections.log'), 'latin1');
    const opens = log.match(/ ev=open peer=server /g)?.length ?? 0;
    const closes = log.match(/ ev=close peer=server /g)?.length ?? 0;
    expect(opens).toBeGreaterThan(0);
    expect(closes, log).toBe(opens);
  });

  it('FINDING: `hchat server --data <a peer’s folder>` fails with "no such table: devices" and leaves the peer unable to start ("use a newer hchat")', async () => {
    // README "Running it yourself" keeps both kinds of folder side by side (`--data
    // ./server-data`, `--data ./alice`), and both default under ~/.hchat/; giving the server a
    // peer's folder is an easy slip. README: a damaged file "stops the process at start with a
    // message naming the file". Today the server says `hchat: no such table: devices` (no file,
    // no folder), and on its way out has written its own schema into the peer's dms.db (the
    // peer's direct-message keys): the peer then refuses to start, `dms.db: schema version 2 is
    // newer than this program knows (1); use a newer hchat`, which no newer hchat fixes.
    const copy = path.join(dir, 'peer-folder-copy');
    fs.cpSync(latePeer!.data, copy, { recursive: true });
    const srv = await run(['server', '--port', '0', '--http-port', '0', '--data', copy]);
    expect(srv.code).toBe(1);
    expect(srv.out).not.toMatch(STACK);
    const dead = await stablePort();
    const peer = await run(['peer', '--server', `127.0.0.1:${dead}`, '--data', copy], { ms: 8000 });
    expect(peer.stdout, `the peer on its own folder after that: ${peer.out}`).toMatch(
      /^ready ui=/m,
    );
    expect(srv.out, srv.out).toContain(copy);
  });

  it('FINDING: `hchat peer --data <a server’s folder>` says "schema version 2 is newer … use a newer hchat", and leaves its files there', async () => {
    // The same slip the other way round: the peer stops (good) but tells the user to upgrade,
    // which cannot help, and it has already written api-token and peer.db among the server's
    // files.
    const copy = path.join(dir, 'server-folder-copy');
    fs.cpSync(path.join(dir, 'late'), copy, { recursive: true });
    const before = new Set(fs.readdirSync(copy));
    const peer = await run(
      ['peer', '--server', `127.0.0.1:${await stablePort()}`, '--data', copy],
      {
        ms: 8000,
      },
    );
    expect(peer.code).toBe(1);
    expect(peer.out).not.toMatch(STACK);
    expect.soft(peer.out, peer.out).not.toMatch(/newer hchat/);
    expect.soft(peer.out).toMatch(/server/i);
    expect(fs.readdirSync(copy).filter((f) => !before.has(f) && !/-(wal|shm)$/.test(f))).toEqual(
      [],
    );
  });

  it('FINDING: --server given the server’s http= port (the easy mistake): silent, no `tls_error` in connections.log (PROTOCOL §6)', async () => {
    // The server's ready line prints two addresses, `tcp=` and `http=`; a user who copies the
    // wrong one gets a peer that prints its ready line and then nothing: E_OFFLINE "set status
    // online or wait for reconnection" for ever. PROTOCOL §6 lists `tls_error` (server, peer:
    // `addr`, `reason`) for "a TLS handshake failed (plaintext, old version, garbage)"; the
    // peer's handshakes with the plaintext HTTP port fail and its log stays empty.
    const httpPort = new URL(http).port;
    const p = await startPeer('http-port', ['--server', `127.0.0.1:${httpPort}`]);
    await sleep(1000);
    const log = fs.readFileSync(path.join(p.data, 'connections.log'), 'latin1');
    const terminal = p.p.output().replace(/^ready .*\n/m, '');
    expect
      .soft(terminal, 'the terminal names the address that does not speak TLS')
      .toContain(`127.0.0.1:${httpPort}`);
    expect(log, 'connections.log').toMatch(
      new RegExp(`ev=tls_error addr=127\\.0\\.0\\.1:${httpPort} `),
    );
  });
});

describe('hchat bot and hchat demo', () => {
  it('hchat bot: on a person’s token it stops at start saying how to make a bot; on the bot’s token it answers a mention; SIGINT exits 0', async () => {
    const a = (m: string, r: string, b?: unknown) => curl(alice.base, alice.token, m, r, b);
    // README "Write a bot in 5 minutes", step 1 through the local API.
    expect((await a('POST', '/api/bots', { username: 'echo' })).status).toBe(201);
    const botTok = await a('POST', '/api/tokens', {
      name: 'echo bot',
      account: 'echo',
      scopes: ['read', 'write'],
    });
    const mine = await a('POST', '/api/tokens', { name: 'mine', scopes: ['read', 'write'] });
    expect(botTok.body.token).toMatch(/^tok_/);
    const config = path.join(ROOT, 'examples', 'autoresponder.json');
    const [asUser, noServer] = await Promise.all([
      run(['bot', '--config', config, '--url', http], { env: { HCHAT_TOKEN: mine.body.token } }),
      run(['bot', '--config', config, '--url', `http://127.0.0.1:${await stablePort()}`], {
        env: { HCHAT_TOKEN: botTok.body.token },
      }),
    ]);
    expect(asUser.code).toBe(1);
    expect(asUser.out).toMatch(/not a bot's/);
    expect(asUser.out).toContain('POST /api/bots');
    expect(asUser.out).not.toContain(mine.body.token);
    expect(noServer.code).toBe(1);
    expect(noServer.out).toMatch(/cannot reach http:\/\/127\.0\.0\.1:\d+/);
    for (const r of [asUser, noServer]) expect(r.out).not.toMatch(STACK);
    // Step 2: join, start; step 3: `@echo hello`.
    const join = await fetch(`${http}api/v1/channels/${channelId}/join`, {
      method: 'POST',
      headers: { authorization: `Bearer ${botTok.body.token}` },
    });
    expect(join.status).toBe(200);
    const bot = await start(['bot', '--config', config, '--url', http], {
      HCHAT_TOKEN: botTok.body.token,
    });
    expect(bot.stdout()).toMatch(/^ready bot=echo channels=1$/m);
    await a('POST', `/api/channels/${channelId}/messages`, { text: '@echo hello there' });
    await until('the bot’s answer', async () => {
      const r = await a('GET', `/api/channels/${channelId}/messages?limit=5`);
      return r.body.messages?.some((m: any) => m.author === 'echo' && m.bot === true);
    });
    await until('its log line', async () =>
      /^replied channel=general to=alice rule=0/m.test(bot.stdout()),
    );
    expect(bot.output()).not.toContain(botTok.body.token);
    expect(await stop(bot, 'SIGINT')).toBe(0);
    botToken = botTok.body.token;
  });

  it('FINDING: hchat bot ends, with exit 0 and not a word, when its server restarts (README: the gateway "resumes after a cut")', async () => {
    // README: `hchat bot` runs "on the same SDK", whose `bot.newItems()` "streams new items
    // through the real-time gateway (…, a WebSocket that resumes after a cut without losing or
    // doubling an item)". Restart the server (SIGINT, SIGTERM or SIGKILL alike): the bot
    // process ends at once with exit code 0 and prints nothing, so a supervisor that restarts
    // failed services (systemd's Restart=on-failure) leaves it dead, and the next mention goes
    // unanswered.
    const config = path.join(ROOT, 'examples', 'autoresponder.json');
    const bot = await start(['bot', '--config', config, '--url', http], { HCHAT_TOKEN: botToken });
    expect(await stop(server, 'SIGINT')).toBe(0);
    server = await start([
      'server',
      '--port',
      tcp.split(':')[1]!,
      '--http-port',
      new URL(http).port,
      '--data',
      `${dir}/server`,
    ]);
    await sleep(2000);
    expect(bot.proc.exitCode, `the bot after the restart: ${bot.output()}`).toBeNull();
    await until('alice back on the server', async () => {
      const me = await curl(alice.base, alice.token, 'GET', '/api/me');
      return me.body.connection === 'connected';
    });
    await curl(alice.base, alice.token, 'POST', `/api/channels/${channelId}/messages`, {
      text: '@echo are you back',
    });
    await until('the bot’s answer after the restart', async () => {
      const r = await curl(
        alice.base,
        alice.token,
        'GET',
        `/api/channels/${channelId}/messages?limit=5`,
      );
      return r.body.messages?.some((m: any) => m.author === 'echo' && /are you back/.test(m.text));
    });
    expect(await stop(bot, 'SIGINT')).toBe(0);
  });

  it('hchat demo: prints a line per peer and a curl line that works; SIGINT stops it with exit 0 and deletes its data', async () => {
    const demo = await start(['demo'], {}, /^Ctrl-C stops the demo.*$/m);
    const out = demo.stdout();
    for (const n of ['alice', 'bob  ', 'carol']) {
      expect(out).toMatch(
        new RegExp(
          `^peer ${n} ui=http://127\\.0\\.0\\.1:\\d+/\\?token=\\S+ .*password=${n.trim()}-demo$`,
          'm',
        ),
      );
    }
    const data = /data=(\S+)/.exec(out)![1]!;
    expect(fs.existsSync(data)).toBe(true);
    const c =
      /curl -s -H 'Authorization: Bearer (\S+)' (http:\/\/127\.0\.0\.1:\d+\/api\/channels)/.exec(
        out,
      )!;
    const r = await fetch(c[2]!, { headers: { authorization: `Bearer ${c[1]}` } });
    expect(r.status).toBe(200);
    expect(((await r.json()) as any[]).map((x) => x.name)).toContain('general');
    expect(await stop(demo, 'SIGINT')).toBe(0);
    expect(demo.output()).not.toMatch(STACK);
    expect(fs.existsSync(data)).toBe(false);
  });

  it('the server: SIGINT stops it at once with exit 0 and a `shutdown` record, peers connected; restarted on the same --data it keeps its key', async () => {
    // README: "SIGINT, SIGTERM and SIGHUP stop a process cleanly"; "SIGINT and SIGHUP stop at
    // once". The file's server, with alice's and bob's peers still on it.
    expect(await stop(server, 'SIGINT')).toBe(0);
    expect(server.output()).not.toMatch(STACK);
    const log = fs.readFileSync(path.join(dir, 'server', 'connections.log'), 'latin1');
    expect(log.trimEnd().split('\n').pop()).toMatch(/ ev=shutdown$/);
    const again = await start([
      'server',
      '--port',
      '0',
      '--http-port',
      '0',
      '--data',
      `${dir}/server`,
    ]);
    expect(SERVER_READY.exec(again.stdout().trim())![3]).toBe(fp);
    expect(await stop(again, 'SIGTERM')).toBe(0);
  });
});
