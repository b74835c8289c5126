// Hello, framing, errors and documented request/answer shapes (§1, §2, §3.2, §3.3, §7).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import crypto from 'node:crypto';
import {
  startServer,
  connectUser,
  connectVisitor,
  Conn,
  makeItem,
  newKey,
  uuidv7,
  uname,
  verifyClaims,
  b64u,
  type ServerProc,
  type Session,
} from './implementer3-client.js';

let srv: ServerProc;
let alice: Session;
let bob: Session;
let chan: string; // alice's, allows visitors
let priv: string; // alice's, no visitors

beforeAll(async () => {
  srv = await startServer();
  alice = await connectUser(srv, uname('al'));
  bob = await connectUser(srv, uname('bo'));
  chan = uuidv7();
  priv = uuidv7();
  await alice.conn.ok('channel_create', { id: chan, name: 'open', allowVisitors: true });
  await alice.conn.ok('channel_create', { id: priv, name: 'closed', allowVisitors: false });
}, 60_000);
afterAll(async () => {
  alice?.conn.close();
  bob?.conn.close();
  await srv?.stop();
});

async function fatal(send: (c: Conn) => void, hello = true) {
  const c = await Conn.open(srv);
  if (hello) await c.hello();
  send(c);
  const e = await c.next((f) => f.t === 'error');
  const closed = await c.waitClosed();
  return { e, closed };
}

describe('implementer3 hello and framing', () => {
  it('TLS 1.3 and the fingerprint of the ready line is the SHA-256 of the SPKI', async () => {
    const c = await Conn.open(srv);
    expect(c.sock.getProtocol()).toBe('TLSv1.3');
    expect(c.peerFingerprint).toBe(srv.fingerprint);
    expect(srv.fingerprint).toMatch(/^[A-Za-z0-9_-]{43}$/);
    c.close();
  });

  it('server hello has exactly the documented members and types', async () => {
    const h = alice.hello;
    expect(Object.keys(h).sort()).toEqual([
      'heartbeatMs',
      'maxFrame',
      'publicKey',
      'role',
      't',
      'timeoutMs',
      'v',
    ]);
    expect(h).toMatchObject({
      t: 'hello',
      v: 4,
      role: 'server',
      heartbeatMs: 5000,
      timeoutMs: 15000,
      maxFrame: 1048576,
    });
    const der = Buffer.from(h.publicKey, 'base64');
    expect(der.toString('base64')).toBe(h.publicKey); // canonical base64
    expect(
      crypto.createPublicKey({ key: der, format: 'der', type: 'spki' }).asymmetricKeyType,
    ).toBe('ed25519');
  });

  it('hello v 3 is E_VERSION_MISMATCH (fatal)', async () => {
    const { e, closed } = await fatal((c) => c.send({ t: 'hello', v: 3, role: 'peer' }), false);
    expect(e.code).toBe('E_VERSION_MISMATCH');
    expect(closed).toBe(true);
  });
  it('hello role server is E_BAD_FRAME', async () => {
    expect((await fatal((c) => c.send({ t: 'hello', v: 4, role: 'server' }), false)).e.code).toBe(
      'E_BAD_FRAME',
    );
  });
  it.each([[65535], [67108865], ['1048576'], [100000.5]])(
    'hello maxFrame %j is E_BAD_FRAME',
    async (mf) => {
      expect(
        (await fatal((c) => c.send({ t: 'hello', v: 4, role: 'peer', maxFrame: mf }), false)).e
          .code,
      ).toBe('E_BAD_FRAME');
    },
  );
  it('hello agent of 101 characters is E_BAD_FRAME', async () => {
    expect(
      (
        await fatal(
          (c) => c.send({ t: 'hello', v: 4, role: 'peer', agent: 'a'.repeat(101) }),
          false,
        )
      ).e.code,
    ).toBe('E_BAD_FRAME');
  });
  it('hello with maxFrame 65536 and unknown members is accepted', async () => {
    const c = await Conn.open(srv);
    const h = await c.hello({ maxFrame: 65536, agent: 'impl3', futureMember: { x: 1 } });
    expect(h.t).toBe('hello');
    c.close();
  });
  it('a req before hello is E_HELLO_REQUIRED', async () => {
    expect(
      (await fatal((c) => c.send({ t: 'req', id: 1, op: 'reflect', body: {} }), false)).e.code,
    ).toBe('E_HELLO_REQUIRED');
  });
  it('N = 0 is E_BAD_FRAME', async () => {
    const r = await fatal((c) => c.sock.write(Buffer.alloc(4)));
    expect(r.e.code).toBe('E_BAD_FRAME');
    expect(r.closed).toBe(true);
  });
  it.each([['[1]'], ['"x"'], ['null'], ['{bad json'], ['{"t":5}'], ['{"x":1}']])(
    'body %s is E_BAD_FRAME',
    async (b) => {
      expect((await fatal((c) => c.sendRaw(b))).e.code).toBe('E_BAD_FRAME');
    },
  );
  it('invalid UTF-8 (overlong) and a BOM are E_BAD_FRAME', async () => {
    expect(
      (
        await fatal((c) =>
          c.sendRaw(Buffer.from([0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xc0, 0xaf, 0x22, 0x7d])),
        )
      ).e.code,
    ).toBe('E_BAD_FRAME');
    expect(
      (
        await fatal((c) =>
          c.sendRaw(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"t":"ping"}')])),
        )
      ).e.code,
    ).toBe('E_BAD_FRAME');
  });
  it('a lone surrogate escape is E_BAD_FRAME', async () => {
    expect(
      (await fatal((c) => c.sendRaw('{"t":"req","id":1,"op":"reflect","body":{"x":"\\ud800"}}'))).e
        .code,
    ).toBe('E_BAD_FRAME');
  });
  it('a frame over 16 KiB before a session is E_FRAME_TOO_LARGE (checked on the length alone)', async () => {
    const r = await fatal((c) => {
      const h = Buffer.alloc(4);
      h.writeUInt32BE(16385);
      c.sock.write(h); // no body at all
    });
    expect(r.e.code).toBe('E_FRAME_TOO_LARGE');
  });
  it('a second hello is E_BAD_FRAME, an unknown t is E_UNKNOWN_TYPE', async () => {
    expect((await fatal((c) => c.send({ t: 'hello', v: 4, role: 'peer' }))).e.code).toBe(
      'E_BAD_FRAME',
    );
    expect((await fatal((c) => c.send({ t: 'nope' }))).e.code).toBe('E_UNKNOWN_TYPE');
  });
  it.each([
    [{ t: 'req', op: 'reflect', body: {} }],
    [{ t: 'req', id: 'x', op: 'reflect' }],
    [{ t: 'req', id: 1 }],
    [{ t: 'req', id: 2 ** 32, op: 'reflect' }],
  ])('malformed req envelope %j is E_BAD_FRAME', async (f) => {
    expect((await fatal((c) => c.send(f))).e.code).toBe('E_BAD_FRAME');
  });
  it('ping is answered pong; an error frame from the peer closes without answer', async () => {
    const c = await Conn.open(srv);
    await c.hello();
    c.send({ t: 'ping' });
    expect((await c.next()).t).toBe('pong');
    c.send({ t: 'error', code: 'E_INTERNAL', message: 'x' });
    expect(await c.waitClosed()).toBe(true);
    expect(c.frames).toEqual([]);
  });
  it('unknown op is res E_UNKNOWN_TYPE and the link stays open', async () => {
    const c = await Conn.open(srv);
    await c.hello();
    const r = await c.req('frobnicate', {});
    expect(r.error.code).toBe('E_UNKNOWN_TYPE');
    expect(typeof r.error.message).toBe('string');
    c.send({ t: 'ping' });
    expect((await c.next((f) => f.t === 'pong')).t).toBe('pong');
    c.close();
  });
  it('§3.1 "a missing body is {}": {"t":"req","id":77,"op":"reflect"} is answered like body {}', async () => {
    const c = await Conn.open(srv);
    await c.hello();
    c.send({ t: 'req', id: 77, op: 'reflect' });
    const rr = await c.next((f) => f.id === 77 || f.t === 'error');
    expect(rr.t, JSON.stringify(rr)).toBe('res');
    expect(rr.body.ip).toBe('127.0.0.1');
    c.close();
  });
  it('session ops without a session are E_AUTH_REQUIRED', async () => {
    const c = await Conn.open(srv);
    await c.hello();
    for (const op of ['get_list', 'directory', 'my_channels', 'logout', 'history'])
      expect(
        (await c.req(op, op === 'history' ? { channelId: chan, limit: 5 } : {})).error?.code,
        op,
      ).toBe('E_AUTH_REQUIRED');
    c.close();
  });
});

describe('implementer3 accounts', () => {
  it('register answers {username}; taken (any case) is E_USERNAME_TAKEN; "here" and "Here.." too', async () => {
    const c = await Conn.open(srv);
    await c.hello();
    const n = uname('Zed');
    expect((await c.req('register', { username: n, password: 'secret-pass' })).body).toEqual({
      username: n,
    });
    expect(
      (await c.req('register', { username: n.toUpperCase(), password: 'secret-pass' })).error.code,
    ).toBe('E_USERNAME_TAKEN');
    expect(
      (await c.req('register', { username: 'HERE', password: 'secret-pass' })).error.code,
    ).toBe('E_USERNAME_TAKEN');
    expect(
      (await c.req('register', { username: 'here..', password: 'secret-pass' })).error.code,
    ).toBe('E_USERNAME_TAKEN');
    c.close();
  });
  it('register with bad username / short password is E_BAD_REQUEST', async () => {
    const c = await Conn.open(srv);
    await c.hello();
    expect((await c.req('register', { username: 'a', password: 'secret-pass' })).error.code).toBe(
      'E_BAD_REQUEST',
    );
    expect((await c.req('register', { username: 'a b', password: 'secret-pass' })).error.code).toBe(
      'E_BAD_REQUEST',
    );
    expect((await c.req('register', { username: uname('pw'), password: '12345' })).error.code).toBe(
      'E_BAD_REQUEST',
    );
    c.close();
  });
  it('login answer and the session token / key certificate claims are as documented', async () => {
    const l = alice.login;
    expect(Object.keys(l).sort()).toEqual(['cert', 'role', 'sessionId', 'token', 'username']);
    expect(l.role).toBe('user');
    expect(l.sessionId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const tok = verifyClaims(l.token, alice.serverKey);
    expect(tok).toMatchObject({ typ: 'session', sid: l.sessionId, u: alice.username, r: 'user' });
    const cert = verifyClaims(l.cert, alice.serverKey);
    expect(cert).toMatchObject({
      typ: 'key',
      sid: l.sessionId,
      u: alice.username,
      r: 'user',
      pk: alice.pub,
    });
    expect(cert.exp - cert.iat).toBe(2_592_000_000);
  });
  it('wrong password and unknown user are both E_BAD_CREDENTIALS', async () => {
    const c = await Conn.open(srv);
    await c.hello();
    expect(
      (
        await c.req('login', {
          username: alice.username,
          password: 'wrong-pass',
          publicKey: newKey().pub,
        })
      ).error.code,
    ).toBe('E_BAD_CREDENTIALS');
    expect(
      (
        await c.req('login', {
          username: uname('nobody'),
          password: 'wrong-pass',
          publicKey: newKey().pub,
        })
      ).error.code,
    ).toBe('E_BAD_CREDENTIALS');
    c.close();
  });
  it('login with a non-canonical or small-order publicKey is E_BAD_REQUEST', async () => {
    const c = await Conn.open(srv);
    await c.hello();
    const k = newKey().pub;
    const last = k[42];
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const nonCanon = k.slice(0, 42) + alphabet[alphabet.indexOf(last!) + 1];
    expect(
      (
        await c.req('login', {
          username: alice.username,
          password: 'secret-pass',
          publicKey: nonCanon,
        })
      ).error.code,
    ).toBe('E_BAD_REQUEST');
    const smallOrder = b64u(Buffer.concat([Buffer.from([1]), Buffer.alloc(31)])); // identity point
    const r = await c.req('login', {
      username: alice.username,
      password: 'secret-pass',
      publicKey: smallOrder,
    });
    expect(r.error.code).toBe('E_BAD_REQUEST');
    c.close();
  });
  it('login twice on one connection is E_ALREADY_AUTHENTICATED; resume answers a renewed cert', async () => {
    expect(
      await alice.conn.req('login', {
        username: alice.username,
        password: 'secret-pass',
        publicKey: newKey().pub,
      }),
    ).toMatchObject({ error: { code: 'E_ALREADY_AUTHENTICATED' } });
    const c = await Conn.open(srv);
    await c.hello();
    const r = await c.ok('resume', { token: alice.token });
    expect(Object.keys(r).sort()).toEqual(['cert', 'role', 'sessionId', 'username']);
    const cl = verifyClaims(r.cert, alice.serverKey);
    expect(cl.pk).toBe(alice.pub);
    expect(await c.req('resume', { token: alice.token })).toMatchObject({
      error: { code: 'E_ALREADY_AUTHENTICATED' },
    });
    c.close();
    const c2 = await Conn.open(srv);
    await c2.hello();
    expect(
      await c2.req('resume', {
        token:
          alice.token.slice(0, -20) +
          (alice.token.at(-20) === 'B' ? 'C' : 'B') +
          alice.token.slice(-19),
      }),
    ).toMatchObject({ error: { code: 'E_SESSION_INVALID' } });
    c2.close();
  });
});

describe('implementer3 visitors', () => {
  it('visitor answer shape; name trimmed; cert r visitor', async () => {
    const v = await connectVisitor(srv, '  Guest ' + crypto.randomBytes(3).toString('hex') + ' ');
    expect(Object.keys(v.res.body).sort()).toEqual([
      'cert',
      'role',
      'sessionId',
      'token',
      'username',
    ]);
    expect(v.res.body.role).toBe('visitor');
    expect(v.res.body.username).toBe(v.res.body.username.trim());
    expect(
      verifyClaims(
        v.res.body.cert,
        crypto.createPublicKey({
          key: Buffer.from(v.hello.publicKey, 'base64'),
          format: 'der',
          type: 'spki',
        }),
      ).r,
    ).toBe('visitor');
    // visitor rights
    expect(
      (await v.conn.req('channel_create', { id: uuidv7(), name: 'v', allowVisitors: true })).error
        .code,
    ).toBe('E_VISITOR_READ_ONLY');
    expect((await v.conn.req('channel_join', { channelId: priv })).error.code).toBe(
      'E_CHANNEL_NOT_FOUND',
    );
    expect((await v.conn.req('history', { channelId: priv, limit: 5 })).error.code).toBe(
      'E_CHANNEL_NOT_FOUND',
    );
    const j = await v.conn.ok('channel_join', { channelId: chan });
    expect(j).toMatchObject({ id: chan, allowVisitors: true });
    const h = await v.conn.ok('history', { channelId: chan, limit: 5 });
    expect(h).toMatchObject({ messages: expect.any(Array), hasMore: false });
    const d = await v.conn.ok('directory', {});
    expect(d.channels.every((c: any) => c.allowVisitors)).toBe(true);
    expect((await v.conn.req('typing', { channelId: chan })).error.code).toBe(
      'E_VISITOR_READ_ONLY',
    );
    expect((await v.conn.req('dm_blocks', {})).error.code).toBe('E_VISITOR_READ_ONLY');
    v.conn.close();
  });
  it('visitor names: a user name look-alike, "here", a colon, a zero-width char', async () => {
    const expectCode = async (name: string, code: string) => {
      const v = await connectVisitor(srv, name);
      expect(v.res.error?.code, name).toBe(code);
      v.conn.close();
    };
    await expectCode(alice.username.toUpperCase(), 'E_NAME_TAKEN');
    await expectCode('here', 'E_NAME_TAKEN');
    await expectCode('a:b', 'E_BAD_REQUEST');
    await expectCode('ab\u200bc', 'E_BAD_REQUEST');
    await expectCode('   ', 'E_BAD_REQUEST');
  });
});

describe('implementer3 channels and posts', () => {
  it('channel_create answer is a channel; same id again E_CHANNEL_EXISTS', async () => {
    const id = uuidv7();
    const r = await alice.conn.ok('channel_create', {
      id,
      name: '  spaced  ',
      allowVisitors: false,
    });
    expect(r).toMatchObject({ id, owner: alice.username, allowVisitors: false });
    expect(Number.isInteger(r.createdAt)).toBe(true);
    expect(
      (await bob.conn.req('channel_create', { id, name: 'x', allowVisitors: false })).error.code,
    ).toBe('E_CHANNEL_EXISTS');
    expect(
      (
        await alice.conn.req('channel_create', {
          id: id.toUpperCase(),
          name: 'x',
          allowVisitors: false,
        })
      ).error.code,
    ).toBe('E_BAD_REQUEST');
  });

  it('post answers {id, seq, duplicate}; again: duplicate true and the first seq; event to other subscribers', async () => {
    await bob.conn.ok('channel_join', { channelId: chan });
    const it1 = makeItem(alice, chan, { text: 'hello bob' });
    const r = await alice.conn.ok('post', { message: it1 });
    expect(r).toEqual({ id: it1.id, seq: expect.any(Number), duplicate: false });
    const r2 = await alice.conn.ok('post', { message: it1 });
    expect(r2).toEqual({ id: it1.id, seq: r.seq, duplicate: true });
    const ev = await bob.conn.next((f) => f.t === 'ev' && f.ev === 'message');
    expect(ev.body.channelId).toBe(chan);
    const { cert, ...rest } = ev.body.message;
    expect(rest).toEqual({
      id: it1.id,
      channelId: chan,
      ts: it1.ts,
      lc: 0,
      text: 'hello bob',
      sig: it1.sig,
      author: alice.username,
      seq: r.seq,
    });
    expect(cert).toBe(alice.cert);
    // the poster's own connection gets no event
    await new Promise((res) => setTimeout(res, 200));
    expect(
      alice.conn.frames.filter(
        (f) => f.t === 'ev' && f.ev === 'message' && f.body.message.id === it1.id,
      ),
    ).toEqual([]);
  });

  it('post errors: id not derived, bad sig, foreign cert, clock skew, non-member, unknown channel', async () => {
    const good = makeItem(alice, chan, { text: 'x1' });
    const badId = { ...good, id: uuidv7() };
    let r = await alice.conn.req('post', { message: badId });
    expect(r.error.code).toBe('E_BAD_SIGNATURE');
    const badSig = makeItem(alice, chan, { text: 'x2' });
    badSig.sig = b64u(crypto.sign(null, Buffer.from('other'), alice.priv));
    expect((await alice.conn.req('post', { message: badSig })).error.code).toBe('E_BAD_SIGNATURE');
    // bob's cert under alice's session: author is the session user, so cert names another user
    const foreign = makeItem({ ...bob, username: alice.username }, chan, { text: 'x3' });
    expect((await alice.conn.req('post', { message: foreign })).error.code).toBe('E_BAD_SIGNATURE');
    const future = makeItem(alice, chan, { text: 'x4' }, Date.now() + 120_000);
    expect((await alice.conn.req('post', { message: future })).error.code).toBe('E_CLOCK_SKEW');
    const outsider = makeItem(bob, priv, { text: 'x5' });
    expect((await bob.conn.req('post', { message: outsider })).error.code).toBe('E_NOT_MEMBER');
    const nowhere = makeItem(bob, uuidv7(), { text: 'x6' });
    expect((await bob.conn.req('post', { message: nowhere })).error.code).toBe(
      'E_CHANNEL_NOT_FOUND',
    );
  });

  it('post shape errors are E_BAD_REQUEST: blank text, a tombstone without deletedBy, emoji on a message, non-canonical sig', async () => {
    const blank = makeItem(alice, chan, { text: '   ' });
    expect((await alice.conn.req('post', { message: blank })).error.code).toBe('E_BAD_REQUEST');
    const withEmoji = makeItem(alice, chan, { text: 'hi', emoji: '👍' });
    expect((await alice.conn.req('post', { message: withEmoji })).error.code).toBe('E_BAD_REQUEST');
    const tomb = makeItem(alice, chan, { text: 'soon gone' });
    const { text, ...t2 } = tomb;
    const tombstone = { ...t2, digest: (await import('./implementer3-client.js')).digestOf(tomb) };
    expect((await alice.conn.req('post', { message: tombstone })).error.code).toBe('E_BAD_REQUEST');
    const nc = makeItem(alice, chan, { text: 'noncanon' });
    const sigBytes = Buffer.from(nc.sig, 'base64url');
    // last char of an 86-char signature must be one of A Q g w; flip the unused bits
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const i = alphabet.indexOf(nc.sig[85]);
    nc.sig = nc.sig.slice(0, 85) + alphabet[i + 1];
    expect(Buffer.from(nc.sig, 'base64url').equals(sigBytes)).toBe(true);
    expect((await alice.conn.req('post', { message: nc })).error.code).toBe('E_BAD_REQUEST');
  });

  it('§2.2 rules: someone else edit E_FORBIDDEN, target unknown E_NOT_FOUND', async () => {
    const m = makeItem(alice, chan, { text: 'mine' });
    await alice.conn.ok('post', { message: m });
    const e = makeItem(bob, chan, { kind: 'edit', target: m.id, text: 'yours now' });
    expect((await bob.conn.req('post', { message: e })).error.code).toBe('E_FORBIDDEN');
    const d = makeItem(bob, chan, { kind: 'delete', target: uuidv7() });
    expect((await bob.conn.req('post', { message: d })).error.code).toBe('E_NOT_FOUND');
  });

  it('history: limit out of range E_BAD_REQUEST; before unknown E_NOT_FOUND; non-member of closed channel E_NOT_MEMBER', async () => {
    expect((await alice.conn.req('history', { channelId: chan, limit: 0 })).error.code).toBe(
      'E_BAD_REQUEST',
    );
    expect((await alice.conn.req('history', { channelId: chan, limit: 501 })).error.code).toBe(
      'E_BAD_REQUEST',
    );
    expect(
      (await alice.conn.req('history', { channelId: chan, limit: 5, before: uuidv7() })).error.code,
    ).toBe('E_NOT_FOUND');
    expect((await bob.conn.req('history', { channelId: priv, limit: 5 })).error.code).toBe(
      'E_NOT_MEMBER',
    );
    expect((await bob.conn.req('sync', { channelId: priv, since: 0, limit: 5 })).error.code).toBe(
      'E_NOT_MEMBER',
    );
    expect((await bob.conn.req('history', { channelId: uuidv7(), limit: 5 })).error.code).toBe(
      'E_CHANNEL_NOT_FOUND',
    );
    const h = await alice.conn.ok('history', { channelId: chan, limit: 1 });
    expect(Object.keys(h).sort()).toEqual(['hasMore', 'messages', 'related']);
    expect(h.hasMore).toBe(true);
  });

  it('members, my_channels, subscribe, channel_leave answers', async () => {
    const m = await bob.conn.ok('members', { channelId: chan });
    expect(m.members).toEqual([alice.username, bob.username].sort());
    expect(m.next).toBeUndefined();
    const mine = await bob.conn.ok('my_channels', {});
    expect(mine.channels.map((c: any) => c.id)).toContain(chan);
    const s = await bob.conn.ok('subscribe', { channelIds: [chan, priv, uuidv7()] });
    expect(s).toEqual({ channelIds: [chan] });
    expect((await alice.conn.req('channel_leave', { channelId: chan })).error.code).toBe(
      'E_FORBIDDEN',
    );
    expect((await bob.conn.req('channel_leave', { channelId: priv })).error.code).toBe(
      'E_NOT_MEMBER',
    );
    expect((await bob.conn.req('directory', { after: 'garbage' })).error.code).toBe(
      'E_BAD_REQUEST',
    );
  });

  it('submit_info answers {entry} shaped as a tracker entry; bad ip E_BAD_REQUEST', async () => {
    const r = await bob.conn.ok('submit_info', {
      ip: '127.0.0.1',
      port: 4000,
      udpPort: 4001,
      status: 'online',
    });
    expect(r.entry).toMatchObject({
      username: bob.username,
      role: 'user',
      ip: '127.0.0.1',
      port: 4000,
      udpPort: 4001,
      sessionId: bob.sessionId,
      status: 'online',
      hosts: [],
    });
    expect(
      (
        await bob.conn.req('submit_info', {
          ip: '127.000.0.1',
          port: 4000,
          udpPort: 4001,
          status: 'online',
        })
      ).error.code,
    ).toBe('E_BAD_REQUEST');
    expect(
      (
        await bob.conn.req('submit_info', {
          ip: 'localhost',
          port: 4000,
          udpPort: 4001,
          status: 'online',
        })
      ).error.code,
    ).toBe('E_BAD_REQUEST');
    const l = await alice.conn.ok('get_list', {});
    expect(l.peers.map((p: any) => p.username)).toContain(bob.username);
  });
});
