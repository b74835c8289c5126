/**
 * Random schedules of rich changes (issue 13, "How it is checked"), in the style of
 * test/schedules.test.ts: posts, edits, deletes (by the author, or by the channel's owner as
 * moderator), reactions on and off, status changes, peer and server restarts, in any order, and
 * at the end maybe a member removal or the channel's deletion. After healing, every replica
 * shows the same state of every message, and that state is what the accepted items say (an
 * independent fold of them, below): no item lost or doubled, a deleted text gone from every
 * store. HCHAT_RICH_SCHEDULES sets how many schedules run (default 8); HCHAT_RICH_SEED and
 * HCHAT_RICH_PATH replay one (fast-check prints both).
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { scheduleRuns } from './schedule-runs.js';
import { createTestnet, signIn, waitFor, type TestPeer, type Testnet } from './testnet.js';

const NAMES = ['alice', 'bob', 'carol'] as const;
const EMOJI = ['👍', '🎉'] as const;

type Action =
  | { kind: 'post'; peer: number; count: number; reply: boolean }
  | { kind: 'edit'; peer: number; pick: number }
  | { kind: 'delete'; peer: number; pick: number }
  | { kind: 'react'; peer: number; pick: number; emoji: number; on: boolean }
  | { kind: 'status'; peer: number; status: 'online' | 'invisible' | 'offline' }
  | { kind: 'restartPeer'; peer: number }
  | { kind: 'restartServer' };
type End = 'none' | 'removeCarol' | 'deleteChannel';

const peer = fc.nat(2);
const pick = fc.nat(1000);
const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('post' as const),
      peer,
      count: fc.integer({ min: 1, max: 3 }),
      reply: fc.boolean(),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('edit' as const), peer, pick }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), peer, pick }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('react' as const),
      peer,
      pick,
      emoji: fc.nat(1),
      on: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('status' as const),
      peer,
      status: fc.constantFrom('online' as const, 'invisible' as const, 'offline' as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restartPeer' as const), peer }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restartServer' as const) }) },
);
const end: fc.Arbitrary<End> = fc.constantFrom('none', 'none', 'removeCarol', 'deleteChannel');

const runs = scheduleRuns({
  countVar: 'HCHAT_RICH_SCHEDULES',
  seedVar: 'HCHAT_RICH_SEED',
  pathVar: 'HCHAT_RICH_PATH',
  defaultRuns: 8,
  perRunMs: 20_000,
  minTimeoutMs: 120_000,
});

/** An item a peer accepted (its local API answered 200/201), as the test remembers it. */
interface Accepted {
  id: string;
  kind: 'message' | 'edit' | 'delete' | 'react' | 'unreact';
  author: string;
  target?: string;
  text?: string;
  emoji?: string;
}

async function runSchedule(schedule: readonly Action[], last: End): Promise<void> {
  const net = await createTestnet({ peers: 3 });
  try {
    await play(net, schedule, last);
  } finally {
    for (const p of net.peers) await p.close();
    await net.server.close();
    fs.rmSync(net.dir, { recursive: true, force: true });
  }
}

async function play(net: Testnet, schedule: readonly Action[], last: End): Promise<void> {
  for (let i = 0; i < 3; i++) await signIn(net.peers[i]!, NAMES[i]!);
  const ch = (
    await net.peers[0]!.call('POST', '/api/channels', { name: 'general', allowVisitors: false })
  ).body.id as string;
  for (const i of [1, 2]) await net.peers[i]!.call('POST', `/api/channels/${ch}/join`);

  const accepted: Accepted[] = [];
  let serial = 0;
  const messages = () => accepted.filter((a) => a.kind === 'message');
  /** The n-th (mod) message this peer holds, among those `ok` allows. */
  const choose = (p: TestPeer, n: number, ok: (m: Accepted) => boolean) => {
    const held = messages().filter((m) => ok(m) && p.node.store.getMessage(m.id) !== undefined);
    return held.length === 0 ? undefined : held[n % held.length]!;
  };
  const took = (r: { status: number; body: any }, a: Omit<Accepted, 'id'>) => {
    if (r.status === 200 || r.status === 201) accepted.push({ ...a, id: r.body.id });
    else expect.fail(`${a.kind} refused: ${JSON.stringify(r.body)}`);
  };
  for (const a of schedule) {
    const p = net.peers['peer' in a ? a.peer : 0]!;
    const me = NAMES['peer' in a ? a.peer : 0]!;
    if (a.kind === 'post') {
      const replyTo = a.reply ? choose(p, serial, () => true)?.id : undefined;
      const rs = await Promise.all(
        Array.from({ length: a.count }, () => {
          const text = `m${serial++}`;
          return p
            .call('POST', `/api/channels/${ch}/messages`, { text, replyTo })
            .then((r) => ({ r, text }));
        }),
      );
      for (const { r, text } of rs) took(r, { kind: 'message', author: me, text });
    } else if (a.kind === 'edit') {
      const m = choose(p, a.pick, (x) => x.author === me);
      if (!m) continue;
      const text = `e${serial++}`;
      took(await p.call('PATCH', `/api/channels/${ch}/messages/${m.id}`, { text }), {
        kind: 'edit',
        author: me,
        target: m.id,
        text,
      });
    } else if (a.kind === 'delete') {
      // The owner (alice) deletes anyone's message; the others their own.
      const m = choose(p, a.pick, (x) => me === 'alice' || x.author === me);
      if (!m) continue;
      took(await p.call('DELETE', `/api/channels/${ch}/messages/${m.id}`), {
        kind: 'delete',
        author: me,
        target: m.id,
      });
    } else if (a.kind === 'react') {
      const m = choose(p, a.pick, () => true);
      if (!m) continue;
      const emoji = EMOJI[a.emoji]!;
      const path = `/api/channels/${ch}/messages/${m.id}/reactions/${encodeURIComponent(emoji)}`;
      took(await p.call(a.on ? 'PUT' : 'DELETE', path), {
        kind: a.on ? 'react' : 'unreact',
        author: me,
        target: m.id,
        emoji,
      });
    } else if (a.kind === 'status') {
      expect((await p.call('PUT', '/api/status', { status: a.status })).status).toBe(200);
    } else if (a.kind === 'restartPeer') {
      await net.restartPeer(p);
    } else {
      await net.restartServer();
    }
  }

  // Heal: everyone online; every outbox empties and every copy catches up.
  for (const p of net.peers) await p.call('PUT', '/api/status', { status: 'online' });
  const serverIds = async () =>
    new Set((await net.server.store.since(ch, 0, 100_000)).map((m) => m.id));
  let onServer = new Set<string>();
  const everyIdOnServer = async () => {
    onServer = await serverIds();
    return accepted.every((a) => onServer.has(a.id));
  };
  await waitFor(
    everyIdOnServer,
    20_000,
    () =>
      `the server to hold every accepted item (${JSON.stringify(schedule)}); missing ${JSON.stringify(
        accepted
          .filter((a) => !onServer.has(a.id))
          .map((a) => ({
            ...a,
            at: net.peers.map((p) => {
              const m = p.node.store.getMessage(a.id);
              return m && [m.state, m.error, m.seq, m.hostSeq];
            }),
          })),
      )}`,
  );
  const pendingNone = async () => {
    for (const p of net.peers)
      if ((await p.call('GET', '/api/me')).body.pending !== 0) return false;
    return true;
  };
  await waitFor(pendingNone, 20_000, 'every outbox empty');

  // The final, optional moderation: carol removed, or the channel deleted.
  let readers: TestPeer[] = [...net.peers];
  if (last === 'removeCarol') {
    expect((await net.peers[0]!.call('DELETE', `/api/channels/${ch}/members/carol`)).status).toBe(
      200,
    );
    readers = net.peers.slice(0, 2);
    await waitFor(
      async () => await net.server.store.isRemoved(ch, 'carol'),
      10_000,
      'the server removes carol',
    );
  } else if (last === 'deleteChannel') {
    expect((await net.peers[0]!.call('DELETE', `/api/channels/${ch}`)).status).toBe(200);
    for (const p of net.peers)
      await waitFor(
        async () =>
          !((await p.call('GET', '/api/channels')).body as any[]).some((c) => c.id === ch),
        10_000,
        'every peer drops the deleted channel',
      );
    await waitFor(
      async () => (await net.server.store.getChannel(ch)) === undefined,
      10_000,
      'the server drops it',
    );
    expect(await net.server.store.since(ch, 0, 10)).toEqual([]);
    for (const p of net.peers)
      await waitFor(() => p.node.store.page(ch, 10).messages.length === 0, 10_000, 'the copies go');
    return;
  }

  // The expected state: an independent fold of the accepted items, in HLC order from the
  // server's copy (every accepted item is authorized, so no rule needs re-checking here).
  const items = new Map((await net.server.store.since(ch, 0, 100_000)).map((m) => [m.id, m]));
  const hlc = (id: string) => {
    const i = items.get(id)!;
    return [i.ts, i.lc, i.id] as const;
  };
  const before = (x: string, y: string) => {
    const [a, b] = [hlc(x), hlc(y)];
    return a[0] !== b[0] ? a[0] < b[0] : a[1] !== b[1] ? a[1] < b[1] : a[2] < b[2];
  };
  const expected = new Map<string, { text: string; deleted: boolean; reactions: string[] }>();
  for (const m of messages()) {
    const about = accepted.filter((a) => a.target === m.id);
    const deleted = about.some((a) => a.kind === 'delete');
    let text = m.text!;
    let newest: Accepted | undefined;
    for (const e of about.filter((a) => a.kind === 'edit'))
      if (!newest || before(newest.id, e.id)) newest = e;
    if (newest) text = newest.text!;
    const votes = new Map<string, Accepted>();
    for (const r of about.filter((a) => a.kind === 'react' || a.kind === 'unreact')) {
      const k = `${r.author} ${r.emoji}`;
      const v = votes.get(k);
      if (!v || before(v.id, r.id)) votes.set(k, r);
    }
    const reactions = [...votes.values()]
      .filter((v) => v.kind === 'react')
      .map((v) => `${v.emoji}${v.author}`)
      .sort();
    expected.set(
      m.id,
      deleted ? { text: '', deleted, reactions: [] } : { text, deleted, reactions },
    );
  }
  const view = async (p: TestPeer) => {
    const page = (await p.call('GET', `/api/channels/${ch}/messages?limit=500`)).body
      .messages as any[];
    return new Map(
      page.map((m) => [
        m.id,
        {
          text: m.text,
          deleted: m.deleted === true,
          reactions: (m.reactions as any[])
            .flatMap((r) => r.users.map((u: string) => `${r.emoji}${u}`))
            .sort(),
        },
      ]),
    );
  };
  const want = JSON.stringify([...expected.entries()].sort());
  for (const p of readers) {
    await waitFor(
      async () => JSON.stringify([...(await view(p)).entries()].sort()) === want,
      20_000,
      () => `${p.dataDir} to show ${want} (schedule ${JSON.stringify(schedule)}, ${last})`,
    );
  }
  // Nothing doubled: each accepted item once on the server; a deleted text gone from every store.
  const all = await net.server.store.since(ch, 0, 10_000);
  expect(new Set(all.map((i) => i.id)).size).toBe(all.length);
  expect(all.length).toBe(accepted.length + (last === 'removeCarol' ? 1 : 0));
  for (const [id, e] of expected) {
    if (!e.deleted) continue;
    expect((await net.server.store.getItem(id))!.text).toBeUndefined();
    for (const p of readers) expect(p.node.store.getMessage(id)?.text).toBeUndefined();
  }
  if (last === 'removeCarol') {
    const carol = net.peers[2]!;
    await waitFor(
      async () =>
        !((await carol.call('GET', '/api/channels')).body as any[]).some((c) => c.id === ch),
      10_000,
      'carol no longer lists it',
    );
  }
}

describe('random schedules of rich changes', () => {
  it(
    'converge: every replica shows what the accepted edits, deletes and reactions say',
    async () => {
      try {
        await fc.assert(
          fc.asyncProperty(
            fc.array(action, { minLength: 6, maxLength: 16 }),
            end,
            runs.counted(runSchedule),
          ),
          runs.options,
        );
      } finally {
        runs.report();
      }
    },
    runs.timeoutMs,
  );
});
