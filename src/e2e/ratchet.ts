/**
 * The Double Ratchet (Signal, "The Double Ratchet Algorithm", rev 1, 2016-11-20, §3: no header
 * encryption), with the KDFs its §5.2 recommends and XChaCha20-Poly1305 as the AEAD
 * (docs/PROTOCOL.md §10). A state is immutable: `encrypt` and `decrypt` return a new one and the
 * old one is retired (using it again throws), so a failed decrypt leaves the caller's state as
 * it was, and a message key or nonce can never be used twice by replaying an old state object.
 */
import { z } from 'zod';
import { DM_LIMITS } from '../shared/limits.js';
import {
  aeadDecrypt,
  aeadEncrypt,
  hkdfSha256,
  hmacSha256,
  type KeyPair,
  wipe,
  x25519,
  x25519Base,
  x25519KeyPair,
} from './primitives.js';

const RK_INFO = Buffer.from('HybridChat_Ratchet_v1', 'utf8');
const MK_INFO = Buffer.from('HybridChat_MessageKeys_v1', 'utf8');
const ZERO_SALT = Buffer.alloc(32, 0);
const CK_MESSAGE = Buffer.from([0x01]);
const CK_NEXT = Buffer.from([0x02]);
const U32_MAX = 0xffffffff;
/**
 * Remote ratchet keys remembered after their chain ended, so that a late copy of one of their
 * messages is refused as 'duplicate' rather than tried as a new ratchet step (public keys only).
 */
export const REMEMBERED_CHAINS = 64;

/** Why a message was refused. The state passed in is unchanged in every case. */
export type RatchetFailure = 'duplicate' | 'too_many_skipped' | 'bad_ciphertext';

/** A refused message. */
export class RatchetError extends Error {
  readonly reason: RatchetFailure;
  constructor(reason: RatchetFailure, message: string) {
    super(message);
    this.name = 'RatchetError';
    this.reason = reason;
  }
}

/** A message's header: the sender's ratchet public key, previous chain length, number. */
export interface Header {
  readonly dh: Buffer;
  readonly pn: number;
  readonly n: number;
}

/** dh (32) || pn (u32 big-endian) || n (u32 big-endian): 40 bytes, authenticated with the AD. */
export function encodeHeader(header: Header): Buffer {
  const out = Buffer.alloc(40);
  header.dh.copy(out, 0);
  out.writeUInt32BE(header.pn, 32);
  out.writeUInt32BE(header.n, 36);
  return out;
}

interface SkippedKey {
  readonly dh: Buffer;
  readonly n: number;
  readonly mk: Buffer;
}

interface Fields {
  dhs: KeyPair;
  dhr: Buffer | undefined;
  rk: Buffer;
  cks: Buffer | undefined;
  ckr: Buffer | undefined;
  ns: number;
  nr: number;
  pn: number;
  /** MKSKIPPED, oldest first (a Map keeps insertion order). */
  skipped: Map<string, SkippedKey>;
  /** Ended remote chains' ratchet keys (base64url), oldest first. */
  ended: string[];
}

declare const brand: unique symbol;
/** A session's ratchet state: opaque and immutable; persist it with `serialize`. */
export interface RatchetState {
  readonly [brand]: 'RatchetState';
  /** Message keys held for messages that have not arrived yet. */
  readonly skippedKeys: number;
}

const fieldsOf = new WeakMap<RatchetState, Readonly<Fields>>();
/** States superseded by the one a call returned: using one again would reuse its keys. */
const retired = new WeakSet<RatchetState>();

function make(fields: Fields): RatchetState {
  const state = Object.freeze({ skippedKeys: fields.skipped.size }) as unknown as RatchetState;
  fieldsOf.set(state, fields);
  return state;
}

/** A working copy of a state's fields (maps and lists copied; buffers shared, never written). */
function draft(state: RatchetState): Fields {
  const f = fieldsOf.get(state);
  if (!f) throw new TypeError('not a ratchet state');
  if (retired.has(state))
    throw new Error('stale ratchet state: use the state returned by the last call');
  return { ...f, skipped: new Map(f.skipped), ended: [...f.ended] };
}

/** Commits a draft: the old state is retired, the draft becomes the new state. */
function commit(old: RatchetState, d: Fields): RatchetState {
  retired.add(old);
  return make(d);
}

const b64 = (b: Buffer) => b.toString('base64url');
const skippedId = (dh: Buffer, n: number) => `${b64(dh)}.${n}`;

/** KDF_RK (§5.2): HKDF-SHA256(ikm = dh_out, salt = rk, info, 64) → (rk, ck). */
function kdfRk(rk: Buffer, dhOut: Buffer): [Buffer, Buffer] {
  const out = hkdfSha256(dhOut, rk, RK_INFO, 64);
  wipe(dhOut);
  const pair: [Buffer, Buffer] = [Buffer.from(out.subarray(0, 32)), Buffer.from(out.subarray(32))];
  wipe(out);
  return pair;
}

/** KDF_CK (§5.2): (ck' = HMAC(ck, 0x02), mk = HMAC(ck, 0x01)). */
function kdfCk(ck: Buffer): [Buffer, Buffer] {
  return [hmacSha256(ck, CK_NEXT), hmacSha256(ck, CK_MESSAGE)];
}

/** The AEAD key and nonce of a message key: HKDF-SHA256(mk, zero salt, info, 56). */
function withMessageKeys<T>(mk: Buffer, use: (key: Buffer, nonce: Buffer) => T): T {
  const out = hkdfSha256(mk, ZERO_SALT, MK_INFO, 56);
  try {
    return use(out.subarray(0, 32), out.subarray(32, 56));
  } finally {
    wipe(out);
  }
}

/** ENCRYPT(mk, plaintext, ad) */
function seal(mk: Buffer, plaintext: Buffer, ad: Buffer): Buffer {
  return withMessageKeys(mk, (key, nonce) => aeadEncrypt(key, nonce, plaintext, ad));
}

/** DECRYPT(mk, ciphertext, ad): undefined when it does not authenticate. */
function open(mk: Buffer, ciphertext: Buffer, ad: Buffer): Buffer | undefined {
  return withMessageKeys(mk, (key, nonce) => aeadDecrypt(key, nonce, ciphertext, ad));
}

/** RatchetInitAlice (§3.3): the initiator, with X3DH's SK and the responder's signed prekey. */
export function initSender(sk: Buffer, remoteSignedPrekeyPublic: Buffer): RatchetState {
  if (sk.length !== 32) throw new Error('ratchet: SK must be 32 bytes');
  const dhs = x25519KeyPair();
  const [rk, cks] = kdfRk(sk, x25519(dhs.secretKey, remoteSignedPrekeyPublic));
  return make({
    dhs,
    dhr: Buffer.from(remoteSignedPrekeyPublic),
    rk,
    cks,
    ckr: undefined,
    ns: 0,
    nr: 0,
    pn: 0,
    skipped: new Map(),
    ended: [],
  });
}

/** RatchetInitBob (§3.3): the responder, with SK and its own signed prekey pair. */
export function initReceiver(sk: Buffer, ownSignedPrekeyPair: KeyPair): RatchetState {
  if (sk.length !== 32) throw new Error('ratchet: SK must be 32 bytes');
  return make({
    dhs: {
      publicKey: Buffer.from(ownSignedPrekeyPair.publicKey),
      secretKey: Buffer.from(ownSignedPrekeyPair.secretKey),
    },
    dhr: undefined,
    rk: Buffer.from(sk),
    cks: undefined,
    ckr: undefined,
    ns: 0,
    nr: 0,
    pn: 0,
    skipped: new Map(),
    ended: [],
  });
}

/** RatchetEncrypt (§3.4). Throws before the first message has arrived (responder side). */
export function encrypt(
  state: RatchetState,
  plaintext: Buffer,
  ad: Buffer,
): { state: RatchetState; header: Header; ciphertext: Buffer } {
  const d = draft(state);
  if (!d.cks) throw new Error('ratchet: no sending chain before the first message arrives');
  if (d.ns >= U32_MAX) throw new Error('ratchet: sending chain exhausted');
  const [cks, mk] = kdfCk(d.cks);
  const header: Header = { dh: d.dhs.publicKey, pn: d.pn, n: d.ns };
  const ciphertext = seal(mk, plaintext, Buffer.concat([ad, encodeHeader(header)]));
  wipe(mk);
  d.cks = cks;
  d.ns += 1;
  return { state: commit(state, d), header, ciphertext };
}

/** SkipMessageKeys (§3.5), bounded per chain step and in total (the oldest are dropped). */
function skipTo(d: Fields, until: number): void {
  if (d.nr + DM_LIMITS.maxSkipPerChain < until)
    throw new RatchetError('too_many_skipped', 'too many skipped messages');
  if (!d.ckr || !d.dhr) return;
  while (d.nr < until) {
    const [ckr, mk] = kdfCk(d.ckr);
    d.ckr = ckr;
    d.skipped.set(skippedId(d.dhr, d.nr), { dh: d.dhr, n: d.nr, mk });
    d.nr += 1;
    if (d.skipped.size > DM_LIMITS.maxSkippedKeys) {
      const oldest = d.skipped.keys().next().value as string;
      d.skipped.delete(oldest);
    }
  }
}

/** DHRatchet (§3.5): the remote ratchet key changed. */
function dhRatchet(d: Fields, dh: Buffer): void {
  if (d.dhr) {
    d.ended.push(b64(d.dhr));
    if (d.ended.length > REMEMBERED_CHAINS) d.ended.shift();
  }
  d.pn = d.ns;
  d.ns = 0;
  d.nr = 0;
  d.dhr = Buffer.from(dh);
  let ckr: Buffer;
  [d.rk, ckr] = kdfRk(d.rk, x25519(d.dhs.secretKey, d.dhr));
  d.ckr = ckr;
  d.dhs = x25519KeyPair();
  let cks: Buffer;
  [d.rk, cks] = kdfRk(d.rk, x25519(d.dhs.secretKey, d.dhr));
  d.cks = cks;
}

function validHeader(h: Header): boolean {
  const u32 = (x: number) => Number.isInteger(x) && x >= 0 && x <= U32_MAX;
  return Buffer.isBuffer(h.dh) && h.dh.length === 32 && u32(h.pn) && u32(h.n);
}

/**
 * RatchetDecrypt (§3.5), transactional: on success the new state and the plaintext; on failure
 * a RatchetError, and the state passed in is unchanged and still the current one.
 */
export function decrypt(
  state: RatchetState,
  header: Header,
  ciphertext: Buffer,
  ad: Buffer,
): { state: RatchetState; plaintext: Buffer } {
  const d = draft(state);
  if (!validHeader(header)) throw new RatchetError('bad_ciphertext', 'malformed header');
  const fullAd = Buffer.concat([ad, encodeHeader(header)]);
  const id = skippedId(header.dh, header.n);
  const held = d.skipped.get(id);
  if (held) {
    const plaintext = open(held.mk, ciphertext, fullAd);
    if (!plaintext) throw new RatchetError('bad_ciphertext', 'message does not authenticate');
    d.skipped.delete(id);
    return { state: commit(state, d), plaintext };
  }
  const current = d.dhr !== undefined && d.dhr.equals(header.dh);
  if (current && header.n < d.nr)
    throw new RatchetError('duplicate', 'message key already used or dropped');
  if (!current && d.ended.includes(b64(header.dh)))
    throw new RatchetError('duplicate', 'message of an ended chain, key already used or dropped');
  try {
    if (!current) {
      skipTo(d, header.pn);
      dhRatchet(d, header.dh);
    }
    skipTo(d, header.n);
  } catch (err) {
    if (err instanceof RatchetError) throw err;
    // x25519 refused a small-order ratchet key: a forged header.
    throw new RatchetError('bad_ciphertext', 'invalid ratchet key');
  }
  const [ckr, mk] = kdfCk(d.ckr!);
  d.ckr = ckr;
  d.nr += 1;
  const plaintext = open(mk, ciphertext, fullAd);
  wipe(mk);
  if (!plaintext) throw new RatchetError('bad_ciphertext', 'message does not authenticate');
  return { state: commit(state, d), plaintext };
}

// ---- persistence -------------------------------------------------------------------------

const Key32 = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'expected 32 bytes, base64url');
const U32 = z.number().int().min(0).max(U32_MAX);
const Serialized = z.object({
  v: z.literal(1),
  dhs: z.object({ pub: Key32, sec: Key32 }),
  dhr: Key32.optional(),
  rk: Key32,
  cks: Key32.optional(),
  ckr: Key32.optional(),
  ns: U32,
  nr: U32,
  pn: U32,
  skipped: z.array(z.object({ dh: Key32, n: U32, mk: Key32 })).max(DM_LIMITS.maxSkippedKeys),
  ended: z.array(Key32).max(REMEMBERED_CHAINS),
});

/** The state as JSON (binary fields base64url). It holds secrets: store it as such. */
export function serialize(state: RatchetState): string {
  const f = draft(state);
  return JSON.stringify({
    v: 1,
    dhs: { pub: b64(f.dhs.publicKey), sec: b64(f.dhs.secretKey) },
    dhr: f.dhr && b64(f.dhr),
    rk: b64(f.rk),
    cks: f.cks && b64(f.cks),
    ckr: f.ckr && b64(f.ckr),
    ns: f.ns,
    nr: f.nr,
    pn: f.pn,
    skipped: [...f.skipped.values()].map((s) => ({ dh: b64(s.dh), n: s.n, mk: b64(s.mk) })),
    ended: f.ended,
  });
}

/** A state back from `serialize`; throws when the text is not a valid state. */
export function deserialize(text: string): RatchetState {
  const s = Serialized.parse(JSON.parse(text));
  const buf = (x: string) => Buffer.from(x, 'base64url');
  const dhs = { publicKey: buf(s.dhs.pub), secretKey: buf(s.dhs.sec) };
  if (!x25519Base(dhs.secretKey).equals(dhs.publicKey))
    throw new Error('ratchet state: the ratchet key pair does not match');
  if (s.ckr !== undefined && s.dhr === undefined)
    throw new Error('ratchet state: a receiving chain without a remote key');
  const skipped = new Map<string, SkippedKey>();
  for (const k of s.skipped) {
    const dh = buf(k.dh);
    skipped.set(skippedId(dh, k.n), { dh, n: k.n, mk: buf(k.mk) });
  }
  return make({
    dhs,
    dhr: s.dhr === undefined ? undefined : buf(s.dhr),
    rk: buf(s.rk),
    cks: s.cks === undefined ? undefined : buf(s.cks),
    ckr: s.ckr === undefined ? undefined : buf(s.ckr),
    ns: s.ns,
    nr: s.nr,
    pn: s.pn,
    skipped,
    ended: s.ended,
  });
}
