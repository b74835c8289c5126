// Outsider attacks on livestream media (PROTOCOL.md §5.2 `stream_key`, §5.4 SRTP), with an SRTP
// written from RFC 3711 (./srtp.ts). Mallory is a real viewer of alice's stream that relays to
// bob (a real peer process): she gets alice's hop keys legitimately, gives bob his, and relays
// alice's media re-protected under them. Interop is shown both ways (alice's SRTP and SRTCP open
// with our code, our consent answers earn media, bob plays frames we protected and answers our
// checks); then altered, replayed, wrongly keyed, plain and other-hop packets are refused and
// counted, and non-children are refused keys.
import { test, expect, afterAll } from 'vitest';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import tls from 'node:tls';
import {
  startServer,
  startPeer,
  registerLogin,
  killAll,
  sleep,
  p2pConnect,
  b64u,
  frame,
} from './lib.js';
import { bindingOf, hostHello, makeCert, onFrames } from './tls.js';
import {
  keysFrom,
  randomInline,
  protectRtp,
  unprotectRtp,
  protectRtcp,
  unprotectRtcp,
  RocTracker,
  app,
  emptyRr,
  isRtcp,
  type Keys,
} from './srtp.js';

afterAll(killAll);

const SUITE = 'AES_CM_128_HMAC_SHA1_80';
const until = async (ok: () => boolean, ms: number) => {
  for (let t = 0; t < ms && !ok(); t += 50) await sleep(50);
  return ok();
};
/** A stats counter, wherever the stats object keeps it. */
function counter(stats: any, name: string): number {
  if (stats && typeof stats === 'object') {
    if (typeof stats[name] === 'number') return stats[name];
    for (const v of Object.values(stats)) {
      const n = counter(v, name);
      if (n >= 0) return n;
    }
  }
  return -1;
}
const udpSocket = async () => {
  const u = dgram.createSocket('udp4');
  await new Promise<void>((r) => u.bind(0, '127.0.0.1', () => r()));
  return u;
};
const rtp = (ssrc: number, seq: number, payload = crypto.randomBytes(100)) => {
  const h = Buffer.alloc(12);
  h[0] = 0x80;
  h[1] = 96;
  h.writeUInt16BE(seq & 0xffff, 2);
  h.writeUInt32BE(seq * 3000, 4);
  h.writeUInt32BE(ssrc >>> 0, 8);
  return Buffer.concat([h, payload]);
};

test('SRTP hop keys: interop both ways, and altered / replayed / foreign packets are refused', async () => {
  const srv = await startServer();
  const alice = await startPeer(srv, ['--stream-fanout', '1']);
  const bob = await startPeer(srv);
  for (const [p, u] of [
    [alice, 'alice'],
    [bob, 'bob'],
  ] as const) {
    await p.api('POST', '/api/register', { username: u, password: 'secret-pw-1' });
    await p.api('POST', '/api/login', { username: u, password: 'secret-pw-1' });
  }
  const ch = (await alice.api('POST', '/api/channels', { name: 'live', allowVisitors: false }))
    .body;
  expect((await bob.api('POST', `/api/channels/${ch.id}/join`)).status).toBe(200);
  const m = await registerLogin(srv, 'mallory');
  const carol = await registerLogin(srv, 'carol');
  for (const x of [m, carol])
    expect((await x.c.req('channel_join', { channelId: ch.id })).body).toBeTruthy();
  const live = await alice.api('POST', `/api/channels/${ch.id}/streams`, {
    source: 'synthetic',
    fps: 30,
    bitrateKbps: 300,
  });
  expect(live.status).toBe(201);
  const streamId = live.body.streamId as string;

  // --- Mallory: a real viewer with a UDP port and a P2P listener for her own children.
  const udp = await udpSocket();
  const myUdp = (udp.address() as any).port as number;
  const st = {
    fromAlice: 0,
    aliceBad: 0,
    checksFromAlice: 0,
    bobAnswers: 0,
    bobRtcpBad: 0,
    toBob: [] as Buffer[],
    lastSeqToBob: new Map<number, number>(),
    keyAsks: 0,
  };
  let downA: Keys | undefined, upA: Keys | undefined;
  let downB: Keys | undefined, upB: Keys | undefined;
  let bobAddr: { ip: string; udpPort: number } | undefined;
  let aliceUdp = 0;
  let idxToAlice = 0;
  let idxToBob = 0;
  const sentToAlice: Buffer[] = [];
  const rocA = new RocTracker();
  udp.on('message', (d, r) => {
    if (r.port === aliceUdp && downA && upA) {
      if (isRtcp(d)) {
        const x = unprotectRtcp(downA, d);
        if (!x) return void st.aliceBad++;
        if (x.rtcp[1] === 204 && x.rtcp.toString('ascii', 8, 12) === 'HCCQ') {
          st.checksFromAlice++;
          const ans = protectRtcp(
            upA,
            app(x.rtcp.readUInt32BE(4), 'HCCR', x.rtcp.subarray(12, 24)),
            idxToAlice++,
          );
          sentToAlice.push(ans);
          udp.send(ans, aliceUdp, '127.0.0.1');
        }
        return;
      }
      const ssrc = d.readUInt32BE(8);
      const seq = d.readUInt16BE(2);
      const roc = rocA.guess(ssrc, seq);
      const clear = unprotectRtp(downA, d, roc);
      if (!clear) return void st.aliceBad++;
      rocA.accept(ssrc, seq, roc);
      st.fromAlice++;
      if (downB && bobAddr) {
        const out = protectRtp(downB, clear, roc);
        st.toBob.push(out);
        st.lastSeqToBob.set(ssrc, seq);
        udp.send(out, bobAddr.udpPort, bobAddr.ip);
      }
    } else if (bobAddr && r.port === bobAddr.udpPort && upB) {
      const x = isRtcp(d) ? unprotectRtcp(upB, d) : null;
      if (!x) return void st.bobRtcpBad++;
      if (x.rtcp[1] === 204 && x.rtcp.toString('ascii', 8, 12) === 'HCCR') st.bobAnswers++;
    }
  });

  const cred = makeCert();
  const listener = tls.createServer({ key: cred.key, cert: cred.cert }, (s) => {
    s.on('error', () => {});
    const nonce = b64u(crypto.randomBytes(32));
    let peerHello: any;
    onFrames(s, (f) => {
      if (f.t === 'ping') return void s.write(frame({ t: 'pong' }));
      if (f.t === 'hello') {
        peerHello = f;
        s.write(frame(hostHello(m, f, nonce, bindingOf(s))));
      } else if (f.t === 'req' && f.op === 'stream_key' && peerHello) {
        st.keyAsks++;
        const down = randomInline();
        const up = randomInline();
        downB = keysFrom(down);
        upB = keysFrom(up);
        s.write(frame({ t: 'res', id: f.id, body: { suite: SUITE, down, up } }));
      } else if (f.t === 'req') {
        s.write(frame({ t: 'res', id: f.id, error: { code: 'E_UNKNOWN_TYPE', message: 'no' } }));
      }
    });
  });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', () => r()));
  const myP2p = (listener.address() as any).port as number;

  const link = await p2pConnect(alice, { cert: m.cert, key: m.key });
  expect(link.ok).toBe(true);
  link.c.onEvent = (e) => {
    if (e.ev === 'stream_children' && e.body.streamId === streamId)
      bobAddr = e.body.children.find((c: any) => c.username === 'bob');
  };
  const w = await link.c.req('watch', { streamId, udpPort: myUdp, p2pPort: myP2p });
  expect(w.body?.parent?.username).toBe('alice');
  const video = w.body.stream.videoSsrc as number;
  aliceUdp = w.body.parent.udpPort;
  const k = await link.c.req('stream_key', { streamId });
  expect(k.body?.suite).toBe(SUITE);
  expect(Buffer.from(k.body.down, 'base64')).toHaveLength(30);
  expect(k.body.down).not.toBe(k.body.up);
  downA = keysFrom(k.body.down);
  upA = keysFrom(k.body.up);

  // Interop 1: alice's consent checks open with our SRTCP; our answers (our SRTCP) earn media,
  // which opens with our SRTP.
  expect(await until(() => st.fromAlice > 30, 6000), 'no media from alice').toBe(true);
  expect(st.checksFromAlice).toBeGreaterThan(0);
  expect(st.aliceBad).toBe(0);

  // --- Bob watches: alice's one slot is taken, so he is placed under mallory.
  const bw = await bob.api('POST', `/api/streams/${streamId}/watch`);
  expect(bw.body?.parent, JSON.stringify(bw)).toBe('mallory');
  expect(await until(() => !!bobAddr && st.keyAsks > 0, 6000), 'bob never asked keys').toBe(true);
  const checks = setInterval(() => {
    if (downB && bobAddr)
      udp.send(
        protectRtcp(downB, app(video, 'HCCQ', crypto.randomBytes(12)), idxToBob++),
        bobAddr.udpPort,
        bobAddr.ip,
      );
  }, 100);
  // Interop 2: bob answers our checks under his up key, and plays frames we protected.
  const bobStats = async () => (await bob.api('GET', `/api/streams/${streamId}/stats`)).body as any;
  expect(await until(() => st.bobAnswers > 0, 5000), 'bob never answered a check').toBe(true);
  let s0: any;
  for (let i = 0; i < 60; i++) {
    s0 = await bobStats();
    if (counter(s0, 'framesComplete') > 10) break;
    await sleep(100);
  }
  expect(counter(s0, 'framesComplete'), JSON.stringify(s0)).toBeGreaterThan(10);
  for (const c of ['srtpAuthFailures', 'srtpReplays', 'srtpMalformed', 'srtpUnkeyed'])
    expect(counter(s0, c), `viewer stats lack ${c}: ${JSON.stringify(s0)}`).toBeGreaterThanOrEqual(
      0,
    );

  // --- Attacks on bob's hop (fresh sequence numbers ahead of the stream, so only the tag judges).
  const send = (d: Buffer) => udp.send(d, bobAddr!.udpPort, bobAddr!.ip);
  const base = (st.lastSeqToBob.get(video) ?? 0) + 400;
  const N = 10;
  const before = await bobStats();
  // altered: a correctly protected packet with one payload bit flipped
  for (let i = 0; i < N; i++) {
    const p = protectRtp(downB!, rtp(video, base + i), 0);
    p[20]! ^= 1;
    send(p);
  }
  // wrong key
  const wrong = keysFrom(randomInline());
  for (let i = 0; i < N; i++) send(protectRtp(wrong, rtp(video, base + 20 + i), 0));
  // plain RTP
  for (let i = 0; i < N; i++) send(rtp(video, base + 40 + i));
  // replays of packets bob already authenticated
  const replayed = st.toBob.slice(-N - 20, -20);
  for (const p of replayed) send(p);
  await sleep(400);
  const after = await bobStats();
  const d = (c: string) => counter(after, c) - counter(before, c);
  expect(d('srtpAuthFailures') + d('srtpUnkeyed'), JSON.stringify(after)).toBeGreaterThanOrEqual(
    3 * N,
  );
  expect(d('srtpAuthFailures')).toBeGreaterThanOrEqual(3 * N);
  expect(d('srtpReplays')).toBeGreaterThanOrEqual(replayed.length);

  // --- Carol, a member but not bob's parent: refused keys, and cannot inject into bob's hop.
  const cl = await p2pConnect(alice, { cert: carol.cert, key: carol.key });
  expect(cl.ok).toBe(true);
  const notChild = await cl.c.req('stream_key', { streamId });
  expect(notChild.error?.code).toBe('E_FORBIDDEN');
  const toBob = await p2pConnect(bob, { cert: carol.cert, key: carol.key });
  expect(toBob.ok).toBe(true);
  const notBobsChild = await toBob.c.req('stream_key', { streamId });
  expect(notBobsChild.error?.code).toBe('E_FORBIDDEN');
  // She watches too (a leaf of alice's, her own hop) and gets her own keys...
  const cu = await udpSocket();
  const cw = await cl.c.req('watch', { streamId, udpPort: (cu.address() as any).port });
  expect(cw.body?.parent).toBeTruthy();
  const ck = await cl.c.req('stream_key', { streamId });
  expect(ck.body?.suite).toBe(SUITE);
  const carolKeys = keysFrom(ck.body.down);
  // ...which, used on bob's hop with the stream's own SSRC, are refused.
  const c0 = await bobStats();
  for (let i = 0; i < N; i++)
    cu.send(protectRtp(carolKeys, rtp(video, base + 60 + i), 0), bobAddr!.udpPort, bobAddr!.ip);
  await sleep(400);
  const c1 = await bobStats();
  expect(counter(c1, 'srtpAuthFailures') - counter(c0, 'srtpAuthFailures')).toBeGreaterThanOrEqual(
    N,
  );
  // Bob still plays what his real parent protects.
  const f0 = counter(c1, 'framesComplete');
  await sleep(800);
  expect(counter(await bobStats(), 'framesComplete')).toBeGreaterThan(f0);

  // --- The streamer's side: a replayed consent answer and plain RTCP from its child are counted.
  const aliceStats = async () =>
    (await alice.api('GET', `/api/streams/${streamId}/stats`)).body as any;
  const a0 = await aliceStats();
  // (consent answers go every 2 s once given: the first ones are long authenticated)
  const old = sentToAlice.slice(0, 2);
  for (const p of old) udp.send(p, aliceUdp, '127.0.0.1');
  const plain = [
    Buffer.concat([emptyRr(0x1234), Buffer.alloc(32)]),
    app(video, 'HCCR', crypto.randomBytes(12)),
  ];
  for (const p of plain) udp.send(p, aliceUdp, '127.0.0.1');
  const altered = protectRtcp(upA!, emptyRr(0x1234), 100000);
  altered[9]! ^= 1;
  udp.send(altered, aliceUdp, '127.0.0.1');
  await sleep(400);
  const a1 = await aliceStats();
  expect(counter(a1, 'srtpReplays') - counter(a0, 'srtpReplays'), JSON.stringify(a1)).toBe(
    old.length,
  );
  expect(
    counter(a1, 'srtpAuthFailures') +
      counter(a1, 'srtpUnkeyed') -
      counter(a0, 'srtpAuthFailures') -
      counter(a0, 'srtpUnkeyed'),
  ).toBe(plain.length + 1);

  clearInterval(checks);
  udp.close();
  cu.close();
  listener.close();
}, 50000);

// Found by an outsider (fixed): PROTOCOL.md §5.4 says "A datagram too short for a header and a tag
// is malformed. Refused datagrams are dropped, counted (… `srtpMalformed` …)". A bare 8-byte RTCP
// receiver report from a keyed child moved no counter at all before the fix.
test('a too-short datagram from a child is counted by its streamer', async () => {
  const srv = await startServer();
  const alice = await startPeer(srv);
  await alice.api('POST', '/api/register', { username: 'alice', password: 'secret-pw-1' });
  await alice.api('POST', '/api/login', { username: 'alice', password: 'secret-pw-1' });
  const ch = (await alice.api('POST', '/api/channels', { name: 'live', allowVisitors: false }))
    .body;
  const live = await alice.api('POST', `/api/channels/${ch.id}/streams`, {
    source: 'synthetic',
    fps: 15,
    bitrateKbps: 100,
  });
  const streamId = live.body.streamId as string;
  const m = await registerLogin(srv, 'mallory');
  await m.c.req('channel_join', { channelId: ch.id });
  const link = await p2pConnect(alice, { cert: m.cert, key: m.key });
  const u = await udpSocket();
  const w = await link.c.req('watch', { streamId, udpPort: (u.address() as any).port });
  expect(w.body?.parent?.username).toBe('alice');
  expect((await link.c.req('stream_key', { streamId })).body?.suite).toBe(SUITE);
  await sleep(300);
  const stats = async () => (await alice.api('GET', `/api/streams/${streamId}/stats`)).body as any;
  const a0 = await stats();
  expect(counter(a0, 'srtpMalformed')).toBeGreaterThanOrEqual(0);
  for (let i = 0; i < 3; i++) u.send(emptyRr(0x1234), w.body.parent.udpPort, '127.0.0.1');
  await sleep(400);
  const a1 = await stats();
  u.close();
  const moved = ['srtpMalformed', 'srtpAuthFailures', 'srtpUnkeyed', 'srtpReplays']
    .map((c) => counter(a1, c) - counter(a0, c))
    .reduce((a, b) => a + b, 0);
  expect(moved, 'streamer: ' + JSON.stringify(a1)).toBe(3);
}, 30000);
