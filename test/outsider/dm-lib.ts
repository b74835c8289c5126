// Direct messages as an outsider writes them from docs/PROTOCOL.md §10 alone: a device's keys and
// `dm_publish` body (§10.1), X3DH and the sending half of the Double Ratchet (§10.3), the payload
// (§10.4) and the derived id of a conversation of two. Enough to open a real session with a
// victim's device and then misbehave inside it.
import crypto from 'node:crypto';
import { createRequire } from 'node:module';

// sodium-native ships no types; only the calls below are used.
const sodium: any = createRequire(import.meta.url)('sodium-native');

const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const unb64u = (s: string) => Buffer.from(s, 'base64url');

/** §10.3: an X25519 key pair. */
export function x25519() {
  const pk = Buffer.alloc(32);
  const sk = Buffer.alloc(32);
  sodium.crypto_box_keypair(pk, sk);
  return { pk, sk };
}

/** X25519(sk, pk); throws on an all-zero output (§10.3 "a DH output of all zeros is refused"). */
export function dh(sk: Buffer, pk: Buffer): Buffer {
  const out = Buffer.alloc(32);
  sodium.crypto_scalarmult(out, sk, pk);
  if (out.equals(Buffer.alloc(32))) throw new Error('all-zero DH');
  return out;
}

const hkdf = (ikm: Buffer, salt: Buffer, info: string, len: number) =>
  Buffer.from(crypto.hkdfSync('sha256', ikm, salt, Buffer.from(info), len));
const hmac = (key: Buffer, byte: number) =>
  crypto
    .createHmac('sha256', key)
    .update(Buffer.from([byte]))
    .digest();

/** A device (§10.1): identity key, one signed prekey, one-time prekeys. */
export interface Device {
  deviceId: string;
  ikPk: Buffer;
  ikSk: Buffer;
  spk: { id: number; pk: Buffer; sk: Buffer };
  opks: Array<{ id: number; pk: Buffer; sk: Buffer }>;
}

export function newDevice(opkCount = 5): Device {
  const ikPk = Buffer.alloc(32);
  const ikSk = Buffer.alloc(64);
  sodium.crypto_sign_keypair(ikPk, ikSk);
  const spk = { id: 1, ...x25519() };
  const opks = Array.from({ length: opkCount }, (_, i) => ({ id: 100 + i, ...x25519() }));
  return { deviceId: b64u(crypto.randomBytes(16)), ikPk, ikSk, spk, opks };
}

/** §10.1: `sig` = Ed25519 by IK over "hchat-dm-spk-v1" ‖ SPK. */
export function signPrekey(ikSk: Buffer, spk: Buffer): string {
  const sig = Buffer.alloc(64);
  sodium.crypto_sign_detached(sig, Buffer.concat([Buffer.from('hchat-dm-spk-v1'), spk]), ikSk);
  return b64u(sig);
}

/** The `dm_publish` request body of a device. */
export function publishBody(d: Device) {
  return {
    deviceId: d.deviceId,
    identityKey: b64u(d.ikPk),
    signedPrekey: { id: d.spk.id, key: b64u(d.spk.pk), sig: signPrekey(d.ikSk, d.spk.pk) },
    oneTimePrekeys: d.opks.map((k) => ({ id: k.id, key: b64u(k.pk) })),
  };
}

function edPkToX(pk: Buffer) {
  const x = Buffer.alloc(32);
  sodium.crypto_sign_ed25519_pk_to_curve25519(x, pk);
  return x;
}
function edSkToX(sk: Buffer) {
  const x = Buffer.alloc(32);
  sodium.crypto_sign_ed25519_sk_to_curve25519(x, sk);
  return x;
}

/** A bundle as `dm_bundles` answers it (§10.1). */
export interface Bundle {
  username: string;
  deviceId: string;
  identityKey: string;
  signedPrekey: { id: number; key: string; sig: string };
  oneTimePrekey?: { id: number; key: string };
}

/** The sending side of one session (X3DH initiator, then the ratchet's sending chain). */
export interface Session {
  ad: Buffer;
  dhs: { pk: Buffer; sk: Buffer };
  ck: Buffer;
  n: number;
  pn: number;
  prekey: { ik: string; ek: string; spk: number; opk?: number };
}

/** §10.3: X3DH as the initiator, then RatchetInitAlice(SK, SPK_B). */
export function startSession(me: Device, b: Bundle, identityKey = me.ikPk): Session {
  const ikB = unb64u(b.identityKey);
  const spkB = unb64u(b.signedPrekey.key);
  const ok = sodium.crypto_sign_verify_detached(
    unb64u(b.signedPrekey.sig),
    Buffer.concat([Buffer.from('hchat-dm-spk-v1'), spkB]),
    ikB,
  );
  if (!ok) throw new Error('bundle signature fails');
  const ek = x25519();
  const parts = [
    dh(edSkToX(me.ikSk), spkB),
    dh(ek.sk, edPkToX(ikB)),
    dh(ek.sk, spkB),
    ...(b.oneTimePrekey ? [dh(ek.sk, unb64u(b.oneTimePrekey.key))] : []),
  ];
  const sk = hkdf(
    Buffer.concat([Buffer.alloc(32, 0xff), ...parts]),
    Buffer.alloc(32),
    'HybridChat_X3DH_v1',
    32,
  );
  const dhs = x25519();
  const rkck = hkdf(dh(dhs.sk, spkB), sk, 'HybridChat_Ratchet_v1', 64);
  return {
    ad: Buffer.concat([identityKey, ikB]),
    dhs,
    ck: rkck.subarray(32),
    n: 0,
    pn: 0,
    prekey: {
      ik: b64u(identityKey),
      ek: b64u(ek.pk),
      spk: b.signedPrekey.id,
      ...(b.oneTimePrekey ? { opk: b.oneTimePrekey.id } : {}),
    },
  };
}

/** §10.3: the next message of the sending chain, as a `DmCipher` (with the prekey part). */
export function seal(s: Session, plaintext: Buffer) {
  const mk = hmac(s.ck, 0x01);
  s.ck = hmac(s.ck, 0x02);
  const n = s.n++;
  const header = Buffer.alloc(40);
  s.dhs.pk.copy(header, 0);
  header.writeUInt32BE(s.pn, 32);
  header.writeUInt32BE(n, 36);
  const kn = hkdf(mk, Buffer.alloc(32), 'HybridChat_MessageKeys_v1', 56);
  const c = Buffer.alloc(plaintext.length + 16);
  sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
    c,
    plaintext,
    Buffer.concat([s.ad, header]),
    null,
    kn.subarray(32, 56),
    kn.subarray(0, 32),
  );
  return { v: 1, prekey: s.prekey, dh: b64u(s.dhs.pk), pn: s.pn, n, ct: b64u(c) };
}

/** §10.4: the id of the conversation of two users. */
export function pairId(a: string, b: string): string {
  const [x, y] = [a.toLowerCase(), b.toLowerCase()].sort();
  const h = crypto
    .createHash('sha256')
    .update('hchat-dm-v1:' + x + '\n' + y, 'utf8')
    .digest()
    .subarray(0, 16);
  h[6] = 0x80 | (h[6]! & 0x0f);
  h[8] = 0x80 | (h[8]! & 0x3f);
  const s = h.toString('hex');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

/** §10.4: a payload's plaintext (fields given as the sender wants, valid or not). */
export function payload(p: {
  conversation: string;
  members: string[];
  text: string;
  id?: string;
  ts?: number;
  mentions?: string[];
}): Buffer {
  return Buffer.from(
    JSON.stringify({
      t: 'msg',
      conversation: p.conversation,
      members: p.members,
      id: p.id ?? crypto.randomUUID(),
      ts: p.ts ?? Date.now(),
      text: p.text,
      ...(p.mentions ? { mentions: p.mentions } : {}),
    }),
    'utf8',
  );
}

/** What a raw client needs of lib.ts's `registerLogin` answer. */
interface Account {
  c: { req(op: string, body?: unknown, ms?: number): Promise<any> };
  username: string;
}

/** A registered user on its own raw server connection, bound to a fresh published device. */
export async function withDevice<T extends Account>(a: T, opks = 10) {
  const dev = newDevice(opks);
  const r = await a.c.req('dm_publish', publishBody(dev));
  if (!r.body) throw new Error('dm_publish: ' + JSON.stringify(r));
  return { ...a, dev };
}

/** The devices `asker` is shown for `username` (§10.1 `dm_devices`). */
export async function devicesOf(asker: Account, username: string): Promise<any[]> {
  const r = await asker.c.req('dm_devices', { usernames: [username] });
  if (!r.body) throw new Error('dm_devices: ' + JSON.stringify(r));
  return r.body.users.find((u: any) => u.username === username)?.devices ?? [];
}

/** A fresh X3DH session from `me` to one device of `username` (a bundle from the server). */
export async function sessionWith(
  me: Account & { dev: Device },
  username: string,
  deviceId: string,
) {
  const r = await me.c.req('dm_bundles', { devices: [{ username, deviceId }] });
  if (!r.body?.bundles?.[0]) throw new Error('dm_bundles: ' + JSON.stringify(r));
  return startSession(me.dev, r.body.bundles[0]);
}

/**
 * A sender of raw §10.4 plaintexts from `me` to the first device of `username`, through its
 * mailbox at the server (`dm_send`), each sealed in one session started now; throws unless the
 * server took the envelope.
 */
export async function mailboxSender(me: Account & { dev: Device }, username: string) {
  const deviceId = (await devicesOf(me, username))[0].deviceId as string;
  const session = await sessionWith(me, username, deviceId);
  return async (plaintext: Buffer) => {
    const r = await me.c.req('dm_send', {
      envelopes: [
        { id: crypto.randomUUID(), to: { username, deviceId }, body: seal(session, plaintext) },
      ],
    });
    if (r.body?.results?.[0]?.ok !== true) throw new Error('dm_send: ' + JSON.stringify(r));
  };
}
