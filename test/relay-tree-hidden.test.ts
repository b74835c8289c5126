/** Hidden viewers in the relay tree (invisible users): never a relay, never named to others. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ROOT, RelayTree } from '../src/stream/relay-tree.js';

describe('relay tree: hidden viewers', () => {
  it('are fed by the root and never relay, whatever happens', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.tuple(fc.constantFrom('add', 'hide', 'remove', 'stall', 'move'), fc.nat(30)), {
          maxLength: 80,
        }),
        (k, ops) => {
          const t = new RelayTree(k);
          const hidden = new Set<string>();
          for (const [op, n] of ops) {
            const id = `v${n}`;
            if (op === 'add' && !t.has(id)) t.add(id);
            else if (op === 'hide' && !t.has(id)) {
              t.addHidden(id);
              hidden.add(id);
            } else if (op === 'remove') {
              t.remove(id);
              hidden.delete(id);
            } else if (op === 'stall' && t.has(id)) t.stalled(id);
            else if (op === 'move' && t.has(id)) t.move(id);
          }
          // A hidden viewer is never anyone's parent, so never named in stream_children/parent.
          for (const v of t.placements()) expect(hidden.has(v.parent)).toBe(false);
          for (const h of hidden) {
            expect(t.parentOf(h)).toBe(ROOT);
            expect(t.childrenOf(h)).toEqual([]);
          }
        },
      ),
    );
  });
});
