// §3.11 compact links, checked by an independent client (docs/PROTOCOL.md only).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import {
  startServer,
  connectUser,
  Conn,
  CompactTables,
  makeItem,
  makeItemV1,
  deriveId,
  checkStored,
  uuidv7,
  uname,
  type ServerProc,
  type Session,
  type Frame,
} from './implementer3-client.js';

let srv: ServerProc;
let alice: Session; // full link, writer
let bob: Session; // compact link, reader
let carolMixed: Session; // account registered as mixed case, logs in lower case
let chan: string;
const tables = new CompactTables();
const posted: any[] = [];

async function nextCompactPush(c: Conn, tabs: CompactTables) {
  // consume refs until the m frame
  for (;;) {
    const f = await c.next((x) => x.t === 'ref' || x.t === 'm' || x.t === 'ev');
    if (f.t === 'ref') tabs.take(f);
    else return f;
  }
}

beforeAll(async () => {
  srv = await startServer();
  alice = await connectUser(srv, uname('alice'));
  bob = await connectUser(srv, uname('bob'), { compact: 1 });
  const mixedName = 'Carol' + uname('X');
  carolMixed = await connectUser(srv, mixedName.slice(0, 20), { register: true });
  chan = uuidv7();
  await alice.conn.ok('channel_create', { id: chan, name: 'compact room', allowVisitors: true });
  await bob.conn.ok('channel_join', { channelId: chan });
  await carolMixed.conn.ok('channel_join', { channelId: chan });
}, 60_000);

afterAll(async () => {
  for (const s of [alice, bob, carolMixed]) s?.conn.close();
  await srv?.stop();
});

describe('implementer3 §3.11 compact', () => {
  it('server hello answers compact: 1 only to a peer that asked', async () => {
    expect(bob.hello.compact).toBe(1);
    expect('compact' in alice.hello).toBe(false);
  });

  it('first push is ref k, ref c, m (no id, no author, no channelId, no cert); derived id and signature verify', async () => {
    const item = makeItem(alice, chan, { text: 'héllo 👋' });
    const r = await alice.conn.ok('post', { message: item });
    expect(r).toEqual({ id: item.id, seq: r.seq, duplicate: false });
    posted.push(item);
    const seen: Frame[] = [];
    for (;;) {
      const f = await bob.conn.next((x) => x.t === 'ref' || x.t === 'm' || x.t === 'ev');
      seen.push(f);
      if (f.t === 'ref') tables.take(f);
      else break;
    }
    const m = seen[seen.length - 1]!;
    expect(seen.map((f) => f.t)).toEqual(['ref', 'ref', 'm']);
    expect(seen.filter((f) => f.t === 'ref').map((f) => Object.keys(f).sort().join(','))).toEqual(
      expect.arrayContaining(['cert,k,t', 'c,channelId,t']),
    );
    expect(m.t).toBe('m');
    expect(m.id).toBeUndefined();
    expect(m.author).toBeUndefined();
    expect(m.channelId).toBeUndefined();
    expect(m.cert).toBeUndefined();
    expect(Number.isInteger(m.k)).toBe(true);
    expect(Number.isInteger(m.c)).toBe(true);
    const full = tables.rebuild(m);
    expect(full.id).toBe(item.id);
    expect(full.channelId).toBe(chan);
    expect(full.seq).toBe(r.seq);
    expect(checkStored(full, bob.serverKey)).toEqual([]);
    // the full link gets no compact frames
    expect(alice.conn.frames.filter((f) => f.t === 'ref' || f.t === 'm')).toEqual([]);
  });

  it('next message of the same author in that channel is the m frame alone', async () => {
    const item = makeItem(alice, chan, { text: 'second', mentions: [bob.username.toLowerCase()] });
    item.text = `hi @${bob.username.toLowerCase()}`;
    // recompute id/sig after changing text
    const fixed = makeItem(alice, chan, { text: item.text, mentions: item.mentions });
    await alice.conn.ok('post', { message: fixed });
    posted.push(fixed);
    const f = await bob.conn.next((x) => x.t === 'ref' || x.t === 'm');
    expect(f.t).toBe('m');
    const full = tables.rebuild(f);
    expect(full.id).toBe(fixed.id);
    expect(checkStored(full, bob.serverKey)).toEqual([]);
  });

  it('changes (react, edit) are pushed compact with derived ids matching what was posted', async () => {
    const target = posted[0];
    const react = makeItem(alice, chan, { kind: 'react', target: target.id, emoji: '👍' });
    await alice.conn.ok('post', { message: react });
    const edit = makeItem(alice, chan, { kind: 'edit', target: target.id, text: 'héllo edited' });
    await alice.conn.ok('post', { message: edit });
    posted.push(react, edit);
    for (const want of [react, edit]) {
      const f = await nextCompactPush(bob.conn, tables);
      const full = tables.rebuild(f);
      expect(full.id).toBe(want.id);
      expect(full.kind).toBe(want.kind);
      expect(checkStored(full, bob.serverKey)).toEqual([]);
    }
  });

  it('an author whose account is spelt in mixed case: compact item carries author when it differs from cert u; rebuilt == full form', async () => {
    const item = makeItem(carolMixed, chan, { text: 'from carol' });
    const r = await carolMixed.conn.ok('post', { message: item });
    posted.push(item);
    const f = await nextCompactPush(bob.conn, tables);
    const full = tables.rebuild(f);
    expect(full.id).toBe(item.id);
    // compare with what the full-form link gets
    const h = await alice.conn.ok('sync', { channelId: chan, since: r.seq - 1, limit: 1 });
    const fullForm = h.messages[0];
    expect(full).toEqual(fullForm);
    expect(checkStored(full, bob.serverKey)).toEqual([]);
  });

  it('a protocol-3 message (version-1 id) is accepted by post and its compact form carries id', async () => {
    const item = makeItemV1(alice, chan, 'legacy text');
    const r = await alice.conn.req('post', { message: item });
    expect(r.error).toBeUndefined();
    posted.push(item);
    const f = await nextCompactPush(bob.conn, tables);
    expect(f.id).toBe(item.id);
    const full = tables.rebuild(f);
    expect(checkStored(full, bob.serverKey)).toEqual([]);
  });

  it('sync page in compact form rebuilds to exactly the full-form sync page', async () => {
    const fullPage = await alice.conn.ok('sync', { channelId: chan, since: 0, limit: 500 });
    const r = await bob.conn.req('sync', { channelId: chan, since: 0, limit: 500 });
    // refs needed by the answer come before it
    const refs = bob.conn.frames.filter((f) => f.t === 'ref');
    bob.conn.frames = bob.conn.frames.filter((f) => f.t !== 'ref');
    refs.forEach((f) => tables.take(f));
    expect(r.body.lastSeq).toBe(fullPage.lastSeq);
    const rebuilt = r.body.messages.map((m: any) => tables.rebuild(m));
    expect(rebuilt).toEqual(fullPage.messages);
    for (const m of rebuilt) expect(checkStored(m, bob.serverKey)).toEqual([]);
    for (const m of r.body.messages) {
      expect(m.channelId).toBeUndefined();
      expect(m.cert === undefined || m.k === undefined).toBe(true);
    }
  });

  it('history page (messages + related) in compact form rebuilds to the full-form page', async () => {
    const fullPage = await alice.conn.ok('history', { channelId: chan, limit: 50 });
    const r = await bob.conn.req('history', { channelId: chan, limit: 50 });
    bob.conn.frames.filter((f) => f.t === 'ref').forEach((f) => tables.take(f));
    bob.conn.frames = bob.conn.frames.filter((f) => f.t !== 'ref');
    expect(r.body.hasMore).toBe(fullPage.hasMore);
    expect(r.body.messages.map((m: any) => tables.rebuild(m))).toEqual(fullPage.messages);
    expect((r.body.related ?? []).map((m: any) => tables.rebuild(m))).toEqual(
      fullPage.related ?? [],
    );
    expect((fullPage.related ?? []).length).toBeGreaterThanOrEqual(2);
  });

  it('search page in compact form rebuilds to the full-form page', async () => {
    const fullPage = await alice.conn.ok('search', { query: 'héllo', channelIds: [chan] });
    const r = await bob.conn.req('search', { query: 'héllo', channelIds: [chan] });
    bob.conn.frames.filter((f) => f.t === 'ref').forEach((f) => tables.take(f));
    bob.conn.frames = bob.conn.frames.filter((f) => f.t !== 'ref');
    expect(r.error).toBeUndefined();
    expect(fullPage.messages.length).toBe(1);
    expect(r.body.messages.map((m: any) => tables.rebuild(m))).toEqual(fullPage.messages);
    expect((r.body.related ?? []).map((m: any) => tables.rebuild(m))).toEqual(
      fullPage.related ?? [],
    );
  });

  it('delete turns message into tombstone; compact history tombstone has digest, derived id still verifies', async () => {
    const target = posted[0];
    const del = makeItem(alice, chan, { kind: 'delete', target: target.id });
    await alice.conn.ok('post', { message: del });
    const f = await nextCompactPush(bob.conn, tables);
    expect(tables.rebuild(f).id).toBe(del.id);
    const r = await bob.conn.req('history', { channelId: chan, limit: 50 });
    bob.conn.frames.filter((x) => x.t === 'ref').forEach((x) => tables.take(x));
    bob.conn.frames = bob.conn.frames.filter((x) => x.t !== 'ref');
    const msgs = r.body.messages.map((m: any) => tables.rebuild(m));
    const tomb = msgs.find((m: any) => m.id === target.id);
    expect(tomb).toBeDefined();
    expect(tomb.text).toBeUndefined();
    expect(typeof tomb.digest).toBe('string');
    expect(checkStored(tomb, bob.serverKey)).toEqual([]);
    const compactTomb = r.body.messages.find((m: any) => m.digest);
    expect(compactTomb.id).toBeUndefined(); // derived (v2) id left out
  });

  it('a ref or m frame from the peer is fatal E_UNKNOWN_TYPE', async () => {
    const c = await Conn.open(srv);
    await c.hello({ compact: 1 });
    c.send({ t: 'ref', c: 0, channelId: chan });
    const e = await c.next((f) => f.t === 'error');
    expect(e.code).toBe('E_UNKNOWN_TYPE');
    expect(await c.waitClosed()).toBe(true);
    const c2 = await Conn.open(srv);
    await c2.hello({ compact: 1 });
    c2.send({ t: 'm', c: 0, ts: 1 });
    expect((await c2.next((f) => f.t === 'error')).code).toBe('E_UNKNOWN_TYPE');
  });

  it.each([[0], ['1'], [1.5], [-1], [true]])(
    'hello with compact %j is fatal E_BAD_FRAME',
    async (v) => {
      const c = await Conn.open(srv);
      const h = await c.hello({ compact: v });
      expect(h.t).toBe('error');
      expect(h.code).toBe('E_BAD_FRAME');
      expect(await c.waitClosed()).toBe(true);
    },
  );

  it('compact: 2 (a higher version) is answered compact: 1', async () => {
    const c = await Conn.open(srv);
    const h = await c.hello({ compact: 2 });
    expect(h.t).toBe('hello');
    expect(h.compact).toBe(1);
    c.close();
  });

  it('message id derivation reproduces the worked example of §2.1', () => {
    const ex = {
      channelId: '019abcde-0000-7000-8000-0000000000c1',
      ts: 1764150000000,
      lc: 0,
      text: 'héllo 👋',
    };
    expect(deriveId(ex, 'alice')).toBe('019abf88-b980-8f8b-9ffd-11eb42a3c62f');
  });

  it('a visitor on a compact link gets m pushes of the channel it views', async () => {
    const { connectVisitor } = await import('./implementer3-client.js');
    const v = await connectVisitor(srv, 'Compactguest', true);
    expect(v.hello.compact).toBe(1);
    await v.conn.ok('channel_join', { channelId: chan });
    const item = makeItem(alice, chan, { text: 'for the visitor' });
    await alice.conn.ok('post', { message: item });
    const t = new CompactTables();
    for (;;) {
      const f = await v.conn.next(
        (x) => x.t === 'ref' || x.t === 'm' || (x.t === 'ev' && x.ev === 'message'),
      );
      if (f.t === 'ref') t.take(f);
      else {
        expect(f.t).toBe('m');
        expect(t.rebuild(f).id).toBe(item.id);
        break;
      }
    }
    v.conn.close();
    await nextCompactPush(bob.conn, tables);
  });

  it("the poster's other session (another device, own login) on a compact link gets the m push", async () => {
    const other = await connectUser(srv, alice.username, { compact: 1, register: false });
    await other.conn.ok('subscribe', { channelIds: [chan] });
    const item = makeItem(alice, chan, { text: 'to my other device' });
    await alice.conn.ok('post', { message: item });
    expect(tables.rebuild(await nextCompactPush(bob.conn, tables)).id).toBe(item.id);
    const t = new CompactTables();
    for (;;) {
      const f = await other.conn.next((x) => x.t === 'ref' || x.t === 'm' || x.t === 'ev');
      if (f.t === 'ref') t.take(f);
      else {
        expect(f.t).toBe('m');
        expect(t.rebuild(f).id).toBe(item.id);
        break;
      }
    }
    other.conn.close();
  });

  it('same session resumed on a second connection hears nothing of its post either ("except the connections of the session that posted … all of them")', async () => {
    const { Conn: C } = await import('./implementer3-client.js');
    const c = await C.open(srv);
    await c.hello({ compact: 1 });
    await c.ok('resume', { token: alice.token });
    await c.ok('subscribe', { channelIds: [chan] });
    const item = makeItem(alice, chan, { text: 'same session other connection' });
    await alice.conn.ok('post', { message: item });
    expect(tables.rebuild(await nextCompactPush(bob.conn, tables)).id).toBe(item.id);
    const f = await c
      .next((x) => x.t === 'm' || (x.t === 'ev' && x.ev === 'message'), 1500)
      .catch(() => null);
    c.close();
    expect(f).toBeNull();
  });

  it('a tombstone posted with deletedBy is stored; the delete sent after is duplicate: true', async () => {
    const { digestOf } = await import('./implementer3-client.js');
    const msg = makeItem(alice, chan, { text: 'never leaves the device' });
    const del = makeItem(alice, chan, { kind: 'delete', target: msg.id });
    const { text, ...rest } = msg;
    const tomb = { ...rest, digest: digestOf(msg) };
    const r = await alice.conn.req('post', {
      message: tomb,
      deletedBy: { ...del, author: alice.username },
    });
    expect(r.error).toBeUndefined();
    expect(r.body).toMatchObject({ id: msg.id, duplicate: false });
    const r2 = await alice.conn.ok('post', { message: del });
    expect(r2).toMatchObject({ id: del.id, duplicate: true });
    // bob's compact pushes: the tombstone (with digest, no id) and the delete
    const got: any[] = [];
    while (got.length < 2) got.push(tables.rebuild(await nextCompactPush(bob.conn, tables)));
    expect(got.map((m) => m.id).sort()).toEqual([msg.id, del.id].sort());
    const tm = got.find((m) => m.id === msg.id);
    expect(tm.text).toBeUndefined();
    expect(checkStored(tm, bob.serverKey)).toEqual([]);
  });
});
