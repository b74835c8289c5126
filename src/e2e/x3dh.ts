/**
 * X3DH key agreement (Signal, "The X3DH Key Agreement Protocol", rev 1, 2016-11-04;
 * docs/PROTOCOL.md §10). Identity keys are Ed25519 (they sign the signed prekey directly); their
 * X25519 form, libsodium's birational map, takes part in DH1 and DH2 (X3DH §2.3, §3.3).
 */
import {
  edPublicToX25519,
  edSecretToX25519,
  ed25519Sign,
  ed25519Verify,
  hkdfSha256,
  type KeyPair,
  wipe,
  x25519,
  x25519KeyPair,
} from './primitives.js';

/** The signed prekey's signature covers this prefix, then the 32-byte X25519 public key. */
const SPK_SIGNATURE_PREFIX = Buffer.from('hchat-dm-spk-v1', 'utf8');
/** X3DH §2.2: F is 32 0xFF bytes for X25519; the salt is a hash-length zero block. */
const KDF_F = Buffer.alloc(32, 0xff);
const KDF_SALT = Buffer.alloc(32, 0);
const KDF_INFO = Buffer.from('HybridChat_X3DH_v1', 'utf8');

/** The bytes the identity key signs to vouch for a signed prekey. */
function spkSignatureInput(prekeyPublic: Buffer): Buffer {
  if (prekeyPublic.length !== 32) throw new Error('signed prekey: expected 32 bytes');
  return Buffer.concat([SPK_SIGNATURE_PREFIX, prekeyPublic]);
}

/** The identity key's Ed25519 signature of a signed prekey (published with it). */
export function signPrekey(identitySecret: Buffer, prekeyPublic: Buffer): Buffer {
  return ed25519Sign(identitySecret, spkSignatureInput(prekeyPublic));
}

/** True when `sig` is the identity key's signature of the signed prekey. */
export function verifyPrekey(identityPublic: Buffer, prekeyPublic: Buffer, sig: Buffer): boolean {
  if (prekeyPublic.length !== 32) return false;
  return ed25519Verify(identityPublic, spkSignatureInput(prekeyPublic), sig);
}

/** SK = HKDF(F || DH1 || DH2 || DH3 [|| DH4]); the DH outputs are wiped. */
function kdf(dhs: Buffer[]): Buffer {
  const ikm = Buffer.concat([KDF_F, ...dhs]);
  const sk = hkdfSha256(ikm, KDF_SALT, KDF_INFO, 32);
  wipe(ikm);
  for (const dh of dhs) wipe(dh);
  return sk;
}

/** What X3DH gives both sides: the shared secret and the associated data. */
export interface X3dhResult {
  /** 32 bytes: the Double Ratchet's first root key. */
  sk: Buffer;
  /** IK_initiator || IK_responder (raw Ed25519 public keys, 64 bytes). */
  ad: Buffer;
}

/** A responder's published prekeys, as raw bytes. */
export interface RawPrekeyBundle {
  identityKey: Buffer;
  signedPrekey: { id: number; key: Buffer; sig: Buffer };
  oneTimePrekey?: { id: number; key: Buffer } | undefined;
}

/**
 * The initiator's side (X3DH §3.3): checks the signed prekey's signature (throws if it does
 * not verify), then derives SK with a fresh ephemeral key, which is wiped before returning.
 */
export function initiate(
  own: { identity: KeyPair },
  bundle: RawPrekeyBundle,
): X3dhResult & { ephemeralPublic: Buffer; spkId: number; opkId?: number } {
  const { identityKey, signedPrekey: spk, oneTimePrekey: opk } = bundle;
  if (!verifyPrekey(identityKey, spk.key, spk.sig))
    throw new Error("X3DH: the signed prekey's signature does not verify with the identity key");
  const ikB = edPublicToX25519(identityKey);
  const ikA = edSecretToX25519(own.identity.secretKey);
  const ek = x25519KeyPair();
  try {
    const dhs = [x25519(ikA, spk.key), x25519(ek.secretKey, ikB), x25519(ek.secretKey, spk.key)];
    if (opk) dhs.push(x25519(ek.secretKey, opk.key));
    return {
      sk: kdf(dhs),
      ad: Buffer.concat([own.identity.publicKey, identityKey]),
      ephemeralPublic: ek.publicKey,
      spkId: spk.id,
      ...(opk ? { opkId: opk.id } : {}),
    };
  } finally {
    wipe(ek.secretKey);
    wipe(ikA);
  }
}

/**
 * The responder's side (X3DH §3.4), from the initiator's identity key (Ed25519) and ephemeral
 * key. Throws when a key is invalid or of small order. The caller deletes the one-time prekey
 * once the first message decrypted.
 */
export function respond(
  own: { identity: KeyPair; signedPrekey: KeyPair; oneTimePrekey?: KeyPair | undefined },
  initiatorIdentity: Buffer,
  ephemeralPublic: Buffer,
): X3dhResult {
  const ikA = edPublicToX25519(initiatorIdentity);
  const ikB = edSecretToX25519(own.identity.secretKey);
  try {
    const spk = own.signedPrekey.secretKey;
    const dhs = [x25519(spk, ikA), x25519(ikB, ephemeralPublic), x25519(spk, ephemeralPublic)];
    if (own.oneTimePrekey) dhs.push(x25519(own.oneTimePrekey.secretKey, ephemeralPublic));
    return { sk: kdf(dhs), ad: Buffer.concat([initiatorIdentity, own.identity.publicKey]) };
  } finally {
    wipe(ikB);
  }
}
