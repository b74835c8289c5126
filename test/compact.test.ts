/**
 * Compact pushes and pages (docs/PROTOCOL.md §3.11; issue 19 item 1): a certificate and a channel
 * id cross a compact link once, pushes and pages name them by number, and what the receiver
 * rebuilds is exactly the full form a link that did not ask for it gets.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import fc from 'fast-check';
import { describe, expect, it, onTestFinished } from 'vitest';
import { FrameDecoder, encodeFrame } from '../src/protocol/frame.js';
import { COMPACT_LIMITS, RefReader, RefWindow } from '../src/protocol/compact.js';
import { EVENTS, OPS } from '../src/protocol/server-link.js';
import { ServerLink } from '../src/peer/server-link.js';
import { ServerTrust } from '../src/peer/server-trust.js';
import { createTlsServer, selfSignedIdentity } from '../src/shared/tls.js';
import { ConnectionLog } from '../src/shared/connlog.js';
import { HchatError } from '../src/protocol/errors.js';
import { P2P_EVENTS, P2P_OPS } from '../src/protocol/peer-link.js';
import { p2pConnect } from './outsider/lib.js';
import { newSessionKeys } from '../src/shared/signing.js';
import { readClaims } from '../src/shared/tokens.js';
import {
  createTestnet,
  rawHostLink,
  rawSession,
  signIn,
  signed,
  tempDir,
  waitFor,
} from './testnet.js';

/**
 * A raw client over TLS that counts the bytes of its TCP connection (what crosses the wire,
 * TLS records included) and keeps every frame with its size.
 */
class Wire {
  readonly frames: { f: Record<string, any>; bytes: number }[] = [];
  closed = false;
  private readonly decoder = new FrameDecoder();
  private readonly tls: tls.TLSSocket;
  private readonly tcp: net.Socket;
  private nextId = 1;

  constructor(port: number) {
    this.tcp = net.connect(port, '127.0.0.1');
    this.tls = tls.connect({ socket: this.tcp, rejectUnauthorized: false });
    this.tls.on('data', (b) => {
      for (const f of this.decoder.push(b)) {
        if (f.t === 'ping') this.send({ t: 'pong' });
        this.frames.push({ f, bytes: Buffer.byteLength(JSON.stringify(f)) + 4 });
      }
    });
    this.tls.on('error', () => undefined);
    this.tls.on('close', () => (this.closed = true));
    onTestFinished(() => void this.tls.destroy());
  }

  /** Bytes of the TCP connection so far, TLS records and all. */
  get tcpBytesIn(): number {
    return this.tcp.bytesRead;
  }

  send(f: object): void {
    this.tls.write(encodeFrame(f));
  }

  async hello(compact: boolean): Promise<Record<string, any>> {
    this.send({ t: 'hello', v: 4, role: 'peer', ...(compact ? { compact: 1 } : {}) });
    return (await this.next((f) => f.t === 'hello')).f;
  }

  async request(op: string, body: object): Promise<any> {
    const id = this.nextId++;
    this.send({ t: 'req', id, op, body });
    const { f } = await this.next((f) => f.t === 'res' && f.id === id);
    if (f.error) throw new Error(`${op}: ${f.error.code} ${f.error.message}`);
    return f.body;
  }

  next(pick: (f: Record<string, any>) => boolean) {
    return waitFor(() => this.frames.find((x) => pick(x.f)), 10_000, 'a frame');
  }

  /** Frames received from index `from` on. */
  since(from: number) {
    return this.frames.slice(from);
  }
}

/** A testnet, alice signed in on a raw link (the peer's own), and a channel of hers. */
async function aliceWithChannel(name: string) {
  const tn = await createTestnet();
  const link = await tn.rawLink();
  await link.request('register', { username: 'alice', password: 'alice-pw' });
  const alice = await rawSession(link, { username: 'alice', password: 'alice-pw' });
  const channel = await link.request('channel_create', {
    id: crypto.randomUUID(),
    name,
    allowVisitors: false,
  });
  return { tn, link, alice, channel };
}

const TEXT = (i: number) => `${i}|`.padEnd(100, 'x');

describe('compact pushes and pages (§3.11)', () => {
  it('sender and receiver tables agree: every number a frame names is held when it is read', () => {
    // Any sequence of frames, each naming up to 128 numbers from a space larger than the table.
    // From a space a little larger than the table, numbers held at its oldest end are wanted
    // often (the case two passes missed); and from a much larger one.
    const frame = fc.uniqueArray(
      fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 700 })),
      {
        minLength: 1,
        maxLength: COMPACT_LIMITS.refsPerFrame,
      },
    );
    fc.assert(
      fc.property(fc.array(frame, { minLength: 1, maxLength: 60 }), (frames) => {
        const sender = new RefWindow();
        const receiver = new RefReader();
        let defined = 0;
        for (const nums of frames) {
          sender.ensure(nums, (n) => {
            defined++;
            receiver.define({ t: 'ref', c: n, channelId: uuidOf(n) });
          });
          // The frame itself: every number it names resolves to its own value.
          for (const n of nums) expect(receiver.expand(item(n)).channelId).toBe(uuidOf(n));
        }
        return defined >= new Set(frames.flat()).size;
      }),
      { numRuns: 300 },
    );
  });

  it('a frame wanting numbers held at the oldest end of a full table gets them all defined', () => {
    // The table full, 0 the oldest: defining 1000 pushes 0 out, defining 0 again pushed 1 out,
    // and two passes left 1 undefined (the realistic mix's links broke so, bench/mix.ts).
    const sender = new RefWindow();
    const receiver = new RefReader();
    const define = (n: number) => receiver.define({ t: 'ref', c: n, channelId: uuidOf(n) });
    sender.ensure(
      Array.from({ length: COMPACT_LIMITS.refs / 2 }, (_, i) => i),
      define,
    );
    sender.ensure(
      Array.from({ length: COMPACT_LIMITS.refs / 2 }, (_, i) => COMPACT_LIMITS.refs / 2 + i),
      define,
    );
    for (const want of [
      [1, 0, 1000],
      [3, 2, 1001, 1002],
    ]) {
      const defined: number[] = [];
      sender.ensure(want, (n) => (defined.push(n), define(n)));
      for (const n of want) expect(receiver.expand(item(n)).channelId).toBe(uuidOf(n));
      // Each wanted number at most once.
      expect(new Set(defined).size).toBe(defined.length);
    }
  });

  it('a compact item cannot give the rebuilt message a prototype (a __proto__ member is dropped)', () => {
    const reader = new RefReader();
    reader.define({ t: 'ref', c: 1, channelId: uuidOf(1) });
    const raw = JSON.parse(
      `{"c":1,"cert":${JSON.stringify(item(1).cert)},"ts":1,"lc":0,"text":"x","sig":"x","__proto__":{"seq":7}}`,
    );
    const { message } = reader.expand(raw);
    expect(Object.getPrototypeOf(message)).toBe(Object.prototype);
    expect(message.seq).toBeUndefined();
  });

  it('a pushed 100-character message is at most 300 bytes on the wire; its certificate and channel cross once, and it rebuilds to the full form', async () => {
    const { tn, link, alice, channel } = await aliceWithChannel('compact');

    const joined = async (w: Wire, name: string, compact: boolean) => {
      const hello = await w.hello(compact);
      await w.request('register', { username: name, password: `${name}-pw` });
      await w.request('login', {
        username: name,
        password: `${name}-pw`,
        publicKey: newSessionKeys().publicKey,
      });
      await w.request('channel_join', { channelId: channel.id });
      await w.request('subscribe', { channelIds: [channel.id] });
      return hello;
    };
    const bob = new Wire(tn.serverPort); // compact
    const carol = new Wire(tn.serverPort); // full form
    expect((await joined(bob, 'bob', true)).compact).toBe(1);
    expect((await joined(carol, 'carol', false)).compact).toBeUndefined();

    const sizes: number[] = [];
    const wire: number[] = [];
    let ts = Date.now();
    for (let i = 0; i < 4; i++) {
      const from = bob.frames.length;
      const fromCarol = carol.frames.length;
      const tcpBefore = bob.tcpBytesIn;
      await link.request('post', {
        message: signed(alice, { channelId: channel.id, ts: ++ts, lc: 0, text: TEXT(i) }),
      });
      const m = await bob.next((f) => f.t === 'm' && f.text === TEXT(i));
      const ev = await carol.next((f) => f.t === 'ev' && f.body.message.text === TEXT(i));
      const got = bob.since(from);
      // The first push defines alice's certificate and the channel; later ones are `m` alone.
      expect(got.map((x) => x.f.t)).toEqual(i === 0 ? ['ref', 'ref', 'm'] : ['m']);
      expect(carol.since(fromCarol).map((x) => x.f.t)).toEqual(['ev']);
      sizes.push(m.bytes);
      await waitFor(() => bob.tcpBytesIn > tcpBefore || undefined, 5000, 'bytes');
      wire.push(bob.tcpBytesIn - tcpBefore);
      // Rebuilt from the definitions, the compact push is the full event's body, member for member.
      const reader = new RefReader();
      for (const x of bob.frames) if (x.f.t === 'ref') reader.define(x.f);
      expect(reader.expand(m.f)).toEqual(ev.f.body);
      expect(EVENTS.message.safeParse(reader.expand(m.f)).success).toBe(true);
      if (i === 3) console.log(`compact m frame ${m.bytes} B, full ev frame ${ev.bytes} B`);
    }
    for (const n of sizes) expect(n).toBeLessThanOrEqual(300);
    // On the wire, one TLS record around it (22 bytes of TLS 1.3 overhead), pushed alone.
    for (const n of wire.slice(1)) expect(n).toBeLessThanOrEqual(300);
    console.log(`compact push on the wire (TCP payload, TLS included): ${wire.join(', ')} B`);
  });

  it("a session's own posts come back as nothing on its compact link: no push, no `ref` for them", async () => {
    const { tn, link, alice, channel } = await aliceWithChannel('own');
    const bob = new Wire(tn.serverPort);
    expect((await bob.hello(true)).compact).toBe(1);
    await bob.request('register', { username: 'bob', password: 'bob-pw' });
    const keys = newSessionKeys();
    const login = await bob.request('login', {
      username: 'bob',
      password: 'bob-pw',
      publicKey: keys.publicKey,
    });
    const me = { username: 'bob', keys, cert: login.cert as string };
    await bob.request('channel_join', { channelId: channel.id });
    await bob.request('subscribe', { channelIds: [channel.id] });
    const from = bob.frames.length;
    let ts = Date.now();
    for (let i = 0; i < 3; i++)
      await bob.request('post', {
        message: signed(me, { channelId: channel.id, ts: ++ts, lc: 0, text: `mine ${i}` }),
      });
    // Someone else's message: the first frames bob's link needs define its author and channel.
    await link.request('post', {
      message: signed(alice, { channelId: channel.id, ts: ++ts, lc: 0, text: 'theirs' }),
    });
    await bob.next((f) => f.t === 'm' && f.text === 'theirs');
    const got = bob.since(from).map((x) => x.f);
    expect(got.map((f) => f.t)).toEqual(['res', 'res', 'res', 'ref', 'ref', 'm']);
    expect(got.filter((f) => f.t === 'ref' && f.cert).map((f) => readClaims(f.cert)?.u)).toEqual([
      'alice',
    ]);
  });

  it('history, sync and search answers are compact on a compact link, and the peer link rebuilds them equal to the full form', async () => {
    const tn = await createTestnet();
    const owner = await tn.rawLink(); // the peer's own link: compact
    expect(owner.server?.compact).toBe(1);
    await owner.request('register', { username: 'olga', password: 'olga-pw' });
    const olga = await rawSession(owner, { username: 'olga', password: 'olga-pw' });
    const channel = await owner.request('channel_create', {
      id: crypto.randomUUID(),
      name: 'pages',
      allowVisitors: false,
    });
    const authors = [olga];
    for (const name of ['pia', 'quinn']) {
      const l = await tn.rawLink();
      await l.request('register', { username: name, password: `${name}-pw` });
      const s = await rawSession(l, { username: name, password: `${name}-pw` });
      await l.request('channel_join', { channelId: channel.id });
      authors.push(Object.assign(s, { link: l }));
    }
    const links = [owner, ...authors.slice(1).map((a) => (a as any).link as ServerLink)];
    let ts = Date.now();
    for (let i = 0; i < 30; i++) {
      const a = i % 3;
      await links[a]!.request('post', {
        message: signed(authors[a]!, {
          channelId: channel.id,
          ts: ++ts,
          lc: 0,
          text: `word${i % 2 ? ' apple' : ''} ${i}`,
        }),
      });
    }
    const full = new Wire(tn.serverPort);
    await full.hello(false);
    await full.request('register', { username: 'rita', password: 'rita-pw' });
    await full.request('login', {
      username: 'rita',
      password: 'rita-pw',
      publicKey: newSessionKeys().publicKey,
    });
    await full.request('channel_join', { channelId: channel.id });
    const raw = new Wire(tn.serverPort);
    await raw.hello(true);
    await raw.request('login', {
      username: 'rita',
      password: 'rita-pw',
      publicKey: newSessionKeys().publicKey,
    });

    const asks: [keyof typeof OPS & ('history' | 'sync' | 'search'), object][] = [
      ['history', { channelId: channel.id, limit: 20 }],
      ['sync', { channelId: channel.id, since: 3, limit: 25 }],
      ['search', { query: 'apple', channelIds: [channel.id] }],
    ];
    for (const [op, body] of asks) {
      const expected = await full.request(op, body);
      expect(expected.messages.length).toBeGreaterThan(5);
      // The peer's own link (peer/rpc-link.ts) rebuilds the compact page to the full one.
      expect(await owner.request(op, body as never)).toEqual(OPS[op].res.parse(expected));
      // And on the wire it was compact: no item carries channelId, and certificates by number.
      const got = await raw.request(op, body);
      for (const m of got.messages) {
        expect(m.channelId).toBeUndefined();
        expect(m.id).toBeUndefined();
        expect(typeof m.k).toBe('number');
      }
      expect(JSON.stringify(got).length).toBeLessThan(JSON.stringify(expected).length / 2);
    }
  });

  it('a server that names a number the link never defined, or sends m to a link that did not ask, loses the link with a clear error, and the peer goes on', async () => {
    const identity = selfSignedIdentity('hostile');
    const cases: { compact: boolean; frames: object[]; code: string; says: RegExp }[] = [
      {
        compact: true,
        frames: [{ t: 'm', c: 7, k: 0, ts: 1, lc: 0, text: 'x', sig: 'x', seq: 1 }],
        code: 'E_BAD_FRAME',
        says: /channel number 7 is not defined/,
      },
      {
        compact: true,
        frames: [
          { t: 'ref', c: 7, channelId: '019abcde-0000-7000-8000-0000000000c1' },
          { t: 'm', c: 7, k: 3, ts: 1, lc: 0, text: 'x', sig: 'x', seq: 1 },
        ],
        code: 'E_BAD_FRAME',
        says: /certificate number 3 is not defined/,
      },
      {
        compact: true,
        frames: [{ t: 'ref', c: -1, channelId: 'nope' }],
        code: 'E_BAD_FRAME',
        says: /ref:/,
      },
      {
        compact: false,
        frames: [{ t: 'ref', c: 1, channelId: '019abcde-0000-7000-8000-0000000000c1' }],
        code: 'E_UNKNOWN_TYPE',
        says: /not compact/,
      },
    ];
    for (const c of cases) {
      const got: Record<string, any>[] = [];
      const server = createTlsServer(identity, 5000, new ConnectionLog(tempDir()), (s) => {
        const d = new FrameDecoder();
        s.on('data', (b) => {
          for (const f of d.push(b)) {
            got.push(f);
            if (f.t !== 'hello') continue;
            s.write(
              encodeFrame({
                t: 'hello',
                v: 4,
                role: 'server',
                heartbeatMs: 5000,
                timeoutMs: 15000,
                maxFrame: 1 << 20,
                publicKey: 'AAAA',
                ...(c.compact ? { compact: 1 } : {}),
              }),
            );
            for (const f2 of c.frames) s.write(encodeFrame(f2));
          }
        });
        s.on('error', () => undefined);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      onTestFinished(() => void server.close());
      const port = (server.address() as net.AddressInfo).port;
      const link = new ServerLink({
        host: '127.0.0.1',
        port,
        trust: new ServerTrust(undefined),
        reconnect: false,
      });
      const down = new Promise<HchatError | undefined>((r) => link.once('down', r));
      await link.start();
      const reason = await down;
      expect(got[0]).toMatchObject({ t: 'hello', compact: 1 });
      expect(reason?.code).toBe(c.code);
      expect(reason?.message).toMatch(c.says);
      // The error went back to the server before the close, as §1 says.
      await waitFor(() => got.find((f) => f.t === 'error'), 5000, 'error frame');
      expect(got.find((f) => f.t === 'error')).toMatchObject({ code: c.code });
      link.stop();
    }
  });
});

describe('compact pushes and pages on the P2P link (§3.11, §4.2)', () => {
  it('a host pushes and pages compact to a member that asked, and in full to one that did not; both rebuild the same', async () => {
    const tn = await createTestnet({ peers: 1 });
    const alice = tn.peers[0]!;
    await signIn(alice, 'alice');
    const ch = (await alice.call('POST', '/api/channels', { name: 'hosted', allowVisitors: false }))
      .body.id as string;
    await alice.call('POST', `/api/channels/${ch}/messages`, { text: 'before' });
    const link = await tn.rawLink();
    await link.request('register', { username: 'carol', password: 'carol-pw' });
    const carol = await rawSession(link, { username: 'carol', password: 'carol-pw' });
    await link.request('channel_join', { channelId: ch });
    const entry = await waitFor(
      async () =>
        (await link.request('get_list', {})).peers.find(
          (e) => e.username === 'alice' && e.hosts.includes(ch),
        ),
      10_000,
      "alice's entry hosting the channel",
    );
    const me = { cert: carol.cert, key: carol.keys };
    const compact = await p2pConnect(entry, me, undefined, { compact: 1 });
    const full = await p2pConnect(entry, me);
    onTestFinished(() => (compact.c.close(), full.c.close()));
    expect(compact.hello.compact).toBe(1);
    expect(full.hello.compact).toBeUndefined();
    for (const x of [compact, full])
      expect((await x.c.req('subscribe', { channelIds: [ch] })).body.channelIds).toEqual([ch]);

    // The real member's link asks for it too, and rebuilds what it gets.
    const member = rawHostLink(entry, carol);
    await member.start();
    expect(member.remoteHello?.compact).toBe(1);
    await member.request('subscribe', { channelIds: [ch] });
    const pushed: unknown[] = [];
    member.on('event', (name, body) => name === 'message' && pushed.push(body));

    await alice.call('POST', `/api/channels/${ch}/messages`, { text: TEXT(1) });
    const ev = await waitFor(
      () => full.c.events.find((f: any) => f.body.message.text === TEXT(1)),
      10_000,
      'ev',
    );
    const m = await waitFor(() => compact.c.frames.find((f: any) => f.t === 'm'), 10_000, 'm');
    const refs = new RefReader();
    for (const f of compact.c.frames) if (f.t === 'ref') refs.define(f);
    expect(compact.c.frames.map((f: any) => f.t)).toEqual(['hello', 'ref', 'ref', 'm']);
    expect(refs.expand(m)).toEqual(ev.body);
    expect(Buffer.byteLength(JSON.stringify(m)) + 4).toBeLessThanOrEqual(300);
    await waitFor(() => pushed.length === 1 || undefined, 10_000, 'the member link rebuilt it');
    expect(pushed[0]).toEqual(P2P_EVENTS.message.parse(ev.body));

    const body = { channelId: ch, limit: 50 };
    const page = (await full.c.req('history', body)).body;
    const compactPage = (await compact.c.req('history', body)).body;
    expect(page.messages.map((x: any) => x.text)).toEqual(['before', TEXT(1)]);
    expect(compactPage.messages[0].channelId).toBeUndefined();
    expect(refs.expandPage(compactPage)).toEqual(page);
    expect(await member.request('history', body)).toEqual(P2P_OPS.history.res.parse(page));
  });
});

function uuidOf(n: number): string {
  return `019abcde-0000-7000-8000-${n.toString(16).padStart(12, '0')}`;
}

/** A compact item naming channel `n`, its certificate whole (a made-up one: `u` is all it needs). */
function item(n: number): Record<string, unknown> {
  const cert = `${Buffer.from(JSON.stringify({ u: 'x' })).toString('base64url')}.sig`;
  return { c: n, cert, ts: 1, lc: 0, text: 'x', sig: 'x', seq: 1 };
}
