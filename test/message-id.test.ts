/**
 * Item ids (docs/PROTOCOL.md §2.1 _Message ids_): src/shared/message-id.ts against the outsider
 * helpers written from the document alone (test/outsider/lib.ts), for any time and content.
 */
import crypto from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bodyDigest, legacyMessageId, messageId } from '../src/shared/message-id.js';
import * as doc from './outsider/lib.js';

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
          expect(bodyDigest({ text })).toBe(doc.bodyDigest(text));
          const m = { channelId, author: 'Alice', ts, lc, text };
          expect(messageId(m)).toBe(doc.messageId(channelId, 'Alice', ts, lc, text));
          // Protocol 3's id (§2.1 _Messages from protocol 3_): the same layout, another hash.
          const h1 = sha(JSON.stringify(['hchat/message-id/1', channelId, 'alice', ts, lc, text]));
          expect(legacyMessageId(m)).toBe(doc.idLayout(ts, h1));
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
