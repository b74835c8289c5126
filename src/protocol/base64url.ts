/**
 * Fixed-length bytes on the wire as base64url (PROTOCOL.md §1): keys, signatures, digests and
 * nonces. Without Node's Buffer, so that the web UI's schemas share it.
 */
import { z } from 'zod';

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** How many characters unpadded base64url spells `bytes` bytes with. */
export const base64urlChars = (bytes: number) => Math.ceil((bytes * 8) / 6);

/**
 * The canonical base64url (RFC 4648 §5, unpadded) spelling of exactly `bytes` bytes: its length,
 * and a last character whose unused bits are zero. Node's decoder ignores those bits, so each
 * of 4 (32 bytes: 2 unused bits) or 16 (16 and 64 bytes: 4) spellings reads as the same bytes;
 * only the one an encoder writes is taken, as for base64 (base64.ts).
 */
export function base64urlPattern(bytes: number): RegExp {
  const chars = base64urlChars(bytes);
  const unused = chars * 6 - bytes * 8;
  const last = [...BASE64URL].filter((_, v) => v % (1 << unused) === 0).join('');
  return new RegExp(`^[A-Za-z0-9_-]{${chars - 1}}[${last.replace('-', '\\-')}]$`);
}

/** A member of exactly `bytes` bytes in canonical base64url; `message` says what it is. */
export function base64urlBytes(bytes: number, message: string) {
  return z.string().regex(base64urlPattern(bytes), message);
}
