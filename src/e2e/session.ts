/**
 * A DM session with one device (docs/PROTOCOL.md §10.3): X3DH to start it, the Double Ratchet
 * for every message, on the wire shape `DmCipher`. Pure functions over immutable values: each
 * call returns the new session, which the caller stores in place of the old one only once it
 * has kept what the call gave it (a failed `open` leaves the session it was given unchanged).
 */
import { z } from 'zod';
import { DM_LIMITS } from '../shared/limits.js';
import { DmCipher, type PrekeyBundle } from '../protocol/dm.js';
import type { KeyPair } from './primitives.js';
import * as ratchet from './ratchet.js';
import { initiate, respond } from './x3dh.js';

/** What the recipient needs to run X3DH: sent with every message until the first reply. */
export type PrekeyPart = NonNullable<DmCipher['prekey']>;

/** One session with one remote device. */
export interface Session {
  readonly ratchet: ratchet.RatchetState;
  /** X3DH's AD (IK_initiator || IK_responder, 64 bytes): the AD of every message. */
  readonly ad: Buffer;
  /** The remote device's identity key (Ed25519). */
  readonly remoteIdentity: Buffer;
  /** X3DH's ephemeral public key: names the session's start (ours if we initiated it). */
  readonly ek: Buffer;
  /** Set while we initiated and no reply arrived yet: every message carries it. */
  readonly prekey?: PrekeyPart | undefined;
}

/** Why `open` refused a message besides the ratchet's reasons (RatchetError). */
export type SessionFailure = 'no_session' | 'unknown_prekey' | 'bad_key';

/** A message that cannot start or continue a session. The session given is unchanged. */
export class SessionError extends Error {
  readonly reason: SessionFailure;
  constructor(reason: SessionFailure, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SessionError';
    this.reason = reason;
  }
}

const b64 = (b: Buffer) => b.toString('base64url');
const unb64 = (s: string) => Buffer.from(s, 'base64url');

/** Starts a session with a device from its prekey bundle (throws if its signature is bad). */
export function startSession(
  ownIdentity: KeyPair,
  bundle: PrekeyBundle,
): { state: Session; prekey: PrekeyPart } {
  const spk = unb64(bundle.signedPrekey.key);
  const x = initiate(
    { identity: ownIdentity },
    {
      identityKey: unb64(bundle.identityKey),
      signedPrekey: { id: bundle.signedPrekey.id, key: spk, sig: unb64(bundle.signedPrekey.sig) },
      oneTimePrekey: bundle.oneTimePrekey && {
        id: bundle.oneTimePrekey.id,
        key: unb64(bundle.oneTimePrekey.key),
      },
    },
  );
  const prekey: PrekeyPart = {
    ik: b64(ownIdentity.publicKey),
    ek: b64(x.ephemeralPublic),
    spk: x.spkId,
    ...(x.opkId === undefined ? {} : { opk: x.opkId }),
  };
  const state: Session = {
    ratchet: ratchet.initSender(x.sk, spk),
    ad: x.ad,
    remoteIdentity: unb64(bundle.identityKey),
    ek: x.ephemeralPublic,
    prekey,
  };
  return { state, prekey };
}

/** Characters of base64url for n bytes (no padding). */
const b64Chars = (n: number) => Math.ceil((n * 4) / 3);

/** Encrypts one message; its body carries the session's prekey part until a reply came. */
export function seal(state: Session, plaintext: Buffer): { state: Session; body: DmCipher } {
  if (b64Chars(plaintext.length + 16) > DM_LIMITS.maxCipherChars)
    throw new Error(`DM plaintext too long: ${plaintext.length} bytes`);
  const out = ratchet.encrypt(state.ratchet, plaintext, state.ad);
  const body: DmCipher = {
    v: 1,
    ...(state.prekey ? { prekey: state.prekey } : {}),
    dh: b64(out.header.dh),
    pn: out.header.pn,
    n: out.header.n,
    ct: b64(out.ciphertext),
  };
  return { state: { ...state, ratchet: out.state }, body };
}

/** Looks up one of the device's own prekeys by id. */
export type PrekeyLookup = ReadonlyMap<number, KeyPair> | ((id: number) => KeyPair | undefined);
const find = (l: PrekeyLookup, id: number) => (typeof l === 'function' ? l(id) : l.get(id));

/** The receiving device's own keys. */
export interface OwnKeys {
  identity: KeyPair;
  signedPrekeys: PrekeyLookup;
  oneTimePrekeys: PrekeyLookup;
}

/** What `open` found. */
export interface Opened {
  state: Session;
  plaintext: Buffer;
  /** The sender device's identity key: the caller checks it is the one that device published. */
  remoteIdentity: Buffer;
  /** A one-time prekey this message consumed: delete it once the new state is stored. */
  usedOneTimePrekey?: number;
  /**
   * 'message': of the session given; 'new': started a session (none was given); 'replaced':
   * the sender started a different session (re-installed, or both sides started at once), which
   * replaces the one given.
   */
  kind: 'message' | 'new' | 'replaced';
}

/**
 * Decrypts one message. Throws a RatchetError or SessionError (each with a `reason`); the
 * session given is then unchanged.
 */
export function open(state: Session | undefined, own: OwnKeys, wire: DmCipher): Opened {
  const parsed = DmCipher.safeParse(wire);
  if (!parsed.success) throw new ratchet.RatchetError('bad_ciphertext', 'malformed DM body');
  const body = parsed.data;
  const p = body.prekey;
  if (state && (!p || (unb64(p.ik).equals(state.remoteIdentity) && unb64(p.ek).equals(state.ek))))
    return { ...decryptWith(state, body), kind: 'message' };
  if (!p) throw new SessionError('no_session', 'no session with this device, and no prekey part');
  const signedPrekey = find(own.signedPrekeys, p.spk);
  if (!signedPrekey) throw new SessionError('unknown_prekey', `unknown signed prekey ${p.spk}`);
  const oneTimePrekey = p.opk === undefined ? undefined : find(own.oneTimePrekeys, p.opk);
  if (p.opk !== undefined && !oneTimePrekey)
    throw new SessionError('unknown_prekey', `unknown or used one-time prekey ${p.opk}`);
  const remoteIdentity = unb64(p.ik);
  const ek = unb64(p.ek);
  let x;
  try {
    x = respond({ identity: own.identity, signedPrekey, oneTimePrekey }, remoteIdentity, ek);
  } catch (cause) {
    throw new SessionError('bad_key', 'invalid identity or ephemeral key', { cause });
  }
  const fresh: Session = {
    ratchet: ratchet.initReceiver(x.sk, signedPrekey),
    ad: x.ad,
    remoteIdentity,
    ek,
  };
  return {
    ...decryptWith(fresh, body),
    ...(p.opk === undefined ? {} : { usedOneTimePrekey: p.opk }),
    kind: state ? 'replaced' : 'new',
  };
}

function decryptWith(state: Session, body: DmCipher): Omit<Opened, 'kind'> {
  const header = { dh: unb64(body.dh), pn: body.pn, n: body.n };
  const out = ratchet.decrypt(state.ratchet, header, unb64(body.ct), state.ad);
  // A message of this session arrived: the peer has it, no need to send the prekey part again.
  const next: Session = { ...state, ratchet: out.state, prekey: undefined };
  return { state: next, plaintext: out.plaintext, remoteIdentity: state.remoteIdentity };
}

const Key32 = z.string().regex(/^[A-Za-z0-9_-]{43}$/);
const SerializedSession = z.object({
  v: z.literal(1),
  ratchet: z.string(),
  ad: z.string().regex(/^[A-Za-z0-9_-]{86}$/),
  remoteIdentity: Key32,
  ek: Key32,
  prekey: DmCipher.shape.prekey,
});

/** A session as JSON (it holds secrets: store it as such). */
export function serializeSession(state: Session): string {
  return JSON.stringify({
    v: 1,
    ratchet: ratchet.serialize(state.ratchet),
    ad: b64(state.ad),
    remoteIdentity: b64(state.remoteIdentity),
    ek: b64(state.ek),
    prekey: state.prekey,
  });
}

/** A session back from `serializeSession`; throws when the text is not a valid session. */
export function deserializeSession(text: string): Session {
  const s = SerializedSession.parse(JSON.parse(text));
  return {
    ratchet: ratchet.deserialize(s.ratchet),
    ad: unb64(s.ad),
    remoteIdentity: unb64(s.remoteIdentity),
    ek: unb64(s.ek),
    prekey: s.prekey,
  };
}
