/**
 * Content-derived item ids (as Matrix room versions >= 3 derive event ids from content): an
 * item's id is a hash of what its author signed, laid out as a UUID whose first 48 bits are the
 * item's time, so ids stay time-ordered like UUIDv7.
 *
 *   bytes 0-5   ts, milliseconds since the epoch, big-endian (48 bits)
 *   byte  6     0x80 | h[0] & 0x0f          (UUID version 8)
 *   byte  7     h[1]
 *   byte  8     0x80 | h[2] & 0x3f          (RFC 9562 variant)
 *   bytes 9-15  h[3..9]
 *
 * where h = SHA-256 of the UTF-8 of JSON.stringify(["hchat/item-id/2", channelId, author in
 * lower case, ts, lc, kind, target or null, digest]) and digest is the body's hash
 * (`bodyDigest`). The body (text, reply, mentions, emoji, channel change) enters only through
 * its digest, so that a deleted message keeps an id and a signature anyone can check after its
 * text is erased (as Matrix redactions keep events verifiable). Nobody can claim someone else's
 * id: a copy under another author or channel has another id, and only the author can sign the
 * original. 74 bits of hash: finding a second item for a given id costs about 2^74 hashes.
 */
import crypto from 'node:crypto';
import type { ChannelChange, FileRef, ItemKind } from '../protocol/common.js';

/** Largest `ts` an id can carry (48 bits). */
export const MAX_ID_TS = 2 ** 48 - 1;

/** What an item says beyond its header: erased (all but its digest) when it is deleted. */
export interface ItemBody {
  text?: string;
  replyTo?: string;
  mentions?: string[];
  emoji?: string;
  change?: ChannelChange;
  files?: FileRef[];
}

/** The fields an item id is derived from. */
export interface IdFields extends ItemBody {
  channelId: string;
  author: string;
  ts: number;
  lc: number;
  kind?: ItemKind;
  target?: string;
  /** Set on a tombstone, whose body is gone. */
  digest?: string;
}

/**
 * SHA-256, base64url, of JSON.stringify(["hchat/body/1", text, replyTo, mentions, emoji,
 * change]), each absent field as null and `change` as [name, topic, allowVisitors, remove,
 * deleted] (absent fields null): one byte string for one body, whatever the key order on the wire.
 * A message with files appends them: [[id, name, size, type, width, height, preview], ...].
 */
export function bodyDigest(b: ItemBody): string {
  const c = b.change;
  const change = c
    ? [
        c.name ?? null,
        c.topic ?? null,
        c.allowVisitors ?? null,
        c.remove ?? null,
        c.deleted ?? null,
      ]
    : null;
  return crypto.hash(
    'sha256',
    JSON.stringify([
      'hchat/body/1',
      b.text ?? null,
      b.replyTo ?? null,
      b.mentions ?? null,
      b.emoji ?? null,
      change,
      // Files came later: a body without them keeps the digest it always had.
      ...(b.files
        ? [
            b.files.map((f) => [
              f.id,
              f.name,
              f.size,
              f.type,
              f.image?.width ?? null,
              f.image?.height ?? null,
              f.image?.preview ?? null,
            ]),
          ]
        : []),
    ]),
    'base64url',
  );
}

/** The digest an item carries (a tombstone) or its body's. */
export function digestOf(m: IdFields): string {
  return m.digest ?? bodyDigest(m);
}

/** The header every signature and id covers, as JSON values (PROTOCOL.md §2.2). */
export function itemHeader(m: IdFields, digest = digestOf(m)): unknown[] {
  return [
    m.channelId,
    m.author.toLowerCase(),
    m.ts,
    m.lc,
    m.kind ?? 'message',
    m.target ?? null,
    digest,
  ];
}

/** The id of an item with these fields (`digest`: its digestOf, when the caller has it). */
export function messageId(m: IdFields, digest?: string): string {
  return uuidOf(
    m.ts,
    crypto.hash('sha256', JSON.stringify(['hchat/item-id/2', ...itemHeader(m, digest)]), 'hex'),
  );
}

const HEX = '0123456789abcdef';

/**
 * The UUIDv8 layout of an id: 48 bits of time, then hash bits (see above), from the hash in hex
 * (one-shot hashing to hex is the cheapest form Node offers: this runs for every item received).
 */
function uuidOf(ts: number, h: string): string {
  if (!Number.isSafeInteger(ts) || ts < 0 || ts > MAX_ID_TS)
    throw new RangeError(`ts ${ts} is not an integer from 0 to 2^48-1`);
  const t = ts.toString(16).padStart(12, '0');
  // byte 6: 0x80 | (h[0] & 0x0f); byte 7: h[1]; byte 8: 0x80 | (h[2] & 0x3f); bytes 9-15: h[3..9]
  const b8 = HEX[8 | (parseInt(h[4]!, 16) & 3)]! + h[5]!;
  return `${t.slice(0, 8)}-${t.slice(8)}-8${h[1]}${h.slice(2, 4)}-${b8}${h.slice(6, 8)}-${h.slice(8, 20)}`;
}

/**
 * Protocol 3's id of a plain message (`["hchat/message-id/1", channelId, author, ts, lc, text]`,
 * same layout): messages stored before version 4 keep it, and still verify (signing.ts).
 */
export function legacyMessageId(m: {
  channelId: string;
  author: string;
  ts: number;
  lc: number;
  text: string;
}): string {
  const h = crypto.hash(
    'sha256',
    JSON.stringify(['hchat/message-id/1', m.channelId, m.author.toLowerCase(), m.ts, m.lc, m.text]),
    'hex',
  );
  return uuidOf(m.ts, h);
}
