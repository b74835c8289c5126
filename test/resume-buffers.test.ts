/**
 * The REST gateway's resume buffers and their budget (src/server/api/resume-buffers.ts; REST.md
 * "Resume"), as pure logic: an event kept by several sessions of an account counts once; the
 * bounds hold after every event; only detached sessions are dropped, and a live session loses
 * events to a bound only once its account (for the account's bound) or the instance (for the
 * instance's) has no detached session left; numbering goes on whatever is dropped.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  eventText,
  ResumeBudget,
  sharedEvent,
  type ResumeBuffer,
} from '../src/server/api/resume-buffers.js';

const limits = { bufferEvents: 20, accountBytes: 3000, instanceBytes: 7000 };

describe('resume buffers', () => {
  it('an event several sessions of an account keep is counted once, and the frame is the documented one', () => {
    const budget = new ResumeBudget({ ...limits, accountBytes: 1e9, instanceBytes: 1e9 });
    const a = [0, 1, 2, 3].map(() => budget.open('Alice', () => undefined));
    const e = sharedEvent('message', { channelId: 'c', message: { text: 'x'.repeat(500) } });
    for (const b of a) budget.push(b, e);
    const shared = budget.sizeOf('alice');
    const bob = [0, 1, 2, 3].map(() => budget.open('bob', () => undefined));
    for (const b of bob) budget.push(b, sharedEvent('message', { text: 'x'.repeat(500) }));
    expect(shared).toBeLessThan(e.bytes + 100);
    expect(budget.sizeOf('bob')).toBeGreaterThan(4 * 500);
    expect(JSON.parse(eventText(7, e))).toEqual({
      t: 'event',
      seq: 7,
      type: 'message',
      data: { channelId: 'c', message: { text: 'x'.repeat(500) } },
    });
    expect([...a[2]!.after(0)]).toEqual([eventText(1, e)]);
    for (const b of [...a, ...bob]) budget.release(b);
    expect(budget.size).toBe(0);
  });

  it('past the instance’s bound, any account’s oldest detached session goes before a live one loses an event', () => {
    const budget = new ResumeBudget({ ...limits, accountBytes: 1e9 });
    const dropped: string[] = [];
    const idle = budget.open('idle', () => dropped.push('idle'));
    const later = budget.open('later', () => dropped.push('later'));
    const live = budget.open('busy', () => dropped.push('busy'));
    budget.push(idle, sharedEvent('message', { text: 'x'.repeat(2000) }));
    budget.push(later, sharedEvent('message', { text: 'x'.repeat(2000) }));
    budget.detach(idle);
    budget.detach(later);
    let sent = 0;
    const send = () =>
      budget.push(live, sharedEvent('message', { text: String(++sent) + 'x'.repeat(700) }));
    while (dropped.length < 2 && sent < 100) {
      send();
      expect(live.events).toHaveLength(sent);
      expect(budget.size).toBeLessThanOrEqual(limits.instanceBytes);
    }
    expect(dropped).toEqual(['idle', 'later']);
    const before = sent;
    for (let i = 0; i < 20; i++) send();
    expect(live.seq).toBe(before + 20);
    expect(live.events.length).toBeLessThan(before + 20);
    expect(budget.size).toBeLessThanOrEqual(limits.instanceBytes);
    expect(dropped).toEqual(['idle', 'later']);
  });

  it('bounds hold, detached sessions go first, numbering goes on (random schedules)', () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('open' as const), account: fc.nat(2) }),
      fc.record({
        k: fc.constant('push' as const),
        account: fc.nat(2),
        size: fc.integer({ min: 1, max: 600 }),
      }),
      fc.record({ k: fc.constant('detach' as const), i: fc.nat() }),
      fc.record({ k: fc.constant('attach' as const), i: fc.nat() }),
      fc.record({ k: fc.constant('release' as const), i: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200, size: 'max' }), (ops) => {
        const budget = new ResumeBudget(limits);
        type S = { account: string; b: ResumeBuffer; detached: boolean; gone: boolean };
        const all: S[] = [];
        const alive = () => all.filter((s) => !s.gone);
        for (const o of ops) {
          if (o.k === 'open') {
            const s: S = { account: `u${o.account}`, detached: false, gone: false } as S;
            s.b = budget.open(s.account, () => {
              // Only a detached session is ever dropped.
              expect(s.detached).toBe(true);
              s.gone = true;
            });
            all.push(s);
          } else if (o.k === 'push') {
            // One event to every session of the account, as a channel's push is.
            const e = sharedEvent('message', { text: 'x'.repeat(o.size) });
            const to = alive().filter((s) => s.account === `u${o.account}`);
            for (const s of to) {
              const seqBefore = s.b.seq;
              const kept = new Map(alive().map((x) => [x, x.b.events.length]));
              const seq = budget.push(s.b, e);
              expect(seq).toBe(seqBefore + 1);
              for (const [x, n] of kept) {
                if (x.gone || x.detached) continue;
                const could = Math.min(n + (x === s ? 1 : 0), limits.bufferEvents);
                if (x.b.events.length >= could) continue;
                // A live session lost events to a bound: no detached session was left to drop,
                // of its account (its bound), or of any (the instance's, reached by another's).
                const others = x.account === s.account ? [x.account] : null;
                for (const [d] of kept)
                  if (d.detached && (others === null || others.includes(d.account)))
                    expect(d.gone).toBe(true);
              }
              if (s.gone) continue;
              expect(s.b.seq).toBe(seq);
              expect(s.b.events.length).toBeLessThanOrEqual(limits.bufferEvents);
            }
            expect(budget.size).toBeLessThanOrEqual(limits.instanceBytes);
            for (const a of [0, 1, 2])
              expect(budget.sizeOf(`u${a}`)).toBeLessThanOrEqual(limits.accountBytes);
          } else {
            const live = alive();
            const s = live[o.i % Math.max(1, live.length)];
            if (!s) continue;
            if (o.k === 'detach') {
              budget.detach(s.b);
              s.detached = true;
            } else if (o.k === 'attach') {
              budget.attach(s.b);
              s.detached = false;
            } else {
              budget.release(s.b);
              s.gone = true;
            }
          }
        }
        for (const s of alive()) {
          expect(s.b.covers(s.b.seq)).toBe(true);
          expect(s.b.covers(s.b.first - 2)).toBe(false);
          expect([...s.b.after(s.b.first - 1)]).toHaveLength(s.b.events.length);
          budget.release(s.b);
        }
        expect(budget.size).toBe(0);
      }),
      { numRuns: 100 },
    );
  });
});
