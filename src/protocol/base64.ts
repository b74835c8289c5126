/**
 * Bytes on the wire as base64 (PROTOCOL.md §1): every member that carries bytes in base64 is
 * checked with this one schema, on every side, before anything decodes it.
 *
 * Node's decoder is lax: it skips characters outside the alphabet and ignores bad padding, so
 * `"%%%%"` decodes to no byte at all and `"!!" + x` to the bytes of `x`. What was signed, hashed
 * or stored would then not be what was sent. Only the canonical spelling (RFC 4648 §4: the
 * standard alphabet, `=` padding to a multiple of 4, zero unused bits, no line breaks or spaces —
 * exactly what `Buffer.toString('base64')` writes) is taken.
 */
import { z } from 'zod';

/** True when `s` is the canonical base64 of some bytes (the empty string included). */
export function isCanonicalBase64(s: string): boolean {
  // A string that decodes and encodes back to itself is canonical: the encoder writes nothing
  // else. Native both ways, so a 256 KiB picture costs a few milliseconds.
  return s.length % 4 === 0 && Buffer.from(s, 'base64').toString('base64') === s;
}

/**
 * Canonical base64 of `minBytes` (1 or 0) to `maxBytes` bytes. The length is bounded in
 * characters (4 per 3 bytes), so a caller that must tell "too large" apart (E_FILE_TOO_LARGE)
 * checks the decoded length itself; up to two bytes past `maxBytes` fit in the last group of
 * four. A file chunk takes 0 (`""`): its length is checked against its manifest (E_BAD_CHUNK).
 */
export function base64Bytes(maxBytes: number, minBytes: 0 | 1 = 1) {
  return z
    .string()
    .min(minBytes * 4, { message: 'expected base64 of at least one byte', abort: true })
    .max(Math.ceil(maxBytes / 3) * 4, {
      message: `expected at most ${maxBytes} bytes`,
      abort: true,
    })
    .refine(isCanonicalBase64, 'expected base64 (RFC 4648: padded, no other characters)');
}
