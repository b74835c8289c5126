/**
 * Random schedules in the style of Yjs's random tests: posts, status changes, peer restarts and
 * server restarts in any order; after healing, every replica holds the same messages in the same
 * order, none lost, none doubled. HCHAT_SCHEDULES sets how many schedules run (default 4).
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';

type Action =
  | { kind: 'post'; peer: number; count: number }
  | { kind: 'status'; peer: number; status: 'online' | 'invisible' | 'offline' }
  | { kind: 'restartPeer'; peer: number }
  | { kind: 'restartServer' };

const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('post' as const),
      peer: fc.nat(2),
      count: fc.integer({ min: 1, max: 4 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('status' as const),
      peer: fc.nat(2),
      status: fc.constantFrom('online' as const, 'invisible' as const, 'offline' as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('restartPeer' as const), peer: fc.nat(2) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restartServer' as const) }) },
);

const RUNS = Number(process.env.HCHAT_SCHEDULES ?? 4);

describe('random schedules', () => {
  it('converge: every replica ends with every accepted message once, in the same order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 4, maxLength: 14 }), async (schedule) => {
        const net = await createTestnet({ peers: 3 });
        const names = ['alice', 'bob', 'carol'];
        for (let i = 0; i < 3; i++) await signIn(net.peers[i]!, names[i]!);
        const ch = (
          await net.peers[0]!.call('POST', '/api/channels', {
            name: 'general',
            allowVisitors: false,
          })
        ).body;
        await net.peers[1]!.call('POST', `/api/channels/${ch.id}/join`);
        await net.peers[2]!.call('POST', `/api/channels/${ch.id}/join`);

        const accepted: string[] = [];
        let serial = 0;
        for (const a of schedule) {
          const p = net.peers['peer' in a ? a.peer : 0]! as TestPeer;
          if (a.kind === 'post') {
            const posts = Array.from({ length: a.count }, () =>
              p.call('POST', `/api/channels/${ch.id}/messages`, { text: `m${serial++}` }),
            );
            for (const r of await Promise.all(posts)) {
              expect(r.status).toBe(201);
              accepted.push(r.body.id);
            }
          } else if (a.kind === 'status') {
            expect((await p.call('PUT', '/api/status', { status: a.status })).status).toBe(200);
          } else if (a.kind === 'restartPeer') {
            await net.restartPeer(p);
          } else {
            await net.restartServer();
          }
        }

        // Heal: everyone online; wait until every outbox is empty and every copy caught up.
        for (const p of net.peers) await p.call('PUT', '/api/status', { status: 'online' });
        const onServer = () => net.server.store.history(ch.id, 500).messages.map((m) => m.id);
        await waitFor(
          () => onServer().length >= accepted.length,
          15_000,
          'server has every message',
        );
        const serverOrder = onServer();
        expect([...serverOrder].sort()).toEqual([...accepted].sort());
        for (const p of net.peers) {
          // Settled: holds as many as the server, and every acknowledgement has arrived.
          await waitFor(
            () => {
              const local = p.node.store.page(ch.id, 500).messages;
              return (
                local.length === serverOrder.length && local.every((m) => m.state === 'delivered')
              );
            },
            15_000,
            () =>
              `${path.basename(p.dataDir)} to catch up with ${serverOrder.length} on the server and have every acknowledgement (holds ${JSON.stringify(p.node.store.page(ch.id, 500).messages.map((m) => [m.text, m.state, m.seq, m.hostSeq]))}; schedule ${JSON.stringify(schedule)})`,
          );
          const local = p.node.store.page(ch.id, 500).messages;
          expect(local.map((m) => m.id)).toEqual(serverOrder);
          expect(local.every((m) => m.state === 'delivered')).toBe(true);
        }
        for (const p of net.peers) await p.close();
      }),
      // Each schedule costs seconds: report the first failing one as it is, without shrinking.
      { numRuns: RUNS, endOnFailure: true },
    );
  }, 120_000);
});
