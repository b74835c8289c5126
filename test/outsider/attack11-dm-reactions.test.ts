/**
 * Attack 11: replies and reactions in direct messages (PROTOCOL.md §10.4, README "Local API" and
 * "Direct messages", SECURITY.md "Exactly once, whatever arrives"), written from the documents
 * only. Real processes on 127.0.0.1: one server; alice on two peers (A1, A2), bob on one (B);
 * mallory and trent are raw clients with devices of their own (dm-lib.ts: real X3DH and Double
 * Ratchet) that seal any payload they like. What the documents promise:
 *
 * - §10.4: `replyTo: {id, author}` names "the message of this conversation this one answers";
 *   `react`/`unreact` carry `target` and `targetAuthor` ("a message of the conversation (any
 *   member's)") and `emoji` ("as a channel's (§2.2)": 1–32 printable characters without spaces).
 * - §10.4: "a receiver refuses (`dm_refused`) one whose author is not a member of the
 *   conversation …, or that names a message it holds of another conversation, or something other
 *   than a message. One whose message has not arrived yet is kept and counts once (and only if)
 *   that author's message with that id arrives. Per member and emoji the newest of their `react`
 *   and `unreact` (by `ts`, then `id` as above) says whether they react; a message shows, per
 *   emoji in order of its earliest standing reaction, the members reacting. A deleted message
 *   shows no reactions. Changes and reactions count neither as unread nor as new activity."
 *   ("as above": the greater id wins, ids being lower-case UUIDs; "Usernames compare without case".)
 * - README: the reply "shows `replyTo: {id, author, text}` of the original as it reads now,
 *   `deleted: true` once it is deleted, no `text` while your device does not hold it"; `POST …
 *   {text, replyTo?}`: "`replyTo` must be a message of the conversation held here, not deleted
 *   (`404 E_NOT_FOUND`)"; `PUT …/reactions/:emoji`: "emoji URL-encoded (1–32 characters, no
 *   spaces)", "`404 E_NOT_FOUND` no such message here, or deleted; `403 E_FORBIDDEN` in a 1:1
 *   with a user you block".
 * - SECURITY.md: "a member cannot make a device show, next to their conversation, a quote of a
 *   conversation they are not in"; blocking "drops whatever they send to any of your devices".
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { killAll, logLines, newKey, serverHello, startPeer, startServer } from './lib.js';
import { devicesOf, newDevice, pairId, publishBody, type Session } from './dm-lib.js';
import {
  everythingShown,
  eventsOf,
  shown,
  hostileMember,
  rowsHolding,
  seenBy,
  shownOne,
  waitFor,
  type Hostile,
  type Peer,
  type Target,
} from './attack10-lib.js';
import { p2pDoor, reactionsOf, sessionRetry } from './attack11-lib.js';

afterAll(killAll);

let srv: Awaited<ReturnType<typeof startServer>>;
let A1: Peer; // alice's first device
let A2: Peer; // alice's second device
let B: Peer; // bob
let mallory: Hostile;
let trent: Hostile;
let aliceDevs: Target[] = [];
let all3: Target[] = [];

let G = ''; // alice's group [alice, bob, mallory]
const Gm = ['alice', 'bob', 'mallory'];
const SG = crypto.randomUUID(); // mallory's group for sync markers
const SGm = ['alice', 'bob', 'mallory', 'trent'];
const P = pairId('alice', 'mallory');
const Pm = ['alice', 'mallory'];
const T = pairId('alice', 'trent');
const Tm = ['alice', 'trent'];
const H = crypto.randomUUID(); // mallory's group [alice, mallory, trent]
const Hm = ['alice', 'mallory', 'trent'];

const uuid = () => crypto.randomUUID();
const pw = (u: string) => `pw-${u}-attack11`;

/** Mallory's marker in SG: once a peer shows it, it has taken (or refused) all sent before. */
let syncN = 0;
async function sync(peers: Peer[] = [A1, A2, B]) {
  const id = uuid();
  const text = `sync marker ${++syncN}`;
  await mallory.send(all3, { t: 'msg', conversation: SG, members: SGm, id, text });
  await Promise.all(
    peers.map((p) =>
      waitFor(
        async () => (await shownOne(p, SG, id, 'mallory'))?.text === text,
        10_000,
        `${text} at ${p.data}`,
      ),
    ),
  );
}

async function post(p: Peer, conv: string, text: string, replyTo?: string): Promise<string> {
  const t0 = Date.now();
  const r = await p.api('POST', `/api/dms/${conv}/messages`, {
    text,
    ...(replyTo ? { replyTo } : {}),
  });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  if (r.body.state === 'delivered') postMs.push(Date.now() - t0);
  return r.body.id as string;
}

const rx = (m: any) => reactionsOf(m).by;

/** What a peer shows of one conversation (itself and its messages), as one JSON string. */
async function convShown(p: Peer, conv: string): Promise<string> {
  const one = await p.api('GET', `/api/dms/${conv}`);
  const msgs = await p.api('GET', `/api/dms/${conv}/messages?limit=500`);
  return JSON.stringify([one.body, msgs.body]);
}

/**
 * A change through the local API (edit, delete, react, unreact): it shows "here at once", so the
 * tests go on without waiting for its answer; the last test checks every answer, and how long
 * each took (README: "Edits, deletions and reactions answer {id, state} as a message does").
 */
const fired: Array<{
  what: string;
  ms: Promise<number>;
  answer: Promise<{ status: number; body: any }>;
}> = [];
function change(p: Peer, method: string, route: string, body?: unknown) {
  const t0 = Date.now();
  const answer = p.api(method, route, body);
  fired.push({ what: `${method} ${route}`, ms: answer.then(() => Date.now() - t0), answer });
  return answer;
}
/** How long each message POST took to answer (the yardstick for changes). */
const postMs: number[] = [];
const react = (emoji: string) => `reactions/${encodeURIComponent(emoji)}`;

/** A UUID v4 whose first hex digit is `c` (to order ids sharing a `ts`). */
const idStarting = (c: string) => c + uuid().slice(1);

beforeAll(async () => {
  srv = await startServer(['--max-registrations-per-address', '1000']);
  [A1, A2, B] = await Promise.all([startPeer(srv), startPeer(srv), startPeer(srv)]);
  const [ra, rb] = await Promise.all([
    A1.api('POST', '/api/register', { username: 'alice', password: pw('alice') }),
    B.api('POST', '/api/register', { username: 'bob', password: pw('bob') }),
  ]);
  expect([ra.status, rb.status]).toEqual([201, 201]);
  const logins = await Promise.all(
    (
      [
        [A1, 'alice'],
        [A2, 'alice'],
        [B, 'bob'],
      ] as const
    ).map(([p, u]) => p.api('POST', '/api/login', { username: u, password: pw(u) })),
  );
  expect(logins.map((l) => l.status)).toEqual([200, 200, 200]);
  [mallory, trent] = await Promise.all([
    hostileMember(srv, 'mallory'),
    hostileMember(srv, 'trent'),
  ]);
  aliceDevs = await waitFor(
    async () => {
      const d = await devicesOf(mallory, 'alice');
      return d.length === 2 && d.map((x) => ({ username: 'alice', deviceId: x.deviceId }));
    },
    10_000,
    "alice's two devices",
  );
  const bobDevs = await waitFor(
    async () => {
      const d = await devicesOf(mallory, 'bob');
      return d.length === 1 && d.map((x) => ({ username: 'bob', deviceId: x.deviceId }));
    },
    10_000,
    "bob's device",
  );
  all3 = [...aliceDevs, ...bobDevs];
  const g = await A1.api('POST', '/api/dms', { members: ['bob', 'mallory'] });
  expect(g.status, JSON.stringify(g.body)).toBe(201);
  G = g.body.id;
  const t = await A1.api('POST', '/api/dms', { members: ['trent'] });
  expect(t.body?.id, JSON.stringify(t.body)).toBe(T);
  await mallory.send(aliceDevs, { t: 'msg', conversation: H, members: Hm, text: 'h opens' });
  await sync();
}, 30_000);

describe('hostile members: sealed replies and reactions', () => {
  test('reactions count per member whatever the case of targetAuthor; a reply quotes its original', async () => {
    const a = await post(A1, H, 'alpaca by alice');
    const m = uuid();
    await mallory.send(aliceDevs, {
      t: 'msg',
      conversation: H,
      members: Hm,
      id: m,
      text: 'moose by mallory',
    });
    const base = { conversation: H, members: Hm, target: a, emoji: '👍' };
    await mallory.send(aliceDevs, { ...base, t: 'react', targetAuthor: 'alice' });
    await trent.send(aliceDevs, { ...base, t: 'react', targetAuthor: 'ALICE' });
    // the same reaction again, naming the author in another case: still one of mallory's
    await mallory.send(aliceDevs, { ...base, t: 'react', targetAuthor: 'Alice' });
    const r = uuid();
    await mallory.send(aliceDevs, {
      t: 'msg',
      conversation: H,
      members: Hm,
      id: r,
      text: 'mallory answers alpaca',
      replyTo: { id: a, author: 'ALICE' },
    });
    await sync([A1, A2]);
    for (const p of [A1, A2]) {
      const am = await shownOne(p, H, a, 'alice');
      expect(rx(am), p.data).toEqual({ '👍': ['mallory', 'trent'] });
      expect(reactionsOf(am).me['👍'], p.data).toBe(false);
      const rm = await shownOne(p, H, r, 'mallory');
      expect(rm, `${p.data}: mallory's reply`).toBeDefined();
      expect(rm.replyTo.id).toBe(a);
      expect(rm.replyTo.author.toLowerCase()).toBe('alice');
      expect(rm.replyTo.text).toBe('alpaca by alice');
    }
    // alice reacts from A1: at once there, then on A2, as hers (`me`)
    void change(A1, 'PUT', `/api/dms/${H}/messages/${m}/${react('🎉')}`);
    await seenBy([A1, A2], H, m, 'mallory', (x) => rx(x)['🎉']?.[0] === 'alice');
    for (const p of [A1, A2])
      expect(reactionsOf(await shownOne(p, H, m, 'mallory')).me['🎉'], p.data).toBe(true);
    // mallory takes hers back naming the author in yet another case
    await mallory.send(aliceDevs, { ...base, t: 'unreact', targetAuthor: 'aLiCe' });
    await sync([A1, A2]);
    for (const p of [A1, A2])
      expect(rx(await shownOne(p, H, a, 'alice')), p.data).toEqual({ '👍': ['trent'] });
  });

  test('a reaction or reply naming another conversation’s message, a non-member’s, a change or junk is refused', async () => {
    const pm = uuid();
    await mallory.send(aliceDevs, {
      t: 'msg',
      conversation: P,
      members: Pm,
      id: pm,
      text: 'penguin secret of P',
    });
    const ga = await post(A1, G, 'gecko secret of G');
    const tx = await post(A1, T, 'tern secret of T'); // mallory is not in T
    const th = uuid();
    await trent.send(aliceDevs, {
      t: 'msg',
      conversation: H,
      members: Hm,
      id: th,
      text: 'heron of H',
    });
    const hm = uuid();
    const e = uuid();
    const r1 = uuid();
    await mallory.send(aliceDevs, {
      t: 'msg',
      conversation: H,
      members: Hm,
      id: hm,
      text: 'hm base',
    });
    await mallory.send(aliceDevs, {
      t: 'edit',
      conversation: H,
      members: Hm,
      id: e,
      target: hm,
      text: 'hm edited',
    });
    await trent.send(aliceDevs, {
      t: 'react',
      conversation: H,
      members: Hm,
      id: r1,
      target: hm,
      targetAuthor: 'mallory',
      emoji: '👀',
    });
    await sync([A1, A2]); // every target is held now
    const inH = { conversation: H, members: Hm };
    const inP = { conversation: P, members: Pm };
    const bad = '💥';
    const refusedReplies: Array<[Record<string, unknown>, unknown]> = [
      [inH, { id: pm, author: 'mallory' }], // a message of P
      [inH, { id: ga, author: 'alice' }], // a message of G
      [inH, { id: tx, author: 'alice' }], // a message of T
      [inH, { id: e, author: 'mallory' }], // an edit
      [inH, { id: r1, author: 'trent' }], // a reaction
      [inP, { id: th, author: 'trent' }], // trent is no member of P
      [inP, { id: ga, author: 'bob' }], // bob is no member of P
      [inH, hm], // not {id, author}
      [inH, { id: hm }],
      [inH, { id: 'not-a-uuid', author: 'mallory' }],
      [inH, { id: hm, author: 42 }],
    ];
    const replyIds: string[] = [];
    for (const [i, [conv, replyTo]] of refusedReplies.entries()) {
      const id = uuid();
      replyIds.push(id);
      await mallory.send(aliceDevs, { t: 'msg', ...conv, id, text: `refused reply ${i}`, replyTo });
    }
    const refusedReacts: Array<[Record<string, unknown>, Record<string, unknown>]> = [
      [inH, { target: pm, targetAuthor: 'mallory', emoji: bad }],
      [inH, { target: ga, targetAuthor: 'alice', emoji: bad }],
      [inH, { target: tx, targetAuthor: 'alice', emoji: bad }],
      [inH, { target: e, targetAuthor: 'mallory', emoji: bad }],
      [inH, { target: r1, targetAuthor: 'trent', emoji: bad }],
      [inP, { target: th, targetAuthor: 'trent', emoji: bad }],
      [inP, { target: ga, targetAuthor: 'bob', emoji: bad }],
      [inH, { target: hm, targetAuthor: 'mallory', emoji: '' }],
      [inH, { target: hm, targetAuthor: 'mallory', emoji: 'a b' }],
      [inH, { target: hm, targetAuthor: 'mallory', emoji: 'x'.repeat(33) }],
      [inH, { target: hm, targetAuthor: 'mallory', emoji: 'bell\u0007' }],
      [inH, { target: hm, targetAuthor: 'mallory', emoji: 'nb\u00a0sp' }],
      [inH, { target: hm, targetAuthor: 'mallory', emoji: 42 }],
      [inH, { target: hm, targetAuthor: 'mallory' }],
      [inH, { target: hm, emoji: bad }],
      [inH, { target: 'not-a-uuid', targetAuthor: 'mallory', emoji: bad }],
    ];
    for (const [conv, f] of refusedReacts)
      await mallory.send(aliceDevs, { t: 'react', ...conv, ...f });
    // mallory writing in T (alice and trent's), as a non-member or under other members
    await mallory.send(aliceDevs, {
      t: 'react',
      conversation: T,
      members: Tm,
      target: tx,
      targetAuthor: 'alice',
      emoji: bad,
    });
    await mallory.send(aliceDevs, {
      t: 'react',
      conversation: T,
      members: Hm,
      target: tx,
      targetAuthor: 'alice',
      emoji: bad,
    });
    await mallory.send(aliceDevs, {
      t: 'msg',
      conversation: T,
      members: Hm,
      text: 'refused reply in T',
      replyTo: { id: tx, author: 'alice' },
    });
    // In G, to bob as well: alice's devices hold pm (of P) and refuse; bob holds nothing of P.
    const gx = uuid();
    await mallory.send(all3, {
      t: 'msg',
      conversation: G,
      members: Gm,
      id: gx,
      text: 'gx quoting P',
      replyTo: { id: pm, author: 'mallory' },
    });
    await mallory.send(all3, {
      t: 'react',
      conversation: G,
      members: Gm,
      target: pm,
      targetAuthor: 'mallory',
      emoji: bad,
    });
    await sync();
    for (const p of [A1, A2]) {
      for (const id of replyIds)
        for (const conv of [H, P])
          expect(await shownOne(p, conv, id, 'mallory'), `${p.data}: reply ${id}`).toBeUndefined();
      expect(await shownOne(p, G, gx, 'mallory'), `${p.data}: gx quoting P`).toBeUndefined();
      expect(rx(await shownOne(p, H, hm, 'mallory')), p.data).toEqual({ '👀': ['trent'] });
      expect(rx(await shownOne(p, H, th, 'trent')), p.data).toEqual({});
      expect(rx(await shownOne(p, P, pm, 'mallory')), p.data).toEqual({});
      expect(rx(await shownOne(p, G, ga, 'alice')), p.data).toEqual({});
      expect(rx(await shownOne(p, T, tx, 'alice')), p.data).toEqual({});
      for (const conv of [H, P, G, T]) {
        const all = await convShown(p, conv);
        expect(all, `${p.data} ${conv}`).not.toContain('refused reply');
        expect(all, `${p.data} ${conv}`).not.toContain(bad);
        if (conv !== P) expect(all, `${p.data} ${conv}`).not.toContain('penguin secret');
        if (conv !== G) expect(all, `${p.data} ${conv}`).not.toContain('gecko secret');
        if (conv !== T) expect(all, `${p.data} ${conv}`).not.toContain('tern secret');
      }
    }
    // Bob holds nothing of P: the reply shows, quoting nothing of it.
    const bx = await shownOne(B, G, gx, 'mallory');
    expect(bx, 'bob shows the reply (he holds no message it could name)').toBeDefined();
    expect(bx.replyTo).toMatchObject({ id: pm });
    expect(bx.replyTo.text).toBeUndefined();
    expect(await everythingShown(B, G)).not.toContain('penguin secret');
    expect(await convShown(B, G)).not.toContain(bad);
    const refused = logLines(A1.data).filter(
      (l) => l.includes('ev=dm_refused') && l.includes('from=mallory/'),
    );
    expect
      .soft(refused.length, 'A1 logs dm_refused for each refused reply and reaction')
      .toBeGreaterThanOrEqual(refusedReplies.length + refusedReacts.length + 2);
  });

  test('a reaction or reply before its message counts only for that author’s message of that conversation', async () => {
    const [X, Y, E] = [uuid(), uuid(), uuid()];
    const inH = { conversation: H, members: Hm };
    const [r1, r2, r3] = [uuid(), uuid(), uuid()];
    // X: named as trent's; then mallory writes an X of her own in H, trent one in T.
    await mallory.send(aliceDevs, {
      ...inH,
      t: 'react',
      target: X,
      targetAuthor: 'trent',
      emoji: '🔥',
    });
    await mallory.send(aliceDevs, {
      ...inH,
      t: 'msg',
      id: r1,
      text: 'waiting reply x',
      replyTo: { id: X, author: 'trent' },
    });
    await mallory.send(aliceDevs, { ...inH, t: 'msg', id: X, text: 'mallory twin x' });
    await trent.send(aliceDevs, {
      t: 'msg',
      conversation: T,
      members: Tm,
      id: X,
      text: 'tern private x',
    });
    // Y: named as trent's; trent writes it in H: it counts.
    await mallory.send(aliceDevs, {
      ...inH,
      t: 'react',
      target: Y,
      targetAuthor: 'trent',
      emoji: '🔥',
    });
    await mallory.send(aliceDevs, {
      ...inH,
      t: 'msg',
      id: r2,
      text: 'waiting reply y',
      replyTo: { id: Y, author: 'trent' },
    });
    await trent.send(aliceDevs, { ...inH, t: 'msg', id: Y, text: 'trent answer y' });
    // W: a reaction, a reply and trent's deletion all overtake trent's message.
    const W = uuid();
    const r4 = uuid();
    await mallory.send(aliceDevs, {
      ...inH,
      t: 'react',
      target: W,
      targetAuthor: 'trent',
      emoji: '⚡',
    });
    await mallory.send(aliceDevs, {
      ...inH,
      t: 'msg',
      id: r4,
      text: 'waiting reply w',
      replyTo: { id: W, author: 'trent' },
    });
    await trent.send(aliceDevs, { ...inH, t: 'delete', target: W });
    await trent.send(aliceDevs, { ...inH, t: 'msg', id: W, text: 'wombatsecret by trent' });
    // alice's message named as trent's: it is not the one named
    const am = await post(A1, H, 'aardvark by alice');
    const r5 = uuid();
    await mallory.send(aliceDevs, {
      ...inH,
      t: 'react',
      target: am,
      targetAuthor: 'trent',
      emoji: '🍀',
    });
    await mallory.send(aliceDevs, {
      ...inH,
      t: 'msg',
      id: r5,
      text: 'waiting reply a',
      replyTo: { id: am, author: 'trent' },
    });
    // E: named as mallory's message; it turns out to be an edit of hm2.
    const hm2 = uuid();
    await mallory.send(aliceDevs, {
      ...inH,
      t: 'msg',
      id: r3,
      text: 'waiting reply e',
      replyTo: { id: E, author: 'mallory' },
    });
    await mallory.send(aliceDevs, {
      ...inH,
      t: 'react',
      target: E,
      targetAuthor: 'mallory',
      emoji: '⭐',
    });
    await mallory.send(aliceDevs, { ...inH, t: 'msg', id: hm2, text: 'hm2 base' });
    await mallory.send(aliceDevs, { ...inH, t: 'edit', id: E, target: hm2, text: 'edit body e' });
    await sync([A1, A2]);
    for (const p of [A1, A2]) {
      expect(rx(await shownOne(p, H, X, 'mallory')), `${p.data}: mallory's X`).toEqual({});
      expect(rx(await shownOne(p, T, X, 'trent')), `${p.data}: trent's X in T`).toEqual({});
      const q1 = await shownOne(p, H, r1, 'mallory');
      expect(q1?.replyTo, p.data).toMatchObject({ id: X });
      expect(q1.replyTo.author.toLowerCase()).toBe('trent');
      expect(q1.replyTo.text, `${p.data}: quote of trent's X`).toBeUndefined();
      expect(await convShown(p, H), p.data).not.toContain('tern private');
      expect(rx(await shownOne(p, H, Y, 'trent')), `${p.data}: trent's Y`).toEqual({
        '🔥': ['mallory'],
      });
      const q2 = await shownOne(p, H, r2, 'mallory');
      expect(q2?.replyTo?.text, p.data).toBe('trent answer y');
      const q3 = await shownOne(p, H, r3, 'mallory');
      expect(q3, p.data).toBeDefined();
      expect(JSON.stringify(q3.replyTo ?? null), `${p.data}: quote of an edit`).not.toContain(
        'edit body e',
      );
      const w = await shownOne(p, H, W, 'trent');
      expect(w, `${p.data}: trent's W, deleted before it came`).toMatchObject({
        deleted: true,
        text: '',
      });
      expect(w.reactions, `${p.data}: W's reactions`).toEqual([]);
      const q4 = await shownOne(p, H, r4, 'mallory');
      expect(q4?.replyTo, `${p.data}: quote of W`).toMatchObject({ id: W, deleted: true });
      expect(q4.replyTo.text ?? '').toBe('');
      expect(await convShown(p, H), p.data).not.toContain('wombatsecret');
      expect
        .soft(rowsHolding(p.data, 'wombatsecret'), `${p.data}: rows holding W's text`)
        .toEqual([]);
      expect(
        rx(await shownOne(p, H, am, 'alice')),
        `${p.data}: alice's message named as trent's`,
      ).toEqual({});
      const q5 = await shownOne(p, H, r5, 'mallory');
      expect(q5?.replyTo?.author?.toLowerCase(), p.data).toBe('trent');
      expect(q5.replyTo.text, `${p.data}: alice's text quoted as trent's`).toBeUndefined();
      const h2 = await shownOne(p, H, hm2, 'mallory');
      expect(h2?.text, p.data).toBe('edit body e');
      expect(rx(h2), `${p.data}: a reaction to an edit's id`).toEqual({});
    }
  });

  test('the newest react or unreact per member and emoji wins, whatever the arrival order', async () => {
    const k = uuid();
    const inH = { conversation: H, members: Hm };
    await trent.send(aliceDevs, { ...inH, t: 'msg', id: k, text: 'kestrel by trent' });
    const t = Date.now() - 10_000;
    const on = { ...inH, target: k, targetAuthor: 'trent' };
    const m = (p: Record<string, unknown>) => mallory.send(aliceDevs, { ...on, ...p });
    // 😀: a newer unreact, then an older react arriving late
    await m({ t: 'unreact', emoji: '😀', ts: t + 2000 });
    await m({ t: 'react', emoji: '😀', ts: t + 1000 });
    await trent.send(aliceDevs, { ...on, t: 'react', emoji: '😀', ts: t });
    // 😎: a newer react, then an older unreact arriving late
    await m({ t: 'react', emoji: '😎', ts: t + 3000 });
    await m({ t: 'unreact', emoji: '😎', ts: t + 1000 });
    // equal ts: the greater id wins
    await m({ t: 'react', emoji: '🤖', ts: t + 500, id: idStarting('f') });
    await m({ t: 'unreact', emoji: '🤖', ts: t + 500, id: idStarting('0') });
    await m({ t: 'unreact', emoji: '🦉', ts: t + 500, id: idStarting('f') });
    await m({ t: 'react', emoji: '🦉', ts: t + 500, id: idStarting('0') });
    // a replay of an old react (same payload, a new envelope) after its unreact
    const old = { t: 'react', emoji: '🐢', ts: t + 100, id: uuid() };
    await m(old);
    await m({ t: 'unreact', emoji: '🐢', ts: t + 200 });
    await m(old);
    // an unreact of nothing; a react from too far ahead
    await trent.send(aliceDevs, { ...on, t: 'unreact', emoji: '🙃' });
    await m({ t: 'react', emoji: '⏰', ts: Date.now() + 3_600_000 });
    await sync([A1, A2]);
    for (const p of [A1, A2]) {
      const km = await shownOne(p, H, k, 'trent');
      expect(rx(km), p.data).toEqual({ '😀': ['trent'], '🤖': ['mallory'], '😎': ['mallory'] });
      expect
        .soft(
          (km.reactions as any[]).map((r) => r.emoji),
          `${p.data}: emoji in order of the earliest standing reaction (by ts)`,
        )
        .toEqual(['😀', '🤖', '😎']);
    }
  });

  test('equal ts: the greater id wins; ids are lower-case UUIDs (an upper-case one is refused)', async () => {
    const k = uuid();
    const inH = { conversation: H, members: Hm };
    await trent.send(aliceDevs, { ...inH, t: 'msg', id: k, text: 'kite by trent' });
    const ts = Date.now() - 5_000;
    const on = { ...inH, target: k, targetAuthor: 'trent' };
    // 'f…' > 'a…': the react wins over the unreact of the same ts, whichever comes first.
    await mallory.send(aliceDevs, { ...on, t: 'react', emoji: '🦊', ts, id: idStarting('f') });
    await mallory.send(aliceDevs, { ...on, t: 'unreact', emoji: '🦊', ts, id: idStarting('a') });
    await mallory.send(aliceDevs, { ...on, t: 'react', emoji: '🐝', ts, id: uuid().toUpperCase() });
    await sync([A1, A2]);
    for (const p of [A1, A2]) {
      const km = rx(await shownOne(p, H, k, 'trent'));
      expect(km['🐝'], `${p.data}: a react whose id is upper case`).toBeUndefined();
      expect(km['🦊'], `${p.data}: react f… vs unreact a… at one ts`).toEqual(['mallory']);
    }
  });

  test('reply cycles and a self-reply are harmless', async () => {
    const [z1, z2, z3] = [uuid(), uuid(), uuid()];
    const inH = { conversation: H, members: Hm };
    await mallory.send(aliceDevs, {
      ...inH,
      t: 'msg',
      id: z1,
      text: 'zeta one',
      replyTo: { id: z2, author: 'mallory' },
    });
    await mallory.send(aliceDevs, {
      ...inH,
      t: 'msg',
      id: z2,
      text: 'zeta two',
      replyTo: { id: z1, author: 'mallory' },
    });
    await mallory.send(aliceDevs, {
      ...inH,
      t: 'msg',
      id: z3,
      text: 'zeta three',
      replyTo: { id: z3, author: 'mallory' },
    });
    await sync([A1, A2]);
    for (const p of [A1, A2]) {
      expect((await shownOne(p, H, z1, 'mallory'))?.replyTo?.text, p.data).toBe('zeta two');
      expect((await shownOne(p, H, z2, 'mallory'))?.replyTo?.text, p.data).toBe('zeta one');
      expect((await p.api('GET', '/api/dms')).status).toBe(200);
    }
  });
});

describe('the local API and every device', () => {
  test('a reaction is per member, not per device: alice’s two devices react once, her latest unreact wins', async () => {
    const bm = await post(B, G, 'bison by bob');
    await seenBy([A1, A2], G, bm, 'bob', (m) => m.text === 'bison by bob');
    const evs = eventsOf(B);
    const r1 = change(A1, 'PUT', `/api/dms/${G}/messages/${bm}/${react('👍')}`);
    const r2 = change(A2, 'PUT', `/api/dms/${G}/messages/${bm}/${react('👍')}`);
    await seenBy([A1, A2, B], G, bm, 'bob', (m) => rx(m)['👍']?.length === 1);
    await seenBy([A1, A2], G, bm, 'bob', (m) => reactionsOf(m).me['👍'] === true);
    expect(reactionsOf(await shownOne(B, G, bm, 'bob')).me['👍']).toBe(false);
    // bob reacts too, and sees both
    void change(B, 'PUT', `/api/dms/${G}/messages/${bm}/${react('👍')}`);
    await seenBy([A1, A2, B], G, bm, 'bob', (m) => rx(m)['👍']?.join() === 'alice,bob');
    // alice takes it back on A2: her newest says no, on every device (A1's react is older)
    // (after both of alice's reacts were answered: the unreact is newer than either)
    expect([(await r1).status, (await r2).status]).toEqual([200, 200]);
    void change(A2, 'DELETE', `/api/dms/${G}/messages/${bm}/${react('👍')}`);
    await seenBy([A1, A2, B], G, bm, 'bob', (m) => rx(m)['👍']?.join() === 'bob');
    const seen = await evs.stop();
    expect
      .soft(
        seen.some(
          (e) => e.event === 'dm' && e.data?.message?.id === bm && rx(e.data.message)['👍'],
        ),
        'bob’s event stream told a reaction (`dm` event, the message as it reads now)',
      )
      .toBe(true);
  });

  test('a reply’s quote follows its original: edited, then deleted (no text left anywhere); a deleted message shows no reactions', async () => {
    const q = await post(B, G, 'quokkaorig by bob');
    await seenBy([A1, A2], G, q, 'bob', (m) => m.text === 'quokkaorig by bob');
    const rr = await post(A1, G, 'alice answers it', q);
    await seenBy(
      [A1, A2, B],
      G,
      rr,
      'alice',
      (m) => m.replyTo?.id === q && m.replyTo?.text === 'quokkaorig by bob',
    );
    void change(A1, 'PUT', `/api/dms/${G}/messages/${q}/${react('🐨')}`);
    await mallory.send(all3, {
      t: 'react',
      conversation: G,
      members: Gm,
      target: q,
      targetAuthor: 'bob',
      emoji: '🦘',
    });
    await seenBy([A1, A2, B], G, q, 'bob', (m) => Object.keys(rx(m)).length === 2);
    void change(B, 'PATCH', `/api/dms/${G}/messages/${q}`, { text: 'quokkaedit by bob' });
    await seenBy([A1, A2, B], G, rr, 'alice', (m) => m.replyTo?.text === 'quokkaedit by bob');
    const evs = eventsOf(A2);
    void change(B, 'DELETE', `/api/dms/${G}/messages/${q}`);
    await seenBy([A1, A2, B], G, q, 'bob', (m) => m.deleted === true);
    const told = (await evs.stop()).filter((e) => e.event === 'dm' && e.data?.message?.id === q);
    expect(told.length, 'A2’s event stream told the deletion').toBeGreaterThan(0);
    for (const e of told) {
      expect(JSON.stringify(e.data)).not.toContain('quokka');
      if (e.data.message.deleted) expect(e.data.message.reactions).toEqual([]);
    }
    // a reaction arriving after the deletion
    await mallory.send(all3, {
      t: 'react',
      conversation: G,
      members: Gm,
      target: q,
      targetAuthor: 'bob',
      emoji: '🦔',
    });
    await sync();
    for (const p of [A1, A2, B]) {
      const m = await shownOne(p, G, q, 'bob');
      expect(m, p.data).toMatchObject({ deleted: true, text: '' });
      expect(m.reactions, `${p.data}: a deleted message's reactions`).toEqual([]);
      const r = await shownOne(p, G, rr, 'alice');
      expect(r.replyTo, `${p.data}: the quote of a deleted message`).toMatchObject({
        id: q,
        deleted: true,
      });
      expect(r.replyTo.text ?? '', p.data).toBe('');
      const all = await everythingShown(p, G);
      expect(all, p.data).not.toContain('quokkaorig');
      expect(all, p.data).not.toContain('quokkaedit');
      for (const t of ['quokkaorig', 'quokkaedit'])
        expect.soft(rowsHolding(p.data, t), `${p.data}: stored rows holding "${t}"`).toEqual([]);
    }
    const again = [
      await A1.api('PUT', `/api/dms/${G}/messages/${q}/${react('🐨')}`),
      await A1.api('POST', `/api/dms/${G}/messages`, { text: 'to a deleted one', replyTo: q }),
    ];
    expect(again.map((a) => [a.status, a.body?.error?.code])).toEqual([
      [404, 'E_NOT_FOUND'],
      [404, 'E_NOT_FOUND'],
    ]);
  });

  test('reactions count neither as unread nor as activity (unread, mentions, lastTs, last unchanged)', async () => {
    const ap = await post(A1, P, 'alice in P');
    const mp = uuid();
    await mallory.send(aliceDevs, {
      t: 'msg',
      conversation: P,
      members: Pm,
      id: mp,
      text: 'mallory in P',
    });
    await sync([A1, A2]);
    const entry = async (p: Peer) =>
      ((await p.api('GET', '/api/dms')).body as any[]).find((c) => c.id === P);
    for (const p of [A1, A2]) expect((await p.api('POST', `/api/dms/${P}/read`)).status).toBe(204);
    const before = [await entry(A1), await entry(A2)];
    for (const b of before) expect(b).toMatchObject({ unread: 0, mentions: 0 });
    const inP = { conversation: P, members: Pm };
    await mallory.send(aliceDevs, {
      ...inP,
      t: 'react',
      target: ap,
      targetAuthor: 'alice',
      emoji: '@alice',
    });
    await mallory.send(aliceDevs, {
      ...inP,
      t: 'react',
      target: ap,
      targetAuthor: 'alice',
      emoji: '❤',
    });
    await mallory.send(aliceDevs, {
      ...inP,
      t: 'unreact',
      target: ap,
      targetAuthor: 'alice',
      emoji: '❤',
    });
    await mallory.send(aliceDevs, {
      ...inP,
      t: 'react',
      target: mp,
      targetAuthor: 'mallory',
      emoji: '✅',
    });
    void change(A1, 'PUT', `/api/dms/${P}/messages/${mp}/${react('👌')}`);
    await sync([A1, A2]);
    await seenBy([A1, A2], P, mp, 'mallory', (m) => rx(m)['👌']?.[0] === 'alice');
    for (const [i, p] of [A1, A2].entries()) {
      expect(rx(await shownOne(p, P, ap, 'alice')), p.data).toEqual({ '@alice': ['mallory'] });
      const after = await entry(p);
      expect(
        {
          unread: after.unread,
          mentions: after.mentions,
          lastTs: after.lastTs,
          last: after.last,
        },
        `${p.data}: P in the list after reactions`,
      ).toEqual({
        unread: before[i].unread,
        mentions: before[i].mentions,
        lastTs: before[i].lastTs,
        last: before[i].last,
      });
    }
  });

  test('PUT/DELETE reactions and replyTo refuse bad input with clear 4xx; the peer keeps serving', async () => {
    const k = await post(A1, G, 'kept for reactions');
    const inP = (await A1.api('GET', `/api/dms/${P}/messages?limit=500`)).body.messages.find(
      (m: any) => m.kind === 'message',
    ).id as string;
    // a change's id and a reaction's id: not messages
    const edP = change(A1, 'PATCH', `/api/dms/${G}/messages/${k}`, { text: 'kept, edited' });
    const reP = change(A1, 'PUT', `/api/dms/${G}/messages/${k}/${react('🌲')}`);
    // a notice: trent adds a device, alice writes in H
    const { c } = await serverHello(srv);
    const l = await c.req('login', {
      username: 'trent',
      password: trent.password,
      publicKey: newKey().pk,
    });
    expect(l.body?.username).toBe('trent');
    expect((await c.req('dm_publish', publishBody(newDevice(5)))).body).toBeTruthy();
    c.close();
    await post(A1, H, 'alice in h again');
    const notice = await waitFor(
      async () =>
        ((await A1.api('GET', `/api/dms/${H}/messages?limit=500`)).body.messages as any[]).find(
          (m) => m.kind === 'notice',
        ),
      8_000,
      'a notice in H',
    ).catch(() => undefined);
    const [ed, re] = [await edP, await reP];
    expect([ed.status, re.status], JSON.stringify([ed.body, re.body])).toEqual([200, 200]);
    expect.soft(notice, 'a notice in H after trent’s new device').toBeDefined();
    const rt = (conv: string, id: string, emoji: string) =>
      `/api/dms/${conv}/messages/${id}/reactions/${emoji}`;
    const E = encodeURIComponent;
    type Case = [string, string, unknown, number[], RegExp | null];
    const cases: Case[] = [
      ['PUT', rt(G, k, E('a b')), undefined, [400], /emoji/i],
      ['PUT', rt(G, k, 'x'.repeat(33)), undefined, [400], /emoji/i],
      ['PUT', rt(G, k, E('👍').repeat(33)), undefined, [400], /emoji/i],
      ['PUT', rt(G, k, '%00'), undefined, [400], /emoji/i],
      ['PUT', rt(G, k, '%09'), undefined, [400], /emoji/i],
      ['PUT', rt(G, k, E('nb\u00a0sp')), undefined, [400], /emoji/i],
      ['PUT', rt(G, k, E('line\u2028sep')), undefined, [400], /emoji/i],
      ['PUT', rt(G, k, '%E0%A4%A'), undefined, [400, 404], null],
      ['PUT', rt(G, k, '%'), undefined, [400, 404], null],
      ['DELETE', rt(G, k, E('a b')), undefined, [400], /emoji/i],
      ['DELETE', rt(G, k, 'x'.repeat(33)), undefined, [400], /emoji/i],
      ['PUT', rt(G, uuid(), E('👍')), undefined, [404], null],
      ['DELETE', rt(G, uuid(), E('👍')), undefined, [404], null],
      ['PUT', rt(G, 'not-a-uuid', E('👍')), undefined, [400, 404], null],
      ['PUT', rt(uuid(), k, E('👍')), undefined, [404], null],
      ['PUT', rt(P, k, E('👍')), undefined, [404], null], // k is of G
      ['PUT', rt(G, inP, E('👍')), undefined, [404], null], // of P
      ['PUT', rt(G, ed.body.id, E('👍')), undefined, [404], null], // an edit
      ['PUT', rt(G, re.body.id, E('👍')), undefined, [404], null], // a reaction
      ['POST', `/api/dms/${G}/messages`, { text: 'r', replyTo: uuid() }, [404], null],
      ['POST', `/api/dms/${G}/messages`, { text: 'r', replyTo: inP }, [404], null],
      ['POST', `/api/dms/${P}/messages`, { text: 'r', replyTo: k }, [404], null],
      ['POST', `/api/dms/${G}/messages`, { text: 'r', replyTo: ed.body.id }, [404], null],
      ['POST', `/api/dms/${G}/messages`, { text: 'r', replyTo: re.body.id }, [404], null],
      ['POST', `/api/dms/${G}/messages`, { text: 'r', replyTo: 'not-a-uuid' }, [400], /reply/i],
      ['POST', `/api/dms/${G}/messages`, { text: 'r', replyTo: 42 }, [400], /reply/i],
      [
        'POST',
        `/api/dms/${G}/messages`,
        { text: 'r', replyTo: { id: k, author: 'alice' } },
        [400],
        /reply/i,
      ],
      ['POST', `/api/dms/${G}/messages`, { replyTo: k }, [400], /text/i],
    ];
    if (notice) {
      cases.push(['PUT', rt(H, notice.id, E('👍')), undefined, [404], null]);
      cases.push([
        'POST',
        `/api/dms/${H}/messages`,
        { text: 'r', replyTo: notice.id },
        [404],
        null,
      ]);
    }
    const wrong: string[] = [];
    for (const [method, r, body, statuses, why] of cases) {
      const a = await A1.api(method, r, body);
      const codeOk =
        (a.status === 404 && a.body?.error?.code === 'E_NOT_FOUND') ||
        (a.status === 400 && typeof a.body?.error?.code === 'string');
      const msgOk = typeof a.body?.error?.message === 'string' && a.body.error.message.length > 0;
      if (
        !statuses.includes(a.status) ||
        !codeOk ||
        !msgOk ||
        (why && !why.test(a.body.error.message))
      )
        wrong.push(
          `${method} ${r} ${JSON.stringify(body) ?? ''} → ${a.status} ${JSON.stringify(a.body).slice(0, 160)}`,
        );
    }
    // The boundaries are taken: 32 characters; a two-code-point emoji; a slash, URL-encoded.
    const good: Array<[string, string]> = [
      ['y'.repeat(32), 'y'.repeat(32)],
      [E('👍🏽'), '👍🏽'],
      [E('a/b'), 'a/b'],
    ];
    const goodAnswers = good.map(([enc]) => change(A1, 'PUT', rt(G, k, enc)));
    const allShown = await waitFor(async () => {
      const m = await shownOne(A1, G, k, 'alice');
      return good.every(([, e]) => rx(m)[e]) && m;
    }, 5_000).catch(() => undefined);
    if (!allShown)
      for (const [i, [, emoji]] of good.entries()) {
        const a = await goodAnswers[i]!;
        wrong.push(
          `PUT ${JSON.stringify(emoji)} → ${a.status} ${JSON.stringify(a.body).slice(0, 160)}`,
        );
      }
    expect(wrong, wrong.join('\n')).toEqual([]);
    expect((await A1.api('GET', '/api/dms')).status).toBe(200);
    const page = (await A1.api('GET', `/api/dms/${G}/messages?limit=500`)).body.messages as any[];
    expect(
      page.filter((m) => m.text === 'r'),
      'no reply was written',
    ).toEqual([]);
    expect(rx(page.find((m) => m.id === k))).toEqual({
      '🌲': ['alice'],
      ['y'.repeat(32)]: ['alice'],
      '👍🏽': ['alice'],
      'a/b': ['alice'],
    });
  });

  test('a blocked member’s reactions and replies reach none of the blocker’s devices (mailbox and P2P)', async () => {
    const mp = uuid();
    await mallory.send(aliceDevs, {
      t: 'msg',
      conversation: P,
      members: Pm,
      id: mp,
      text: 'mallory puffin',
    });
    await sync([A1, A2]);
    const ap = await post(A1, P, 'puffin by alice');
    // fresh sessions for the P2P doors, made before the block (a bundle tells nothing anyway)
    const sessions = new Map<string, Session>();
    for (const d of aliceDevs)
      sessions.set(d.deviceId, await sessionRetry(mallory, 'alice', d.deviceId));
    expect((await A1.api('PUT', '/api/blocks/mallory')).status).toBe(200);
    const p2pAnswers: string[] = [];
    try {
      // alice cannot write to mallory while she blocks her: reaction, reply
      const w = [
        await A1.api('PUT', `/api/dms/${P}/messages/${mp}/${react('👋')}`),
        await A1.api('POST', `/api/dms/${P}/messages`, { text: 'blocked answer', replyTo: mp }),
      ];
      expect(w.map((a) => [a.status, a.body?.error?.code])).toEqual([
        [403, 'E_FORBIDDEN'],
        [403, 'E_FORBIDDEN'],
      ]);
      // Taking a reaction back stays possible, as deleting one's own message does (README).
      expect((await A1.api('DELETE', `/api/dms/${P}/messages/${mp}/${react('👋')}`)).status).toBe(
        200,
      );
      const inP = { conversation: P, members: Pm };
      await mallory.send(aliceDevs, {
        ...inP,
        t: 'react',
        target: ap,
        targetAuthor: 'alice',
        emoji: '🚫',
      });
      await mallory.send(aliceDevs, {
        ...inP,
        t: 'msg',
        text: 'blocked reply by mailbox',
        replyTo: { id: ap, author: 'alice' },
      });
      for (const p of [A1, A2]) {
        const door = await p2pDoor(p, mallory, sessions, inP);
        try {
          for (const d of aliceDevs) {
            const a = await door.deliver(d.deviceId, {
              t: 'react',
              target: ap,
              targetAuthor: 'alice',
              emoji: '⛔',
            });
            if (a === 'E_NOT_FOUND') continue; // not the device logged in there
            p2pAnswers.push(a);
            p2pAnswers.push(
              await door.deliver(d.deviceId, {
                t: 'msg',
                text: 'blocked reply by p2p',
                replyTo: { id: ap, author: 'alice' },
              }),
            );
          }
        } finally {
          door.close();
        }
      }
    } finally {
      expect((await A1.api('DELETE', '/api/blocks/mallory')).status).toBe(200);
    }
    expect(p2pAnswers.length, 'one react and one reply delivered over P2P to each device').toBe(4);
    expect
      .soft(p2pAnswers, 'a blocked sender is answered ok (§10.6)')
      .toEqual(['ok', 'ok', 'ok', 'ok']);
    await sync([A1, A2]);
    for (const [n, p] of [
      ['A1', A1],
      ['A2', A2],
    ] as const) {
      expect
        .soft(rx(await shownOne(p, P, ap, 'alice')), `${n}: reactions on alice's message`)
        .toEqual({});
      expect
        .soft(rx(await shownOne(p, P, mp, 'mallory')), `${n}: reactions on mallory's`)
        .toEqual({});
      const texts = (await shown(p, P)).map((m) => m.text);
      expect
        .soft(
          texts.filter((t) => /^blocked/.test(t)),
          `${n}: replies written while blocked`,
        )
        .toEqual([]);
    }
  });

  test('every change the API took answered 200 {id, state}, as promptly as a message (README: “answer {id, state} as a message does”)', async () => {
    const answers = await Promise.all(
      fired.map(async (f) => ({ ...f, a: await f.answer, ms: await f.ms })),
    );
    const bad = answers.filter(
      (x) => x.a.status !== 200 || !['delivered', 'pending'].includes(x.a.body?.state),
    );
    expect(bad.map((x) => `${x.what} → ${x.a.status} ${JSON.stringify(x.a.body)}`)).toEqual([]);
    // A message to the same devices answered `delivered` in postMs; a change answered
    // `delivered` should not take the whole 3 s window on top of that.
    const slowest = Math.max(0, ...postMs);
    const slow = answers.filter((x) => x.a.body?.state === 'delivered' && x.ms > slowest + 1_500);
    expect
      .soft(
        slow.map((x) => `${x.what}: ${x.ms} ms`),
        `changes answered "delivered" long after a message would (messages: at most ${slowest} ms)`,
      )
      .toEqual([]);
  });
});
