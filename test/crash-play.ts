/**
 * The random crash schedules (SPEC §5), shared by the single-server file
 * (crash-schedules.test.ts) and the several-instance one (cluster-schedules.test.ts): what a
 * schedule is made of, how one is played on a swarm, and the checks after healing. Every post
 * and change a peer accepted (answered 200/201) ends on every replica exactly once, nothing
 * appears that nobody wrote, all replicas show the same order and the same state of every
 * message (issue 13), and a deleted text is gone from the server's backup.
 */
import { expect } from 'vitest';
import fc from 'fast-check';
import { waitFor } from './testnet.js';
import type { Swarm } from './swarm.js';

export const NAMES = ['alice', 'bob', 'carol'] as const;
export type Name = (typeof NAMES)[number];

export type Action =
  | { kind: 'post'; who: Name; count: number }
  | { kind: 'dm'; who: Name; count: number }
  | { kind: 'change'; who: Name; what: 'edit' | 'delete' | 'react' | 'unreact'; pick: number }
  | { kind: 'status'; who: Name; status: 'online' | 'invisible' | 'offline' }
  | { kind: 'kill'; who: Name; afterMs: number }
  | { kind: 'killServer'; afterMs: number }
  /** SIGKILL (kill) or SIGTERM (drain) of one instance while `who` has posts in flight. */
  | { kind: 'killInstance' | 'drainInstance'; which: number; who: Name; afterMs: number };

/** What a schedule may do: DMs or not, one server or `instances` of it. */
export interface ScheduleKind {
  dms: boolean;
  instances: number;
}

const who = fc.constantFrom(...NAMES);
const post = fc.record({
  kind: fc.constant('post' as const),
  who,
  count: fc.integer({ min: 1, max: 5 }),
});
const dm = fc.record({
  kind: fc.constant('dm' as const),
  who,
  count: fc.integer({ min: 1, max: 4 }),
});
const change = fc.record({
  kind: fc.constant('change' as const),
  who,
  what: fc.constantFrom('edit' as const, 'delete' as const, 'react' as const, 'unreact' as const),
  pick: fc.nat(1000),
});
const status = fc.record({
  kind: fc.constant('status' as const),
  who,
  status: fc.constantFrom('online' as const, 'invisible' as const, 'offline' as const),
});
const kill = fc.record({
  kind: fc.constant('kill' as const),
  who,
  afterMs: fc.integer({ min: 0, max: 40 }),
});
const killServer = fc.record({
  kind: fc.constant('killServer' as const),
  afterMs: fc.integer({ min: 0, max: 40 }),
});
const stopInstance = (kind: 'killInstance' | 'drainInstance', instances: number) =>
  fc.record({
    kind: fc.constant(kind),
    which: fc.integer({ min: 0, max: instances - 1 }),
    who,
    afterMs: fc.integer({ min: 0, max: 40 }),
  });

/** One action of a schedule (the single-server mix is unchanged, so its seeds still replay). */
export function scheduleAction(k: ScheduleKind): fc.Arbitrary<Action> {
  if (k.instances === 1)
    return fc.oneof(
      { weight: 4, arbitrary: post },
      ...(k.dms ? [{ weight: 3, arbitrary: dm }] : []),
      { weight: 3, arbitrary: change },
      { weight: 2, arbitrary: status },
      { weight: 2, arbitrary: kill },
      { weight: 1, arbitrary: killServer },
    );
  return fc.oneof(
    { weight: 4, arbitrary: post },
    ...(k.dms ? [{ weight: 3, arbitrary: dm }] : []),
    { weight: 3, arbitrary: change },
    { weight: 2, arbitrary: status },
    { weight: 2, arbitrary: kill },
    { weight: 2, arbitrary: stopInstance('killInstance', k.instances) },
    { weight: 2, arbitrary: stopInstance('drainInstance', k.instances) },
  );
}

/** Ids of the messages a peer accepted, by text (changes name them). */
const idOf = new Map<string, { id: string; author: Name }>();

/** Fires posts; resolves with the texts a peer accepted (201) and all it was asked to write. */
function fire(s: Swarm, name: Name, ch: string, texts: string[]) {
  return Promise.all(
    texts.map((text) =>
      s
        .call(name, 'POST', `/api/channels/${ch}/messages`, { text })
        .then((r) => {
          if (r.status !== 201) return undefined;
          idOf.set(text, { id: r.body.id, author: name });
          return text;
        })
        .catch(() => undefined),
    ),
  );
}

/** Fires DMs in a conversation; resolves with the texts a peer accepted (201). */
function fireDm(s: Swarm, name: Name, dm: string, texts: string[]) {
  return Promise.all(
    texts.map((text) =>
      s
        .call(name, 'POST', `/api/dms/${dm}/messages`, { text })
        .then((r) => (r.status === 201 ? text : undefined))
        .catch(() => undefined),
    ),
  );
}

/** The DM texts a peer shows, and whether its own are all delivered. */
async function dmView(s: Swarm, name: Name, dm: string) {
  const r = await s.call(name, 'GET', `/api/dms/${dm}/messages?limit=500`);
  if (r.status !== 200) throw new Error(`${name}: ${JSON.stringify(r.body)}`);
  const ms = (r.body.messages as any[]).filter((m) => m.kind === 'message');
  return {
    texts: ms.map((m) => m.text as string),
    delivered: ms.every((m) => m.state === 'delivered'),
  };
}

/** What every replica must agree on about a channel's messages (issue 13). */
async function states(s: Swarm, name: Name, ch: string): Promise<string> {
  const r = await s.call(name, 'GET', `/api/channels/${ch}/messages?limit=500`);
  return JSON.stringify(
    (r.body.messages as any[]).map((m) => [
      m.id,
      m.text,
      m.deleted === true,
      (m.reactions as any[]).map((x) => `${x.emoji}:${x.users.join('+')}`),
    ]),
  );
}

/** A group DM of the three, known to every member (its first message makes it so). */
async function groupDm(s: Swarm): Promise<string> {
  const dm = (
    await waitFor(async () => {
      const r = await s.call('alice', 'POST', '/api/dms', { members: ['bob', 'carol'] });
      return r.status === 201 ? r : undefined;
    }, 15_000)
  ).body.id as string;
  await s.call('alice', 'POST', `/api/dms/${dm}/messages`, { text: 'alice-dm-start' });
  for (const n of NAMES)
    await waitFor(async () => (await dmView(s, n, dm)).texts.includes('alice-dm-start'), 15_000);
  return dm;
}

/** Plays one schedule on a swarm (alice hosts channel `ch`), heals, and checks every replica. */
export async function playSchedule(
  s: Swarm,
  ch: string,
  schedule: readonly Action[],
  k: ScheduleKind,
): Promise<void> {
  const dm = k.dms ? await groupDm(s) : undefined;
  const dmAccepted = new Set<string>(dm ? ['alice-dm-start'] : []);
  const dmAttempted = new Set<string>(dmAccepted);
  idOf.clear();
  /** Ids of accepted changes, and the messages deleted by one. */
  const changes = new Set<string>();
  const deleted = new Set<string>();
  const accepted = new Set<string>();
  const attempted = new Set<string>();
  const dead = new Set<Name>();
  const deadServers = new Set<number>();
  let serial = 0;
  const revive = async (n: Name) => {
    if (!dead.has(n)) return;
    await s.restart(n);
    dead.delete(n);
  };
  const reviveServer = async (i: number) => {
    if (!deadServers.has(i)) return;
    await s.restartServer(i);
    deadServers.delete(i);
  };
  for (const a of schedule) {
    if (a.kind === 'post') {
      await revive(a.who);
      const texts = Array.from({ length: a.count }, () => `${a.who}-${serial++}`);
      texts.forEach((t) => attempted.add(t));
      for (const t of await fire(s, a.who, ch, texts)) if (t) accepted.add(t);
    } else if (a.kind === 'dm') {
      if (!dm) continue;
      await revive(a.who);
      const texts = Array.from({ length: a.count }, () => `${a.who}-dm-${serial++}`);
      texts.forEach((t) => dmAttempted.add(t));
      for (const t of await fireDm(s, a.who, dm, texts)) if (t) dmAccepted.add(t);
    } else if (a.kind === 'change') {
      await revive(a.who);
      // alice owns the channel: she may delete anyone's message; the others edit and delete
      // their own, and react to any.
      const mine = (m: { author: Name }) =>
        a.what === 'react' ||
        a.what === 'unreact' ||
        m.author === a.who ||
        (a.what === 'delete' && a.who === 'alice');
      const choices = [...accepted].map((t) => idOf.get(t)!).filter(mine);
      if (choices.length === 0) continue;
      const target = choices[a.pick % choices.length]!;
      const base = `/api/channels/${ch}/messages/${target.id}`;
      const r = await (
        a.what === 'edit'
          ? s.call(a.who, 'PATCH', base, { text: `${a.who}-edit-${serial++}` })
          : a.what === 'delete'
            ? s.call(a.who, 'DELETE', base)
            : s.call(
                a.who,
                a.what === 'react' ? 'PUT' : 'DELETE',
                `${base}/reactions/${encodeURIComponent('👍')}`,
              )
      ).catch(() => undefined);
      if (r?.status === 200) {
        changes.add(r.body.id);
        if (a.what === 'delete') deleted.add(target.id);
      }
    } else if (a.kind === 'status') {
      await revive(a.who);
      expect((await s.call(a.who, 'PUT', '/api/status', { status: a.status })).status).toBe(200);
    } else if (a.kind === 'kill') {
      await revive(a.who);
      // Kill it while some of its posts (or, at odd delays, its DMs) are in flight.
      const dms = dm !== undefined && a.afterMs % 2 === 1;
      const texts = Array.from({ length: 3 }, () => `${a.who}-${dms ? 'dm-' : ''}${serial++}`);
      texts.forEach((t) => (dms ? dmAttempted : attempted).add(t));
      const inFlight = dms ? fireDm(s, a.who, dm, texts) : fire(s, a.who, ch, texts);
      await new Promise((r) => setTimeout(r, a.afterMs));
      await s.kill(a.who);
      dead.add(a.who);
      for (const t of await inFlight) if (t) (dms ? dmAccepted : accepted).add(t);
    } else {
      // The server (or one instance) goes while a member's post is in flight. Before an
      // instance goes, the others come back (its peers have somewhere to move), and so does
      // it if it was down: it is started again on its port, then stopped again.
      const poster = a.kind === 'killServer' ? 'bob' : a.who;
      const which = a.kind === 'killServer' ? 0 : a.which;
      if (a.kind !== 'killServer') for (const i of s.servers.keys()) await reviveServer(i);
      const texts = [`${poster}-${serial++}`];
      texts.forEach((t) => attempted.add(t));
      await revive(poster);
      const inFlight = fire(s, poster, ch, texts);
      await new Promise((r) => setTimeout(r, a.afterMs));
      if (!deadServers.has(which)) {
        await s.stopServer(which, a.kind === 'drainInstance' ? 'SIGTERM' : 'SIGKILL');
        deadServers.add(which);
      }
      for (const t of await inFlight) if (t) accepted.add(t);
    }
  }

  // Heal: every process up, everyone online; wait until all replicas agree.
  for (const i of s.servers.keys()) await reviveServer(i);
  for (const n of NAMES) await revive(n);
  for (const n of NAMES) await s.call(n, 'PUT', '/api/status', { status: 'online' });
  /** Ids of the messages a peer shows, in order, and whether every one is delivered. */
  const view = async (n: Name) => {
    const r = await s.call(n, 'GET', `/api/channels/${ch}/messages?limit=500`);
    const ms = r.body.messages as any[];
    return {
      ids: ms.map((m) => m.id as string),
      delivered: ms.every((m) => m.state === 'delivered'),
    };
  };
  let last = '';
  const settled = async () => {
    const onServer = await s.serverMessages(ch);
    const serverIds = JSON.stringify(onServer.map((m) => m.id));
    const views = await Promise.all(NAMES.map(view));
    const pending = await Promise.all(
      NAMES.map(async (n) => (await s.call(n, 'GET', '/api/me')).body.pending),
    );
    const items = new Set(await s.serverItemIds(ch));
    const shown = await Promise.all(NAMES.map((n) => states(s, n, ch)));
    const dmViews = dm ? await Promise.all(NAMES.map((n) => dmView(s, n, dm))) : [];
    const missing = [...accepted].filter((t) => !items.has(idOf.get(t)!.id));
    last = JSON.stringify({
      missing,
      changesMissing: [...changes].filter((id) => !items.has(id)),
      server: onServer.map((m) => m.text),
      views: views.map((v) => ({ n: v.ids.length, delivered: v.delivered })),
      pending,
      sameStates: shown.every((v) => v === shown[0]),
      dms: dm ? { accepted: [...dmAccepted], views: dmViews } : undefined,
    });
    return (
      dmViews.every(
        (v) =>
          v.delivered && [...dmAccepted].every((t) => v.texts.filter((x) => x === t).length === 1),
      ) &&
      [...changes].every((id) => items.has(id)) &&
      missing.length === 0 &&
      shown.every((v) => v === shown[0]) &&
      views.every((v) => JSON.stringify(v.ids) === serverIds && v.delivered) &&
      pending.every((p) => p === 0)
    );
  };
  await waitFor(
    settled,
    30_000,
    () => `replicas to converge on ${JSON.stringify(schedule)}; last: ${last}`,
  );
  const onServer = await s.serverMessages(ch);
  const ids = await s.serverItemIds(ch);
  expect(new Set(ids).size).toBe(ids.length); // nothing doubled
  for (const t of accepted) expect(ids).toContain(idOf.get(t)!.id); // nothing accepted lost
  for (const id of changes) expect(ids).toContain(id);
  for (const m of onServer) {
    if (deleted.has(m.id))
      expect(m.text).toBe(''); // erased from the backup
    else expect(attempted.has(m.text)).toBe(true); // nothing invented
  }
  for (const n of NAMES) expect((await view(n)).ids).toEqual(onServer.map((m) => m.id));
  const shown = await Promise.all(NAMES.map((n) => states(s, n, ch)));
  for (const v of shown) expect(v).toBe(shown[0]);
  if (s.servers.length > 1) await acrossInstances(s, ch);
  if (!dm) return;
  // DMs: every one accepted is on every peer once; none appears that nobody wrote.
  for (const n of NAMES) {
    const v = await dmView(s, n, dm);
    expect(new Set(v.texts).size).toBe(v.texts.length);
    for (const t of v.texts) expect(dmAttempted.has(t)).toBe(true);
    for (const t of dmAccepted) expect(v.texts).toContain(t);
  }
}

/**
 * With the host back, every replica converges through it whatever the instances did; so, last,
 * the instances alone must serve the channel: alice leaves, bob and carol start again (a peer
 * starts on the first address of its list: bob on instance 1, carol on 0) and each posts once
 * through its instance; both then read, from the server, exactly what was stored, their two
 * messages included.
 */
async function acrossInstances(s: Swarm, ch: string): Promise<void> {
  expect(s.home.bob).not.toBe(s.home.carol);
  expect((await s.call('alice', 'PUT', '/api/status', { status: 'offline' })).status).toBe(200);
  const members = ['bob', 'carol'] as const;
  for (const n of members) {
    await s.kill(n);
    await s.restart(n);
  }
  for (const n of members) {
    const r = await waitFor(async () => {
      const a = await s.call(n, 'POST', `/api/channels/${ch}/messages`, { text: `${n}-last` });
      return a.status === 201 ? a : undefined;
    }, 15_000);
    expect(r.body.id).toBeTruthy();
  }
  let last = '';
  await waitFor(
    async () => {
      // By id: a message edited in the schedule shows its new text, while the stored row keeps
      // the text it was posted with (the edit is an item of its own).
      const rows = await s.serverMessages(ch);
      const stored = rows.map((m) => m.text);
      const storedIds = JSON.stringify(rows.map((m) => m.id));
      const views = await Promise.all(members.map((n) => s.view(n, ch)));
      last = JSON.stringify({ stored, views });
      return (
        ['bob-last', 'carol-last'].every((t) => stored.includes(t)) &&
        views.every((v) => v.source === 'server' && JSON.stringify(v.ids) === storedIds)
      );
    },
    20_000,
    () => `bob and carol, on different instances, to read every stored message; last: ${last}`,
  );
}
