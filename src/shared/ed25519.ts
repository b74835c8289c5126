/**
 * Ed25519 signature checks through libsodium (sodium-native; its prebuilt binaries ship inside
 * the npm package, nothing is downloaded at install). One check costs about 40 µs here against
 * 65 µs for node:crypto's verify with a cached KeyObject, and every message is checked by the
 * server, its host and its readers, so this is the hot path's largest single cost.
 * libsodium is the stricter of the two: it also refuses non-canonical signatures and
 * small-order keys, which no honest signer (node:crypto, WebCrypto) produces.
 */
import { createRequire } from 'node:module';
import sodium from 'sodium-native';
import { HchatError } from '../protocol/errors.js';

/** Where sodium-native lives, for worker threads that load it themselves. */
export const SODIUM_NATIVE_PATH = createRequire(import.meta.url).resolve('sodium-native');

/**
 * Throws E_BAD_REQUEST unless `publicKey` (raw, base64url) is a key an honest signer makes: a
 * canonical point of the curve's main subgroup, not of small order. A small-order key (the
 * identity, say) has signatures that RFC 8032 verifiers other than libsodium accept for every
 * message, so no certificate names one (PROTOCOL.md §2.1).
 */
export function checkSigningKey(publicKey: string): void {
  const raw = Buffer.from(publicKey, 'base64url');
  if (
    raw.length !== sodium.crypto_sign_PUBLICKEYBYTES ||
    !sodium.crypto_core_ed25519_is_valid_point(raw)
  )
    throw new HchatError(
      'E_BAD_REQUEST',
      'publicKey: not a usable Ed25519 public key (off the curve, or of small order)',
    );
}

/** True when `sig` is `publicKey`'s signature of `data` (false for any malformed input). */
export function verifyEd25519(data: Buffer, sig: Buffer, publicKey: Buffer): boolean {
  if (sig.length !== sodium.crypto_sign_BYTES) return false;
  if (publicKey.length !== sodium.crypto_sign_PUBLICKEYBYTES) return false;
  return sodium.crypto_sign_verify_detached(sig, data, publicKey);
}
