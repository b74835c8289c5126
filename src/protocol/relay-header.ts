/**
 * The first bytes on a connection to the server's relay port (docs/PROTOCOL.md §3.10): 37 bytes,
 * "HCRL", version 1, then the 32-byte token the server handed this side in a `relay` answer or
 * event. Once both sides of a relay are in, the relay writes one byte, RELAY_PAIRED, to the side
 * that asked (the member), and from then on passes bytes through untouched, both ways: the P2P
 * link's TLS runs end to end.
 */
import { HchatError } from './errors.js';

export const RELAY_MAGIC = Buffer.from('HCRL', 'latin1');
export const RELAY_VERSION = 1;
export const RELAY_TOKEN_BYTES = 32;
export const RELAY_HEADER_BYTES = RELAY_MAGIC.length + 1 + RELAY_TOKEN_BYTES;
/** What the relay writes to the side that asked once the other side is in. */
export const RELAY_PAIRED = 0x01;

/** The header for `token` (base64url of 32 bytes, as `relay` gives it). */
export function relayHeader(token: string): Buffer {
  const raw = Buffer.from(token, 'base64url');
  if (raw.length !== RELAY_TOKEN_BYTES || raw.toString('base64url') !== token)
    throw new HchatError('E_BAD_REQUEST', 'a relay token is 32 bytes in base64url');
  return Buffer.concat([RELAY_MAGIC, Buffer.from([RELAY_VERSION]), raw]);
}

/** The token of a 37-byte header, or why it is no header. */
export function parseRelayHeader(d: Buffer): { token: string } | { error: string } {
  if (d.length !== RELAY_HEADER_BYTES) return { error: `expected ${RELAY_HEADER_BYTES} bytes` };
  if (!d.subarray(0, 4).equals(RELAY_MAGIC)) return { error: 'bad magic' };
  if (d[4] !== RELAY_VERSION) return { error: `unknown version ${d[4]}` };
  return { token: d.subarray(5).toString('base64url') };
}
