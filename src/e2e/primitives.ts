/**
 * The primitives of end-to-end encryption (docs/PROTOCOL.md §10), each a thin wrapper of
 * libsodium (sodium-native) or OpenSSL (node:crypto, for HMAC and HKDF, which sodium-native
 * lacks). The only file of src/e2e/ that touches either library: nothing here is hand-written.
 * Lengths are checked before a library call, so a bad length is a clear Error (or `false` /
 * `undefined` where the function says so), never a library assertion.
 */
import crypto from 'node:crypto';
import sodium from 'sodium-native';

/** A key pair: X25519 (both 32 bytes) or Ed25519 (secretKey 64 bytes: seed || public key). */
export interface KeyPair {
  readonly publicKey: Buffer;
  readonly secretKey: Buffer;
}

function need(buf: Buffer, length: number, what: string): void {
  if (!Buffer.isBuffer(buf) || buf.length !== length)
    throw new Error(
      `${what}: expected ${length} bytes, got ${Buffer.isBuffer(buf) ? buf.length : typeof buf}`,
    );
}

/** n random bytes from libsodium's CSPRNG. */
export function randomBytes(n: number): Buffer {
  const out = Buffer.alloc(n);
  sodium.randombytes_buf(out);
  return out;
}

/** Overwrites a buffer with zeros (a key no longer needed). */
export function wipe(buf: Buffer | undefined): void {
  if (buf && buf.length > 0) sodium.sodium_memzero(buf);
}

/** X25519 public key of a secret scalar (multiplication of the base point, RFC 7748 §6.1). */
export function x25519Base(secretKey: Buffer): Buffer {
  need(secretKey, sodium.crypto_scalarmult_SCALARBYTES, 'X25519 secret key');
  const pk = Buffer.alloc(sodium.crypto_scalarmult_BYTES);
  sodium.crypto_scalarmult_base(pk, secretKey);
  return pk;
}

/** A fresh X25519 key pair. */
export function x25519KeyPair(): KeyPair {
  const secretKey = randomBytes(sodium.crypto_scalarmult_SCALARBYTES);
  return { publicKey: x25519Base(secretKey), secretKey };
}

/**
 * X25519(secretKey, publicKey) (RFC 7748 §5). Throws when the result is all zeros, i.e. when
 * `publicKey` has small order (RFC 7748 §6.1's check; libsodium also refuses such inputs).
 */
export function x25519(secretKey: Buffer, publicKey: Buffer): Buffer {
  need(secretKey, sodium.crypto_scalarmult_SCALARBYTES, 'X25519 secret key');
  need(publicKey, sodium.crypto_scalarmult_BYTES, 'X25519 public key');
  const out = Buffer.alloc(sodium.crypto_scalarmult_BYTES);
  try {
    sodium.crypto_scalarmult(out, secretKey, publicKey);
  } catch (cause) {
    throw new Error('X25519: the public key has small order (all-zero shared secret)', { cause });
  }
  return out;
}

/** A fresh Ed25519 key pair, or the one of a 32-byte seed (RFC 8032 §5.1.5). */
export function ed25519KeyPair(seed?: Buffer): KeyPair {
  const publicKey = Buffer.alloc(sodium.crypto_sign_PUBLICKEYBYTES);
  const secretKey = Buffer.alloc(sodium.crypto_sign_SECRETKEYBYTES);
  if (seed === undefined) sodium.crypto_sign_keypair(publicKey, secretKey);
  else {
    need(seed, sodium.crypto_sign_SEEDBYTES, 'Ed25519 seed');
    sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed);
  }
  return { publicKey, secretKey };
}

/** Ed25519 signature (64 bytes) of `message` by the 64-byte secret key. */
export function ed25519Sign(secretKey: Buffer, message: Buffer): Buffer {
  need(secretKey, sodium.crypto_sign_SECRETKEYBYTES, 'Ed25519 secret key');
  const sig = Buffer.alloc(sodium.crypto_sign_BYTES);
  sodium.crypto_sign_detached(sig, message, secretKey);
  return sig;
}

/** True when `sig` is `publicKey`'s Ed25519 signature of `message`; false for any bad length. */
export function ed25519Verify(publicKey: Buffer, message: Buffer, sig: Buffer): boolean {
  if (!Buffer.isBuffer(sig) || sig.length !== sodium.crypto_sign_BYTES) return false;
  if (!Buffer.isBuffer(publicKey) || publicKey.length !== sodium.crypto_sign_PUBLICKEYBYTES)
    return false;
  return sodium.crypto_sign_verify_detached(sig, message, publicKey);
}

/**
 * The X25519 form of an Ed25519 public key (libsodium crypto_sign_ed25519_pk_to_curve25519).
 * Throws when the key is not a valid Ed25519 point (libsodium also refuses small-order ones).
 */
export function edPublicToX25519(publicKey: Buffer): Buffer {
  need(publicKey, sodium.crypto_sign_PUBLICKEYBYTES, 'Ed25519 public key');
  const out = Buffer.alloc(sodium.crypto_scalarmult_BYTES);
  try {
    sodium.crypto_sign_ed25519_pk_to_curve25519(out, publicKey);
  } catch (cause) {
    throw new Error('Ed25519 public key is not a valid curve point', { cause });
  }
  return out;
}

/** The X25519 form of an Ed25519 secret key (libsodium crypto_sign_ed25519_sk_to_curve25519). */
export function edSecretToX25519(secretKey: Buffer): Buffer {
  need(secretKey, sodium.crypto_sign_SECRETKEYBYTES, 'Ed25519 secret key');
  const out = Buffer.alloc(sodium.crypto_scalarmult_SCALARBYTES);
  sodium.crypto_sign_ed25519_sk_to_curve25519(out, secretKey);
  return out;
}

/** HMAC-SHA256 (RFC 2104) through OpenSSL. */
export function hmacSha256(key: Buffer, data: Buffer): Buffer {
  return crypto.createHmac('sha256', key).update(data).digest();
}

/** HKDF-SHA256 (RFC 5869) through OpenSSL: `length` bytes. */
export function hkdfSha256(ikm: Buffer, salt: Buffer, info: Buffer, length: number): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', ikm, salt, info, length));
}

/** SHA-512 (FIPS 180-4) through libsodium. */
export function sha512(data: Buffer): Buffer {
  const out = Buffer.alloc(sodium.crypto_hash_sha512_BYTES);
  sodium.crypto_hash_sha512(out, data);
  return out;
}

/** Bytes the AEAD adds: the Poly1305 tag, appended to the ciphertext. */
export const AEAD_TAG_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES;

/** XChaCha20-Poly1305-IETF encryption: ciphertext || 16-byte tag. */
export function aeadEncrypt(key: Buffer, nonce: Buffer, plaintext: Buffer, ad: Buffer): Buffer {
  need(key, sodium.crypto_aead_xchacha20poly1305_ietf_KEYBYTES, 'AEAD key');
  need(nonce, sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, 'AEAD nonce');
  const out = Buffer.alloc(plaintext.length + AEAD_TAG_BYTES);
  sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(out, plaintext, ad, null, nonce, key);
  return out;
}

/** XChaCha20-Poly1305-IETF decryption: the plaintext, or undefined when anything is wrong. */
export function aeadDecrypt(
  key: Buffer,
  nonce: Buffer,
  ciphertext: Buffer,
  ad: Buffer,
): Buffer | undefined {
  need(key, sodium.crypto_aead_xchacha20poly1305_ietf_KEYBYTES, 'AEAD key');
  need(nonce, sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, 'AEAD nonce');
  if (!Buffer.isBuffer(ciphertext) || ciphertext.length < AEAD_TAG_BYTES) return undefined;
  const out = Buffer.alloc(ciphertext.length - AEAD_TAG_BYTES);
  try {
    sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(out, null, ciphertext, ad, nonce, key);
  } catch {
    // libsodium's only failure here (lengths are checked above): the tag does not verify.
    return undefined;
  }
  return out;
}
