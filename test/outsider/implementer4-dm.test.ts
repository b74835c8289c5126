/**
 * An independent implementer's DM client (PROTOCOL.md §10) against real peers, written from the
 * documents only: what its findings showed the peers getting wrong.
 *
 * - §10.4 `members`: "every member's user name, the sender's included, sorted (code-unit order),
 *   each once, 2–10, spelt as the sender spells them: receivers compare names without case".
 *   So `["Ivan","bob"]` names the same two users as `["bob","ivan"]` (and is the only sorted
 *   spelling with "Ivan": "I" sorts before "b"). Real peers compared the lists
 *   position by position: a known conversation spelt otherwise was refused ("a conversation
 *   keeps its members"), lost without a word through the mailbox, and in a group two real
 *   peers that had kept different spellings refused each other's messages from then on.
 * - §10.4: "a receiver refuses (and logs `dm_refused`)"; §10.6: `dm_refused` is one per
 *   envelope. Refusals over P2P (`dm_deliver`) were answered but not logged.
 * Real processes on 127.0.0.1: a server, bob and dave on real peers, ivan a raw client
 * (dm-lib.ts: real X3DH and Double Ratchet) sealing payloads as it likes.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { killAll, logLines, newKey, serverHello, startPeer, startServer } from './lib.js';
import { devicesOf, newDevice, pairId, publishBody, seal, type Session } from './dm-lib.js';
import {
  dmPayload,
  hostileMember,
  shownOne,
  waitFor,
  type Hostile,
  type Peer,
  type Target,
} from './attack10-lib.js';
import { p2pDoor, sessionRetry } from './attack11-lib.js';

afterAll(killAll);

let srv: Awaited<ReturnType<typeof startServer>>;
let B: Peer; // bob
let D: Peer; // dave
let ivan: Hostile;
let bobDev: Target;
let daveDev: Target;

const uuid = () => crypto.randomUUID();
const pw = (u: string) => `pw-${u}-implementer4`;

beforeAll(async () => {
  srv = await startServer(['--max-registrations-per-address', '1000']);
  [B, D] = await Promise.all([startPeer(srv), startPeer(srv)]);
  for (const [p, u] of [
    [B, 'bob'],
    [D, 'dave'],
  ] as const) {
    expect((await p.api('POST', '/api/register', { username: u, password: pw(u) })).status).toBe(
      201,
    );
    expect((await p.api('POST', '/api/login', { username: u, password: pw(u) })).status).toBe(200);
  }
  ivan = await hostileMember(srv, 'ivan');
  const one = async (u: string) =>
    waitFor(
      async () => {
        const d = await devicesOf(ivan, u);
        return d.length === 1 && { username: u, deviceId: d[0].deviceId as string };
      },
      10_000,
      `${u}'s device`,
    );
  [bobDev, daveDev] = await Promise.all([one('bob'), one('dave')]);
}, 30_000);

describe('§10.4: members spelt in another case are the same users', () => {
  test('a known conversation of two takes a payload spelling its member otherwise, through the mailbox and P2P', async () => {
    const started = await B.api('POST', '/api/dms', { members: ['ivan'] });
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    const conv = pairId('bob', 'ivan');
    expect(started.body.id).toBe(conv);
    // The control, as bob's peer spells the members.
    const control = uuid();
    await ivan.send([bobDev], {
      t: 'msg',
      conversation: conv,
      members: ['bob', 'ivan'],
      id: control,
      text: 'spelt as the account',
    });
    // The same two users, ivan spelt Ivan: sorted as spelt, "Ivan" comes first ("I" < "b").
    const mailed = uuid();
    await ivan.send([bobDev], {
      t: 'msg',
      conversation: conv,
      members: ['Ivan', 'bob'],
      id: mailed,
      text: 'ivan spelt Ivan, through the mailbox',
    });
    await waitFor(() => shownOne(B, conv, control, 'ivan'), 10_000, 'the control at bob');
    await waitFor(() => shownOne(B, conv, mailed, 'ivan'), 10_000, 'the Ivan message at bob');
    // Over P2P, the answer says taken.
    const sessions = new Map<string, Session>([
      [bobDev.deviceId, await sessionRetry(ivan, 'bob', bobDev.deviceId)],
    ]);
    const door = await p2pDoor(B, ivan, sessions, { t: 'msg', conversation: conv });
    try {
      const direct = uuid();
      expect(
        await door.deliver(bobDev.deviceId, {
          members: ['Ivan', 'bOb'],
          id: direct,
          text: 'both spelt otherwise, P2P',
        }),
      ).toBe('ok');
      await waitFor(() => shownOne(B, conv, direct, 'ivan'), 10_000, 'the P2P message at bob');
    } finally {
      door.close();
    }
    // Nothing refused on the way, and the conversation is still one, of bob and ivan.
    expect(logLines(B.data).filter((l) => l.includes('dm_refused'))).toEqual([]);
    const list = await B.api('GET', '/api/dms');
    expect(list.body.filter((c: any) => c.id === conv)).toHaveLength(1);
    expect((await B.api('GET', `/api/dms/${conv}`)).body.members).toEqual(['bob', 'ivan']);
  });

  test('a group started with a member spelt otherwise in one copy keeps its two real peers talking, each shown as its account', async () => {
    const G = uuid();
    // bob's copy spells him BOB, dave's copy spells everyone as their accounts: both valid.
    const first = uuid();
    const base = { t: 'msg', conversation: G, id: first, ts: Date.now(), text: 'group opens' };
    await ivan.send([bobDev], { ...base, members: ['BOB', 'dave', 'ivan'] });
    await ivan.send([daveDev], { ...base, members: ['bob', 'dave', 'ivan'] });
    await waitFor(() => shownOne(B, G, first, 'ivan'), 10_000, 'the group at bob');
    await waitFor(() => shownOne(D, G, first, 'ivan'), 10_000, 'the group at dave');
    // Each peer shows its own user, and everyone it has heard of, as the server spells them.
    expect((await B.api('GET', `/api/dms/${G}`)).body.members).toEqual(['bob', 'dave', 'ivan']);
    // bob and dave write to each other in it.
    const fromBob = await B.api('POST', `/api/dms/${G}/messages`, { text: 'bob to the group' });
    expect(fromBob.status, JSON.stringify(fromBob.body)).toBe(201);
    const fromDave = await D.api('POST', `/api/dms/${G}/messages`, { text: 'dave to the group' });
    expect(fromDave.status, JSON.stringify(fromDave.body)).toBe(201);
    await waitFor(() => shownOne(D, G, fromBob.body.id, 'bob'), 15_000, "bob's message at dave");
    await waitFor(() => shownOne(B, G, fromDave.body.id, 'dave'), 15_000, "dave's message at bob");
    for (const p of [B, D])
      expect(
        logLines(p.data).filter((l) => l.includes('dm_refused')),
        p.data,
      ).toEqual([]);
  });
});

describe('§10.6: a new sender device the receiver cannot check now is E_OFFLINE, not a bad key', () => {
  test('a device published just after the receiver last asked about its user is told to use the mailbox, and its envelope then goes through', async () => {
    const conv = pairId('dave', 'ivan');
    // dave's peer asks the server about ivan's devices now (ivan's first device writes P2P).
    const first = new Map<string, Session>([
      [daveDev.deviceId, await sessionRetry(ivan, 'dave', daveDev.deviceId)],
    ]);
    const door1 = await p2pDoor(D, ivan, first, {
      t: 'msg',
      conversation: conv,
      members: ['dave', 'ivan'],
    });
    expect(await door1.deliver(daveDev.deviceId, { text: 'from ivan one' })).toBe('ok');
    door1.close();
    // ivan's second device: a new session, published at once, writing P2P within 5 s.
    const { c } = await serverHello(srv);
    const key = newKey();
    const l = await c.req('login', {
      username: 'ivan',
      password: ivan.password,
      publicKey: key.pk,
    });
    expect(l.body?.username).toBe('ivan');
    const dev = newDevice(5);
    expect((await c.req('dm_publish', publishBody(dev))).body).toBeTruthy();
    const two = { ...ivan, c, key, cert: l.body.cert, sessionId: l.body.sessionId, dev } as Hostile;
    const second = new Map<string, Session>([
      [daveDev.deviceId, await sessionRetry(two, 'dave', daveDev.deviceId)],
    ]);
    const door2 = await p2pDoor(D, two, second, {
      t: 'msg',
      conversation: conv,
      members: ['dave', 'ivan'],
    });
    try {
      expect(await door2.deliver(daveDev.deviceId, { text: 'from ivan two, too soon' })).toBe(
        'E_OFFLINE',
      );
    } finally {
      door2.close();
    }
    // Through the mailbox, as E_OFFLINE says, it is taken.
    const mailed = uuid();
    const body = seal(
      second.get(daveDev.deviceId)!,
      dmPayload({
        t: 'msg',
        conversation: conv,
        members: ['dave', 'ivan'],
        id: mailed,
        text: 'from ivan two',
      }),
    );
    const sent = await c.req('dm_send', { envelopes: [{ id: uuid(), to: daveDev, body }] });
    expect(sent.body?.results?.[0]?.ok, JSON.stringify(sent)).toBe(true);
    await waitFor(() => shownOne(D, conv, mailed, 'ivan'), 10_000, 'the mailed message at dave');
    c.close();
  });
});

describe('§10.4, §10.6: a refusal is logged whichever way the envelope came', () => {
  test('a payload refused over P2P writes one dm_refused record naming the link', async () => {
    const conv = pairId('dave', 'ivan');
    const sessions = new Map<string, Session>([
      [daveDev.deviceId, await sessionRetry(ivan, 'dave', daveDev.deviceId)],
    ]);
    const door = await p2pDoor(D, ivan, sessions, { t: 'msg' });
    const before = logLines(D.data).filter((l) => l.includes('dm_refused')).length;
    try {
      // A conversation of two under an id that is not the pair's (§10.4): refused.
      expect(
        await door.deliver(daveDev.deviceId, {
          conversation: uuid(),
          members: ['dave', 'ivan'],
          text: 'a pair under a random id',
        }),
      ).toBe('E_FORBIDDEN');
      // And one the receiver takes, for contrast.
      const ok = uuid();
      expect(
        await door.deliver(daveDev.deviceId, {
          conversation: conv,
          members: ['dave', 'ivan'],
          id: ok,
          text: 'a proper pair message',
        }),
      ).toBe('ok');
    } finally {
      door.close();
    }
    const refused = await waitFor(
      async () => {
        const l = logLines(D.data).filter((x) => x.includes('dm_refused'));
        return l.length > before && l;
      },
      5_000,
      'a dm_refused record at dave',
    );
    expect(refused).toHaveLength(before + 1);
    const line = refused.at(-1)!;
    expect(line).toMatch(/peer=peer:ivan@127\.0\.0\.1:\d+/);
    expect(line).toContain('code=E_FORBIDDEN');
    expect(line).toContain(`from=ivan/${ivan.dev.deviceId}`);
  });
});
