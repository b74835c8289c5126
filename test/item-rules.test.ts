/**
 * The fold of a channel's items into what a message shows (src/shared/item-rules.ts) is what
 * makes replicas converge: it must not depend on the order items arrive in, nor on duplicates,
 * and it must ignore changes by those the rules do not allow (property tests, fast-check).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  channelSettings,
  itemRefusal,
  messageState,
  type RuleItem,
} from '../src/shared/item-rules.js';

const CH = '019abcde-0000-7000-8000-0000000000c1';
const MSG: RuleItem = { id: 'm0', channelId: CH, author: 'Bob', ts: 1000, lc: 0, text: 'original' };
const OWNER = 'alice';

const author = fc.constantFrom('alice', 'bob', 'BOB', 'carol');
const item: fc.Arbitrary<RuleItem> = fc
  .record({
    kind: fc.constantFrom('edit' as const, 'delete' as const, 'react' as const, 'unreact' as const),
    author,
    ts: fc.integer({ min: 900, max: 1100 }),
    lc: fc.nat(3),
    n: fc.nat(1_000_000),
    emoji: fc.constantFrom('👍', '🎉'),
    target: fc.constantFrom('m0', 'm0', 'm0', 'other'),
  })
  .map(({ kind, author, ts, lc, n, emoji, target }) => ({
    id: `i${n}`,
    channelId: CH,
    author,
    ts,
    lc,
    kind,
    target,
    ...(kind === 'edit' ? { text: `t${n}` } : {}),
    ...(kind === 'react' || kind === 'unreact' ? { emoji } : {}),
  }));
/** Items with distinct ids (an id names one item). */
const items = fc.uniqueArray(item, { selector: (i) => i.id, maxLength: 25 });

describe('messageState', () => {
  it('is the same for every order and any duplicates of the same items', () => {
    fc.assert(
      fc.property(items, fc.nat(), (list, seed) => {
        const shuffled = [...list, ...list.slice(0, seed % (list.length + 1))]
          .map((x, i) => ({ x, k: (i * 7919 + seed) % 1009 }))
          .sort((a, b) => a.k - b.k)
          .map((e) => e.x);
        expect(messageState(MSG, shuffled, OWNER)).toEqual(messageState(MSG, list, OWNER));
      }),
      { numRuns: 500 },
    );
  });

  it("follows the rules: the author's newest edit, the author's or owner's delete, one vote per user and emoji", () => {
    fc.assert(
      fc.property(items, (list) => {
        const s = messageState(MSG, list, OWNER);
        const mine = list.filter((i) => i.target === 'm0');
        const byAuthor = (i: RuleItem) => i.author.toLowerCase() === 'bob';
        const deleted = mine.some(
          (i) => i.kind === 'delete' && (byAuthor(i) || i.author === OWNER),
        );
        expect(s.deleted).toBe(deleted);
        if (deleted) {
          expect(s).toEqual({ deleted: true, reactions: [] });
          return;
        }
        const edits = mine
          .filter((i) => i.kind === 'edit' && byAuthor(i))
          .sort((a, b) => a.ts - b.ts || a.lc - b.lc || (a.id < b.id ? -1 : 1));
        expect(s.text).toBe(edits.at(-1)?.text ?? 'original');
        for (const r of s.reactions) {
          for (const u of r.users) {
            const votes = mine
              .filter(
                (i) =>
                  (i.kind === 'react' || i.kind === 'unreact') &&
                  i.emoji === r.emoji &&
                  i.author === u,
              )
              .sort((a, b) => a.ts - b.ts || a.lc - b.lc || (a.id < b.id ? -1 : 1));
            expect(votes.at(-1)?.kind).toBe('react');
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('itemRefusal', () => {
  const target = MSG;
  const base = { id: 'x', channelId: CH, ts: 2000, lc: 0 };
  it('allows and refuses as PROTOCOL.md §2.2 says', () => {
    /** `t` null: the target is not held here. */
    const code = (i: RuleItem, t: RuleItem | null = target, strict = true) =>
      itemRefusal(i, OWNER, t ?? undefined, strict)?.code;
    expect(code({ ...base, author: 'bob', kind: 'edit', target: 'm0', text: 'x' })).toBeUndefined();
    expect(code({ ...base, author: 'carol', kind: 'edit', target: 'm0', text: 'x' })).toBe(
      'E_FORBIDDEN',
    );
    expect(code({ ...base, author: 'alice', kind: 'edit', target: 'm0', text: 'x' })).toBe(
      'E_FORBIDDEN',
    );
    expect(code({ ...base, author: 'alice', kind: 'delete', target: 'm0' })).toBeUndefined();
    expect(code({ ...base, author: 'carol', kind: 'delete', target: 'm0' })).toBe('E_FORBIDDEN');
    expect(
      code({ ...base, author: 'carol', kind: 'react', target: 'm0', emoji: '👍' }),
    ).toBeUndefined();
    expect(code({ ...base, author: 'carol', kind: 'channel', change: { name: 'x' } })).toBe(
      'E_FORBIDDEN',
    );
    expect(
      code({ ...base, author: 'ALICE', kind: 'channel', change: { name: 'x' } }),
    ).toBeUndefined();
    // Unknown target: the host and server refuse, a member keeps it for later.
    expect(code({ ...base, author: 'bob', kind: 'delete', target: 'zz' }, null)).toBe(
      'E_NOT_FOUND',
    );
    expect(
      code({ ...base, author: 'bob', kind: 'delete', target: 'zz' }, null, false),
    ).toBeUndefined();
    // A change of a change, or of another channel's message, is no change.
    const edit = { ...target, id: 'e1', kind: 'edit' as const, target: 'm0' };
    expect(code({ ...base, author: 'bob', kind: 'delete', target: 'e1' }, edit)).toBe(
      'E_NOT_FOUND',
    );
    expect(
      code(
        { ...base, author: 'bob', kind: 'delete', target: 'm0' },
        { ...target, channelId: 'other' },
      ),
    ).toBe('E_NOT_FOUND');
  });

  it("channel settings: the owner's newest per field; removals and deletion are kept", () => {
    const c = (n: number, author: string, change: object): RuleItem => ({
      id: `c${n}`,
      channelId: CH,
      author,
      ts: n,
      lc: 0,
      kind: 'channel',
      change,
    });
    const s = channelSettings(
      [
        c(3, 'alice', { name: 'new' }),
        c(1, 'alice', { name: 'old', topic: 't' }),
        c(5, 'bob', { name: 'bob' }),
        c(2, 'alice', { remove: 'Carol' }),
      ],
      OWNER,
    );
    expect(s).toEqual({
      name: 'new',
      topic: 't',
      allowVisitors: undefined,
      removed: ['carol'],
      deleted: false,
    });
  });
});
