/**
 * Safety numbers (docs/PROTOCOL.md §10): Signal's numeric fingerprint (libsignal
 * NumericFingerprintGenerator / DisplayableFingerprint, version 0, 5200 iterations), over all of
 * a user's device identity keys, as libsignal's multi-key form does. Two users who read the same
 * 60 digits on their screens hold each other's true device keys.
 */
import { sha512 } from './primitives.js';

/** SHA-512 iterations (libsignal's recommended count: > 112 bits). */
export const FINGERPRINT_ITERATIONS = 5200;
/** libsignal's fingerprint format version, the first two bytes hashed. */
const VERSION = Buffer.from([0x00, 0x00]);

/** A user's 30 digits: its device identity keys (raw Ed25519, 32 bytes each) and its name. */
export function fingerprint(username: string, keys: readonly Buffer[]): string {
  if (keys.length === 0) throw new Error('fingerprint: a user has at least one device key');
  for (const k of keys) if (k.length !== 32) throw new Error('fingerprint: keys are 32 bytes');
  // Sorted bytewise, each once: the order devices were listed in does not matter.
  const sorted = [...keys]
    .sort(Buffer.compare)
    .filter((k, i, a) => i === 0 || !a[i - 1]!.equals(k));
  const publicKey = Buffer.concat(sorted);
  let hash: Buffer = Buffer.concat([VERSION, publicKey, Buffer.from(username, 'utf8')]);
  for (let i = 0; i < FINGERPRINT_ITERATIONS; i++) hash = sha512(Buffer.concat([hash, publicKey]));
  let digits = '';
  for (let offset = 0; offset < 30; offset += 5)
    digits += (hash.readUIntBE(offset, 5) % 100000).toString().padStart(5, '0');
  return digits;
}

/** One side of a conversation: a user and the identity keys of all of its devices. */
export interface SafetySide {
  username: string;
  keys: readonly Buffer[];
}

/** The safety number of two users: their fingerprints, the smaller first (60 digits). */
export function safetyNumber(a: SafetySide, b: SafetySide): string {
  const fa = fingerprint(a.username, a.keys);
  const fb = fingerprint(b.username, b.keys);
  return fa <= fb ? fa + fb : fb + fa;
}

/** Groups of five digits separated by spaces, as they are shown and read out. */
export function formatSafetyNumber(s: string): string {
  return (s.match(/.{1,5}/g) ?? []).join(' ');
}
