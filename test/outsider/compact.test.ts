// Outsider tests of compact pushes and pages (PROTOCOL.md §3.11), written from the document
// alone: a strict decoder of our own (test/outsider/compact-lib.ts) on one link that asked for
// `compact: 1`, next to a link in the full form, both of one reader subscribed to the same
// channels: everything the compact link gets, rebuilt, must equal what the full link gets.
import { test, expect, beforeAll, afterAll } from 'vitest';
import crypto from 'node:crypto';
import { startServer, killAll, sleep, Raw, newKey, uuid7 } from './lib.js';
import {
  makeItem,
  verifyItem,
  itemId,
  bodyDigest,
  type Signer,
  type MakeOpts,
} from './items-lib.js';
import { CompactReader, FullReader, bySeq, TABLE_SIZE, FRAME_NAMES } from './compact-lib.js';

afterAll(killAll);

type Server = Awaited<ReturnType<typeof startServer>>;
let srv: Server;
let serverKey: crypto.KeyObject;

const code = (r: any) => r?.error?.code ?? (r?.body ? 'OK' : JSON.stringify(r));

/** A connection that said hello; `compact` as given (absent when undefined). */
async function open(compact?: unknown, attach?: (c: Raw) => void, maxFrame?: number) {
  const c = new Raw(srv.host, srv.port);
  attach?.(c);
  await c.connected();
  c.send({
    t: 'hello',
    v: 4,
    role: 'peer',
    agent: 'outsider-compact',
    ...(compact === undefined ? {} : { compact }),
    ...(maxFrame ? { maxFrame } : {}),
  });
  const hello = await c.nextFrame();
  const ping = setInterval(() => c.send({ t: 'ping' }), 2000);
  c.sock.on('close', () => clearInterval(ping));
  return { c, hello };
}

/** A request answered, retried while the server says E_RATE_LIMITED. */
async function ask(c: Raw, op: string, body: unknown) {
  for (;;) {
    const r = await c.req(op, body);
    if (r.error?.code !== 'E_RATE_LIMITED') return r;
    await sleep(r.error.retryAfterMs ?? 200);
  }
}

interface Account extends Signer {
  token: string;
  c: Raw;
}
async function account(username: string): Promise<Account> {
  const { c } = await open();
  const password = 'pw-' + username + '-123';
  await c.req('register', { username, password });
  const key = newKey();
  const l = await c.req('login', { username, password, publicKey: key.pk });
  if (!l.body) throw new Error('login ' + JSON.stringify(l));
  return { c, username: l.body.username, cert: l.body.cert, key, token: l.body.token };
}

/** A new certificate for the same session and key: `resume` renews it (§3.3). */
async function renewed(a: Account) {
  const { c } = await open();
  const r = await c.req('resume', { token: a.token });
  if (!r.body) throw new Error('resume ' + JSON.stringify(r));
  return { c, signer: { ...a, cert: r.body.cert as string } };
}

/** Post one item as `who` on connection `c`; it must be stored. */
async function post(c: Raw, who: Signer, channelId: string, o: MakeOpts = {}) {
  const item = makeItem(who, channelId, o);
  const r = await ask(c, 'post', { message: item });
  if (code(r) !== 'OK') throw new Error('post ' + JSON.stringify(r));
  return item;
}

/** Post as `a` with a certificate never used before, on a connection of its own. */
async function postFresh(a: Account, channelId: string, text: string) {
  const { c, signer } = await renewed(a);
  const m = await post(c, signer, channelId, { body: { text } });
  c.close();
  return m;
}

async function waitFor(f: () => boolean, what: string, ms = 10000) {
  const t0 = Date.now();
  while (!f()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting for ' + what);
    await sleep(20);
  }
}

let olga: Account, oscar: Account, rita: Account;
let rc: Raw, rf: Raw; // rita's compact link and her full-form link (one session)
let cr: CompactReader, fr: FullReader;
let X: string; // the channel of more than 128 authors
let A: string; // the channel of messages, replies, edits, reactions, deletes
let subscribed: string[] = [];
let expectedPushes = 0;

/** Both links got every push so far, and the compact ones, rebuilt, are the full ones. */
async function pushesAgree() {
  await waitFor(
    () => cr.pushes.length >= expectedPushes && fr.pushes.length >= expectedPushes,
    `${expectedPushes} pushes (compact ${cr.pushes.length}, full ${fr.pushes.length})`,
  );
  expect(cr.errors).toEqual([]);
  expect(fr.errors).toEqual([]);
  expect(cr.pushes.length).toBe(expectedPushes);
  expect(fr.pushes.length).toBe(expectedPushes);
  expect(bySeq(cr.pushes)).toStrictEqual(bySeq(fr.pushes));
}

/** The same request on both links: the compact answer, rebuilt, equals the full one. */
async function sameAnswer(op: string, body: unknown) {
  const [a, b] = [await ask(rc, op, body), await ask(rf, op, body)];
  expect(cr.errors).toEqual([]);
  expect(code(a)).toBe('OK');
  expect(a.body).toStrictEqual(b.body);
  return { answer: a.body, names: cr.answers[cr.answers.length - 1]! };
}

beforeAll(async () => {
  srv = await startServer();
  olga = await account('olga');
  oscar = await account('oscar');
  rita = await account('rita');
  rita.c.close(); // her links below: one compact, one full, both resuming her session
  ({ c: rc } = await open(1, (c) => (cr = new CompactReader(c))));
  expect(code(await rc.req('resume', { token: rita.token }))).toBe('OK');
  ({ c: rf } = await open(undefined, (c) => (fr = new FullReader(c))));
  expect(code(await rf.req('resume', { token: rita.token }))).toBe('OK');
  serverKey = crypto.createPublicKey({
    key: Buffer.from(cr.log[0].publicKey, 'base64'),
    format: 'der',
    type: 'spki',
  });
  A = uuid7();
  expect(
    code(await olga.c.req('channel_create', { id: A, name: 'compact A', allowVisitors: false })),
  ).toBe('OK');
  for (const u of [oscar.c, rc])
    expect(code(await u.req('channel_join', { channelId: A }))).toBe('OK');
  subscribed = [A];
  expect((await rf.req('subscribe', { channelIds: subscribed })).body.channelIds).toEqual([A]);
}, 30000);

test("our §2.1 ids reproduce the document's worked example", () => {
  const d = bodyDigest({ text: 'héllo 👋' });
  expect(
    itemId('019abcde-0000-7000-8000-0000000000c1', 'alice', 1764150000000, 0, 'message', null, d),
  ).toBe('019abf88-b980-8f8b-9ffd-11eb42a3c62f');
});

test('hellos: compact 1 is answered compact 1, compact 2 too, none is answered without it', async () => {
  expect(cr.log[0]).toMatchObject({ t: 'hello', role: 'server', compact: 1 });
  expect(fr.errors).toEqual([]);
  const full = await open();
  expect(full.hello.t).toBe('hello');
  expect('compact' in full.hello).toBe(false);
  const two = await open(2);
  expect(two.hello).toMatchObject({ t: 'hello', compact: 1 });
  full.c.close();
  two.c.close();
});

test('messages, a reply with mentions, edits, reactions, a channel change and a delete: pushes and pages rebuilt equal the full form', async () => {
  const m1 = await post(olga.c, olga, A, { body: { text: 'first message, about quokkas' } });
  const m2 = await post(oscar.c, oscar, A, {
    body: { text: 'a reply to @olga about quokkas', replyTo: m1.id, mentions: ['olga', 'here'] },
  });
  await post(olga.c, olga, A, {
    kind: 'edit',
    target: m1.id,
    body: { text: 'first message, edited' },
  });
  await post(oscar.c, oscar, A, { kind: 'react', target: m1.id, body: { emoji: '👍' } });
  await post(oscar.c, oscar, A, { kind: 'react', target: m1.id, body: { emoji: '🎉' } });
  await post(oscar.c, oscar, A, { kind: 'unreact', target: m1.id, body: { emoji: '👍' } });
  await post(oscar.c, oscar, A, {
    kind: 'edit',
    target: m2.id,
    body: { text: 'the reply, edited for @olga', mentions: ['olga'] },
  });
  await post(olga.c, olga, A, { kind: 'react', target: m2.id, body: { emoji: '👀' } });
  await post(olga.c, olga, A, { kind: 'channel', body: { change: { topic: 'compact topic' } } });
  await post(oscar.c, oscar, A, { kind: 'delete', target: m2.id });
  await post(olga.c, olga, A, { body: { text: 'after the delete, quokkas again' } });
  expectedPushes += 11;
  await pushesAgree();
  for (const p of cr.pushes) expect(verifyItem(p.message, serverKey)).toBe(true);

  const h = await sameAnswer('history', { channelId: A, limit: 500 });
  const shown = h.answer.messages.find((m: any) => m.id === m2.id);
  expect(shown.digest).toBeDefined(); // the reply is a tombstone now (§2.2 Erasure)
  expect(shown.text).toBeUndefined();
  expect(
    h.answer.related.some((m: any) => m.kind === 'edit' && m.digest && m.target === m2.id),
  ).toBe(true);
  for (const m of [...h.answer.messages, ...h.answer.related])
    expect(verifyItem(m, serverKey)).toBe(true);
  const s = await sameAnswer('sync', { channelId: A, since: 0, limit: 500 });
  expect(s.answer.messages.length).toBe(11);
  await sameAnswer('sync', { channelId: A, since: 4, limit: 3 });
  await sameAnswer('history', { channelId: A, limit: 1, before: h.answer.messages.at(-1).id });
  // m1 was edited away from the word and m2 deleted: only the last message shows it (§3.3 Search).
  const q = await sameAnswer('search', { query: 'quokkas', limit: 50 });
  expect(q.answer.messages.map((m: any) => m.text)).toEqual(['after the delete, quokkas again']);
  await sameAnswer('search', { query: 'quokkas', channelIds: [A], limit: 1 });
});

test('a pushed 100-character message is at most 300 bytes on the wire once its refs were sent', async () => {
  const text = 'x'.repeat(60) + ' a hundred characters of text, exactly so. '.slice(0, 40);
  expect([...text].length).toBe(100);
  const before = cr.log.length;
  await post(olga.c, olga, A, { body: { text } });
  expectedPushes++;
  await pushesAgree();
  const frames = cr.log.slice(before).filter((f) => f.t === 'ref' || f.t === 'm');
  expect(frames.map((f) => f.t)).toEqual(['m']); // olga's certificate and A were defined already
  const compactBytes = cr.pushes.at(-1)!.wireBytes;
  const fullBytes = fr.pushes.at(-1)!.wireBytes;
  console.log(
    `100-character push: compact m frame ${compactBytes} bytes, full ev frame ${fullBytes} bytes`,
  );
  expect(compactBytes).toBeLessThanOrEqual(300);
});

test(`past ${TABLE_SIZE} channel and certificate numbers on one link, with pages between: never an undefined number, always the full form`, async () => {
  // 300 channels (150 owned by each of two owners), each getting one message signed with a
  // certificate never used before (a `resume` renews it), with pages of old and new channels
  // asked for between the batches, so that numbers are forgotten and must be defined again.
  const owners = [olga, oscar];
  const chans: { id: string; owner: Account }[] = [];
  for (let i = 0; i < 300; i++) chans.push({ id: uuid7(), owner: owners[i % 2]! });
  const created = await Promise.all(
    chans.map((ch, i) =>
      ch.owner.c.req('channel_create', { id: ch.id, name: 'p' + i, allowVisitors: false }),
    ),
  );
  expect(created.map(code).filter((x) => x !== 'OK')).toEqual([]);
  const joined = await Promise.all(chans.map((ch) => rc.req('channel_join', { channelId: ch.id })));
  expect(joined.map(code).filter((x) => x !== 'OK')).toEqual([]);
  subscribed = [A, ...chans.map((c) => c.id)];
  expect((await rf.req('subscribe', { channelIds: subscribed })).body.channelIds.length).toBe(301);
  expect((await rc.req('subscribe', { channelIds: subscribed })).body.channelIds.length).toBe(301);

  const BATCH = 30;
  for (let b = 0; b < chans.length; b += BATCH) {
    const batch = chans.slice(b, b + BATCH);
    for (let i = 0; i < batch.length; i += 6)
      await Promise.all(
        batch
          .slice(i, i + 6)
          .map((ch, j) => postFresh(ch.owner, ch.id, `pressure quokka ${b + i + j}`)),
      );
    expectedPushes += batch.length;
    await pushesAgree();
    // Pages whose items name many numbers, old ones forgotten by now among them.
    await sameAnswer('search', { query: 'pressure', limit: 50 });
    await sameAnswer('history', { channelId: chans[(b * 7) % (b + BATCH)]!.id, limit: 10 });
    await sameAnswer('sync', { channelId: chans[b === 0 ? 1 : b - 29]!.id, since: 0, limit: 5 });
  }
  expect(cr.numbersSeen.c.size).toBeGreaterThan(TABLE_SIZE);
  expect(cr.numbersSeen.k.size).toBeGreaterThan(TABLE_SIZE);
  expect(cr.defined.c).toBeGreaterThan(TABLE_SIZE);
  // The first channels' numbers are forgotten by now: asking for their pages again works.
  for (const ch of chans.slice(0, 5))
    await sameAnswer('sync', { channelId: ch.id, since: 0, limit: 500 });
  expect(cr.errors).toEqual([]);
  console.log(
    `one compact link: ${cr.numbersSeen.c.size} channel and ${cr.numbersSeen.k.size} certificate numbers, ` +
      `${cr.defined.c} + ${cr.defined.k} ref frames`,
  );
}, 80000);

test(`an answer with more than ${FRAME_NAMES} authors names ${FRAME_NAMES} certificates by number and carries the rest whole`, async () => {
  X = uuid7();
  expect(
    code(await olga.c.req('channel_create', { id: X, name: 'many authors', allowVisitors: false })),
  ).toBe('OK');
  expect(code(await oscar.c.req('channel_join', { channelId: X }))).toBe('OK');
  expect(code(await rc.req('channel_join', { channelId: X }))).toBe('OK');
  subscribed.push(X);
  expect(code(await rf.req('subscribe', { channelIds: subscribed }))).toBe('OK');
  const N = 200;
  const posted: any[] = [];
  for (let i = 0; i < N; i += 8)
    posted.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(8, N - i) }, (_, j) =>
          postFresh(j % 2 ? olga : oscar, X, `author ${i + j}`),
        ),
      )),
    );
  // Two renewals of one session within one millisecond give one certificate (same iat).
  const certs = new Set(posted.map((m) => m.cert)).size;
  expect(certs).toBeGreaterThan(FRAME_NAMES);
  expectedPushes += N;
  await pushesAgree();
  for (const q of [
    ['history', { channelId: X, limit: 500 }],
    ['sync', { channelId: X, since: 0, limit: 500 }],
  ] as const) {
    const { answer, names } = await sameAnswer(q[0], q[1]);
    expect(answer.messages.length).toBe(N);
    expect(new Set(answer.messages.map((m: any) => m.cert)).size).toBe(certs);
    expect(names.distinctCerts).toBe(certs);
    expect(names.distinctK).toBe(FRAME_NAMES);
    expect(names.wholeCertItems).toBeGreaterThanOrEqual(certs - FRAME_NAMES);
    expect(names.wholeAlsoNumbered).toBe(0);
    console.log(
      `${q[0]} of ${N} items by ${certs} certificates: ${names.distinctK} numbered, ${names.wholeCertItems} items carry theirs whole`,
    );
  }
}, 60000);

/** The server still serves rita's compact and full links normally. */
async function stillServing(text: string) {
  await post(olga.c, olga, A, { body: { text } });
  expectedPushes++;
  await pushesAgree();
  await sameAnswer('history', { channelId: A, limit: 3 });
}

test('a hello whose compact is a string, 0, negative, a fraction, a boolean, null, an array or an object is E_BAD_FRAME, and others are still served', async () => {
  for (const bad of ['1', 0, -1, 1.5, true, null, [1], { v: 1 }]) {
    const { c, hello } = await open(bad);
    expect([bad, hello.t, hello.code]).toEqual([bad, 'error', 'E_BAD_FRAME']);
    await c.closeP;
  }
  await stillServing('served after bad hellos');
});

test('a peer that sends ref or m frames gets E_UNKNOWN_TYPE and is closed; others are still served', async () => {
  const cases: [unknown, boolean, any][] = [
    [1, true, { t: 'ref', k: 0, cert: olga.cert }],
    [1, true, { t: 'ref', c: 0, channelId: A }],
    [
      1,
      true,
      { t: 'm', c: 0, k: 0, ts: Date.now(), lc: 0, text: 'hi', sig: 'x'.repeat(86), seq: 1 },
    ],
    [1, false, { t: 'ref', k: 0, cert: olga.cert }],
    [
      undefined,
      true,
      { t: 'm', c: 0, k: 0, ts: Date.now(), lc: 0, text: 'hi', sig: 'x'.repeat(86), seq: 1 },
    ],
    [undefined, false, { t: 'ref', c: 0, channelId: A }],
  ];
  for (const [compact, session, f] of cases) {
    const { c } = await open(compact);
    if (session) expect(code(await c.req('resume', { token: rita.token }))).toBe('OK');
    const before = c.frames.length;
    c.send(f);
    await c.closeP;
    const got = c.frames.slice(before).filter((x) => x.t !== 'pong');
    expect([compact, session, f.t, got]).toEqual([
      compact,
      session,
      f.t,
      [expect.objectContaining({ t: 'error', code: 'E_UNKNOWN_TYPE' })],
    ]);
  }
  await stillServing('served after ref and m from peers');
});

test('after a reconnect the tables start empty: the new link gets ref frames again', async () => {
  let cr2!: CompactReader;
  const { c: rc2 } = await open(1, (c) => (cr2 = new CompactReader(c, cr.instance)));
  expect(code(await rc2.req('resume', { token: rita.token }))).toBe('OK');
  expect(code(await rc2.req('subscribe', { channelIds: [A] }))).toBe('OK');
  const m = await post(olga.c, olga, A, { body: { text: 'to the new link' } });
  expectedPushes++;
  await pushesAgree();
  await waitFor(() => cr2.pushes.length === 1, 'the push on the new link');
  expect(cr2.errors).toEqual([]);
  expect(
    cr2.log
      .filter((f) => f.t === 'ref' || f.t === 'm')
      .map((f) => f.t)
      .sort(),
  ).toEqual(['m', 'ref', 'ref']);
  expect(cr2.pushes[0]!.message).toStrictEqual(fr.pushes.at(-1)!.message);
  expect(cr2.pushes[0]!.message.id).toBe(m.id);
  // A page on the new link: olga's and oscar's certificates of A defined there as needed.
  const a = await ask(rc2, 'history', { channelId: A, limit: 500 });
  const b = await ask(rf, 'history', { channelId: A, limit: 500 });
  expect(cr2.errors).toEqual([]);
  expect(a.body).toStrictEqual(b.body);
  rc2.close();
});

test('pages are cut to maxFrame by their full size: the compact page holds the same items as the full one', async () => {
  // 200 items of about 750 bytes each in X: more than a 64 KiB frame holds in the full form.
  let cr3!: CompactReader;
  let fr3!: FullReader;
  const { c: rc3 } = await open(1, (c) => (cr3 = new CompactReader(c, cr.instance)), 65536);
  const { c: rf3 } = await open(undefined, (c) => (fr3 = new FullReader(c)), 65536);
  for (const c of [rc3, rf3]) expect(code(await c.req('resume', { token: rita.token }))).toBe('OK');
  for (const [op, body] of [
    ['history', { channelId: X, limit: 500 }],
    ['sync', { channelId: X, since: 0, limit: 500 }],
    ['search', { query: 'author', channelIds: [X], limit: 50 }],
  ] as const) {
    const a = await ask(rc3, op, body);
    const b = await ask(rf3, op, body);
    expect(cr3.errors).toEqual([]);
    expect(fr3.errors).toEqual([]);
    expect(code(b)).toBe('OK');
    if (op !== 'search') expect(b.body.messages.length).toBeLessThan(200); // the full page was cut
    expect([op, a.body]).toStrictEqual([op, b.body]);
  }
  rc3.close();
  rf3.close();
});

test('a ref frame before hello is E_HELLO_REQUIRED (§3.2)', async () => {
  const c = new Raw(srv.host, srv.port);
  await c.connected();
  c.send({ t: 'ref', c: 0, channelId: A });
  const f = await c.nextFrame();
  expect(f).toMatchObject({ t: 'error', code: 'E_HELLO_REQUIRED' });
  await c.closeP;
  await stillServing('served after a ref before hello');
});

test('the connection that posted gets no m frame of its own post; the others do (§3.5)', async () => {
  let ocr!: CompactReader;
  const { c: oc } = await open(1, (c) => (ocr = new CompactReader(c, cr.instance)));
  expect(code(await oc.req('resume', { token: olga.token }))).toBe('OK');
  expect(code(await oc.req('subscribe', { channelIds: [A] }))).toBe('OK');
  const m = await post(oc, olga, A, { body: { text: 'olga on her compact link' } });
  expectedPushes++;
  await pushesAgree();
  expect(cr.pushes.at(-1)!.message.id).toBe(m.id);
  await post(oscar.c, oscar, A, { body: { text: 'oscar, seen by olga' } });
  expectedPushes++;
  await pushesAgree();
  await waitFor(() => ocr.pushes.length === 1, "oscar's push on olga's link");
  await sleep(100);
  expect(ocr.errors).toEqual([]);
  expect(ocr.pushes.map((p) => p.message.text)).toEqual(['oscar, seen by olga']);
  oc.close();
});

test("a visitor's compact link rebuilds what a member's full link gets", async () => {
  const V = uuid7();
  const created = await olga.c.req('channel_create', {
    id: V,
    name: 'open to visitors',
    allowVisitors: true,
  });
  expect(code(created)).toBe('OK');
  expect(code(await rc.req('channel_join', { channelId: V }))).toBe('OK');
  subscribed.push(V);
  expect(code(await rf.req('subscribe', { channelIds: subscribed }))).toBe('OK');
  let vr!: CompactReader;
  const { c: vc } = await open(1, (c) => (vr = new CompactReader(c, cr.instance)));
  expect(code(await vc.req('visitor', { name: 'Vera Visitor', publicKey: newKey().pk }))).toBe(
    'OK',
  );
  expect(code(await vc.req('channel_join', { channelId: V }))).toBe('OK');
  expect(code(await oscar.c.req('channel_join', { channelId: V }))).toBe('OK');
  const m1 = await post(olga.c, olga, V, { body: { text: 'welcome, visitors' } });
  await post(oscar.c, oscar, V, { kind: 'react', target: m1.id, body: { emoji: '👋' } });
  expectedPushes += 2;
  await pushesAgree();
  await waitFor(() => vr.pushes.length === 2, 'the visitor pushes');
  expect(vr.errors).toEqual([]);
  expect(bySeq(vr.pushes)).toStrictEqual(bySeq(fr.pushes.filter((p) => p.message.channelId === V)));
  const a = await ask(vc, 'history', { channelId: V, limit: 50 });
  const b = await ask(rf, 'history', { channelId: V, limit: 50 });
  expect(vr.errors).toEqual([]);
  expect(a.body).toStrictEqual(b.body);
  vc.close();
});
