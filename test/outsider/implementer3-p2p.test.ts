// §4.1 handshake, §4.2 operations (compact), §9.3 peer file operations, against a real host peer.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import crypto from 'node:crypto';
import tls from 'node:tls';
import {
  startServer,
  startPeer,
  connectUser,
  Conn,
  CompactTables,
  makeItem,
  checkStored,
  verifyClaims,
  uname,
  b64u,
  type ServerProc,
  type PeerProc,
  type Session,
} from './implementer3-client.js';

let srv: ServerProc;
let host: PeerProc;
let me: Session;
let hostUser = '';
let chan = '';
let entry: any;
let fileId = '';
const fileBytes = crypto.randomBytes(300_000);

async function openP2P(): Promise<{ c: Conn; B: Buffer }> {
  const c = new Conn();
  await new Promise<void>((resolve, reject) => {
    c.sock = tls.connect(
      {
        host: entry.ip,
        port: entry.port,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.3',
        maxVersion: 'TLSv1.3',
      },
      () => resolve(),
    );
    c.sock.once('error', reject);
  });
  c.sock.on('error', () => {});
  c.sock.on('data', (d: Buffer) => c.onData(d));
  c.sock.on('close', () => {
    c.closed = true;
    c.wake();
  });
  const B = c.sock.exportKeyingMaterial(
    32,
    'EXPORTER-Channel-Binding',
    undefined as unknown as Buffer,
  );
  return { c, B };
}
const sgn = (arr: any[]) =>
  b64u(crypto.sign(null, Buffer.from(JSON.stringify(arr), 'utf8'), me.priv));

async function handshake(opts: { compact?: boolean; badDial?: boolean } = {}) {
  const { c, B } = await openP2P();
  const Nm = b64u(crypto.randomBytes(32));
  const dial = sgn([
    'hchat/p2p-dial/1',
    Nm,
    me.sessionId,
    opts.badDial ? 'x' + entry.sessionId : entry.sessionId,
    b64u(B),
  ]);
  c.send({
    t: 'hello',
    v: 4,
    role: 'peer',
    cert: me.cert,
    nonce: Nm,
    dial,
    ...(opts.compact ? { compact: 1 } : {}),
  });
  const h = await c.next((f) => f.t === 'hello' || f.t === 'error', 8000);
  return { c, B, Nm, h };
}

beforeAll(async () => {
  srv = await startServer();
  host = await startPeer(srv, 'hostpeer');
  hostUser = uname('ho').toLowerCase();
  expect(
    (await host.call('POST', '/api/register', { username: hostUser, password: 'secret-pass' }))
      .status,
  ).toBe(201);
  expect(
    (await host.call('POST', '/api/login', { username: hostUser, password: 'secret-pass' })).status,
  ).toBe(200);
  const ch = await host.call('POST', '/api/channels', { name: 'hosted', allowVisitors: true });
  expect(ch.status).toBe(201);
  chan = ch.body.id;
  expect(
    (await host.call('POST', `/api/channels/${chan}/messages`, { text: 'hosted hello' })).status,
  ).toBe(201);
  const f = await host.call('POST', `/api/channels/${chan}/files?name=blob.bin`, undefined, {
    body: fileBytes,
    type: 'application/octet-stream',
  });
  expect(f.status).toBe(201);
  fileId = f.body.id;
  me = await connectUser(srv, uname('mm').toLowerCase());
  await me.conn.ok('channel_join', { channelId: chan });
  for (let i = 0; i < 50; i++) {
    const l = await me.conn.ok('get_list', {});
    entry = l.peers.find((p: any) => p.username === hostUser && p.hosts.includes(chan));
    if (entry) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(entry).toBeDefined();
}, 60_000);

afterAll(async () => {
  me?.conn.close();
  await host?.stop();
  await srv?.stop();
});

describe('implementer3 §4 P2P as a member', () => {
  let link: Conn;
  const tabs = new CompactTables();

  it('host hello has the documented members; Sh verifies over the host transcript', async () => {
    const { c, B, Nm, h } = await handshake({ compact: true });
    expect(h.t).toBe('hello');
    expect(h).toMatchObject({ v: 4, role: 'host', heartbeatMs: 2000, timeoutMs: 6000, compact: 1 });
    expect(h.nonce).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const ch = verifyClaims(h.cert, me.serverKey);
    expect(ch).toMatchObject({ typ: 'key', r: 'user', u: hostUser, sid: entry.sessionId });
    const pk = crypto.createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: ch.pk },
      format: 'jwk',
    });
    const t = Buffer.from(
      JSON.stringify(['hchat/p2p/3', 'host', Nm, h.nonce, me.sessionId, entry.sessionId, b64u(B)]),
      'utf8',
    );
    expect(crypto.verify(null, t, pk, Buffer.from(h.sig, 'base64url'))).toBe(true);
    c.send({
      t: 'auth',
      sig: sgn(['hchat/p2p/3', 'peer', Nm, h.nonce, me.sessionId, entry.sessionId, b64u(B)]),
    });
    link = c;
    c.send({ t: 'ping' });
    expect((await c.next((f) => f.t === 'pong' || f.t === 'error')).t).toBe('pong');
  });

  it('P2P history in compact form rebuilds and verifies', async () => {
    const r = await link.req('history', { channelId: chan, limit: 50 });
    link.frames.filter((f) => f.t === 'ref').forEach((f) => tabs.take(f));
    link.frames = link.frames.filter((f) => f.t !== 'ref');
    expect(r.error).toBeUndefined();
    const msgs = r.body.messages.map((m: any) => tabs.rebuild(m));
    expect(msgs.map((m: any) => m.text ?? null)).toContain('hosted hello');
    for (const m of msgs) expect(checkStored(m, me.serverKey)).toEqual([]);
    expect(Array.isArray(r.body.related ?? [])).toBe(true);
  });

  it('P2P post answers {id, seq, duplicate}; sync shows it', async () => {
    const item = makeItem(me, chan, { text: 'from the outsider over p2p' });
    const r = await link.req('post', { message: item });
    expect(r.body).toEqual({ id: item.id, seq: expect.any(Number), duplicate: false });
    const again = await link.req('post', { message: item });
    expect(again.body).toEqual({ id: item.id, seq: r.body.seq, duplicate: true });
    const s = await link.req('sync', { channelId: chan, since: r.body.seq - 1, limit: 10 });
    link.frames.filter((f) => f.t === 'ref').forEach((f) => tabs.take(f));
    link.frames = link.frames.filter((f) => f.t !== 'ref');
    expect(tabs.rebuild(s.body.messages[0]).id).toBe(item.id);
    expect(s.body.lastSeq).toBeGreaterThanOrEqual(r.body.seq);
    const bad = await link.req('history', {
      channelId: chan,
      limit: 5,
      before: crypto.randomUUID(),
    });
    expect(bad.error?.code).toBe('E_NOT_FOUND');
    const unk = await link.req('frobnicate', {});
    expect(unk.error?.code).toBe('E_UNKNOWN_TYPE');
  });

  let haveBody: any;
  it('§9.3 file_have / file_manifest / file_chunk with a server grant; a forged grant is E_BAD_GRANT', async () => {
    const src = await me.conn.ok('file_sources', { channelId: chan, fileId });
    const grant = src.grant;
    const have = await link.req('file_have', { channelId: chan, fileId, grant });
    expect(have.body.all).toBe(true);
    haveBody = have.body;
    const man = (await link.req('file_manifest', { channelId: chan, fileId, grant })).body.manifest;
    const idCalc = b64u(
      crypto
        .createHash('sha256')
        .update(
          JSON.stringify([
            'hchat/file/1',
            man.name,
            man.size,
            man.type,
            man.image?.width ?? null,
            man.image?.height ?? null,
            man.image?.preview ?? null,
            man.chunkBytes,
            man.chunks,
          ]),
        )
        .digest(),
    );
    expect(idCalc).toBe(fileId);
    const parts: Buffer[] = [];
    for (let i = 0; i < man.chunks.length; i++) {
      const d = Buffer.from(
        (await link.req('file_chunk', { channelId: chan, fileId, grant, index: i })).body.data,
        'base64',
      );
      expect(b64u(crypto.createHash('sha256').update(d).digest())).toBe(man.chunks[i]);
      parts.push(d);
    }
    expect(Buffer.concat(parts).equals(fileBytes)).toBe(true);
    const forged = grant.split('.')[0] + '.' + b64u(crypto.randomBytes(64));
    expect(
      (await link.req('file_have', { channelId: chan, fileId, grant: forged })).error?.code,
    ).toBe('E_BAD_GRANT');
  });

  it('a dial over the wrong host session is E_SESSION_INVALID; v 3 E_VERSION_MISMATCH; req first E_HELLO_REQUIRED', async () => {
    const { c, h } = await handshake({ badDial: true });
    expect(h).toMatchObject({ t: 'error', code: 'E_SESSION_INVALID' });
    c.close();
    const o = await openP2P();
    o.c.send({ t: 'hello', v: 3, role: 'peer' });
    expect((await o.c.next((f) => f.t === 'error')).code).toBe('E_VERSION_MISMATCH');
    // `v` is read before any other member: a string or no `v` is a mismatch too (§4.1).
    for (const v of ['4', undefined]) {
      const o3 = await openP2P();
      o3.c.send({ t: 'hello', v, role: 'peer', cert: me.cert, nonce: 'x', dial: 'y' });
      expect((await o3.c.next((f) => f.t === 'error')).code, `v ${v}`).toBe('E_VERSION_MISMATCH');
      o3.c.close();
    }
    const o2 = await openP2P();
    o2.c.send({ t: 'req', id: 1, op: 'history', body: {} });
    expect((await o2.c.next((f) => f.t === 'error')).code).toBe('E_HELLO_REQUIRED');
  });

  it('after the host hello, a frame other than auth is E_AUTH_REQUIRED', async () => {
    const { c, h } = await handshake();
    expect(h.t).toBe('hello');
    c.send({ t: 'req', id: 1, op: 'history', body: { channelId: chan, limit: 5 } });
    expect((await c.next((f) => f.t === 'error')).code).toBe('E_AUTH_REQUIRED');
  });

  it('file_have of a whole file: "`all` when it holds the whole file (`chunks` is then empty)" (§9.3)', () => {
    expect(haveBody).toEqual({ all: true, chunks: [] });
  });

  it('P2P subscribe then a host post arrives as an m push (compact) that rebuilds', async () => {
    const sub = await link.req('subscribe', { channelIds: [chan] });
    expect(sub.body).toEqual({ channelIds: [chan] });
    expect(
      (await host.call('POST', `/api/channels/${chan}/messages`, { text: 'pushed by host' }))
        .status,
    ).toBe(201);
    let m: any;
    for (;;) {
      const f = await link.next((x) => x.t === 'ref' || x.t === 'm' || x.t === 'ev', 8000);
      if (f.t === 'ref') tabs.take(f);
      else if (f.t === 'm') {
        m = tabs.rebuild(f);
        if (m.text === 'pushed by host') break;
      }
    }
    expect(checkStored(m, me.serverKey)).toEqual([]);
  });

  it('P2P history before = a reaction id is E_NOT_FOUND ("a before that is no message of this channel")', async () => {
    const h = await link.req('history', { channelId: chan, limit: 5 });
    link.frames.filter((f) => f.t === 'ref').forEach((f) => tabs.take(f));
    link.frames = link.frames.filter((f) => f.t !== 'ref');
    const target = tabs.rebuild(h.body.messages[h.body.messages.length - 1]);
    const react = makeItem(me, chan, { kind: 'react', target: target.id, emoji: '🎯' });
    expect((await link.req('post', { message: react })).error).toBeUndefined();
    const r = await link.req('history', { channelId: chan, limit: 5, before: react.id });
    expect(r.error?.code, JSON.stringify(r).slice(0, 200)).toBe('E_NOT_FOUND');
  });

  it('P2P req without body: "a missing body is {}" (§3.1 envelope, used on this link per §4)', async () => {
    link.send({ t: 'req', id: 4242, op: 'subscribe' });
    const r = await link.next((f) => (f.t === 'res' && f.id === 4242) || f.t === 'error');
    expect(r.t, JSON.stringify(r)).toBe('res');
  });

  it('P2P req whose body is no object is res E_BAD_REQUEST, the link stays; a second hello is E_BAD_FRAME (§4.1)', async () => {
    link.send({ t: 'req', id: 4243, op: 'history', body: [] });
    const r = await link.next((f) => (f.t === 'res' && f.id === 4243) || f.t === 'error');
    expect(r, JSON.stringify(r)).toMatchObject({ t: 'res', error: { code: 'E_BAD_REQUEST' } });
    link.send({ t: 'ping' });
    expect((await link.next((f) => f.t === 'pong' || f.t === 'error')).t).toBe('pong');
    link.send({ t: 'hello', v: 4, role: 'peer' });
    const e = await link.next((f) => f.t === 'error');
    expect(e.code, JSON.stringify(e)).toBe('E_BAD_FRAME');
  });

  it('an error frame is never answered: the host just closes, before its hello, before auth and after (§1)', async () => {
    const closes = async (c: Conn) => {
      c.send({ t: 'error', code: 'E_INTERNAL', message: 'going away' });
      const end = Date.now() + 3000;
      while (!c.closed && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      return { closed: c.closed, frames: c.frames.filter((f) => f.t !== 'pong') };
    };
    const o = await openP2P();
    expect(await closes(o.c)).toEqual({ closed: true, frames: [] });
    const { c, h } = await handshake();
    expect(h.t).toBe('hello');
    expect(await closes(c)).toEqual({ closed: true, frames: [] });
    const a = await handshake();
    a.c.send({
      t: 'auth',
      sig: sgn(['hchat/p2p/3', 'peer', a.Nm, a.h.nonce, me.sessionId, entry.sessionId, b64u(a.B)]),
    });
    a.c.send({ t: 'ping' });
    expect((await a.c.next((f) => f.t === 'pong' || f.t === 'error')).t).toBe('pong');
    expect(await closes(a.c)).toEqual({ closed: true, frames: [] });
  });
});
