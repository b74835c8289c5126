// §10 direct messages from the text alone: server operations, then X3DH + Double Ratchet
// against a real peer (bin/hchat peer), both directions.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import {
  startServer,
  startPeer,
  connectUser,
  uname,
  b64u,
  type PeerProc,
  type ServerProc,
  type Session,
} from './implementer3-client.js';

const sodium: any = createRequire(import.meta.url)('sodium-native');
const B = (n: number) => Buffer.alloc(n);
const ub = (s: string) => Buffer.from(s, 'base64url');

function edKeys() {
  const pk = B(32),
    sk = B(64);
  sodium.crypto_sign_keypair(pk, sk);
  return { pk, sk };
}
function xKeys() {
  const pk = B(32),
    sk = B(32);
  sodium.crypto_box_keypair(pk, sk);
  return { pk, sk };
}
function dh(sk: Buffer, pk: Buffer) {
  const q = B(32);
  sodium.crypto_scalarmult(q, sk, pk);
  if (q.equals(B(32))) throw new Error('zero DH');
  return q;
}
const edPkToX = (pk: Buffer) => {
  const x = B(32);
  sodium.crypto_sign_ed25519_pk_to_curve25519(x, pk);
  return x;
};
const edSkToX = (sk: Buffer) => {
  const x = B(32);
  sodium.crypto_sign_ed25519_sk_to_curve25519(x, sk);
  return x;
};
const sign = (m: Buffer, sk: Buffer) => {
  const s = B(64);
  sodium.crypto_sign_detached(s, m, sk);
  return s;
};
const hkdf = (ikm: Buffer, salt: Buffer, info: string, n: number) =>
  Buffer.from(crypto.hkdfSync('sha256', ikm, salt, Buffer.from(info), n));
const hmac = (k: Buffer, b: number) =>
  crypto
    .createHmac('sha256', k)
    .update(Buffer.from([b]))
    .digest();

function header(dhPub: Buffer, pn: number, n: number) {
  const h = B(40);
  dhPub.copy(h, 0);
  h.writeUInt32BE(pn, 32);
  h.writeUInt32BE(n, 36);
  return h;
}
function aeadEnc(mk: Buffer, pt: Buffer, ad: Buffer) {
  const kn = hkdf(mk, B(32), 'HybridChat_MessageKeys_v1', 56);
  const c = B(pt.length + 16);
  sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
    c,
    pt,
    ad,
    null,
    kn.subarray(32),
    kn.subarray(0, 32),
  );
  return c;
}
function aeadDec(mk: Buffer, ct: Buffer, ad: Buffer) {
  const kn = hkdf(mk, B(32), 'HybridChat_MessageKeys_v1', 56);
  const m = B(ct.length - 16);
  sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
    m,
    null,
    ct,
    ad,
    kn.subarray(32),
    kn.subarray(0, 32),
  );
  return m;
}

/** Initiator side of one session (Alice in the Signal documents). */
class Ratchet {
  rk!: Buffer;
  cks!: Buffer | null;
  ckr: Buffer | null = null;
  dhs = xKeys();
  dhr!: Buffer;
  ns = 0;
  nr = 0;
  pn = 0;
  ad!: Buffer;
  kdfRk(rk: Buffer, out: Buffer): [Buffer, Buffer] {
    const o = hkdf(out, rk, 'HybridChat_Ratchet_v1', 64);
    return [o.subarray(0, 32), o.subarray(32)];
  }
  initAlice(sk: Buffer, spkB: Buffer) {
    this.dhr = spkB;
    [this.rk, this.cks] = this.kdfRk(sk, dh(this.dhs.sk, spkB));
  }
  encrypt(pt: Buffer) {
    const mk = hmac(this.cks!, 1);
    this.cks = hmac(this.cks!, 2);
    const h = header(this.dhs.pk, this.pn, this.ns);
    const out = {
      dh: b64u(this.dhs.pk),
      pn: this.pn,
      n: this.ns,
      ct: b64u(aeadEnc(mk, pt, Buffer.concat([this.ad, h]))),
    };
    this.ns++;
    return out;
  }
  decrypt(c: { dh: string; pn: number; n: number; ct: string }) {
    const dhPub = ub(c.dh);
    if (!dhPub.equals(this.dhr)) {
      this.pn = this.ns;
      this.ns = 0;
      this.nr = 0;
      this.dhr = dhPub;
      [this.rk, this.ckr] = this.kdfRk(this.rk, dh(this.dhs.sk, this.dhr));
      this.dhs = xKeys();
      [this.rk, this.cks] = this.kdfRk(this.rk, dh(this.dhs.sk, this.dhr));
    }
    let mk: Buffer;
    for (;;) {
      mk = hmac(this.ckr!, 1);
      this.ckr = hmac(this.ckr!, 2);
      if (this.nr++ === c.n) break;
    }
    return aeadDec(mk, ub(c.ct), Buffer.concat([this.ad, header(dhPub, c.pn, c.n)]));
  }
}

function convId(a: string, b: string) {
  const [x, y] = [a.toLowerCase(), b.toLowerCase()].sort();
  const h = crypto
    .createHash('sha256')
    .update(`hchat-dm-v1:${x}\n${y}`, 'utf8')
    .digest()
    .subarray(0, 16);
  h[6] = 0x80 | (h[6]! & 0x0f);
  h[8] = 0x80 | (h[8]! & 0x3f);
  const s = h.toString('hex');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

function device() {
  const ik = edKeys();
  const spk = xKeys();
  const otps = Array.from({ length: 5 }, (_, i) => ({ id: 100 + i, ...xKeys() }));
  const deviceId = b64u(crypto.randomBytes(16));
  const spkSig = sign(Buffer.concat([Buffer.from('hchat-dm-spk-v1'), spk.pk]), ik.sk);
  return {
    ik,
    spk,
    otps,
    deviceId,
    publish: {
      deviceId,
      identityKey: b64u(ik.pk),
      signedPrekey: { id: 1, key: b64u(spk.pk), sig: b64u(spkSig) },
      oneTimePrekeys: otps.map((o) => ({ id: o.id, key: b64u(o.pk) })),
    },
  };
}

let srv: ServerProc;
let me: Session; // our own client, user
let other: Session; // second client user for server-side checks
let peer: PeerProc;
let peerUser = '';

const call = (method: string, p: string, body?: any) => peer.call(method, p, body);

beforeAll(async () => {
  srv = await startServer();
  me = await connectUser(srv, uname('xa').toLowerCase());
  other = await connectUser(srv, uname('xo').toLowerCase());
  peer = await startPeer(srv, 'peer');
  peerUser = uname('pb').toLowerCase();
  expect(
    (await call('POST', '/api/register', { username: peerUser, password: 'secret-pass' })).status,
  ).toBe(201);
  expect(
    (await call('POST', '/api/login', { username: peerUser, password: 'secret-pass' })).status,
  ).toBe(200);
}, 60_000);

afterAll(async () => {
  me?.conn.close();
  other?.conn.close();
  await peer?.stop();
  await srv?.stop();
});

const myDev = device();

describe('implementer3 §10 server operations', () => {
  it('dm_send before dm_publish is E_BAD_REQUEST "publish your device first (dm_publish)"', async () => {
    const r = await me.conn.req('dm_send', {
      envelopes: [
        {
          id: crypto.randomUUID(),
          to: { username: peerUser, deviceId: b64u(crypto.randomBytes(16)) },
          body: { v: 1, dh: b64u(B(32)), pn: 0, n: 0, ct: b64u(B(16)) },
        },
      ],
    });
    expect(r.error.code).toBe('E_BAD_REQUEST');
    expect(r.error.message).toContain('publish your device first (dm_publish)');
  });
  it('dm_publish with a bad signed-prekey signature is E_BAD_SIGNATURE', async () => {
    const d = device();
    const bad = {
      ...d.publish,
      signedPrekey: { ...d.publish.signedPrekey, sig: b64u(sign(Buffer.from('x'), d.ik.sk)) },
    };
    expect((await other.conn.req('dm_publish', bad)).error.code).toBe('E_BAD_SIGNATURE');
  });
  it('dm_publish answers {oneTimePrekeys: n}; the same device id with another key is E_FORBIDDEN', async () => {
    expect(await me.conn.ok('dm_publish', myDev.publish)).toEqual({ oneTimePrekeys: 5 });
    const d2 = device();
    const r = await me.conn.req('dm_publish', { ...d2.publish, deviceId: myDev.deviceId });
    expect(r.error.code).toBe('E_FORBIDDEN');
    // another user's device id
    const r2 = await other.conn.req('dm_publish', { ...d2.publish, deviceId: myDev.deviceId });
    expect(r2.error.code).toBe('E_FORBIDDEN');
  });
  it('dm_devices and dm_bundles shapes; a one-time prekey is handed out once', async () => {
    const d = await me.conn.ok('dm_devices', {
      usernames: [me.username, 'nosuchuser99'],
      check: true,
    });
    expect(d).toEqual({
      users: [
        {
          username: me.username,
          devices: [{ deviceId: myDev.deviceId, identityKey: b64u(myDev.ik.pk) }],
        },
      ],
    });
    const b1 = await other.conn.ok('dm_bundles', {
      devices: [{ username: me.username, deviceId: myDev.deviceId }],
    });
    expect(b1.bundles[0]).toMatchObject({
      username: me.username,
      deviceId: myDev.deviceId,
      identityKey: b64u(myDev.ik.pk),
      signedPrekey: myDev.publish.signedPrekey,
    });
    const b2 = await other.conn.ok('dm_bundles', {
      devices: [{ username: me.username, deviceId: myDev.deviceId }],
    });
    expect(b2.bundles[0].oneTimePrekey?.id).not.toBe(b1.bundles[0].oneTimePrekey?.id);
  });
  it('dm_block: oneself E_BAD_REQUEST, unknown E_NOT_FOUND; dm_blocks sorted', async () => {
    expect(
      (await me.conn.req('dm_block', { username: me.username, blocked: true })).error.code,
    ).toBe('E_BAD_REQUEST');
    expect(
      (await me.conn.req('dm_block', { username: 'nosuchuser99', blocked: true })).error.code,
    ).toBe('E_NOT_FOUND');
    expect(await me.conn.ok('dm_blocks', {})).toEqual({ blocked: [] });
  });
  it('dm_send to an unknown device is E_NOT_FOUND for that envelope; to a real one ok + dm push + dm_fetch + dm_ack', async () => {
    const od = device();
    await other.conn.ok('dm_publish', od.publish);
    const e1 = {
      id: crypto.randomUUID(),
      to: { username: other.username, deviceId: b64u(crypto.randomBytes(16)) },
      body: { v: 1, dh: b64u(xKeys().pk), pn: 0, n: 0, ct: b64u(B(20)) },
    };
    const e2 = {
      id: crypto.randomUUID(),
      to: { username: other.username, deviceId: od.deviceId },
      body: { v: 1, dh: b64u(xKeys().pk), pn: 0, n: 0, ct: b64u(B(20)) },
    };
    const r = await me.conn.ok('dm_send', { envelopes: [e1, e2] });
    expect(r.results[0]).toMatchObject({ id: e1.id, error: { code: 'E_NOT_FOUND' } });
    expect(r.results[1]).toEqual({ id: e2.id, ok: true });
    const ev = await other.conn.next((f) => f.t === 'ev' && f.ev === 'dm');
    expect(ev.body).toMatchObject({
      id: e2.id,
      from: { username: me.username, deviceId: myDev.deviceId },
      body: e2.body,
    });
    expect(Number.isInteger(ev.body.seq) && Number.isInteger(ev.body.ts)).toBe(true);
    const f = await other.conn.ok('dm_fetch', { after: 0 });
    expect(f.more).toBe(false);
    expect(f.envelopes).toEqual([ev.body]);
    expect(await other.conn.ok('dm_ack', { upTo: ev.body.seq })).toEqual({});
    expect((await other.conn.ok('dm_fetch', {})).envelopes).toEqual([]);
    // retry with the same id: ok, one row
    const r2 = await me.conn.ok('dm_send', { envelopes: [e2] });
    expect(r2.results[0]).toEqual({ id: e2.id, ok: true });
  });
});

describe('implementer3 §10 end to end with a real peer', () => {
  const conv = () => convId(me.username, peerUser);
  let ratchet: Ratchet;
  let prekeyPart: any;
  let peerDevice: any;

  it('our X3DH + ratchet message is shown by the peer', async () => {
    const devs = await me.conn.ok('dm_devices', { usernames: [peerUser] });
    peerDevice = devs.users[0].devices[0];
    expect(peerDevice).toBeDefined();
    const { bundles } = await me.conn.ok('dm_bundles', {
      devices: [{ username: peerUser, deviceId: peerDevice.deviceId }],
    });
    const bnd = bundles[0];
    const ikB = ub(bnd.identityKey);
    const spkB = ub(bnd.signedPrekey.key);
    expect(
      sodium.crypto_sign_verify_detached(
        ub(bnd.signedPrekey.sig),
        Buffer.concat([Buffer.from('hchat-dm-spk-v1'), spkB]),
        ikB,
      ),
    ).toBe(true);
    const ek = xKeys();
    const parts = [
      Buffer.alloc(32, 0xff),
      dh(edSkToX(myDev.ik.sk), spkB),
      dh(ek.sk, edPkToX(ikB)),
      dh(ek.sk, spkB),
    ];
    if (bnd.oneTimePrekey) parts.push(dh(ek.sk, ub(bnd.oneTimePrekey.key)));
    const SK = hkdf(Buffer.concat(parts), B(32), 'HybridChat_X3DH_v1', 32);
    ratchet = new Ratchet();
    ratchet.ad = Buffer.concat([myDev.ik.pk, ikB]);
    ratchet.initAlice(SK, spkB);
    prekeyPart = {
      ik: b64u(myDev.ik.pk),
      ek: b64u(ek.pk),
      spk: bnd.signedPrekey.id,
      ...(bnd.oneTimePrekey ? { opk: bnd.oneTimePrekey.id } : {}),
    };
    const payload = {
      t: 'msg',
      conversation: conv(),
      members: [me.username, peerUser].sort(),
      id: crypto.randomUUID(),
      ts: Date.now(),
      text: 'hello from an outsider',
    };
    const c = ratchet.encrypt(Buffer.from(JSON.stringify(payload), 'utf8'));
    const env = {
      id: crypto.randomUUID(),
      to: { username: peerUser, deviceId: peerDevice.deviceId },
      body: { v: 1, prekey: prekeyPart, ...c },
    };
    const r = await me.conn.ok('dm_send', { envelopes: [env] });
    expect(r.results[0]).toEqual({ id: env.id, ok: true });
    let dms: any = null;
    for (let i = 0; i < 50; i++) {
      dms = (await call('GET', '/api/dms')).body;
      if (Array.isArray(dms) && dms.length) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    expect(dms?.[0]?.id).toBe(conv());
    expect(dms?.[0]?.last?.text).toBe('hello from an outsider');
  });

  it('the peer answers; we open its envelope from our mailbox', async () => {
    const r = await call('POST', `/api/dms/${conv()}/messages`, { text: 'hi outsider' });
    expect(r.status).toBe(201);
    const ev = await me.conn.next((f) => f.t === 'ev' && f.ev === 'dm', 15_000);
    expect(ev.body.from.username).toBe(peerUser);
    const pt = JSON.parse(ratchet.decrypt(ev.body.body).toString('utf8'));
    expect(pt).toMatchObject({ t: 'msg', conversation: conv(), text: 'hi outsider' });
    expect(pt.members).toEqual([me.username, peerUser].sort());
  });
});
