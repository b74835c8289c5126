/**
 * The golden frames (test/golden/frames.json) against the real thing: a real central server and
 * a real peer hosting a channel, spoken to over raw sockets, frame by frame. An implementation
 * that produces the golden frames is accepted by them, and what they answer is the golden answer.
 *
 * The server runs with the golden server key (test/golden/keys.json), so the golden certificates
 * and signatures verify there as they are. A request is sent exactly as golden, except its
 * `fresh` members, which no fixed file can hold (each replacement is named where it is made):
 * - resume's `token`: the token the live login answered (sessions are created by the server);
 * - the P2P hello's `cert`: the certificate the live login answered (certificates expire after 30
 *   days; a link refuses an expired one, while a message only needs one valid when stamped);
 * - the P2P hello's `dial`: the signature of the dial to the real host's session, over this
 *   connection's binding;
 * - the P2P `auth.sig`: the transcript signature over the host's fresh nonce and session;
 * - the hosted channel's id (a real peer chooses it), and so the P2P post's `id` (derived from the
 *   content, §2) and `sig` (re-signed with alice's golden key).
 * An answer must match its operation's schema (src/protocol/) and equal the golden answer in
 * every member but its `fresh` ones (which hold the session's own ids, nonces and keys).
 */
import fs from 'node:fs';
import tls from 'node:tls';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { z } from 'zod';
import { FrameDecoder, encodeFrame } from '../src/protocol/frame.js';
import { ClientHello, EVENTS, OPS, ServerHello } from '../src/protocol/server-link.js';
import {
  P2P_EVENTS,
  P2P_OPS,
  PeerAuth,
  PeerHello,
  PeerHelloAck,
} from '../src/protocol/peer-link.js';
import { Fatal, Request, Response } from '../src/protocol/rpc.js';
import { RefFrame, RefReader } from '../src/protocol/compact.js';
import { messageId } from '../src/shared/message-id.js';
import { loadSessionKeys, signMessage } from '../src/shared/signing.js';
import {
  dialTranscript,
  signTranscript,
  transcript,
  verifyTranscript,
  checkLinkCert,
} from '../src/shared/handshake.js';
import { publicKeyFromBase64 } from '../src/shared/tokens.js';
import { channelBinding } from '../src/shared/tls.js';
import { createTestnet, signIn, tempDir, waitFor } from './testnet.js';

interface Golden {
  name: string;
  link: 'server' | 'p2p';
  fresh?: string[];
  frame: Record<string, any>;
  hex: string;
}

const dir = path.resolve(import.meta.dirname, 'golden');
const golden: Golden[] = JSON.parse(fs.readFileSync(path.join(dir, 'frames.json'), 'utf8'));
const keys = JSON.parse(fs.readFileSync(path.join(dir, 'keys.json'), 'utf8'));
const used = new Set<string>();
const G = (name: string): Golden => {
  const g = golden.find((x) => x.name === name);
  used.add(name);
  if (!g) throw new Error(`no golden frame "${name}"`);
  return structuredClone(g);
};

/** A raw framed connection: sends golden bytes, collects decoded frames. */
class Raw {
  readonly frames: Record<string, any>[] = [];
  closed = false;
  readonly socket: tls.TLSSocket;
  /** Resolves once the TLS handshake is done. */
  private readonly secure: Promise<void>;
  private readonly decoder = new FrameDecoder();

  constructor(port: number) {
    this.socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
    this.secure = new Promise((resolve) => this.socket.once('secureConnect', () => resolve()));
    this.socket.on('data', (b) => this.frames.push(...this.decoder.push(b)));
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => (this.closed = true));
    onTestFinished(() => void this.socket.destroy());
  }

  /** Sends a golden frame as its golden bytes, or a frame (with fresh members) encoded. */
  send(g: Golden | Record<string, unknown>): void {
    if ('hex' in g && 'frame' in g) this.socket.write(Buffer.from(g.hex as string, 'hex'));
    else this.socket.write(encodeFrame(g));
  }

  /** The first frame received that `pick` accepts, waited for. */
  async next(
    pick: (f: Record<string, any>) => boolean,
    what: string,
  ): Promise<Record<string, any>> {
    return waitFor(() => this.frames.find(pick), 10_000, what);
  }

  /** The TLS connection's channel binding, once its handshake is done. */
  async binding(): Promise<Buffer> {
    await this.secure;
    return channelBinding(this.socket);
  }

  /** Registers `name` (password `<name>-pw`) and logs in with `key`, as requests 1 and 2. */
  async signUp(name: string, key: string): Promise<Record<string, any>> {
    this.send({
      t: 'req',
      id: 1,
      op: 'register',
      body: { username: name, password: `${name}-pw` },
    });
    await this.answer(1);
    this.send({
      t: 'req',
      id: 2,
      op: 'login',
      body: { username: name, password: `${name}-pw`, publicKey: key },
    });
    return (await this.answer(2)).body;
  }

  /** The answer to request `id`, waited for. */
  answer(id: number): Promise<Record<string, any>> {
    return this.next((f) => f.t === 'res' && f.id === id, `answer ${id}`);
  }
}

/** The value at a dotted path. */
function at(obj: any, p: string): any {
  return p.split('.').reduce((o, k) => (o === undefined ? undefined : o[k]), obj);
}
function put(obj: any, p: string, v: unknown): void {
  const ks = p.split('.');
  const last = ks.pop()!;
  ks.reduce((o, k) => o[k], obj)[last] = v;
}

/**
 * `got` is the golden answer `g`: it passes `schema` (for the frame's body, or the frame) and
 * equals the golden frame in every member but the fresh ones (which must be present).
 */
function expectGolden(got: Record<string, any>, g: Golden, schema?: z.ZodType, whole = false) {
  if (schema) {
    const target = whole ? got : got.body;
    const r = schema.safeParse(target);
    expect(r.success, `${g.name}: ${JSON.stringify(r.error?.issues)}`).toBe(true);
  }
  const copy = structuredClone(got);
  for (const p of g.fresh ?? []) {
    expect(at(copy, p), `${g.name}: fresh member ${p}`).toBeDefined();
    put(copy, p, at(g.frame, p));
  }
  expect(copy, g.name).toEqual(g.frame);
}

describe('golden frames against a real server and a real peer', () => {
  it('every golden request is accepted and answered with the golden answer', async () => {
    // The real server, with the golden server key.
    const serverDir = tempDir('hchat-golden-');
    fs.writeFileSync(path.join(serverDir, 'server-key.pem'), keys.serverKeyPem, { mode: 0o600 });
    const tn = await createTestnet({ server: { dataDir: serverDir } });
    const port = tn.serverPort;

    // Every request frame in the file is one this test sends.
    for (const g of golden) {
      if (g.frame.t === 'req') {
        const ok = Request.safeParse(g.frame).success;
        expect(ok, g.name).toBe(true);
        const ops: Record<string, { req: z.ZodType }> = g.link === 'server' ? OPS : P2P_OPS;
        if (ops[g.frame.op])
          expect(ops[g.frame.op]!.req.safeParse(g.frame.body).success, g.name).toBe(true);
      }
    }

    // ---- alice on the server link ----
    const a = new Raw(port);
    expect(ClientHello.safeParse(G('peer hello').frame).success).toBe(true);
    a.send(G('peer hello'));
    const hello = await a.next((f) => f.t === 'hello', 'server hello');
    expectGolden(hello, G('server hello'), ServerHello, true);

    a.send(G('register request'));
    expectGolden(await a.answer(1), G('register answer'), OPS.register.res);
    a.send(G('login request'));
    const login = await a.answer(2);
    expectGolden(login, G('login answer'), OPS.login.res);
    a.send(G('channel_create request'));
    expectGolden(await a.answer(3), G('channel_create answer'), OPS.channel_create.res);

    // ---- bob: refused before joining, then a subscriber ----
    const b = new Raw(port);
    b.send(G('peer hello'));
    await b.next((f) => f.t === 'hello', 'server hello (bob)');
    const bobKey = keys.sessions.bob.publicKey;
    expect(await b.signUp('bob', bobKey)).toMatchObject({ username: 'bob' });
    b.send(G('history request of a non-member'));
    expectGolden(await b.answer(3), G('error answer'));
    b.send(G('channel_join request'));
    expect(OPS.channel_join.res.safeParse((await b.answer(4)).body).success).toBe(true);

    // ---- dave: a member on a compact link (§3.11) ----
    const d = new Raw(port);
    expect(ClientHello.safeParse(G('compact peer hello').frame).success).toBe(true);
    d.send(G('compact peer hello'));
    expectGolden(
      await d.next((f) => f.t === 'hello', 'compact server hello'),
      G('compact server hello'),
      ServerHello,
      true,
    );
    await d.signUp('dave', bobKey);
    d.send(G('channel_join request'));
    await d.answer(4);

    // ---- the golden post, as it is: signature, certificate and id verify at the server ----
    a.send(G('post request'));
    expectGolden(await a.answer(4), G('post answer'), OPS.post.res);
    const ev = await b.next((f) => f.t === 'ev' && f.ev === 'message', 'message event');
    expectGolden(ev, G('message event'), EVENTS.message);
    // Dave gets alice's certificate and the channel defined, then the compact push; rebuilt,
    // it is the full event bob got.
    await d.next((f) => f.t === 'm', 'compact message event');
    const compact = d.frames.filter((f) => ['ref', 'm'].includes(f.t));
    expect(compact.map((f) => f.t)).toEqual(['ref', 'ref', 'm']);
    expectGolden(compact[0]!, G('ref (certificate)'), RefFrame, true);
    expectGolden(compact[1]!, G('ref (channel)'), RefFrame, true);
    expectGolden(compact[2]!, G('compact message event'));
    const refs = new RefReader();
    refs.define(compact[0]!);
    refs.define(compact[1]!);
    expect(refs.expand(compact[2]!)).toEqual(G('message event').frame.body);
    d.send(G('sync request'));
    expectGolden(await d.answer(5), G('compact sync answer'));
    expect(refs.expandPage((await d.answer(5)).body)).toEqual(G('sync answer').frame.body);
    a.send(G('sync request'));
    expectGolden(await a.answer(5), G('sync answer'), OPS.sync.res);
    a.send(G('history request'));
    expectGolden(await a.answer(6), G('history answer'), OPS.history.res);
    // A reply with a mention, its edit, a reaction, the reply's delete: each verified and
    // authorized at the server; the history then holds the reply's tombstone and the changes.
    for (const [k, what] of [
      [20, 'reply'],
      [21, 'edit'],
      [22, 'reaction'],
      [23, 'delete'],
    ] as const) {
      a.send(G(`post request (${what === 'reply' ? 'reply, mention' : what})`));
      expectGolden(await a.answer(k), G(`post answer (${what})`), OPS.post.res);
    }
    a.send(G('history request (after changes)'));
    expectGolden(await a.answer(24), G('history answer (after changes)'), OPS.history.res);
    // A message deleted before it was delivered: its tombstone with the delete that erased it,
    // then that delete on its own, answered as a duplicate.
    a.send(G('post request (tombstone, deletedBy)'));
    expectGolden(await a.answer(25), G('post answer (tombstone, deletedBy)'), OPS.post.res);
    a.send(G('post request (its delete, after)'));
    expectGolden(await a.answer(26), G('post answer (its delete, after)'), OPS.post.res);
    a.send(G('submit_info request'));
    expectGolden(await a.answer(7), G('submit_info answer'), OPS.submit_info.res);

    // Unknown operation: answered, and the link stays open (ping still answered).
    a.send(G('unknown operation'));
    expectGolden(await a.answer(8), G('unknown operation answer'), Response, true);
    a.send(G('ping'));
    expectGolden(await a.next((f) => f.t === 'pong', 'pong'), G('pong'));
    expect(a.closed).toBe(false);

    // ---- resume on a second connection (fresh: the live token) ----
    const r = new Raw(port);
    r.send(G('peer hello'));
    await r.next((f) => f.t === 'hello', 'server hello (resume)');
    const resume = G('resume request');
    put(resume.frame, 'body.token', login.body.token); // fresh: the live session's token
    r.send(resume.frame);
    expectGolden(await r.answer(1), G('resume answer'), OPS.resume.res);

    // ---- a visitor ----
    const v = new Raw(port);
    v.send(G('peer hello'));
    await v.next((f) => f.t === 'hello', 'server hello (visitor)');
    v.send(G('visitor request'));
    expectGolden(await v.answer(1), G('visitor answer'), OPS.visitor.res);

    // ---- an old version: the golden fatal error, then the close ----
    const o = new Raw(port);
    o.send(G('old hello'));
    expectGolden(
      await o.next((f) => f.t === 'error', 'fatal error'),
      G('fatal error'),
      Fatal,
      true,
    );
    await waitFor(() => o.closed, 5000, 'close after the fatal error');

    // ---- the P2P link: alice (raw) to carol's real peer, which hosts a channel ----
    const carol = await tn.addPeer('carol');
    await signIn(carol, 'carol');
    const hosted = (
      await carol.call('POST', '/api/channels', { name: 'hosted', allowVisitors: false })
    ).body.id as string;
    a.send({ t: 'req', id: 9, op: 'channel_join', body: { channelId: hosted } });
    expect((await a.answer(9)).error).toBeUndefined();

    const [ip, p2pPort] = carol.p2p.split(':') as [string, string];
    expect(ip).toBe('127.0.0.1');
    const m = new Raw(Number(p2pPort));
    const serverKey = publicKeyFromBase64(keys.serverPublicKey);
    const aliceSession = checkLinkCert(login.body.cert, serverKey).sid;
    const aliceKeys = loadSessionKeys(keys.sessions.alice.pkcs8);
    const carolSession = (await carol.call('GET', '/api/session')).body.me.sessionId as string;
    const peerHello = G('p2p hello');
    put(peerHello.frame, 'cert', login.body.cert); // fresh: a certificate that has not expired
    // fresh: the dial of this connection to the real host's session
    const dial = dialTranscript({
      peerNonce: peerHello.frame.nonce,
      peerSession: aliceSession,
      hostSession: carolSession,
      binding: await m.binding(),
    });
    put(peerHello.frame, 'dial', signTranscript(aliceKeys, dial));
    expect(PeerHello.safeParse(peerHello.frame).success).toBe(true);
    m.send(peerHello.frame);
    const ack = await m.next((f) => f.t === 'hello', 'p2p hello answer');
    expectGolden(ack, G('p2p hello answer'), PeerHelloAck, true);
    // The host proved its certificate's key: its signature over the transcript verifies.
    const hostClaims = checkLinkCert(ack.cert, serverKey);
    expect(hostClaims).toMatchObject({ typ: 'key', u: 'carol', r: 'user', sid: carolSession });
    const parts = {
      peerNonce: peerHello.frame.nonce,
      hostNonce: ack.nonce,
      peerSession: aliceSession,
      hostSession: hostClaims.sid,
      binding: await m.binding(), // fresh: this TLS connection's
    };
    verifyTranscript(hostClaims, transcript('host', parts), ack.sig);
    const auth = G('p2p auth');
    put(auth.frame, 'sig', signTranscript(aliceKeys, transcript('peer', parts))); // fresh: transcript
    expect(PeerAuth.safeParse(auth.frame).success).toBe(true);
    m.send(auth.frame);

    // Subscribe (again until carol's host has heard from the server that alice joined).
    const sub = G('p2p subscribe request');
    put(sub.frame, 'body.channelIds.0', hosted); // fresh: the real host's channel
    let subAnswer: Record<string, any> | undefined;
    for (let id = 100; !subAnswer; id++) {
      m.send({ ...sub.frame, id });
      const res = await m.answer(id);
      if (res.body?.channelIds?.length === 1) subAnswer = { ...res, id: 1 };
      else await new Promise((r) => setTimeout(r, 50));
      expect(id).toBeLessThan(200);
    }
    expectGolden(subAnswer, G('p2p subscribe answer'), P2P_OPS.subscribe.res);

    // The golden P2P post, moved to the real host's channel: id and signature follow the content.
    const post = G('p2p post request');
    const msg = post.frame.body.message;
    msg.channelId = hosted;
    msg.id = messageId({ ...msg, author: 'alice' });
    msg.sig = signMessage({ ...msg, author: 'alice' }, aliceKeys);
    m.send(post.frame);
    expectGolden(await m.answer(2), G('p2p post answer'), P2P_OPS.post.res);

    // carol posts in her channel: the host pushes it to alice.
    const hostPost = await carol.call('POST', `/api/channels/${hosted}/messages`, {
      text: 'hi from the host',
    });
    expect(hostPost.status).toBeLessThan(300);
    const pushed = await m.next((f) => f.t === 'ev' && f.ev === 'message', 'p2p message event');
    expectGolden(pushed, G('p2p message event'), P2P_EVENTS.message);

    const sync = G('p2p sync request');
    put(sync.frame, 'body.channelId', hosted);
    m.send(sync.frame);
    expectGolden(await m.answer(3), G('p2p sync answer'), P2P_OPS.sync.res);

    // A version 1 peer (its hello had a token, no certificate) is told the version, not E_BAD_FRAME.
    const old = new Raw(Number(p2pPort));
    old.send({ t: 'hello', v: 1, role: 'peer', token: 'x' });
    expect(await old.next((f) => f.t === 'error', 'p2p version error')).toMatchObject({
      code: 'E_VERSION_MISMATCH',
    });

    m.send(G('p2p unknown operation'));
    expectGolden(await m.answer(4), G('p2p unknown operation answer'), Response, true);
    m.send(G('ping'));
    await m.next((f) => f.t === 'pong', 'p2p pong');
    expect(m.closed).toBe(false);

    // Every golden frame was used above, and every one decodes from its hex as its frame.
    expect(golden.filter((g) => !used.has(g.name)).map((g) => g.name)).toEqual([]);
    for (const g of golden)
      expect(new FrameDecoder().push(Buffer.from(g.hex, 'hex')), g.name).toEqual([g.frame]);
  }, 60_000);
});
