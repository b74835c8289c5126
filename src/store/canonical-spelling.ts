/**
 * Stored bytes of fixed length (keys, signatures) read back in the spelling receivers require
 * (PROTOCOL.md §1), for every store: rows written before the rule keep reaching their readers.
 */
import { base64urlChars } from '../protocol/base64url.js';

/**
 * Fixed-length bytes (a key, a signature) as a row gives them back, in their canonical base64url
 * spelling (PROTOCOL.md §1): a row written before receivers required that spelling (a hostile
 * client's respelling: the same bytes) was refused by every reader of a page holding it. Not
 * `bytes` long base64url: left for the schema.
 */
export function canonicalBase64url(s: string, bytes: number): string {
  if (s.length !== base64urlChars(bytes) || !/^[A-Za-z0-9_-]*$/.test(s)) return s;
  return Buffer.from(s, 'base64url').toString('base64url');
}

/** A signature as a row gives it back, in its canonical spelling (canonicalBase64url). */
export function canonicalSig(sig: string): string {
  return canonicalBase64url(sig, 64);
}
