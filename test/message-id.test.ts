/**
 * Item ids (docs/PROTOCOL.md §2.1 _Message ids_): src/shared/message-id.ts against the layout
 * as the document writes it, byte by byte, for any time and content.
 */
import crypto from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bodyDigest, legacyMessageId, messageId } from '../src/shared/message-id.js';

/** The document's layout over hash `h`: 48 bits of ts, version 8, variant 10, h[3..9]. */
function layout(ts: number, h: Buffer): string {
  const b = Buffer.alloc(16);
  b.writeUIntBE(ts, 0, 6);
  b[6] = 0x80 | (h[0]! & 0x0f);
  b[7] = h[1]!;
  b[8] = 0x80 | (h[2]! & 0x3f);
  h.copy(b, 9, 3, 10);
  const x = b.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}
const sha = (s: string) => crypto.createHash('sha256').update(s, 'utf8').digest();

describe('item ids', () => {
  it('are the documented UUIDv8 layout of the documented hash, for any ts and content', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 48 - 1 }),
        fc.integer({ min: 0, max: 65535 }),
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
        fc.uuid(),
        (ts, lc, text, channelId) => {
          const digest = sha(JSON.stringify(['hchat/body/1', text, null, null, null, null]));
          expect(bodyDigest({ text })).toBe(digest.toString('base64url'));
          const m = { channelId, author: 'Alice', ts, lc, text };
          const h = sha(
            JSON.stringify([
              'hchat/item-id/2',
              channelId,
              'alice',
              ts,
              lc,
              'message',
              null,
              digest.toString('base64url'),
            ]),
          );
          expect(messageId(m)).toBe(layout(ts, h));
          const h1 = sha(JSON.stringify(['hchat/message-id/1', channelId, 'alice', ts, lc, text]));
          expect(legacyMessageId(m)).toBe(layout(ts, h1));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('refuse a time that 48 bits cannot hold', () => {
    const m = { channelId: crypto.randomUUID(), author: 'a', lc: 0, text: 'x' };
    for (const ts of [-1, 2 ** 48, 1.5, Number.NaN])
      expect(() => messageId({ ...m, ts })).toThrow(RangeError);
  });
});
