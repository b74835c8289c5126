// Files on disk and a hostile neighbour on the same machine, attacked from the documents alone
// (README.md, docs/*.md, SPEC.md): real `bin/hchat` processes, some started with umask 000, a
// second OS user (`nobody`, through setpriv) as the neighbour, and damaged or tampered files in
// the data folder. The promises held to: SPEC §7 "the local API answers only on 127.0.0.1 … and
// only with its token (a random secret in the data folder, 0600)"; README "A damaged server.db,
// peer.db, session.json or key file stops the process at start with a message naming the file";
// docs/SECURITY.md "Local processes": "the boundary is the OS user"; ARCHITECTURE.md "Where the
// data lives" (0600 secrets); SECURITY.md "the server, every host and every member check every
// message they store or show". Tests marked FINDING failed on the code they were written against.
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchHchat, type HchatProcess, type Launched } from '../hchat-spawn.js';
import { localApi } from './lib.js';

const running = new Set<Launched>();
const NOBODY = 65534;
/** Runs the command with umask 000, as a careless login shell would. */
const UMASK0 = ['sh', '-c', 'umask 000; exec "$@"', 'sh'];

function launch(args: string[], umask0 = false, timeoutMs = 20_000): Launched {
  const l = launchHchat(args, {}, timeoutMs, /^ready (.*)$/m, umask0 ? UMASK0 : []);
  running.add(l);
  void l.exited.then(() => running.delete(l));
  return l;
}

async function stop(p: { proc: HchatProcess['proc']; exited: Promise<number | null> }) {
  if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGINT');
  await p.exited;
}

/** What a start ended in: its ready line, or its exit (code and output), within `ms`. */
async function outcome(
  l: Launched,
  ms = 12_000,
): Promise<{ ready?: HchatProcess; code?: number | null; out: string; hung?: boolean }> {
  let out = '';
  l.proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  l.proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const r = await Promise.race([
    l.ready.then(
      (ready) => ({ ready }),
      () => null,
    ),
    new Promise<'hung'>((res) => setTimeout(() => res('hung'), ms)),
  ]);
  if (r === 'hung') {
    l.proc.kill('SIGKILL');
    await l.exited;
    return { out, hung: true };
  }
  if (r) return { ready: r.ready, out };
  return { code: await l.exited, out };
}

interface Peer {
  p: HchatProcess;
  data: string;
  base: string;
  token: string;
  api: (method: string, route: string, body?: unknown, type?: string) => Promise<any>;
}

function peerOf(p: HchatProcess, data: string): Peer {
  const ui = new URL(p.ready.ui!);
  const base = ui.origin;
  const token = ui.searchParams.get('token')!;
  return { p, data, base, token, api: localApi(base, token) };
}

/** A small PNG (RGB, `n`×`n`), made here so that the avatar is a whole picture. */
function png(n: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, i) => {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(n, 0);
  ihdr.writeUInt32BE(n, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const rows: Buffer[] = [];
  for (let y = 0; y < n; y++) {
    const row = Buffer.alloc(1 + 3 * n);
    for (let x = 0; x < n; x++) row.set([x * 20, y * 20, 128], 1 + 3 * x);
    rows.push(row);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function walk(dir: string): string[] {
  const out: string[] = [dir];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

async function until<T>(f: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs `cmd` as the neighbour (uid/gid 65534). */
function asNobody(cmd: string) {
  const r = spawnSync(
    'setpriv',
    ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', 'sh', '-c', cmd],
    { encoding: 'utf8' },
  );
  return r;
}

// A parent folder like a home directory (0755): the data folders below it are made by hchat.
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-disk-'));
fs.chmodSync(root, 0o755);
let server: HchatProcess;
let serverAddr: string;
let alice: Peer;
let bob: Peer;
let channelId: string;
let bobMessageId: string;
const BOB_TEXT = 'bob wrote exactly this';
/** A peer of the shared server, in `root`/`name`. */
const peerArgs = (name: string) => [
  'peer',
  '--server',
  serverAddr,
  '--ui-port',
  '0',
  '--data',
  path.join(root, name),
];

beforeAll(async () => {
  server = await launch(
    ['server', '--port', '0', '--http-port', '0', '--data', path.join(root, 'srv')],
    true,
  ).ready;
  serverAddr = `${server.ready.tcp}#${server.ready.fingerprint}`;
  const [a, b] = await Promise.all([
    launch(peerArgs('alice'), true).ready,
    launch(peerArgs('bob'), true).ready,
  ]);
  alice = peerOf(a, path.join(root, 'alice'));
  bob = peerOf(b, path.join(root, 'bob'));
  for (const [p, u] of [
    [alice, 'alice'],
    [bob, 'bob'],
  ] as const) {
    const creds = { username: u, password: `${u}-disk-password` };
    expect((await p.api('POST', '/api/register', creds)).status).toBe(201);
    expect((await p.api('POST', '/api/login', creds)).status).toBe(200);
  }
  const ch = await alice.api('POST', '/api/channels', { name: 'disk', allowVisitors: false });
  expect(ch.status).toBe(201);
  channelId = ch.body.id;
  expect((await bob.api('POST', `/api/channels/${channelId}/join`)).status).toBe(200);
  const file = await alice.api(
    'POST',
    `/api/channels/${channelId}/files?name=${encodeURIComponent('notes.txt')}`,
    Buffer.from('the private contents of a file'),
    'text/plain',
  );
  expect(file.status).toBe(201);
  const withFile = await alice.api('POST', `/api/channels/${channelId}/messages`, {
    text: 'a file',
    files: [file.body.id],
  });
  expect(withFile.status).toBe(201);
  const avatar = await alice.api('PUT', '/api/me/avatar', png(8), 'image/png');
  expect(avatar.status).toBe(200);
  const posted = await bob.api('POST', `/api/channels/${channelId}/messages`, { text: BOB_TEXT });
  expect(posted.status).toBe(201);
  bobMessageId = posted.body.id;
  // bob's peer fetches alice's file (its chunk cache) and her avatar (its avatar cache); the
  // server holds both messages (a backup of each).
  const seen = await until(async () => {
    const r = await bob.api('GET', `/api/channels/${channelId}/messages`);
    const m = r.body.messages?.find((x: any) => x.files?.length);
    return m?.files[0];
  });
  const bytes = await fetch(bob.base + seen.url, {
    headers: { authorization: 'Bearer ' + bob.token },
  });
  expect(await bytes.text()).toBe('the private contents of a file');
  const av = await bob.api('GET', `/api/avatars/alice?v=${avatar.body.hash}`);
  expect(av.status).toBe(200);
  await until(async () => {
    const r = await bob.api('GET', `/api/channels/${channelId}/messages`);
    return r.body.messages?.every((m: any) => m.state === 'delivered');
  });
}, 60_000);

afterAll(async () => {
  await Promise.all(
    [...running].map(async (l) => {
      l.proc.kill('SIGKILL');
      await l.exited;
    }),
  );
  fs.rmSync(root, { recursive: true, force: true });
});

describe('files on disk, seen by another local user', () => {
  it('FINDING: with umask 000, nothing a server or peer writes is open to other local users (file chunks too)', async () => {
    const loose: string[] = [];
    for (const name of ['srv', 'alice', 'bob']) {
      for (const f of walk(path.join(root, name))) {
        const st = fs.lstatSync(f);
        const mode = st.mode & 0o777;
        // lock.db too: a neighbour who may read it may hold a lock on it, and the process could
        // then never start again (SECURITY.md "One process per data folder").
        if (mode & 0o077) loose.push(`${mode.toString(8)} ${path.relative(root, f)}`);
      }
    }
    // What was checked: the secrets the docs name, and what the setup made (a file's chunks, a
    // cached avatar) are there.
    const all = ['srv', 'alice', 'bob'].flatMap((n) =>
      walk(path.join(root, n)).map((f) => path.relative(root, f)),
    );
    for (const f of [
      'alice/api-token',
      'alice/session.json',
      'alice/peer.db',
      'alice/dms.db',
      'srv/server-key.pem',
      'srv/tls-key.pem',
      'srv/server.db',
      'srv/lock.db',
      'alice/lock.db',
      'alice/lock.db-journal',
    ])
      expect(all).toContain(f);
    const chunk = /^(bob|srv)\/files\/[A-Za-z0-9_-]{43}\/\d+$/;
    expect(all.filter((f) => chunk.test(f) && f.startsWith('bob/')).length).toBe(1);
    expect(all.filter((f) => chunk.test(f) && f.startsWith('srv/')).length).toBe(1);
    expect(all).toContain('bob/avatars/alice.json');
    expect(loose, loose.join('; ')).toEqual([]);
    // And as the neighbour: nothing under any data folder can be listed or read.
    const r = asNobody(`cat ${root}/alice/api-token ${root}/srv/tls-key.pem; ls ${root}/bob/files`);
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe('');
  });

  it('no password is written anywhere, and the API token only to api-token', async () => {
    // SPEC §3 "Passwords are stored only as a slow salted hash … never logged"; the API token
    // is a secret of its own file (0600), not of the logs or databases beside it.
    const hits: string[] = [];
    for (const name of ['srv', 'alice', 'bob'])
      for (const f of walk(path.join(root, name))) {
        if (!fs.statSync(f).isFile()) continue;
        const bytes = fs.readFileSync(f);
        for (const secret of ['alice-disk-password', 'bob-disk-password', alice.token, bob.token])
          if (bytes.includes(secret) && !(path.basename(f) === 'api-token'))
            hits.push(`${path.relative(root, f)} holds ${secret.slice(0, 6)}…`);
      }
    expect(hits).toEqual([]);
    // Nor in what the processes printed, but for the ready line's own URL.
    for (const p of [server, alice.p, bob.p]) expect(p.stderr()).not.toMatch(/disk-password/);
  });

  it('FINDING: a data folder another local user owns is refused before anything in it is read or written', async () => {
    // The neighbour made the folder first (a path in /tmp, a guessed name), with an API token of
    // their choosing and a symlink to a file of the user's.
    const nb = path.join(root, 'planted');
    fs.mkdirSync(nb);
    fs.chownSync(nb, NOBODY, NOBODY);
    fs.chmodSync(nb, 0o777);
    const victim = path.join(root, 'victim.txt');
    fs.writeFileSync(victim, 'the user’s own file\n');
    const known = 'KnownToTheNeighbour_0123456789';
    const r = asNobody(
      `printf ${known} > ${nb}/api-token && chmod 644 ${nb}/api-token && ln -s ${victim} ${nb}/connections.log`,
    );
    expect(r.status, r.stderr).toBe(0);
    const before = fs.readdirSync(nb).sort();
    const res = await outcome(
      launch(['peer', '--server', serverAddr, '--ui-port', '0', '--data', nb]),
    );
    // The neighbour must not hold the token of a peer that answers.
    if (res.ready) {
      const token = new URL(res.ready.ready.ui!).searchParams.get('token');
      expect(token).not.toBe(known);
    }
    expect(res.ready === undefined, res.out).toBe(true);
    expect(res.hung).toBeUndefined();
    expect(res.code).not.toBe(0);
    expect(res.out).toContain(nb);
    expect(fs.readFileSync(victim, 'utf8')).toBe('the user’s own file\n');
    expect(fs.readdirSync(nb).sort()).toEqual(before);
  });

  it('FINDING: a data folder other local users may write is refused, naming it, before anything is written', async () => {
    const open = path.join(root, 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    // A server too: its keys would be replaceable by anyone.
    const open2 = path.join(root, 'open-srv');
    fs.mkdirSync(open2);
    fs.chmodSync(open2, 0o1777);
    const [peer, srv] = await Promise.all([
      outcome(launch(['peer', '--server', serverAddr, '--ui-port', '0', '--data', open])),
      outcome(launch(['server', '--port', '0', '--http-port', '0', '--data', open2])),
    ]);
    for (const [res, dir] of [
      [peer, open],
      [srv, open2],
    ] as const) {
      expect(res.ready === undefined, res.out).toBe(true);
      expect(res.hung).toBeUndefined();
      expect(res.code).not.toBe(0);
      expect(res.out).toContain(dir);
      expect(fs.readdirSync(dir)).toEqual([]);
    }
  });

  it('FINDING: a data folder inside a folder another user owns, or may write without the sticky bit, is refused naming that folder', async () => {
    // Each data folder is the user's own and private, but the neighbour may rename it away (and
    // put one of theirs in its place before the next start) through the folder above it.
    const cases: Array<[string, (above: string) => void]> = [
      [
        'theirs',
        (d) => {
          fs.chownSync(d, NOBODY, NOBODY);
          fs.chmodSync(d, 0o755);
        },
      ],
      ['open', (d) => fs.chmodSync(d, 0o777)],
      // A group with a member other than the user (nobody's primary group) may write it.
      [
        'shared-group',
        (d) => {
          fs.chownSync(d, process.getuid!(), NOBODY);
          fs.chmodSync(d, 0o775);
        },
      ],
    ];
    const outcomes = await Promise.all(
      cases.map(async ([name, loosen]) => {
        const above = path.join(root, `above-${name}`);
        const data = path.join(above, 'mine');
        fs.mkdirSync(data, { recursive: true, mode: 0o700 });
        fs.chmodSync(data, 0o700);
        loosen(above);
        const res = await outcome(
          launch(['peer', '--server', serverAddr, '--ui-port', '0', '--data', data]),
        );
        return { above, data, res };
      }),
    );
    for (const { above, data, res } of outcomes) {
      expect(res.ready === undefined, res.out).toBe(true);
      expect(res.hung).toBeUndefined();
      expect(res.code).not.toBe(0);
      expect(res.out).toContain(`is inside ${above}`);
      expect(fs.readdirSync(data)).toEqual([]);
    }
  });

  it('a private data folder in a sticky folder all may write (as /tmp) is used, and so is one its user’s private group may write', async () => {
    const sticky = path.join(root, 'sticky');
    fs.mkdirSync(sticky);
    fs.chmodSync(sticky, 0o1777);
    const inSticky = path.join(sticky, 'mine');
    fs.mkdirSync(inSticky, { mode: 0o700 });
    // umask 002 on a system of user-private groups: the group is the user's alone (root's group
    // has no other member here), so group write is the user's own (OpenSSH's rule on Debian).
    const groupOwn = path.join(root, 'group-own');
    fs.mkdirSync(groupOwn);
    fs.chownSync(groupOwn, process.getuid!(), process.getgid!());
    fs.chmodSync(groupOwn, 0o770);
    for (const data of [inSticky, groupOwn]) {
      const p = await launch(['peer', '--server', serverAddr, '--ui-port', '0', '--data', data])
        .ready;
      expect(fs.existsSync(path.join(data, 'api-token'))).toBe(true);
      await stop(p);
    }
  });

  it('a data folder given as a symlink to the user’s own private folder is used as it is', async () => {
    const real = path.join(root, 'real');
    fs.mkdirSync(real, { mode: 0o700 });
    const link = path.join(root, 'link');
    fs.symlinkSync(real, link);
    const p = await launch(['peer', '--server', serverAddr, '--ui-port', '0', '--data', link])
      .ready;
    expect(fs.readFileSync(path.join(real, 'api-token'), 'utf8').trim()).toBe(
      new URL(p.ready.ui!).searchParams.get('token'),
    );
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    await stop(p);
  });
});

/**
 * A script that sends 30 VP8 keyframes as RTP to 127.0.0.1:<its argument>, 10 ms apart, and keeps
 * its socket 2 s more, as a sender does while it streams: the ingest port tells whose socket a
 * datagram came from while that socket is open.
 */
function rtpSender(): string {
  const sender = path.join(root, 'rtp-send.cjs');
  fs.writeFileSync(
    sender,
    `const s = require('dgram').createSocket('udp4');
     const port = Number(process.argv[2]);
     let n = 0;
     const next = () => {
       const p = Buffer.alloc(23);
       p[0] = 0x80; p[1] = 0x80 | 96;
       p.writeUInt16BE(n + 1, 2); p.writeUInt32BE(n * 3000, 4); p.writeUInt32BE(0x1234, 8);
       p[12] = 0x10; p[13] = 0x10;
       p.set([0x9d, 0x01, 0x2a], 16); p.writeUInt16LE(16, 19); p.writeUInt16LE(16, 21);
       s.send(p, port, '127.0.0.1', () => (++n < 30 ? setTimeout(next, 10) : setTimeout(() => s.close(), 2000)));
     };
     next();`,
    { mode: 0o644 },
  );
  return sender;
}

describe('the local API, from another local user', () => {
  it('FINDING: a token given with --api-token is not left in the process list for other users', async () => {
    // README gives `hchat peer --api-token <token>`; every local user reads every process's
    // command line (`ps`, /proc/<pid>/cmdline), and the token opens the whole local API.
    const d = path.join(root, 'argv-token');
    const secret = 'Argv_' + crypto.randomBytes(16).toString('base64url');
    const p = await launch([
      'peer',
      '--server',
      serverAddr,
      '--ui-port',
      '0',
      '--api-token',
      secret,
      '--data',
      d,
    ]).ready;
    expect(new URL(p.ready.ui!).searchParams.get('token')).toBe(secret);
    const seen = asNobody(`cat /proc/${p.proc.pid}/cmdline | tr '\\0' ' '`);
    expect(seen.status).toBe(0);
    expect(seen.stdout).toContain('hchat');
    expect(seen.stdout).not.toContain(secret);
    await stop(p);
  });

  it('FINDING: another local user holding connections to the local API idle holds few, briefly; the user is answered meanwhile', async () => {
    // SECURITY.md "Only its own OS user": connections another user opened and left idle had
    // taken every file descriptor of the peer (its own user's requests and the P2P port refused).
    // One connection every 50 ms (a peer busy on a loaded machine accepts them a little late):
    // how many of them are open at once, and how long each stays.
    const script = `
      const net = require('node:net');
      const [host, port] = process.argv.slice(1);
      let open = 0, most = 0, closed = 0, longest = 0;
      for (let i = 0; i < 40; i++) {
        setTimeout(() => {
          const s = net.connect(Number(port), host);
          let since = 0;
          s.on('error', () => {});
          s.on('connect', () => { since = Date.now(); most = Math.max(most, ++open); });
          s.on('close', () => {
            if (since) { open--; longest = Math.max(longest, Date.now() - since); }
            closed++;
          });
        }, i * 50);
      }
      const t0 = Date.now();
      const done = setInterval(() => {
        if (closed === 40 || Date.now() - t0 > 12000) {
          console.log(JSON.stringify({ closed, most, longest }));
          clearInterval(done);
          process.exit(0);
        }
      }, 50);`;
    const url = new URL(alice.base);
    const theirs = spawn(
      'setpriv',
      [
        ...['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups'],
        ...[process.execPath, '-e', script, url.hostname, url.port],
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    theirs.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((r) => theirs.once('exit', r));
    await new Promise((r) => setTimeout(r, 200));
    // While the neighbour holds what it may, the peer's own user is answered.
    const me = await alice.api('GET', '/api/me');
    expect(me.status).toBe(200);
    await exited;
    const seen = JSON.parse(out.trim()) as { closed: number; most: number; longest: number };
    // Every one closed, none kept much past 2 s, and at most 8 held at once (LOCAL_API_LIMITS;
    // a few more may wait in the accept queue of a loaded machine): all 40 stayed open before.
    expect(seen.closed, out).toBe(40);
    expect(seen.longest, out).toBeLessThan(4000);
    expect(seen.most, out).toBeLessThanOrEqual(20);
  });

  it('FINDING: a token that leaked to another local user opens nothing from that user’s processes', async () => {
    // SECURITY.md: a page left open while its peer is down hands the token (and URL keys) to
    // whoever takes the UI port meanwhile. Held by another OS user, neither may read, post or
    // watch: the boundary is the OS user, not the token.
    const expiry = Math.floor(Date.now() / 1000) + 3600;
    const key = `${expiry}.${crypto.createHmac('sha256', alice.token).update(`hchat url key v1 ${expiry}`).digest('base64url')}`;
    const script = `
      const [base, token, key] = process.argv.slice(1);
      const ask = async (method, route, body, auth = true) => {
        try {
          const ctl = new AbortController();
          const r = await fetch(base + route, {
            method,
            signal: ctl.signal,
            headers: { ...(auth ? { authorization: 'Bearer ' + token } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
            body: body ? JSON.stringify(body) : undefined,
          });
          // An event stream that opened never ends: its status is the answer.
          if (r.ok && route.startsWith('/api/events')) return ctl.abort(), r.status + ' stream';
          return r.status + ' ' + (await r.text()).slice(0, 200);
        } catch (err) { return 'closed ' + err.message; }
      };
      const out = [
        await ask('GET', '/api/me'),
        await ask('GET', '/api/channels'),
        await ask('POST', '/api/channels', { name: 'planted', allowVisitors: false }),
        await ask('GET', '/api/events?key=' + key, undefined, false),
      ];
      console.log(JSON.stringify(out));`;
    const r = spawnSync(
      'setpriv',
      [
        '--reuid',
        String(NOBODY),
        '--regid',
        String(NOBODY),
        '--clear-groups',
        process.execPath,
        '-e',
        script,
        alice.base,
        alice.token,
        key,
      ],
      { encoding: 'utf8', timeout: 15_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    const answers = JSON.parse(r.stdout) as string[];
    for (const a of answers) {
      expect(a, a).toMatch(/^403 /);
      expect(a).toContain('E_FORBIDDEN');
    }
    // The same token and key from this user's own process: the door was the user, not the token.
    const me = await alice.api('GET', '/api/me');
    expect(me.status).toBe(200);
    expect(me.body.username).toBe('alice');
    const channels = await alice.api('GET', '/api/channels');
    expect(channels.body.map((c: { name: string }) => c.name)).not.toContain('planted');
    const ctl = new AbortController();
    const events = await fetch(`${alice.base}/api/events?key=${key}`, { signal: ctl.signal });
    expect(events.status).toBe(200);
    ctl.abort();
  });

  it('answers on 127.0.0.1 only: no other address of this machine reaches it', async () => {
    const port = Number(new URL(alice.base).port);
    const addrs = ['127.0.0.2', '::1'];
    for (const list of Object.values(os.networkInterfaces()))
      for (const a of list ?? []) if (!a.internal) addrs.push(a.address.split('%')[0]!);
    for (const host of addrs) {
      const reached = await new Promise<boolean>((resolve) => {
        const s = net.connect({ host, port, timeout: 2000 });
        s.once('connect', () => (s.destroy(), resolve(true)));
        s.once('error', () => resolve(false));
        s.once('timeout', () => (s.destroy(), resolve(false)));
      });
      expect(reached, `${host}:${port}`).toBe(false);
    }
  });

  it('serves no file outside the web UI to a caller without the token (path traversal)', async () => {
    const port = Number(new URL(alice.base).port);
    const raw = (target: string) =>
      new Promise<string>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () =>
          s.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`),
        );
        let got = '';
        s.on('data', (d) => (got += d.toString()));
        s.on('end', () => resolve(got));
        s.on('error', reject);
      });
    const up = path
      .relative('/', alice.data)
      .split('/')
      .map(() => '..');
    for (const sep of ['/', '%2f', '%2F', '%5c'])
      for (const dot of ['..', '%2e%2e', '.%2e'])
        for (const prefix of ['/', '/assets/'])
          for (const f of [`${alice.data.slice(1)}/api-token`, 'etc/passwd']) {
            const target = prefix + up.map(() => dot).join(sep) + sep + f.split('/').join(sep);
            const got = await raw(target);
            expect(got, target).not.toContain(alice.token);
            expect(got, target).not.toContain('root:x:0:0');
          }
  });

  it('FINDING: an ingest port takes no frame from a neighbour, plain or SRTP; a plain one takes its own user’s, an SRTP one only sealed ones', async () => {
    // SECURITY.md: loopback is no boundary between the users of one machine. The neighbour (and
    // then the user's own process) sends VP8 keyframes as RTP to both kinds of port.
    const sender = rtpSender();
    const framesFrom = async (srtp: boolean, neighbour: boolean) => {
      const st = await alice.api('POST', `/api/channels/${channelId}/streams`, {
        source: 'rtp',
        srtp,
      });
      expect(st.status).toBe(201);
      const cmd = [process.execPath, sender, String(st.body.ingestPort)];
      const r = neighbour
        ? asNobody(cmd.join(' '))
        : spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', timeout: 15_000 });
      expect(r.status, r.stderr).toBe(0);
      const stats = await until(async () => {
        const x = await alice.api('GET', `/api/streams/${st.body.streamId}/stats`);
        const i = x.body.ingest;
        return i && i.packets + i.foreign >= 30 ? x.body : undefined;
      });
      expect((await alice.api('DELETE', `/api/streams/${st.body.streamId}`)).status).toBe(204);
      return stats;
    };
    for (const srtp of [false, true]) {
      const theirs = await framesFrom(srtp, true);
      expect(theirs.framesSent, `srtp ${srtp}`).toBe(0);
      expect(theirs.ingest.videoFrames).toBe(0);
      expect(theirs.ingest.foreign).toBe(30);
    }
    const own = await framesFrom(false, false);
    expect(own.framesSent).toBeGreaterThan(0);
    expect(own.ingest.foreign).toBe(0);
    const unsealed = await framesFrom(true, false);
    expect(unsealed.framesSent).toBe(0);
    expect(unsealed.ingest.srtpAuthFailures).toBe(30);
  });

  it('FINDING: a stream forwarded to a port a neighbour holds sends them nothing; the user’s own player gets it', async () => {
    // README "Livestream API": `forward {host: "127.0.0.1", port}` sends RTP to `port` (and
    // audio to port + 2). A neighbour who bound that port first (before the user's ffplay) got
    // the stream. Their listener counts what reaches it for 4 s.
    const listener = path.join(root, 'rtp-listen.cjs');
    fs.writeFileSync(
      listener,
      `const s = require('dgram').createSocket('udp4');
       let n = 0;
       s.on('message', () => n++);
       s.bind(0, '127.0.0.1', () => {
         console.log(s.address().port);
         setTimeout(() => (console.log(n), s.close()), 4000);
       });`,
      { mode: 0o644 },
    );
    const theirs = spawn(
      'setpriv',
      ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups'].concat([
        process.execPath,
        listener,
      ]),
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    theirs.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const theirPort = Number(await until(async () => /^(\d+)\n/.exec(out)?.[1]));
    const mine = dgram.createSocket('udp4');
    let got = 0;
    mine.on('message', () => got++);
    await new Promise<void>((r) => mine.bind(0, '127.0.0.1', () => r()));
    try {
      const st = await alice.api('POST', `/api/channels/${channelId}/streams`, {
        source: 'rtp',
        srtp: false,
      });
      expect(st.status).toBe(201);
      for (const port of [theirPort, mine.address().port]) {
        const f = await alice.api('POST', `/api/streams/${st.body.streamId}/forward`, {
          host: '127.0.0.1',
          port,
        });
        expect(f.status, JSON.stringify(f.body)).toBe(200);
      }
      const r = spawnSync(process.execPath, [rtpSender(), String(st.body.ingestPort)], {
        encoding: 'utf8',
        timeout: 15_000,
      });
      expect(r.status, r.stderr).toBe(0);
      await until(async () => got > 0 || undefined);
      const counted = await new Promise<string>((resolve) =>
        theirs.once('exit', () => resolve(out.trim().split('\n')[1] ?? '')),
      );
      expect(counted).toBe('0');
      expect((await alice.api('DELETE', `/api/streams/${st.body.streamId}`)).status).toBe(204);
    } finally {
      mine.close();
      theirs.kill();
    }
  });

  it('refuses every /api route without the token, and its error pages leak nothing', async () => {
    const secrets = [alice.token, bob.token, alice.data, root, 'alice-disk-password'];
    const leaks = (s: string) => secrets.filter((x) => s.includes(x));
    const tries: { method: string; route: string; headers?: Record<string, string> }[] = [
      { method: 'GET', route: '/api/me' },
      { method: 'GET', route: '/api/channels' },
      { method: 'GET', route: `/api/channels/${channelId}/messages` },
      { method: 'GET', route: '/api/events' },
      { method: 'GET', route: '/api/openapi.json' },
      { method: 'GET', route: '/api/dms' },
      { method: 'POST', route: '/api/channels' },
      { method: 'PUT', route: '/api/status' },
      { method: 'GET', route: '/api/me', headers: { authorization: 'Bearer ' } },
      { method: 'GET', route: '/api/me', headers: { authorization: 'Bearer ' + bob.token } },
      { method: 'GET', route: `/api/me?token=${alice.token}` },
      { method: 'GET', route: '/api/me', headers: { cookie: `token=${alice.token}` } },
      { method: 'GET', route: '/api/no-such-route' },
    ];
    for (const t of tries) {
      const r = await fetch(alice.base + t.route, {
        method: t.method,
        headers: { ...(t.headers ?? {}) },
        body: t.method === 'GET' ? undefined : '{}',
      });
      const body = await r.text();
      expect(r.status, `${t.method} ${t.route}`).toBe(401);
      expect(JSON.parse(body).error.code).toBe('E_API_TOKEN');
      expect(leaks(body + JSON.stringify([...r.headers]))).toEqual([]);
    }
    // With the token, what a bad request or an unknown thing gets names no file and no stack.
    const bad = await fetch(alice.base + `/api/channels/${channelId}/messages`, {
      method: 'POST',
      headers: { authorization: 'Bearer ' + alice.token, 'content-type': 'application/json' },
      body: '{"text": ',
    });
    const badBody = await bad.text();
    expect(bad.status).toBe(400);
    expect(leaks(badBody)).toEqual([]);
    expect(badBody).not.toMatch(/\bat .*\.(js|ts):\d+|node:internal|\/dist\//);
    const missing = await alice.api('GET', `/api/channels/${crypto.randomUUID()}/messages`);
    expect(missing.status).toBeGreaterThanOrEqual(400);
    expect(JSON.stringify(missing.body)).not.toMatch(/\bat .*\.(js|ts):\d+|node:internal|\/dist\//);
    // A page of another host name (DNS rebinding) gets nothing even with the token.
    const rebound = await new Promise<string>((resolve, reject) => {
      const s = net.connect(Number(new URL(alice.base).port), '127.0.0.1', () =>
        s.write(
          `GET /api/me HTTP/1.1\r\nHost: evil.example:${new URL(alice.base).port}\r\n` +
            `Authorization: Bearer ${alice.token}\r\nConnection: close\r\n\r\n`,
        ),
      );
      let got = '';
      s.on('data', (d) => (got += d.toString()));
      s.on('end', () => resolve(got));
      s.on('error', reject);
    });
    expect(rebound).toMatch(/^HTTP\/1\.1 4\d\d/);
    expect(rebound).not.toContain('"username":"alice"');
  });
});

describe('damaged and tampered files', () => {
  it('a damaged peer file stops the peer at start naming it, and nothing else in the folder changes', async () => {
    // A peer of its own, logged in, stopped cleanly: the template of each damage.
    const tpl = path.join(root, 'tpl-peer');
    const p = await launch(['peer', '--server', serverAddr, '--ui-port', '0', '--data', tpl]).ready;
    const dave = peerOf(p, tpl);
    const creds = { username: 'dave', password: 'dave-disk-password' };
    expect((await dave.api('POST', '/api/register', creds)).status).toBe(201);
    expect((await dave.api('POST', '/api/login', creds)).status).toBe(200);
    await stop(p);
    const cases: [string, string, (f: string) => void][] = [
      ['garbage-peerdb', 'peer.db', (f) => fs.writeFileSync(f, crypto.randomBytes(8192))],
      ['cut-peerdb', 'peer.db', (f) => fs.truncateSync(f, 100)],
      [
        'cut-session',
        'session.json',
        (f) => fs.writeFileSync(f, fs.readFileSync(f).subarray(0, 40)),
      ],
      ['garbage-dmsdb', 'dms.db', (f) => fs.writeFileSync(f, crypto.randomBytes(8192))],
      ['garbage-known', 'known_servers', (f) => fs.writeFileSync(f, 'not a line of it\n')],
      ['garbage-lock', 'lock.db', (f) => fs.writeFileSync(f, crypto.randomBytes(8192))],
    ];
    const dirs = cases.map(([name, file, damage]) => {
      const d = path.join(root, name);
      fs.cpSync(tpl, d, { recursive: true });
      damage(path.join(d, file));
      const sums = new Map<string, string>();
      for (const f of walk(d))
        if (fs.statSync(f).isFile() && !/lock\.db|connections\.log/.test(f)) sums.set(f, sha(f));
      return { d, file, sums };
    });
    const results = await Promise.all(
      dirs.map(({ d }) =>
        outcome(launch(['peer', '--server', serverAddr, '--ui-port', '0', '--data', d])),
      ),
    );
    results.forEach((res, i) => {
      const { d, file, sums } = dirs[i]!;
      const label = `${cases[i]![0]}: ${res.out}`;
      expect(res.ready === undefined, label).toBe(true);
      expect(res.hung, label).toBeUndefined();
      expect(res.code, label).not.toBe(0);
      expect(res.out, label).toContain(file);
      expect(res.out, label).not.toMatch(/\n\s+at /);
      for (const [f, s] of sums) expect(sha(f), `${label} changed ${f}`).toBe(s);
      expect(fs.existsSync(d)).toBe(true);
    });
  });

  it('an empty or short api-token never opens the local API to a guessed token', async () => {
    const d = path.join(root, 'short-token');
    fs.mkdirSync(d, { mode: 0o700 });
    fs.writeFileSync(path.join(d, 'api-token'), '', { mode: 0o600 });
    const res = await outcome(
      launch(['peer', '--server', serverAddr, '--ui-port', '0', '--data', d]),
    );
    if (res.ready) {
      const ui = new URL(res.ready.ready.ui!);
      const token = ui.searchParams.get('token') ?? '';
      expect(token.length).toBeGreaterThanOrEqual(22);
      for (const auth of ['Bearer ', 'Bearer', 'Bearer x'])
        expect(
          (await fetch(ui.origin + '/api/me', { headers: { authorization: auth } })).status,
        ).toBe(401);
      await stop(res.ready);
    } else {
      expect(res.hung).toBeUndefined();
      expect(res.out).toContain('api-token');
    }
  });

  it('a damaged server file stops the server at start naming it', async () => {
    const tpl = path.join(root, 'tpl-srv');
    const s = await launch(['server', '--port', '0', '--http-port', '0', '--data', tpl]).ready;
    await stop(s);
    const cases: [string, (f: string) => void][] = [
      ['server.db', (f) => fs.writeFileSync(f, crypto.randomBytes(8192))],
      ['server-key.pem', (f) => fs.writeFileSync(f, 'not a key\n')],
      ['tls-key.pem', (f) => fs.writeFileSync(f, fs.readFileSync(f).subarray(0, 30))],
    ];
    const runs = cases.map(([file, damage], i) => {
      const d = path.join(root, `srv-damaged-${i}`);
      fs.cpSync(tpl, d, { recursive: true });
      damage(path.join(d, file));
      return outcome(launch(['server', '--port', '0', '--http-port', '0', '--data', d]));
    });
    const results = await Promise.all(runs);
    results.forEach((res, i) => {
      const label = `${cases[i]![0]}: ${res.out}`;
      expect(res.ready === undefined, label).toBe(true);
      expect(res.hung, label).toBeUndefined();
      expect(res.code, label).not.toBe(0);
      expect(res.out, label).toContain(cases[i]![0]);
    });
  });

  it('a message altered in the host’s peer.db is shown as its author’s by no one', async () => {
    await stop(alice.p);
    const db = new Database(path.join(alice.data, 'peer.db'));
    const changed = db
      .prepare("UPDATE messages SET text = 'forged on disk' WHERE id = ?")
      .run(bobMessageId).changes;
    db.close();
    expect(changed).toBe(1);
    const a = await launch(
      [
        'peer',
        '--server',
        serverAddr,
        '--ui-port',
        String(new URL(alice.base).port),
        '--data',
        alice.data,
      ],
      true,
    ).ready;
    alice = peerOf(a, alice.data);
    // carol, a new member, reads the channel from its host.
    const c = peerOf(await launch(peerArgs('carol')).ready, path.join(root, 'carol'));
    const creds = { username: 'carol', password: 'carol-disk-password' };
    expect((await c.api('POST', '/api/register', creds)).status).toBe(201);
    expect((await c.api('POST', '/api/login', creds)).status).toBe(200);
    expect((await c.api('POST', `/api/channels/${channelId}/join`)).status).toBe(200);
    const page = await until(async () => {
      const r = await c.api('GET', `/api/channels/${channelId}/messages`);
      return r.body.source === 'host' && r.body.messages?.length ? r.body : undefined;
    });
    expect(page.messages.map((m: any) => m.text)).not.toContain('forged on disk');
    // bob, who had the true text, is shown no forged one either (the host may withhold his
    // message: SECURITY.md "A host (or the server) can still withhold messages").
    const b = await until(async () => {
      const r = await bob.api('GET', `/api/channels/${channelId}/messages`);
      return r.body.source === 'host' && r.body.messages?.length ? r.body : undefined;
    });
    expect(b.messages.map((m: any) => m.text)).not.toContain('forged on disk');
    // The host's own view is its own disk, which SECURITY.md leaves to its OS user: a peer
    // shows what its peer.db holds without checking it again (what it serves is checked).
  });
});
