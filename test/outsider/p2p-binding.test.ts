// Outsider attacks on the P2P handshake's channel binding (PROTOCOL.md §1.1, §4.1): a member
// signature is good on its own TLS connection only (another connection's binding, a replay,
// the v2 transcript and a transparent relay are refused E_SESSION_INVALID, the relay at the
// member's hello, whose dial signature covers the binding too); the host's hello
// signature covers the binding; a real member refuses a host whose signature covers another
// connection, and sends its auth only to one whose signature covers its own.
import { test, expect, afterAll } from 'vitest';
import crypto from 'node:crypto';
import tls from 'node:tls';
import {
  startServer,
  startPeer,
  registerLogin,
  killAll,
  sleep,
  Raw,
  b64u,
  certClaims,
  frame,
  uuid7,
  dialSig,
  dialTarget,
  type DialTarget,
} from './lib.js';
import { bindingOf, hostHello, transcript, makeCert, onFrames } from './tls.js';

afterAll(killAll);

type Me = { cert: string; key: { privateKey: crypto.KeyObject } };

/**
 * Say hello to a host (its port and session; `via`: another port to dial, a relay) with the dial
 * signed over `dialBinding` (this connection's by default), and return what it answers.
 */
async function hello(
  to: DialTarget,
  me: Me,
  o: { via?: number; dialBinding?: (own: string) => string } = {},
) {
  const host = await dialTarget(to);
  const c = new Raw('127.0.0.1', o.via ?? host.port);
  await c.connected();
  const nonce = b64u(crypto.randomBytes(32));
  const binding = bindingOf(c.sock);
  const signed = o.dialBinding?.(binding) ?? binding;
  const dial = dialSig(me.key.privateKey, nonce, certClaims(me.cert).sid, host.sessionId, signed);
  c.send({ t: 'hello', v: 4, role: 'peer', cert: me.cert, nonce, dial });
  const h = await c.nextFrame();
  return { c, nonce, h, binding };
}

/** Dial the host and stop right before `auth`. */
async function half(to: DialTarget, me: Me) {
  const x = await hello(to, me);
  expect(x.h.t).toBe('hello');
  return x;
}

const peerSig = (me: Me, nonce: string, h: any, binding: string) =>
  crypto
    .sign(
      null,
      transcript('peer', nonce, h.nonce, certClaims(me.cert).sid, certClaims(h.cert).sid, binding),
      me.key.privateKey,
    )
    .toString('base64url');

/** Send `auth` and see whether the host takes it (answers a request) or ends the link. */
async function authOutcome(c: Raw, sig: string) {
  c.send({ t: 'auth', sig });
  const r = await Promise.race([
    c.req('stream_list', {}, 4000),
    c.closeP.then(() => ({ closed: true })),
  ]);
  await sleep(50);
  const err = c.frames.find((f) => f.t === 'error');
  return { accepted: !!(r as any).body, error: err?.code, closed: c.closed };
}

async function hostAlice() {
  const srv = await startServer();
  const alice = await startPeer(srv);
  await alice.api('POST', '/api/register', { username: 'alice', password: 'secret-pw-1' });
  await alice.api('POST', '/api/login', { username: 'alice', password: 'secret-pw-1' });
  const m = await registerLogin(srv, 'mallory');
  return { srv, alice, m };
}

test('a member signature is good only on its own TLS connection', async () => {
  const { alice, m } = await hostAlice();
  const me = { cert: m.cert, key: m.key };

  // Control: the right transcript on the right connection is taken.
  const ok = await half(alice, me);
  expect(await authOutcome(ok.c, peerSig(me, ok.nonce, ok.h, ok.binding))).toMatchObject({
    accepted: true,
  });
  // The host's hello signature covers this connection's binding, and no other's.
  const a = await half(alice, me);
  const b = await half(alice, me);
  const hostPk = crypto.createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: certClaims(a.h.cert).pk },
    format: 'jwk',
  });
  const sh = (x: typeof a, binding: string) =>
    crypto.verify(
      null,
      transcript('host', x.nonce, x.h.nonce, m.sessionId, certClaims(x.h.cert).sid, binding),
      hostPk,
      Buffer.from(x.h.sig, 'base64url'),
    );
  expect(certClaims(a.h.cert).u).toBe('alice');
  expect(sh(a, a.binding)).toBe(true);
  expect(sh(a, b.binding)).toBe(false);
  expect(a.binding).not.toBe(b.binding);

  // 1. Right nonces and sessions, but the binding of another live connection.
  const wrongBinding = await authOutcome(a.c, peerSig(me, a.nonce, a.h, b.binding));
  // 2. A signature that was valid for connection b, replayed on connection c.
  const validForB = peerSig(me, b.nonce, b.h, b.binding);
  const c = await half(alice, me);
  const replayed = await authOutcome(c.c, validForB);
  // 3. The version 2 transcript (no binding).
  const d = await half(alice, me);
  const v2 = crypto
    .sign(
      null,
      Buffer.from(
        JSON.stringify([
          'hchat/p2p/2',
          'peer',
          d.nonce,
          d.h.nonce,
          m.sessionId,
          certClaims(d.h.cert).sid,
        ]),
      ),
      m.key.privateKey,
    )
    .toString('base64url');
  const v2Outcome = await authOutcome(d.c, v2);
  // 4. The v3 label with the binding left out, and with an all-zero binding.
  const e = await half(alice, me);
  const noBinding = await authOutcome(e.c, peerSig(me, e.nonce, e.h, ''));
  const f = await half(alice, me);
  const zero = await authOutcome(f.c, peerSig(me, f.nonce, f.h, b64u(Buffer.alloc(32))));
  // b itself, honest after all, still works: the refusals above did not spoil the host.
  expect(await authOutcome(b.c, validForB)).toMatchObject({ accepted: true });

  for (const [name, o] of Object.entries({ wrongBinding, replayed, v2Outcome, noBinding, zero })) {
    expect(o.accepted, name).toBe(false);
    expect(o.error, name).toBe('E_SESSION_INVALID');
    expect(o.closed, name).toBe(true);
  }
  // The hello's dial signature (§4.1) covers the connection too: signed over another binding,
  // it is refused at once, before the host shows anything of its own.
  const other = await hello(alice, me, { dialBinding: () => b64u(crypto.randomBytes(32)) });
  expect(other.h).toMatchObject({ t: 'error', code: 'E_SESSION_INVALID' });
}, 40000);

test('a transparent TLS relay between a member and a host is refused by the host', async () => {
  const { alice, m } = await hostAlice();
  const me = { cert: m.cert, key: m.key };
  const cred = makeCert();
  let relayedToHost = 0;
  const relay = tls.createServer({ key: cred.key, cert: cred.cert }, (down) => {
    const up = tls.connect({ host: '127.0.0.1', port: alice.p2pPort, rejectUnauthorized: false });
    down.on('error', () => {});
    up.on('error', () => {});
    down.on('data', (d) => ((relayedToHost += d.length), up.write(d)));
    up.on('data', (d) => down.write(d));
    up.on('close', () => down.destroy());
    down.on('close', () => up.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()));
  const port = (relay.address() as any).port;
  // The member's hello, relayed: its dial signature covers the member's connection to the
  // relay, not the relay's to the host, which refuses it before showing anything of its own.
  const x = await hello(alice, me, { via: port });
  expect(relayedToHost).toBeGreaterThan(0);
  expect(x.h).toMatchObject({ t: 'error', code: 'E_SESSION_INVALID' });
  await Promise.race([x.c.closeP, sleep(3000)]);
  expect(x.c.closed).toBe(true);
  relay.close();
}, 30000);

test('a real member refuses a host whose signature covers another TLS connection', async () => {
  const srv = await startServer();
  const m = await registerLogin(srv, 'mallory');
  const ch = uuid7();
  expect(
    (await m.c.req('channel_create', { id: ch, name: 'trap', allowVisitors: false })).body,
  ).toBeTruthy();
  const bob = await startPeer(srv);
  await bob.api('POST', '/api/register', { username: 'bob', password: 'secret-pw-1' });
  await bob.api('POST', '/api/login', { username: 'bob', password: 'secret-pw-1' });
  expect((await bob.api('POST', `/api/channels/${ch}/join`)).status).toBe(200);

  // Mallory's own P2P listener, announced as the host of her channel.
  let honest = false;
  const seen: { mode: string; frames: any[]; closed: boolean; binding: string; hello?: any }[] = [];
  const cred = makeCert();
  const srvSock = tls.createServer({ key: cred.key, cert: cred.cert }, (s) => {
    s.on('error', () => {});
    const rec: (typeof seen)[number] = {
      mode: honest ? 'honest' : 'other-binding',
      frames: [],
      closed: false,
      binding: bindingOf(s),
    };
    seen.push(rec);
    s.on('close', () => (rec.closed = true));
    const nonce = b64u(crypto.randomBytes(32));
    onFrames(s, (f) => {
      rec.frames.push(f);
      if (f.t === 'ping') s.write(frame({ t: 'pong' }));
      if (f.t !== 'hello') return;
      rec.hello = f;
      const binding = rec.mode === 'honest' ? rec.binding : b64u(crypto.randomBytes(32));
      s.write(frame(hostHello(m, f, nonce, binding)));
      rec.hello.hostNonce = nonce;
    });
  });
  await new Promise<void>((r) => srvSock.listen(0, '127.0.0.1', () => r()));
  const port = (srvSock.address() as any).port;
  const sub = await m.c.req('submit_info', {
    ip: '127.0.0.1',
    port,
    udpPort: port,
    status: 'online',
    hosts: [ch],
  });
  expect(sub.body?.entry?.hosts).toContain(ch);

  for (let i = 0; i < 80 && !seen.some((r) => r.hello); i++) await sleep(100);
  expect(seen.length, 'bob never dialled the announced host').toBeGreaterThan(0);
  await sleep(1000);
  const bad = seen.filter((r) => r.mode === 'other-binding' && r.hello);
  expect(bad.length).toBeGreaterThan(0);
  for (const r of bad) {
    expect(
      r.frames.some((f) => f.t === 'auth'),
      'bob sent auth to a relayed host',
    ).toBe(false);
    expect(r.closed).toBe(true);
  }
  // Control: signing this connection's own binding, bob authenticates (retry every 2 s).
  honest = true;
  for (
    let i = 0;
    i < 60 && !seen.some((r) => r.mode === 'honest' && r.frames.some((f) => f.t === 'auth'));
    i++
  )
    await sleep(100);
  const good = seen.find((r) => r.mode === 'honest' && r.frames.some((f) => f.t === 'auth'));
  expect(good, 'bob never authenticated to an honest host').toBeTruthy();
  // Bob's own signature covers the same binding as computed on this end (interop).
  const bobPk = crypto.createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: certClaims(good!.hello.cert).pk },
    format: 'jwk',
  });
  const auth = good!.frames.find((f) => f.t === 'auth');
  expect(
    crypto.verify(
      null,
      transcript(
        'peer',
        good!.hello.nonce,
        good!.hello.hostNonce,
        certClaims(good!.hello.cert).sid,
        m.sessionId,
        good!.binding,
      ),
      bobPk,
      Buffer.from(auth.sig, 'base64url'),
    ),
  ).toBe(true);
  srvSock.close();
}, 40000);
