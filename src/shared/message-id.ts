/**
 * Content-derived message ids (as Matrix room versions >= 3 derive event ids from content): a
 * message's id is a hash of what its author signed, laid out as a UUID whose first 48 bits are
 * the message's time, so ids stay time-ordered like UUIDv7.
 *
 *   bytes 0-5   ts, milliseconds since the epoch, big-endian (48 bits)
 *   byte  6     0x80 | h[0] & 0x0f          (UUID version 8)
 *   byte  7     h[1]
 *   byte  8     0x80 | h[2] & 0x3f          (RFC 9562 variant)
 *   bytes 9-15  h[3..9]
 *
 * where h = SHA-256 of the UTF-8 of JSON.stringify(["hchat/message-id/1", channelId,
 * author in lower case, ts, lc, text]). Nobody can claim someone else's id: a copy under another
 * author or channel has another id, and only the author can sign the original. 74 bits of hash:
 * finding a second message for a given id costs about 2^74 hashes.
 */
import crypto from 'node:crypto';

/** Largest `ts` an id can carry (48 bits). */
export const MAX_ID_TS = 2 ** 48 - 1;

/** The fields a message id is derived from. */
export interface IdFields {
  channelId: string;
  author: string;
  ts: number;
  lc: number;
  text: string;
}

/** The id of a message with these fields. */
export function messageId(m: IdFields): string {
  const h = crypto
    .createHash('sha256')
    .update(
      JSON.stringify([
        'hchat/message-id/1',
        m.channelId,
        m.author.toLowerCase(),
        m.ts,
        m.lc,
        m.text,
      ]),
    )
    .digest();
  const b = Buffer.alloc(16);
  b.writeUIntBE(m.ts, 0, 6);
  b[6] = 0x80 | (h[0]! & 0x0f);
  b[7] = h[1]!;
  b[8] = 0x80 | (h[2]! & 0x3f);
  h.copy(b, 9, 3, 10);
  const x = b.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}
