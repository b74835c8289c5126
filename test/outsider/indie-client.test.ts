/**
 * An independent client (test/outsider/indie-lib.ts, written from docs/PROTOCOL.md alone)
 * against the real `bin/hchat server` and `bin/hchat peer` on 127.0.0.1. Tests that fail name
 * the sentence of the document that the system contradicts (or that was missing).
 */
import { describe, test, expect, beforeAll, afterAll } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  FrameLink,
  ProtoError,
  api,
  b64u,
  bodyDigest,
  channelBinding,
  dialHost,
  dialTls,
  fingerprintOf,
  itemId,
  itemSigInput,
  login,
  newKeys,
  openServer,
  p2pDial,
  rawFrame,
  readClaims,
  sha256,
  signB64u,
  signItem,
  startHost,
  start,
  until,
  uuidv7,
  verifyItem,
  type Proc,
  type ServerConn,
  type Session,
} from './indie-lib.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-indie-'));
let server: Proc;
let host = '127.0.0.1';
let port = 0;
let fp = '';
const procs: Proc[] = [];
const conns: FrameLink[] = [];

/** A fresh server connection (closed after all tests). */
async function conn(extra: Record<string, unknown> = {}): Promise<ServerConn> {
  const c = await openServer(host, port, fp, extra);
  conns.push(c.link);
  return c;
}
/** A raw TLS link to the server, before any hello. */
async function rawConn(): Promise<FrameLink> {
  const { sock } = await dialTls(host, port, { pin: fp });
  const l = new FrameLink(sock);
  conns.push(l);
  return l;
}
async function user(
  name: string,
  extra: Record<string, unknown> = {},
): Promise<ServerConn & { s: Session }> {
  const c = await conn(extra);
  const r = await c.link.request('register', { username: name, password: `${name}-password` });
  if (r.error && r.error.code !== 'E_USERNAME_TAKEN') throw new ProtoError('register', r.error);
  const s = await login(c, name, `${name}-password`);
  return { ...c, s };
}
async function peer(name: string, pin: string | null = fp): Promise<Proc & { ui: string }> {
  const p = await start([
    'peer',
    '--server',
    pin === null ? `${host}:${port}` : `${host}:${port}#${pin}`,
    '--host',
    '127.0.0.1',
    '--p2p-port',
    '0',
    '--udp-port',
    '0',
    '--ui-port',
    '0',
    '--data',
    path.join(dir, name),
  ]);
  procs.push(p);
  return Object.assign(p, { ui: p.ready.ui! });
}
async function apiLogin(ui: string, name: string): Promise<void> {
  const r = await api(ui, 'POST', '/api/register', {
    username: name,
    password: `${name}-password`,
  });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  const l = await api(ui, 'POST', '/api/login', { username: name, password: `${name}-password` });
  expect(l.status, JSON.stringify(l.body)).toBe(200);
}

let alicePeer: Proc & { ui: string };
let davePeer: Proc & { ui: string };

beforeAll(async () => {
  server = await start([
    'server',
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--http-port',
    '0',
    '--data',
    path.join(dir, 'server'),
    '--max-registrations-per-address',
    '1000',
  ]);
  procs.push(server);
  [host, port] = [server.ready.tcp!.split(':')[0]!, Number(server.ready.tcp!.split(':')[1])];
  fp = server.ready.fingerprint!;
  [alicePeer, davePeer] = await Promise.all([peer('alice'), peer('dave', null)]);
  await Promise.all([apiLogin(alicePeer.ui, 'alice'), apiLogin(davePeer.ui, 'dave')]);
});

afterAll(async () => {
  for (const c of conns) c.close();
  for (const p of procs.reverse()) await p.kill();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('§2.1 worked example (pure computation)', () => {
  test('digest, id and signature bytes of the worked example', () => {
    const m = {
      channelId: '019abcde-0000-7000-8000-0000000000c1',
      ts: 1764150000000,
      lc: 0,
      text: 'héllo 👋',
    };
    const body = JSON.stringify(['hchat/body/1', 'héllo 👋', null, null, null, null]);
    expect(Buffer.byteLength(body)).toBe(50);
    expect(bodyDigest(m)).toBe('kGT-oGi6mPBGCis7K0KbQ2zbbk0vCXLURiofamom3bs');
    const h = sha256(
      JSON.stringify([
        'hchat/item-id/2',
        m.channelId,
        'alice',
        m.ts,
        m.lc,
        'message',
        null,
        bodyDigest(m),
      ]),
    );
    expect(h.toString('hex')).toBe(
      '6f8b9ffd11eb42a3c62f7968fa37fac5645728c31fcf8ea852234b7175445998',
    );
    const id = itemId(m, 'Alice');
    expect(id).toBe('019abf88-b980-8f8b-9ffd-11eb42a3c62f');
    expect(itemSigInput({ ...m, id }, 'alice')).toBe(
      '["hchat/item/2","019abf88-b980-8f8b-9ffd-11eb42a3c62f","019abcde-0000-7000-8000-0000000000c1","alice",1764150000000,0,"message",null,"kGT-oGi6mPBGCis7K0KbQ2zbbk0vCXLURiofamom3bs"]',
    );
  });
});

describe('server link: TLS, framing, hello (§1, §1.1, §3.2)', () => {
  test('TLS 1.3 only; the ready line fingerprint is the SHA-256 of the key SPKI; key files 0600', async () => {
    expect(fp).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const { sock, fingerprint } = await dialTls(host, port, { pin: fp });
    expect(sock.getProtocol()).toBe('TLSv1.3');
    expect(sock.alpnProtocol).toBeFalsy();
    expect(fingerprint).toBe(fp);
    sock.destroy();
    // §1.1: the fingerprint names the key in tls-cert.pem / tls-key.pem of the data folder
    const certPem = fs.readFileSync(path.join(dir, 'server', 'tls-cert.pem'), 'utf8');
    expect(fingerprintOf(new crypto.X509Certificate(certPem))).toBe(fp);
    expect(fs.statSync(path.join(dir, 'server', 'tls-key.pem')).mode & 0o777).toBe(0o600);
    expect(new crypto.X509Certificate(certPem).publicKey.asymmetricKeyDetails?.namedCurve).toBe(
      'prime256v1',
    );
    // a TLS 1.2 client is refused in the handshake
    await expect(
      dialTls(host, port, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }),
    ).rejects.toThrow();
  });

  test('server hello carries the documented members', async () => {
    const c = await conn();
    const h = c.hello;
    expect(h).toMatchObject({
      t: 'hello',
      v: 4,
      role: 'server',
      heartbeatMs: 5000,
      timeoutMs: 15000,
      maxFrame: 1048576,
    });
    expect(h.compact).toBeUndefined();
    // canonical standard base64 of an Ed25519 SPKI DER
    expect(Buffer.from(h.publicKey, 'base64').toString('base64')).toBe(h.publicKey);
    expect(c.serverKey.asymmetricKeyType).toBe('ed25519');
    // ping is answered pong
    c.link.send({ t: 'ping' });
    await c.link.next((f) => f.t === 'pong');
  });

  test('fatal front-door errors close the link with the documented code', async () => {
    const cases: Array<[string, (l: FrameLink) => void, string]> = [
      [
        'req before hello',
        (l) => l.send({ t: 'req', id: 1, op: 'reflect', body: {} }),
        'E_HELLO_REQUIRED',
      ],
      ['hello v 3', (l) => l.send({ t: 'hello', v: 3, role: 'peer' }), 'E_VERSION_MISMATCH'],
      ['hello role host', (l) => l.send({ t: 'hello', v: 4, role: 'host' }), 'E_BAD_FRAME'],
      [
        'hello maxFrame too small',
        (l) => l.send({ t: 'hello', v: 4, role: 'peer', maxFrame: 1000 }),
        'E_BAD_FRAME',
      ],
      [
        'hello compact 0',
        (l) => l.send({ t: 'hello', v: 4, role: 'peer', compact: 0 }),
        'E_BAD_FRAME',
      ],
      ['N = 0', (l) => l.write(Buffer.alloc(4)), 'E_BAD_FRAME'],
      ['an array', (l) => l.write(rawFrame('[1]')), 'E_BAD_FRAME'],
      ['no t', (l) => l.write(rawFrame('{"v":4}')), 'E_BAD_FRAME'],
      [
        'invalid UTF-8',
        (l) => l.write(rawFrame(Buffer.from([0x7b, 0xc0, 0xaf, 0x7d]))),
        'E_BAD_FRAME',
      ],
      [
        'lone surrogate',
        (l) => l.write(rawFrame('{"t":"hello","v":4,"role":"peer","agent":"\\ud800"}')),
        'E_BAD_FRAME',
      ],
      [
        'frame over 16 KiB before a session',
        (l) => {
          const b = Buffer.alloc(4);
          b.writeUInt32BE(16385);
          l.write(b);
        },
        'E_FRAME_TOO_LARGE',
      ],
    ];
    const got = await Promise.all(
      cases.map(async ([, act]) => {
        const l = await rawConn();
        act(l);
        return (await l.fatal())?.code;
      }),
    );
    expect(Object.fromEntries(cases.map(([n], i) => [n, got[i]]))).toEqual(
      Object.fromEntries(cases.map(([n, , code]) => [n, code])),
    );
    // after hello: second hello, unknown frame type, malformed envelope
    const after: Array<[string, unknown, string]> = [
      ['second hello', { t: 'hello', v: 4, role: 'peer' }, 'E_BAD_FRAME'],
      ['unknown t', { t: 'gossip' }, 'E_UNKNOWN_TYPE'],
      ['req without id', { t: 'req', op: 'reflect', body: {} }, 'E_BAD_FRAME'],
      ['ref from a peer', { t: 'ref', c: 0, channelId: uuidv7() }, 'E_UNKNOWN_TYPE'],
    ];
    const got2 = await Promise.all(
      after.map(async ([, f]) => {
        const c = await conn();
        c.link.send(f);
        return (await c.link.fatal())?.code;
      }),
    );
    expect(got2).toEqual(after.map(([, , code]) => code));
  });

  test('non-fatal: unknown op, bad body, auth required; the link stays open', async () => {
    const c = await conn();
    expect((await c.link.request('teleport', {})).error?.code).toBe('E_UNKNOWN_TYPE');
    expect((await c.link.request('get_list', {})).error?.code).toBe('E_AUTH_REQUIRED');
    expect((await c.link.request('register', { username: 'x' })).error?.code).toBe('E_BAD_REQUEST');
    // reflect is open to anyone (§3.3)
    const r = await c.link.call('reflect', {});
    expect(r.ip).toBe('127.0.0.1');
    expect(r.port).toBe(c.link.sock.localPort);
    // unknown members are ignored (§1.1)
    const r2 = await c.link.call('reflect', { someFutureMember: 1 });
    expect(r2.ip).toBe('127.0.0.1');
    expect(c.link.closed).toBe(false);
  });
});

describe('accounts: register, login, resume, logout (§2.1, §3.3)', () => {
  test('register and its refusals', async () => {
    const c = await conn();
    expect(await c.link.call('register', { username: 'erin', password: 'erin-password' })).toEqual({
      username: 'erin',
    });
    for (const u of ['erin', 'ERIN', 'here', 'HERE'])
      expect(
        (await c.link.request('register', { username: u, password: 'whatever-pw' })).error?.code,
        u,
      ).toBe('E_USERNAME_TAKEN');
    expect(
      (await c.link.request('register', { username: 'a b', password: 'whatever-pw' })).error?.code,
    ).toBe('E_BAD_REQUEST');
    expect(
      (await c.link.request('register', { username: 'frank', password: '12345' })).error?.code,
    ).toBe('E_BAD_REQUEST');
  });

  test('login: certificate and token claims as documented', async () => {
    const c = await conn();
    await c.link.call('register', { username: 'gina', password: 'gina-password' });
    const bad = await c.link.request('login', {
      username: 'gina',
      password: 'wrong-password',
      publicKey: newKeys().publicKey,
    });
    expect(bad.error?.code, JSON.stringify(bad)).toBe('E_BAD_CREDENTIALS');
    const nobody = await c.link.request('login', {
      username: 'nobody',
      password: 'wrong-password',
      publicKey: newKeys().publicKey,
    });
    expect(nobody.error?.code, JSON.stringify(nobody)).toBe('E_BAD_CREDENTIALS');
    // a key off the curve / of small order is refused (§2.1)
    const small = await c.link.request('login', {
      username: 'gina',
      password: 'gina-password',
      publicKey: b64u(Buffer.alloc(32)),
    });
    expect(small.error?.code, JSON.stringify(small)).toBe('E_BAD_REQUEST');
    const s = await login(c, 'gina', 'gina-password');
    expect(s.username).toBe('gina');
    expect(s.sessionId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const cert = readClaims(s.cert, c.serverKey);
    expect(cert.valid).toBe(true);
    expect(cert.claims).toMatchObject({
      typ: 'key',
      sid: s.sessionId,
      u: 'gina',
      r: 'user',
      pk: s.keys.publicKey,
    });
    expect(cert.claims.exp - cert.claims.iat).toBe(2_592_000_000);
    const tok = readClaims(s.token, c.serverKey);
    expect(tok.valid).toBe(true);
    expect(tok.claims).toMatchObject({ typ: 'session', sid: s.sessionId, u: 'gina', r: 'user' });
    expect(
      (
        await c.link.request('login', {
          username: 'gina',
          password: 'gina-password',
          publicKey: newKeys().publicKey,
        })
      ).error?.code,
    ).toBe('E_ALREADY_AUTHENTICATED');

    // resume on a new connection: same session, renewed certificate of the same key
    await new Promise((r) => setTimeout(r, 5));
    const c2 = await conn();
    const rs = await c2.link.call('resume', { token: s.token });
    expect(rs).toMatchObject({ username: 'gina', role: 'user', sessionId: s.sessionId });
    const renewed = readClaims(rs.cert, c.serverKey).claims;
    expect(renewed.pk).toBe(s.keys.publicKey);
    expect(renewed.iat, JSON.stringify([renewed, cert.claims])).toBeGreaterThan(cert.claims.iat);
    const c3 = await conn();
    // A character of the signature changed. (Not its last two: an Ed25519 signature's last byte
    // is below 0x10, so a token ends with "AA" one time in 16, and "AA" would change nothing.)
    const at = s.token.length - 10;
    const tampered =
      s.token.slice(0, at) + (s.token[at] === 'A' ? 'B' : 'A') + s.token.slice(at + 1);
    expect((await c3.link.request('resume', { token: tampered })).error?.code).toBe(
      'E_SESSION_INVALID',
    );

    // logout: the session is revoked; the connection stays without one
    expect(await c2.link.call('logout', {})).toEqual({});
    expect((await c2.link.request('my_channels', {})).error?.code).toBe('E_AUTH_REQUIRED');
    expect((await c3.link.request('resume', { token: s.token })).error?.code).toBe(
      'E_SESSION_INVALID',
    );
    // the other connection of the revoked session is closed with E_SESSION_INVALID (§3.2)
    expect((await c.link.fatal())?.code).toBe('E_SESSION_INVALID');
  });
});

describe('channels and messages on the server link (§2.2, §3.3, §3.5, §3.6, §3.11)', () => {
  let hank: ServerConn & { s: Session };
  let ivy: ServerConn & { s: Session };
  let ch: string;
  const posted: any[] = [];

  beforeAll(async () => {
    [hank, ivy] = await Promise.all([user('hank'), user('ivy')]);
    ch = uuidv7();
  });

  test('create, directory, join, members, my_channels', async () => {
    const made = await hank.link.call('channel_create', {
      id: ch,
      name: 'general',
      allowVisitors: true,
    });
    expect(made).toMatchObject({ id: ch, name: 'general', owner: 'hank', allowVisitors: true });
    expect(typeof made.createdAt).toBe('number');
    expect(
      (await hank.link.request('channel_create', { id: ch, name: 'again', allowVisitors: false }))
        .error?.code,
    ).toBe('E_CHANNEL_EXISTS');
    const dirList = await ivy.link.call('directory', {});
    expect(dirList.channels.map((x: any) => x.id)).toContain(ch);
    const memberJoined = hank.link.ev('member_joined', (b) => b.channelId === ch);
    expect(await ivy.link.call('channel_join', { channelId: ch })).toMatchObject({
      id: ch,
      owner: 'hank',
    });
    expect(await memberJoined).toEqual({ channelId: ch, username: 'ivy' });
    expect((await ivy.link.call('members', { channelId: ch })).members.sort()).toEqual([
      'hank',
      'ivy',
    ]);
    expect((await ivy.link.call('my_channels', {})).channels.map((x: any) => x.id)).toContain(ch);
    expect((await ivy.link.request('channel_join', { channelId: uuidv7() })).error?.code).toBe(
      'E_CHANNEL_NOT_FOUND',
    );
  });

  test('post a signed message; idempotent; pushed to the other member, verified', async () => {
    const m = signItem(hank.s, { channelId: ch, text: 'hello from indie ✓' });
    const push = ivy.link.ev('message', (b) => b.message.id === m.id);
    const r = await hank.link.call('post', { message: m });
    expect(r).toEqual({ id: m.id, seq: 1, duplicate: false });
    expect(await hank.link.call('post', { message: m })).toEqual({
      id: m.id,
      seq: 1,
      duplicate: true,
    });
    const ev = await push;
    expect(ev.channelId).toBe(ch);
    expect(ev.message).toMatchObject({
      id: m.id,
      author: 'hank',
      seq: 1,
      text: m.text,
      sig: m.sig,
      ts: m.ts,
    });
    expect(verifyItem(ev.message, ivy.serverKey)).toBeNull();
    // never to the poster's own connection
    expect(await hank.link.absent((f) => f.t === 'ev' && f.ev === 'message', 300)).toBe(true);
    posted.push(m);
  });

  test('post refusals: id, signature, clock, membership, others', async () => {
    const base = signItem(ivy.s, { channelId: ch, text: 'x' });
    const codes = async (msg: any) =>
      (await ivy.link.request('post', { message: msg })).error?.code;
    expect(await codes({ ...base, id: uuidv7() })).toBe('E_BAD_SIGNATURE');
    expect(await codes({ ...base, text: 'y' })).toBe('E_BAD_SIGNATURE'); // id no longer derived
    const resigned = signItem(ivy.s, { channelId: ch, text: 'z' });
    expect(await codes({ ...resigned, sig: b64u(crypto.randomBytes(64)) })).toBe('E_BAD_SIGNATURE');
    expect(await codes({ ...resigned, cert: hank.s.cert })).toBe('E_BAD_SIGNATURE'); // cert of another user
    const future = signItem(ivy.s, { channelId: ch, text: 'future', ts: Date.now() + 120_000 });
    expect(await codes(future)).toBe('E_CLOCK_SKEW');
    const blank = signItem(ivy.s, { channelId: ch, text: '   ' });
    expect(await codes(blank)).toBe('E_BAD_REQUEST');
    const other = uuidv7();
    await hank.link.call('channel_create', { id: other, name: 'private', allowVisitors: false });
    expect(await codes(signItem(ivy.s, { channelId: other, text: 'not mine' }))).toBe(
      'E_NOT_MEMBER',
    );
    expect((await ivy.link.request('history', { channelId: other, limit: 10 })).error?.code).toBe(
      'E_NOT_MEMBER',
    );
    expect(await codes(signItem(ivy.s, { channelId: uuidv7(), text: 'nowhere' }))).toBe(
      'E_CHANNEL_NOT_FOUND',
    );
  });

  test('history pages (before) and sync by cursor', async () => {
    for (let i = 0; i < 5; i++) {
      // Two users' clocks (each its own HLC) stamp posts of one millisecond alike, and those are
      // ordered by id (§2.2), not as sent: a millisecond apart, the order is the sending order
      // (a clean-clone run got 'msg 4' before 'msg 3').
      await new Promise((r) => setTimeout(r, 2));
      const m = signItem(i % 2 ? ivy.s : hank.s, { channelId: ch, text: `msg ${i}` });
      await (i % 2 ? ivy : hank).link.call('post', { message: m });
      posted.push(m);
    }
    const page1 = await ivy.link.call('history', { channelId: ch, limit: 2 });
    expect(page1.messages.map((x: any) => x.text)).toEqual(['msg 3', 'msg 4']);
    expect(page1.hasMore).toBe(true);
    expect(page1.related ?? []).toEqual([]);
    const page2 = await ivy.link.call('history', {
      channelId: ch,
      limit: 10,
      before: page1.messages[0].id,
    });
    expect(page2.messages.map((x: any) => x.text)).toEqual([
      'hello from indie ✓',
      'msg 0',
      'msg 1',
      'msg 2',
    ]);
    expect(page2.hasMore).toBe(false);
    for (const x of [...page1.messages, ...page2.messages])
      expect(verifyItem(x, ivy.serverKey)).toBeNull();
    expect(
      (await ivy.link.request('history', { channelId: ch, limit: 10, before: uuidv7() })).error
        ?.code,
    ).toBe('E_NOT_FOUND');
    // sync: seq > since, ascending, with lastSeq
    const s1 = await ivy.link.call('sync', { channelId: ch, since: 0, limit: 4 });
    expect(s1.messages.map((x: any) => x.seq)).toEqual([1, 2, 3, 4]);
    expect(s1.lastSeq).toBe(6);
    const s2 = await ivy.link.call('sync', { channelId: ch, since: 4, limit: 500 });
    expect(s2.messages.map((x: any) => x.seq)).toEqual([5, 6]);
    expect(
      (await ivy.link.request('sync', { channelId: ch, since: 0, limit: 501 })).error?.code,
    ).toBe('E_BAD_REQUEST');
  });

  test('edit, reactions, delete: rights, related, tombstones that still verify', async () => {
    const target = posted[1]; // hank's "msg 0"
    const edit = signItem(hank.s, {
      channelId: ch,
      kind: 'edit',
      target: target.id,
      text: 'msg 0 (edited)',
    });
    expect((await hank.link.call('post', { message: edit })).duplicate).toBe(false);
    const notHis = signItem(ivy.s, {
      channelId: ch,
      kind: 'edit',
      target: target.id,
      text: 'hijack',
    });
    expect((await ivy.link.request('post', { message: notHis })).error?.code).toBe('E_FORBIDDEN');
    const noTarget = signItem(ivy.s, {
      channelId: ch,
      kind: 'react',
      target: uuidv7(),
      emoji: '👍',
    });
    expect((await ivy.link.request('post', { message: noTarget })).error?.code).toBe('E_NOT_FOUND');
    const react = signItem(ivy.s, { channelId: ch, kind: 'react', target: target.id, emoji: '👍' });
    await ivy.link.call('post', { message: react });
    // a member of the wrong shape for its kind (§2.2: "none of the rest")
    const wrong = signItem(ivy.s, {
      channelId: ch,
      kind: 'react',
      target: target.id,
      emoji: '👍',
      text: 'extra',
    });
    expect((await ivy.link.request('post', { message: wrong })).error?.code).toBe('E_BAD_REQUEST');
    const del = signItem(hank.s, { channelId: ch, kind: 'delete', target: target.id });
    await hank.link.call('post', { message: del });
    const page = await ivy.link.call('history', { channelId: ch, limit: 10 });
    const tomb = page.messages.find((x: any) => x.id === target.id);
    expect(tomb.text).toBeUndefined();
    expect(tomb.digest).toBe(bodyDigest(target));
    expect(verifyItem(tomb, ivy.serverKey)).toBeNull();
    const rel = page.related.filter((x: any) => x.target === target.id);
    expect(rel.map((x: any) => x.kind).sort()).toEqual(['delete', 'edit', 'react']);
    const relEdit = rel.find((x: any) => x.kind === 'edit');
    expect(relEdit.text).toBeUndefined(); // the edit's body is erased too
    for (const x of rel) expect(verifyItem(x, ivy.serverKey)).toBeNull();
  });

  test('compact link: ref + m frames rebuild into a verified stored message (§3.11)', async () => {
    const c = await conn({ compact: 1 });
    expect(c.hello.compact).toBe(1);
    const s = await login(c, 'ivy', 'ivy-password');
    expect(s.username).toBe('ivy');
    await c.link.call('subscribe', { channelIds: [ch] });
    const m = signItem(hank.s, { channelId: ch, text: 'compact push' });
    await hank.link.call('post', { message: m });
    const mf = await c.link.next((f) => f.t === 'm', 5000, 'm frame');
    const refs = c.link.seen.filter((f) => f.t === 'ref');
    const certRef = refs.find((f) => f.k === mf.k);
    const chRef = refs.find((f) => f.c === mf.c);
    expect(certRef?.cert).toBe(hank.s.cert);
    expect(chRef?.channelId).toBe(ch);
    expect(mf.id).toBeUndefined();
    expect(mf.author).toBeUndefined();
    const { t: _t, c: _c, k: _k, ...rest } = mf;
    const rebuilt: any = {
      ...rest,
      channelId: chRef!.channelId,
      cert: certRef!.cert,
      author: readClaims(certRef!.cert).claims.u,
    };
    rebuilt.id = itemId(rebuilt, rebuilt.author);
    expect(rebuilt.id).toBe(m.id);
    expect(verifyItem(rebuilt, c.serverKey)).toBeNull();
    // the next message in the channel is the m frame alone
    const nRefs = c.link.seen.filter((f) => f.t === 'ref').length;
    await hank.link.call('post', {
      message: signItem(hank.s, { channelId: ch, text: 'compact push 2' }),
    });
    await c.link.next((f) => f.t === 'm', 5000, 'second m frame');
    expect(c.link.seen.filter((f) => f.t === 'ref').length).toBe(nRefs);
    // sync answers are compact too
    const page = await c.link.call('sync', { channelId: ch, since: 0, limit: 2 });
    expect(page.messages[0].channelId).toBeUndefined();
    expect(typeof page.messages[0].c).toBe('number');
  });

  test('presence and typing: peer_joined, typing event, peer_left on close (§3.3, §3.5)', async () => {
    const joined = hank.link.ev('peer_joined', (b) => b.entry.username === 'ivy');
    const entry = (
      await ivy.link.call('submit_info', {
        ip: '127.0.0.1',
        port: 40001,
        udpPort: 40002,
        status: 'online',
      })
    ).entry;
    expect(entry).toMatchObject({
      username: 'ivy',
      role: 'user',
      ip: '127.0.0.1',
      port: 40001,
      udpPort: 40002,
      status: 'online',
      sessionId: ivy.s.sessionId,
    });
    expect((await joined).entry).toMatchObject({ username: 'ivy', port: 40001 });
    const list = await hank.link.call('get_list', {});
    expect(list.peers.map((p: any) => p.username)).toContain('ivy');
    // typing: to the other subscribers, with expiresAt ≈ now + 6 s
    const typing = hank.link.ev('typing', (b) => b.channelId === ch);
    expect(await ivy.link.call('typing', { channelId: ch })).toEqual({});
    const t = await typing;
    expect(t.username).toBe('ivy');
    expect(Math.abs(t.expiresAt - (Date.now() + 6000))).toBeLessThan(1500);
    // invisible: peer_left, and typing is dropped quietly
    const left = hank.link.ev('peer_left', (b) => b.entry.username === 'ivy');
    expect(await ivy.link.call('set_status', { status: 'invisible' })).toEqual({
      status: 'invisible',
    });
    await left;
    await new Promise((r) => setTimeout(r, 2100));
    expect(await ivy.link.call('typing', { channelId: ch })).toEqual({});
    expect(await hank.link.absent((f) => f.t === 'ev' && f.ev === 'typing', 400)).toBe(true);
    expect((await hank.link.call('get_list', {})).peers.map((p: any) => p.username)).not.toContain(
      'ivy',
    );
  });

  test('visitor: reads an allowVisitors channel, never writes', async () => {
    const c = await conn();
    const keys = newKeys();
    const v = await c.link.call('visitor', { name: ' Visiting Vera ', publicKey: keys.publicKey });
    expect(v).toMatchObject({ username: 'Visiting Vera', role: 'visitor' });
    expect(readClaims(v.cert, c.serverKey).claims.r).toBe('visitor');
    expect(
      (await c.link.request('visitor', { name: 'hank', publicKey: keys.publicKey })).error?.code,
    ).toBe('E_ALREADY_AUTHENTICATED');
    const c2 = await conn();
    expect(
      (await c2.link.request('visitor', { name: 'HANK', publicKey: newKeys().publicKey })).error
        ?.code,
    ).toBe('E_NAME_TAKEN');
    expect((await c.link.call('channel_join', { channelId: ch })).id).toBe(ch);
    const page = await c.link.call('history', { channelId: ch, limit: 3 });
    expect(page.messages.length).toBe(3);
    const s: Session = {
      username: v.username,
      sessionId: v.sessionId,
      token: v.token,
      cert: v.cert,
      keys,
      clock: new (await import('./indie-lib.js')).Hlc(),
    };
    expect(
      (await c.link.request('post', { message: signItem(s, { channelId: ch, text: 'hi' }) })).error
        ?.code,
    ).toBe('E_VISITOR_READ_ONLY');
    expect(
      (await c.link.request('channel_create', { id: uuidv7(), name: 'v', allowVisitors: true }))
        .error?.code,
    ).toBe('E_VISITOR_READ_ONLY');
  });
});

describe('P2P (§4): a real host, and a real member of an indie host', () => {
  test('member: find the host through the tracker, handshake with channel binding, read and post', async () => {
    const made = await api(alicePeer.ui, 'POST', '/api/channels', {
      name: 'alice-hosted',
      allowVisitors: false,
    });
    expect(made.status).toBe(201);
    const chA = made.body.id as string;
    const first = await api(alicePeer.ui, 'POST', `/api/channels/${chA}/messages`, {
      text: 'hosted hello',
    });
    expect(first.status).toBe(201);
    const bob = await user('bob');
    await bob.link.call('channel_join', { channelId: chA });
    const entry = await until(
      async () => {
        const l = await bob.link.call('get_list', {});
        return l.peers.find((p: any) => p.username === 'alice' && p.hosts.includes(chA));
      },
      8000,
      "alice's entry hosting the channel",
    );
    expect(entry.ip).toBe('127.0.0.1');
    expect(`${entry.ip}:${entry.port}`).toBe(alicePeer.ready.p2p);

    const { link, hostHello } = await dialHost(entry, bob.s, bob.serverKey);
    conns.push(link);
    expect(hostHello).toMatchObject({
      t: 'hello',
      v: 4,
      role: 'host',
      heartbeatMs: 2000,
      timeoutMs: 6000,
    });
    // the host learns bob joined (member_joined); wait until it lets bob read
    const hist = await until(
      async () => {
        const r = await link.request('history', { channelId: chA, limit: 50 });
        return r.body;
      },
      5000,
      'history from the host',
    );
    expect(hist.messages.map((x: any) => x.text)).toEqual(['hosted hello']);
    for (const x of hist.messages) expect(verifyItem(x, bob.serverKey)).toBeNull();
    const sync = await link.call('sync', { channelId: chA, since: 0, limit: 500 });
    expect(sync.lastSeq).toBe(1);
    expect(await link.call('subscribe', { channelIds: [chA] })).toEqual({ channelIds: [chA] });

    // post through the host: the host answers with its seq; alice's peer shows it
    const m = signItem(bob.s, { channelId: chA, text: 'bob via P2P' });
    expect(await link.call('post', { message: m })).toEqual({ id: m.id, seq: 2, duplicate: false });
    expect(await link.call('post', { message: m })).toMatchObject({
      id: m.id,
      seq: 2,
      duplicate: true,
    });
    const bad = {
      ...signItem(bob.s, { channelId: chA, text: 'forged' }),
      sig: b64u(crypto.randomBytes(64)),
    };
    expect((await link.request('post', { message: bad })).error?.code).toBe('E_BAD_SIGNATURE');
    await until(
      async () => {
        const r = await api(alicePeer.ui, 'GET', `/api/channels/${chA}/messages`);
        return r.body.messages.some((x: any) => x.id === m.id && x.author === 'bob');
      },
      5000,
      "bob's message on alice's peer",
    );
    // the host forwards it once to the server (§4.3)
    await until(
      async () => {
        const s = await bob.link.call('sync', { channelId: chA, since: 0, limit: 500 });
        return s.messages.some((x: any) => x.id === m.id);
      },
      6000,
      'the message backed up at the server',
    );

    // alice posts: the host pushes it to bob
    const push = link.ev('message', (b) => b.channelId === chA && b.message.text === 'alice live');
    await api(alicePeer.ui, 'POST', `/api/channels/${chA}/messages`, { text: 'alice live' });
    const ev = await push;
    expect(ev.message.author).toBe('alice');
    expect(verifyItem(ev.message, bob.serverKey)).toBeNull();
    // typing through the host
    expect(await link.call('typing', { channelId: chA })).toEqual({});
    expect((await link.request('warp', {})).error?.code).toBe('E_UNKNOWN_TYPE');
  });

  test('member: an auth signed over another channel binding is refused E_SESSION_INVALID', async () => {
    const bob = await user('bob');
    const entry = await until(
      async () => {
        const l = await bob.link.call('get_list', {});
        return l.peers.find((p: any) => p.username === 'alice' && p.hosts.length > 0);
      },
      5000,
      'alice entry',
    );
    const { link } = await dialHost(entry, bob.s, bob.serverKey, {
      bindingOverride: b64u(crypto.randomBytes(32)),
    });
    conns.push(link);
    expect((await link.fatal())?.code).toBe('E_SESSION_INVALID');
    // and a frame other than hello first
    const { sock } = await dialTls(entry.ip, entry.port);
    const l2 = new FrameLink(sock);
    conns.push(l2);
    l2.send({ t: 'req', id: 1, op: 'history', body: {} });
    expect((await l2.fatal())?.code).toBe('E_HELLO_REQUIRED');
  });

  test('host: a real peer dials the indie host from the tracker, passes the handshake, reads from it', async () => {
    const carol = await user('carol');
    const chC = uuidv7();
    await carol.link.call('channel_create', { id: chC, name: 'carol-indie', allowVisitors: false });
    const m = signItem(carol.s, { channelId: chC, text: 'served by indie host' });
    await carol.link.call('post', { message: m });
    const stored = { ...m, author: 'carol', seq: 1 };
    const h = await startHost(carol.s, carol.serverKey, (op, body) => {
      if (op === 'subscribe')
        return { body: { channelIds: (body.channelIds ?? []).filter((x: string) => x === chC) } };
      if (op === 'sync')
        return body.channelId === chC
          ? { body: { messages: body.since < 1 ? [stored] : [], lastSeq: 1 } }
          : { error: { code: 'E_CHANNEL_NOT_FOUND', message: 'not hosted here' } };
      if (op === 'history')
        return body.channelId === chC
          ? { body: { messages: [stored], hasMore: false, related: [] } }
          : { error: { code: 'E_CHANNEL_NOT_FOUND', message: 'not hosted here' } };
      return { error: { code: 'E_UNKNOWN_TYPE', message: `unknown op ${op}` } };
    });
    try {
      await carol.link.call('submit_info', {
        ip: '127.0.0.1',
        port: h.port,
        udpPort: h.port,
        status: 'online',
        hosts: [chC],
      });
      const j = await api(davePeer.ui, 'POST', `/api/channels/${chC}/join`);
      expect(j.status, JSON.stringify(j.body)).toBe(200);
      await until(() => h.handshakes.length > 0, 8000, 'a handshake from dave');
      expect(h.handshakes[0]).toMatchObject({ ok: true, member: { u: 'dave', r: 'user' } });
      await until(() => h.requests.length > 0, 5000, 'a request from dave');
      const page = await until(
        async () => {
          const r = await api(davePeer.ui, 'GET', `/api/channels/${chC}/messages`);
          return r.body.source === 'host' && r.body.messages.length > 0 && r.body;
        },
        8000,
        "dave's page from the host",
      );
      expect(page.messages[0]).toMatchObject({
        id: m.id,
        author: 'carol',
        text: 'served by indie host',
      });
    } finally {
      h.close();
    }
  });
});

describe('more of what a client relies on', () => {
  test('pages are cut to the receiver maxFrame: history keeps the newest, sync the oldest (§3.3)', async () => {
    const c = await conn({ maxFrame: 65536 });
    await c.link.call('register', { username: 'kate', password: 'kate-password' });
    const s = await login(c, 'kate', 'kate-password');
    const chK = uuidv7();
    await c.link.call('channel_create', { id: chK, name: 'big', allowVisitors: false });
    const big = 'x'.repeat(3900);
    const ids: string[] = [];
    for (let i = 0; i < 24; i++) {
      const m = signItem(s, { channelId: chK, text: `${i} ${big}` });
      ids.push(m.id);
      await c.link.call('post', { message: m });
    }
    const page = await c.link.call('history', { channelId: chK, limit: 500 });
    expect(page.hasMore).toBe(true);
    expect(page.messages.length).toBeLessThan(24);
    expect(page.messages.at(-1).id).toBe(ids[23]);
    expect(c.link.seen.every((f) => JSON.stringify(f).length <= 65536)).toBe(true);
    const sy = await c.link.call('sync', { channelId: chK, since: 0, limit: 500 });
    expect(sy.messages.length).toBeLessThan(24);
    expect(sy.messages[0].seq).toBe(1);
    expect(sy.lastSeq).toBe(24);
  });

  test('after a session the frame cap is maxFrame: a longer frame is E_FRAME_TOO_LARGE (§1)', async () => {
    const c = await conn();
    await c.link.call('register', { username: 'liam', password: 'liam-password' });
    await login(c, 'liam', 'liam-password');
    // 20 KiB passes now (over the 16 KiB pre-session cap)
    const r = await c.link.request('reflect', { pad: 'p'.repeat(20_000) });
    expect(r.body?.ip).toBe('127.0.0.1');
    const head = Buffer.alloc(4);
    head.writeUInt32BE(1_048_577);
    c.link.write(head);
    expect((await c.link.fatal())?.code).toBe('E_FRAME_TOO_LARGE');
  });

  test('login budget: 5 failures per (account, address group) → E_RATE_LIMITED with retryAfterMs (§3.3)', async () => {
    const c = await conn();
    await c.link.call('register', { username: 'mona', password: 'mona-password' });
    const codes: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await c.link.request('login', {
        username: 'mona',
        password: `wrong-${i}-pw`,
        publicKey: newKeys().publicKey,
      });
      codes.push(r.error?.code);
      if (r.error?.code === 'E_RATE_LIMITED') expect(r.error.retryAfterMs).toBeGreaterThan(0);
    }
    expect(codes.slice(0, 5)).toEqual(Array(5).fill('E_BAD_CREDENTIALS'));
    expect(codes[5]).toBe('E_RATE_LIMITED');
  });

  test('resume starts with no subscriptions; channel_leave tells the owner member_left (§3.5, §3.6)', async () => {
    const owner = await user('nina');
    const mem = await user('oscar');
    const chN = uuidv7();
    await owner.link.call('channel_create', { id: chN, name: 'n', allowVisitors: false });
    await mem.link.call('channel_join', { channelId: chN });
    const again = await conn();
    await again.link.call('resume', { token: mem.s.token });
    await owner.link.call('post', {
      message: signItem(owner.s, { channelId: chN, text: 'before subscribe' }),
    });
    expect(await again.link.absent((f) => f.t === 'ev' && f.ev === 'message', 400)).toBe(true);
    expect(await again.link.call('subscribe', { channelIds: [chN, uuidv7()] })).toEqual({
      channelIds: [chN],
    });
    const p = again.link.ev('message', (b) => b.channelId === chN);
    await owner.link.call('post', {
      message: signItem(owner.s, { channelId: chN, text: 'after subscribe' }),
    });
    expect((await p).message.text).toBe('after subscribe');
    const left = owner.link.ev('member_left', (b) => b.channelId === chN);
    expect(await mem.link.call('channel_leave', { channelId: chN })).toEqual({});
    expect(await left).toEqual({ channelId: chN, username: 'oscar' });
    expect((await owner.link.request('channel_leave', { channelId: chN })).error?.code).toBe(
      'E_FORBIDDEN',
    );
    expect((await mem.link.request('channel_leave', { channelId: chN })).error?.code).toBe(
      'E_NOT_MEMBER',
    );
  });

  test('typing repeats within 2 s are dropped quietly; mentions; session_check (§3.3)', async () => {
    const a = await user('paul');
    const b = await user('quinn');
    const chP = uuidv7();
    await a.link.call('channel_create', { id: chP, name: 'p', allowVisitors: false });
    await b.link.call('channel_join', { channelId: chP });
    await b.link.call('submit_info', {
      ip: '127.0.0.1',
      port: 40011,
      udpPort: 40012,
      status: 'online',
    });
    await b.link.call('typing', { channelId: chP });
    await a.link.ev('typing', (x) => x.channelId === chP);
    expect(await b.link.call('typing', { channelId: chP })).toEqual({});
    expect(await a.link.absent((f) => f.t === 'ev' && f.ev === 'typing', 500)).toBe(true);
    const m = signItem(b.s, {
      channelId: chP,
      text: '@paul @here look',
      mentions: ['paul', 'here'],
    });
    const push = a.link.ev('message', (x) => x.message.id === m.id);
    await b.link.call('post', { message: m });
    expect((await push).message.mentions).toEqual(['paul', 'here']);
    expect(
      verifyItem(
        (await a.link.call('history', { channelId: chP, limit: 1 })).messages[0],
        a.serverKey,
      ),
    ).toBeNull();
    // session_check: about a session that dialled the asker, shown its hello's dial (§4.1).
    const nonce = b64u(crypto.randomBytes(32));
    const binding = b64u(crypto.randomBytes(32));
    const proof = (s: Session, host: string) => ({
      nonce,
      binding,
      sig: signB64u(s.keys, p2pDial(nonce, s.sessionId, host, binding)),
    });
    expect(
      await a.link.call('session_check', {
        sessionId: b.s.sessionId,
        proof: proof(b.s, a.s.sessionId),
      }),
    ).toEqual({ live: true });
    // A dial to someone else, or no session at all: as unknown.
    expect(
      await a.link.call('session_check', {
        sessionId: b.s.sessionId,
        proof: proof(b.s, b.s.sessionId),
      }),
    ).toEqual({ live: false });
    expect(
      await a.link.call('session_check', {
        sessionId: 'AAAAAAAAAAAAAAAAAAAAAA',
        proof: proof(b.s, a.s.sessionId),
      }),
    ).toEqual({ live: false });
  });

  test('forward: only the channel owner; judged per message (§3.3)', async () => {
    const a = await user('rita');
    const b = await user('sam');
    const chR = uuidv7();
    await a.link.call('channel_create', { id: chR, name: 'r', allowVisitors: false });
    await b.link.call('channel_join', { channelId: chR });
    const mb = { ...signItem(b.s, { channelId: chR, text: 'sam via host' }), author: 'sam' };
    const forged = {
      ...signItem(b.s, { channelId: chR, text: 'forged' }),
      author: 'sam',
      sig: b64u(crypto.randomBytes(64)),
    };
    const r = await a.link.call('forward', { messages: [mb, forged] });
    expect(r.results[0]).toEqual({ id: mb.id, seq: 1, duplicate: false });
    expect(r.results[1].error.code).toBe('E_BAD_SIGNATURE');
    const byMember = await b.link.call('forward', { messages: [mb] });
    expect(byMember.results[0].error.code).toBe('E_FORBIDDEN');
  });

  test('a tombstone is posted only with deletedBy (§2.2 Deleted before it was delivered)', async () => {
    const a = await user('tina');
    const chT = uuidv7();
    await a.link.call('channel_create', { id: chT, name: 't', allowVisitors: false });
    const m = signItem(a.s, { channelId: chT, text: 'never seen' });
    const del = {
      ...signItem(a.s, { channelId: chT, kind: 'delete', target: m.id }),
      author: 'tina',
    };
    const { text: _t, ...tomb } = { ...m, digest: bodyDigest(m) };
    expect((await a.link.request('post', { message: tomb })).error?.code).toBe('E_BAD_REQUEST');
    const r = await a.link.call('post', { message: tomb, deletedBy: del });
    expect(r).toMatchObject({ id: m.id, seq: 1, duplicate: false });
    const again = await a.link.call('post', { message: del });
    expect(again.duplicate).toBe(true);
    const page = await a.link.call('history', { channelId: chT, limit: 5 });
    expect(page.messages[0].text).toBeUndefined();
    expect(page.related.map((x: any) => x.kind)).toEqual(['delete']);
  });

  test('a peer without a pin trusts on first use: known_servers and the trust log line (§1.1, §6)', async () => {
    const dataDir = path.join(dir, 'dave');
    const known = fs.readFileSync(path.join(dataDir, 'known_servers'), 'utf8');
    expect(known).toMatch(new RegExp(`^127\\.0\\.0\\.1:${port} ${fp}$`, 'm'));
    expect(fs.statSync(path.join(dataDir, 'known_servers')).mode & 0o777).toBe(0o600);
    const log = fs.readFileSync(path.join(dataDir, 'connections.log'), 'utf8');
    expect(log).toMatch(new RegExp(`ev=trust .*how=first-use`));
    expect(log).toMatch(new RegExp(`ev=trust .*fingerprint=${fp}`));
  });

  test('a peer pinned to another key refuses the server: E_SERVER_KEY_MISMATCH 502 (§1.1)', async () => {
    const p = await peer('mallory', b64u(crypto.randomBytes(32)));
    const r = await until(
      async () => {
        const x = await api(p.ui, 'POST', '/api/register', {
          username: 'mallory',
          password: 'mallory-pw',
        });
        return x.status !== 503 ? x : null;
      },
      6000,
      'an answer other than 503',
    );
    expect(r.status).toBe(502);
    expect(r.body.error.code).toBe('E_SERVER_KEY_MISMATCH');
    expect(r.body.error.message).toContain(fp);
    await p.kill();
  });

  test('no hello within 5 s: E_HELLO_REQUIRED (§3.2)', async () => {
    const l = await rawConn();
    const t0 = Date.now();
    expect((await l.fatal(8000))?.code).toBe('E_HELLO_REQUIRED');
    expect(Date.now() - t0).toBeGreaterThan(4000);
  });
});

describe('P2P edges (§4.1, §4.2, §4.3, §6)', () => {
  test('host front door, rights per request, compact, revocation, offline host', async () => {
    const made = await api(alicePeer.ui, 'POST', '/api/channels', {
      name: 'alice-edges',
      allowVisitors: true,
    });
    const chE = made.body.id as string;
    const priv = (
      await api(alicePeer.ui, 'POST', '/api/channels', {
        name: 'alice-private',
        allowVisitors: false,
      })
    ).body.id as string;
    await api(alicePeer.ui, 'POST', `/api/channels/${chE}/messages`, { text: 'edge hello' });
    const uma = await user('uma');
    await uma.link.call('channel_join', { channelId: chE });
    const entry = await until(
      async () => {
        const l = await uma.link.call('get_list', {});
        return l.peers.find((p: any) => p.username === 'alice' && p.hosts.includes(chE));
      },
      8000,
      'alice entry',
    );
    // the handshake's own refusals
    const fatalOf = async (first: unknown) => {
      const { sock } = await dialTls(entry.ip, entry.port);
      const l = new FrameLink(sock);
      conns.push(l);
      l.send(first);
      return (await l.fatal())?.code;
    };
    const nonce = b64u(crypto.randomBytes(32));
    const big = Buffer.alloc(4);
    big.writeUInt32BE(16_385);
    const bigFatal = async () => {
      const { sock } = await dialTls(entry.ip, entry.port);
      const l = new FrameLink(sock);
      conns.push(l);
      l.write(big);
      return (await l.fatal())?.code;
    };
    expect(
      await Promise.all([
        fatalOf({ t: 'hello', v: 3, role: 'peer', cert: uma.s.cert, nonce }),
        fatalOf({ t: 'hello', v: 4, role: 'host', cert: uma.s.cert, nonce }),
        fatalOf({
          t: 'hello',
          v: 4,
          role: 'peer',
          cert: uma.s.cert.slice(0, -3) + 'AAA',
          nonce,
          dial: b64u(crypto.randomBytes(64)),
        }),
        bigFatal(),
      ]),
    ).toEqual(['E_VERSION_MISMATCH', 'E_BAD_FRAME', 'E_SESSION_INVALID', 'E_FRAME_TOO_LARGE']);
    // a frame other than auth after the host hello
    {
      const { sock } = await dialTls(entry.ip, entry.port);
      const l = new FrameLink(sock);
      conns.push(l);
      const dial = signB64u(
        uma.s.keys,
        p2pDial(nonce, uma.s.sessionId, entry.sessionId, channelBinding(sock)),
      );
      l.send({ t: 'hello', v: 4, role: 'peer', cert: uma.s.cert, nonce, dial });
      expect((await l.next()).role).toBe('host');
      l.send({ t: 'req', id: 1, op: 'history', body: { channelId: chE, limit: 1 } });
      expect((await l.fatal())?.code).toBe('E_AUTH_REQUIRED');
    }

    // compact on P2P: the host answers compact 1 and pushes m frames
    const { link, hostHello } = await dialHost(entry, uma.s, uma.serverKey, {
      helloExtra: { compact: 1 },
    });
    conns.push(link);
    expect(hostHello.compact).toBe(1);
    const page = await until(
      async () => (await link.request('history', { channelId: chE, limit: 5 })).body,
      5000,
      'page',
    );
    expect(page.messages[0].c).toBeTypeOf('number');
    expect(page.messages[0].channelId).toBeUndefined();
    await link.call('subscribe', { channelIds: [chE] });
    await api(alicePeer.ui, 'POST', `/api/channels/${chE}/messages`, { text: 'compact via host' });
    const mf = await link.next(
      (f) => f.t === 'm' && f.text === 'compact via host',
      5000,
      'm frame from host',
    );
    const certRef = link.seen.find((f) => f.t === 'ref' && f.k === mf.k);
    expect(readClaims(certRef!.cert).claims.u).toBe('alice');

    // rights per request
    expect((await link.request('history', { channelId: uuidv7(), limit: 5 })).error?.code).toBe(
      'E_CHANNEL_NOT_FOUND',
    );
    expect((await link.request('history', { channelId: priv, limit: 5 })).error?.code).toBe(
      'E_NOT_MEMBER',
    );
    const notMine = signItem(uma.s, { channelId: priv, text: 'not a member' });
    expect((await link.request('post', { message: notMine })).error?.code).toBe('E_NOT_MEMBER');
    const skew = signItem(uma.s, { channelId: chE, text: 'future', ts: Date.now() + 120_000 });
    expect((await link.request('post', { message: skew })).error?.code).toBe('E_CLOCK_SKEW');
    const otherAuthor = signItem(uma.s, {
      channelId: chE,
      text: 'edit hank',
      kind: 'edit',
      target: uuidv7(),
    });
    expect((await link.request('post', { message: otherAuthor })).error?.code).toBe('E_NOT_FOUND');

    // a visitor reads an allowVisitors channel from the host but never posts
    const vc = await conn();
    const vkeys = newKeys();
    const v = await vc.link.call('visitor', { name: 'Walker', publicKey: vkeys.publicKey });
    await vc.link.call('channel_join', { channelId: chE });
    const vs: Session = { ...v, keys: vkeys, clock: new (await import('./indie-lib.js')).Hlc() };
    const ventry = await until(
      async () => {
        const l = await vc.link.call('get_list', {});
        return l.peers.find((p: any) => p.username === 'alice' && p.hosts.includes(chE));
      },
      5000,
      'alice entry for the visitor',
    );
    expect(ventry.hosts).toEqual([chE]); // cut to the channels it views
    const vlink = (await dialHost(ventry, vs, vc.serverKey)).link;
    conns.push(vlink);
    const vpage = await vlink.call('history', { channelId: chE, limit: 5 });
    expect(vpage.messages.length).toBeGreaterThan(0);
    expect((await vlink.request('history', { channelId: priv, limit: 5 })).error?.code).toBe(
      'E_CHANNEL_NOT_FOUND',
    );
    const vpost = await vlink.request('post', {
      message: signItem(vs, { channelId: chE, text: 'hi' }),
    });
    expect(vpost.error?.code).toBe('E_VISITOR_READ_ONLY');

    // revocation: uma logs out at the server; the host closes her link E_SESSION_INVALID
    const c2 = await conn();
    await c2.link.call('resume', { token: uma.s.token });
    await c2.link.call('logout', {});
    expect((await link.fatal(5000))?.code).toBe('E_SESSION_INVALID');

    // offline host: every member link closed with E_OFFLINE
    expect((await api(alicePeer.ui, 'PUT', '/api/status', { status: 'offline' })).status).toBe(200);
    expect((await vlink.fatal(5000))?.code).toBe('E_OFFLINE');
    expect((await api(alicePeer.ui, 'PUT', '/api/status', { status: 'online' })).status).toBe(200);
  });

  test('§6 peer_connect: a completed P2P handshake is logged (member and host side)', async () => {
    // PROTOCOL.md §6 table: "`peer_connect` | peer | `peer`, `user`, `session` | P2P handshake completed".
    // Found failing (never written) by this independent client; now both ends write it.
    // dave's peer completed the handshake with the indie host (its `open peer=host:carol@…` and
    // `sync from=host:carol@…` lines are there), and alice's peer completed handshakes with bob,
    // uma and a visitor (its `auth peer=peer:bob@…` lines): no process wrote `ev=peer_connect`.
    const dave = fs.readFileSync(path.join(dir, 'dave', 'connections.log'), 'utf8');
    const alice = fs.readFileSync(path.join(dir, 'alice', 'connections.log'), 'utf8');
    expect(dave).toMatch(/ ev=open peer=host:carol@/);
    expect(alice).toMatch(/ ev=auth peer=peer:bob@/);
    expect({
      member: / ev=peer_connect .*user=carol/.test(dave),
      host: / ev=peer_connect .*user=bob/.test(alice),
    }).toEqual({ member: true, host: true });
  });

  test("the member's connection log names the indie host (§6)", async () => {
    const log = fs.readFileSync(path.join(dir, 'dave', 'connections.log'), 'utf8').split('\n');
    const open = log.find((l) => / ev=open .*peer=host:carol@127\.0\.0\.1:\d+/.test(l));
    expect(open, log.join('\n').slice(-2000)).toBeTruthy();
    expect(open).toMatch(/ tls=TLSv1\.3/);
    expect(open).toMatch(/ via=direct/);
    expect(log.some((l) => / ev=fetch .*from=host:carol@/.test(l) || / ev=get_list /.test(l))).toBe(
      true,
    );
    for (const l of log.filter(Boolean))
      expect(l).toMatch(/^t=\d{4}-\d\d-\d\dT[\d:.]+Z ev=[a-z_]+( [a-z_A-Z]+=\S*)*$/);
  });
});

describe('limits a client meets', () => {
  test('65th connection without a session from one address group: E_RATE_LIMITED with retryAfterMs (§3.2)', async () => {
    const open: FrameLink[] = [];
    for (let i = 0; i < 70; i++) {
      const l = await rawConn();
      open.push(l);
    }
    await new Promise((r) => setTimeout(r, 300));
    const refused = open.map((l) => l.seen.find((f) => f.t === 'error')).filter(Boolean);
    for (const l of open) l.close();
    expect(refused.length).toBeGreaterThanOrEqual(6);
    expect(refused[0]!.code).toBe('E_RATE_LIMITED');
    expect(refused[0]!.retryAfterMs).toBeGreaterThan(0);
  });

  test('paging cursors and ranges: directory/get_list next, bad cursor, history limit (§3.3)', async () => {
    const a = await user('vic');
    const d = await a.link.call('directory', {});
    expect(Array.isArray(d.channels)).toBe(true);
    expect((await a.link.request('directory', { after: 'not-a-cursor' })).error?.code).toBe(
      'E_BAD_REQUEST',
    );
    const l = await a.link.call('get_list', {});
    expect(Array.isArray(l.peers)).toBe(true);
    const chV = uuidv7();
    await a.link.call('channel_create', { id: chV, name: 'v', allowVisitors: false });
    expect((await a.link.request('history', { channelId: chV, limit: 0 })).error?.code).toBe(
      'E_BAD_REQUEST',
    );
    expect((await a.link.request('history', { channelId: chV, limit: 501 })).error?.code).toBe(
      'E_BAD_REQUEST',
    );
    expect((await a.link.call('history', { channelId: chV, limit: 500 })).messages).toEqual([]);
  });

  test('an 11th login revokes the oldest session: its connection ends E_SESSION_INVALID (§3.3)', async () => {
    const first = await user('walt');
    const watcher = await user('xena');
    const chW = uuidv7();
    await first.link.call('channel_create', { id: chW, name: 'w', allowVisitors: false });
    await watcher.link.call('channel_join', { channelId: chW });
    const revoked = watcher.link.ev(
      'session_revoked',
      (b) => b.sessionId === first.s.sessionId,
      8000,
    );
    for (let i = 0; i < 10; i++) {
      const c = await conn();
      await login(c, 'walt', 'walt-password');
    }
    expect((await first.link.fatal())?.code).toBe('E_SESSION_INVALID');
    expect(await revoked).toEqual({ sessionId: first.s.sessionId });
  });

  test('P2P: a handshake not completed within 5 s is E_TIMEOUT (§4.1)', async () => {
    const [ip, p] = alicePeer.ready.p2p!.split(':');
    const { sock } = await dialTls(ip!, Number(p));
    const l = new FrameLink(sock);
    conns.push(l);
    const t0 = Date.now();
    expect((await l.fatal(8000))?.code).toBe('E_TIMEOUT');
    expect(Date.now() - t0).toBeGreaterThan(4000);
  });
});
