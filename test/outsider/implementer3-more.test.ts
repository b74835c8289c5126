// More documented behaviour: frame caps, logout, revocation, events, forward, channel items.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import crypto from 'node:crypto';
import {
  startServer,
  connectUser,
  Conn,
  makeItem,
  uuidv7,
  uname,
  newKey,
  type ServerProc,
  type Session,
} from './implementer3-client.js';

let srv: ServerProc;
let alice: Session;
let bob: Session;
let carol: Session;
let chan: string;

beforeAll(async () => {
  srv = await startServer();
  alice = await connectUser(srv, uname('ma'));
  bob = await connectUser(srv, uname('mb'));
  carol = await connectUser(srv, uname('mc'));
  chan = uuidv7();
  await alice.conn.ok('channel_create', { id: chan, name: 'more', allowVisitors: false });
}, 60_000);
afterAll(async () => {
  for (const s of [alice, bob, carol]) s?.conn.close();
  await srv?.stop();
});

describe('implementer3 more', () => {
  it('member_joined goes to the owner with {channelId, username}', async () => {
    await bob.conn.ok('channel_join', { channelId: chan });
    const ev = await alice.conn.next((f) => f.t === 'ev' && f.ev === 'member_joined');
    expect(ev.body).toEqual({ channelId: chan, username: bob.username });
    await carol.conn.ok('channel_join', { channelId: chan });
    await alice.conn.next((f) => f.t === 'ev' && f.ev === 'member_joined');
  });

  it('an answer that does not fit maxFrame is res E_FRAME_TOO_LARGE and the link stays open', async () => {
    const CH = 262144;
    const bytes = crypto.randomBytes(CH);
    const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('base64url');
    const manifest = {
      name: 'big.bin',
      size: CH,
      type: 'application/octet-stream',
      chunkBytes: CH,
      chunks: [sha(bytes)],
    };
    const { fileId } = await alice.conn.ok('file_put', { channelId: chan, manifest });
    await alice.conn.ok('file_chunk_put', {
      channelId: chan,
      fileId,
      index: 0,
      data: bytes.toString('base64'),
    });
    const c = await Conn.open(srv);
    await c.hello({ maxFrame: 65536 });
    await c.ok('resume', { token: bob.token });
    const r = await c.req('file_chunk', { channelId: chan, fileId, index: 0 });
    expect(r.error?.code).toBe('E_FRAME_TOO_LARGE');
    c.send({ t: 'ping' });
    expect((await c.next((f) => f.t === 'pong')).t).toBe('pong');
    c.close();
  });

  it('with a session a 20 KiB frame is taken; after logout the 16 KiB cap applies again', async () => {
    const s = await connectUser(srv, carol.username, { register: false });
    const big = 'x'.repeat(20_000);
    const r = await s.conn.req('reflect', { pad: big });
    expect(r.body?.ip).toBe('127.0.0.1');
    expect(await s.conn.ok('logout', {})).toEqual({});
    expect((await s.conn.req('get_list', {})).error.code).toBe('E_AUTH_REQUIRED');
    s.conn.send({ t: 'req', id: 999, op: 'reflect', body: { pad: big } });
    const e = await s.conn.next((f) => f.t === 'error' || f.id === 999);
    expect(e).toMatchObject({ t: 'error', code: 'E_FRAME_TOO_LARGE' });
  });

  it('logout: session_revoked to co-members; a post signed by the revoked key after revocation is E_BAD_SIGNATURE', async () => {
    const s = await connectUser(srv, bob.username, { register: false });
    await s.conn.ok('logout', {});
    const ev = await alice.conn.next(
      (f) => f.t === 'ev' && f.ev === 'session_revoked' && f.body.sessionId === s.sessionId,
    );
    expect(ev.body).toEqual({ sessionId: s.sessionId });
    // Stamped after the revocation: a message stamped in its very millisecond counts as before it
    // (PROTOCOL.md: refused when its ts is later than the revocation), and this step can take
    // less than a millisecond (a clean-clone run's post was taken).
    await new Promise((r) => setTimeout(r, 5));
    const item = makeItem({ username: bob.username, priv: s.priv, cert: s.cert }, chan, {
      text: 'after logout',
    });
    const r = await bob.conn.req('post', { message: item });
    expect(r.error?.code).toBe('E_BAD_SIGNATURE');
  });

  it('typing: answered {}, event {channelId, username, expiresAt} to other members once online', async () => {
    await bob.conn.ok('submit_info', {
      ip: '127.0.0.1',
      port: 6000,
      udpPort: 6001,
      status: 'online',
    });
    await alice.conn.ok('subscribe', { channelIds: [chan] });
    expect(await bob.conn.ok('typing', { channelId: chan })).toEqual({});
    const ev = await alice.conn.next((f) => f.t === 'ev' && f.ev === 'typing');
    expect(Object.keys(ev.body).sort()).toEqual(['channelId', 'expiresAt', 'username']);
    expect(ev.body.expiresAt - Date.now()).toBeGreaterThan(5000);
    expect(ev.body.expiresAt - Date.now()).toBeLessThanOrEqual(6000);
  });

  it("forward: non-owner E_FORBIDDEN per message; owner forwards a member's item", async () => {
    const it1 = makeItem(bob, chan, { text: 'hosted then forwarded' });
    const r1 = await bob.conn.ok('forward', { messages: [{ ...it1, author: bob.username }] });
    expect(r1.results[0]).toMatchObject({ id: it1.id, error: { code: 'E_FORBIDDEN' } });
    const r2 = await alice.conn.ok('forward', { messages: [{ ...it1, author: bob.username }] });
    expect(r2.results[0]).toEqual({ id: it1.id, seq: expect.any(Number), duplicate: false });
    const r3 = await bob.conn.ok('post', { message: it1 });
    expect(r3).toEqual({ id: it1.id, seq: r2.results[0].seq, duplicate: true });
  });

  it('a channel item removing a member: history E_FORBIDDEN and post E_NOT_MEMBER "removed from this channel by its owner"', async () => {
    const rm = makeItem(alice, chan, {
      kind: 'channel',
      change: { remove: carol.username.toLowerCase() },
    });
    await alice.conn.ok('post', { message: rm });
    const h = await carol.conn.req('history', { channelId: chan, limit: 5 });
    expect(h.error?.code).toBe('E_FORBIDDEN');
    expect(h.error?.message).toContain('removed from this channel by its owner');
    const p = await carol.conn.req('post', {
      message: makeItem(carol, chan, { text: 'still here?' }),
    });
    expect(p.error?.code).toBe('E_NOT_MEMBER');
    expect(p.error?.message).toContain('removed from this channel by its owner');
    expect((await carol.conn.req('channel_join', { channelId: chan })).error?.code).toBe(
      'E_FORBIDDEN',
    );
    const ev = await alice.conn.next((f) => f.t === 'ev' && f.ev === 'member_left');
    expect(ev.body).toEqual({ channelId: chan, username: carol.username });
  });

  it('a channel item by a non-owner is E_FORBIDDEN; deleting the channel frees nothing: E_CHANNEL_EXISTS', async () => {
    const bad = makeItem(bob, chan, { kind: 'channel', change: { name: 'mine now' } });
    expect((await bob.conn.req('post', { message: bad })).error?.code).toBe('E_FORBIDDEN');
    const del = makeItem(alice, chan, { kind: 'channel', change: { deleted: true } });
    await alice.conn.ok('post', { message: del });
    expect((await bob.conn.req('history', { channelId: chan, limit: 5 })).error?.code).toBe(
      'E_CHANNEL_NOT_FOUND',
    );
    const r = await alice.conn.req('channel_create', {
      id: chan,
      name: 'again',
      allowVisitors: false,
    });
    expect(r.error?.code).toBe('E_CHANNEL_EXISTS');
    expect(r.error?.message).toContain('that id belonged to a channel that was deleted');
  });

  it('session_check without proof is E_BAD_REQUEST; with a wrong proof {live: false}', async () => {
    expect((await alice.conn.req('session_check', { sessionId: bob.sessionId })).error?.code).toBe(
      'E_BAD_REQUEST',
    );
    const k = newKey();
    const r = await alice.conn.ok('session_check', {
      sessionId: bob.sessionId,
      proof: {
        nonce: crypto.randomBytes(32).toString('base64url'),
        binding: crypto.randomBytes(32).toString('base64url'),
        sig: crypto.sign(null, Buffer.from('x'), k.priv).toString('base64url'),
      },
    });
    expect(r).toEqual({ live: false });
  });
});
