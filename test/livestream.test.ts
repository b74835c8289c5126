import { describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import path from 'node:path';
import {
  api,
  collectEvents,
  createTestnet,
  signIn,
  waitFor,
  type TestPeer,
  type Testnet,
} from './testnet.js';
import { spawnHchat } from './processes.js';
import type { PeerOptions } from '../src/peer/node.js';
import { RtpSender } from '../src/stream/sender.js';
import { encodeRtp } from '../src/stream/rtp.js';

/** A streamer with a channel and `n` members, each on its own peer. */
async function audience(
  n: number,
  extra: Partial<PeerOptions> = {},
  streamerExtra: Partial<PeerOptions> = {},
): Promise<{ net: Testnet; streamer: TestPeer; viewers: TestPeer[]; channelId: string }> {
  const net = await createTestnet();
  const streamer = await net.addPeer('streamer', streamerExtra);
  await signIn(streamer, 'streamer');
  const c = await streamer.call('POST', '/api/channels', { name: 'live', allowVisitors: false });
  const viewers: TestPeer[] = [];
  for (let i = 0; i < n; i++) {
    const v = await net.addPeer(`viewer${i}`, extra);
    await signIn(v, `viewer${i}`);
    expect((await v.call('POST', `/api/channels/${c.body.id}/join`)).status).toBe(200);
    viewers.push(v);
  }
  return { net, streamer, viewers, channelId: c.body.id };
}

/** Waits until the peer's tracker list shows the stream, then watches it. */
async function watch(v: TestPeer, streamId: string): Promise<void> {
  await waitFor(
    async () => (await v.call('POST', `/api/streams/${streamId}/watch`)).status === 200,
    10_000,
    `watch ${streamId}`,
  );
}

const stats = async (p: TestPeer, streamId: string) =>
  (await p.call('GET', `/api/streams/${streamId}/stats`)).body;

describe('livestream', () => {
  it('10 viewers at 2 % loss get lost packets repaired in time (97 % of frames here, 99 % in the bench); the server carries no media', async () => {
    const { net, streamer, viewers, channelId } = await audience(10, { udpLoss: 0.02 });
    const serverBefore = (await fetch(`${net.server.httpUrl}stats`).then((r) => r.json())).traffic;
    const live = await streamer.call('POST', `/api/channels/${channelId}/streams`, {
      source: 'synthetic',
      fps: 30,
      bitrateKbps: 400,
    });
    expect(live.status).toBe(201);
    const { streamId } = live.body;
    const listed = await waitFor(async () => {
      const r = await viewers[0]!.call('GET', '/api/streams');
      return r.body.find((s: any) => s.streamId === streamId);
    });
    expect(listed).toMatchObject({ streamer: 'streamer', channelId, fps: 30 });
    await Promise.all(viewers.map((v) => watch(v, streamId)));
    // Every viewer receives for a few seconds.
    await waitFor(
      async () => {
        const all = await Promise.all(viewers.map((v) => stats(v, streamId)));
        return all.every((s) => s.framesComplete >= 120);
      },
      20_000,
      'every viewer to complete 120 frames',
    );
    const all = await Promise.all(viewers.map((v) => stats(v, streamId)));
    console.log(JSON.stringify(all), JSON.stringify(await stats(streamer, streamId)));
    for (const s of all) {
      const ratio = s.framesComplete / (s.framesComplete + s.framesDropped);
      // Loss is repaired: without NACKs 2 % packet loss loses far more than 3 % of frames. The
      // 99 % target itself is measured by `npm run bench` (bench/stream.ts, completion at 1 and
      // 5 % loss) on a machine the rest of the suite does not share; here, beside other test
      // files on 2 cores, a frame or two in 200 can miss its deadline.
      expect(ratio, JSON.stringify(s)).toBeGreaterThanOrEqual(0.97);
      expect(s.latencyMs.p50).toBeGreaterThanOrEqual(0);
      expect(s.audioFrames).toBeGreaterThan(0);
    }
    // Loss happened and was repaired, somewhere.
    expect(all.reduce((n, s) => n + s.packetsRecovered, 0)).toBeGreaterThan(0);
    const st = await stats(streamer, streamId);
    expect(st).toMatchObject({ role: 'streamer', viewers: 10 });
    expect(st.children.length).toBe(4); // k = 4 by default: the rest hang under relays
    // The server saw control traffic only (tracker updates), never the megabytes of media.
    const after = (await fetch(`${net.server.httpUrl}stats`).then((r) => r.json())).traffic;
    const serverBytes =
      after.bytesIn + after.bytesOut - serverBefore.bytesIn - serverBefore.bytesOut;
    const mediaBytes = all.reduce((n, s) => n + s.uploadBytes, st.uploadBytes);
    expect(mediaBytes).toBeGreaterThan(1_000_000);
    expect(serverBytes).toBeLessThan(mediaBytes / 50);
    // Stopping ends the stream for everyone.
    expect((await streamer.call('DELETE', `/api/streams/${streamId}`)).status).toBe(204);
    await waitFor(
      async () => (await viewers[9]!.call('GET', `/api/streams/${streamId}/stats`)).status === 404,
    );
  });

  it('a relay tree of 30 viewers with k = 3 keeps the streamer near 3x bitrate and heals when a relay is SIGKILLed', async () => {
    const net = await createTestnet();
    const streamer = await net.addPeer('streamer', { streamFanout: 3 });
    await signIn(streamer, 'streamer');
    const c = await streamer.call('POST', '/api/channels', { name: 'tree', allowVisitors: false });
    const channelId = c.body.id as string;
    const live = await streamer.call('POST', `/api/channels/${channelId}/streams`, {
      source: 'synthetic',
      fps: 25,
      bitrateKbps: 300,
    });
    const { streamId } = live.body;
    // The first three viewers are processes of their own: they become the streamer's direct
    // children, and so relays, and one of them is killed.
    const relays = [];
    for (let i = 0; i < 3; i++) {
      const proc = await spawnHchat([
        'peer',
        '--server',
        `${net.serverHost}:${net.serverPort}`,
        '--data',
        path.join(net.dir, `relay${i}`),
        '--stream-fanout',
        '3',
      ]);
      const call = (m: string, r: string, b?: unknown) => api(proc.ready.ui!, m, r, b);
      const who = `relay${i}`;
      expect(
        (await call('POST', '/api/register', { username: who, password: `${who}-pw` })).status,
      ).toBe(201);
      expect(
        (await call('POST', '/api/login', { username: who, password: `${who}-pw` })).status,
      ).toBe(200);
      expect((await call('POST', `/api/channels/${channelId}/join`)).status).toBe(200);
      await waitFor(
        async () => (await call('POST', `/api/streams/${streamId}/watch`)).status === 200,
      );
      relays.push({ proc, call, who });
    }
    const viewers: TestPeer[] = [];
    for (let i = 0; i < 27; i++) {
      const v = await net.addPeer(`viewer${i}`, { streamFanout: 3 });
      await signIn(v, `viewer${i}`);
      expect((await v.call('POST', `/api/channels/${channelId}/join`)).status).toBe(200);
      viewers.push(v);
    }
    await Promise.all(viewers.map((v) => watch(v, streamId)));
    const st = await stats(streamer, streamId);
    expect(st.viewers).toBe(30);
    expect(st.children.sort()).toEqual(['relay0', 'relay1', 'relay2']);
    expect(st.depth).toBe(3); // 3 + 9 + 18
    await waitFor(
      async () =>
        (await Promise.all(viewers.map((v) => stats(v, streamId)))).every(
          (s) => s.framesComplete >= 50,
        ),
      20_000,
      'every viewer to complete 50 frames',
    );
    // Upload over two seconds: about k = 3 copies of the stream, not 30.
    const s0 = await stats(streamer, streamId);
    await new Promise((r) => setTimeout(r, 2000));
    const s1 = await stats(streamer, streamId);
    const copies = (s1.uploadBytes - s0.uploadBytes) / (s1.streamBytes - s0.streamBytes);
    expect(copies, JSON.stringify(s1)).toBeGreaterThanOrEqual(3);
    expect(copies, JSON.stringify(s1)).toBeLessThan(3.5);

    // A relay dies without a word: its subtree is placed again and receives again.
    relays[0]!.proc.proc.kill('SIGKILL');
    await relays[0]!.proc.exited;
    const before = await Promise.all(viewers.map((v) => stats(v, streamId)));
    await waitFor(
      async () => {
        const now = await Promise.all(viewers.map((v) => stats(v, streamId)));
        return now.every(
          (s, i) => s.parent !== 'relay0' && s.framesComplete >= before[i]!.framesComplete + 50,
        );
      },
      15_000,
      'every viewer to receive 50 more frames, none from the dead relay',
    );
    const after = await stats(streamer, streamId);
    expect(after.viewers).toBe(29);
    expect(after.children.length).toBe(3);

    // A relay that stalls (SIGSTOP: its connection stays open) loses its children within
    // seconds, long before its heartbeat timeout: they report the silence and are moved.
    const stalled = relays[1]!;
    const fed = (await stats(streamer, streamId)).children.includes(stalled.who);
    expect(fed).toBe(true);
    stalled.proc.proc.kill('SIGSTOP');
    const t0 = Date.now();
    const before2 = await Promise.all(viewers.map((v) => stats(v, streamId)));
    // Moved away from it before its heartbeat timeout (6 s) could have noticed anything...
    await waitFor(
      async () =>
        (await Promise.all(viewers.map((v) => stats(v, streamId)))).every(
          (s) => s.parent !== stalled.who,
        ),
      15_000,
      'every viewer moved off the stalled relay',
    );
    expect(Date.now() - t0).toBeLessThan(6000);
    // ...and receiving again (how soon depends on the machine's load, not on the protocol).
    await waitFor(
      async () => {
        const now = await Promise.all(viewers.map((v) => stats(v, streamId)));
        return now.every(
          (s, i) => s.parent !== stalled.who && s.framesComplete >= before2[i]!.framesComplete + 30,
        );
      },
      15_000,
      'every viewer to receive again, none from the stalled relay',
    );
    stalled.proc.proc.kill('SIGCONT');
    // The living relays receive, the resumed one too once it is placed again (its stats have no
    // frame count while it is between parents: wait, do not sample once).
    for (const r of relays.slice(1))
      await waitFor(
        async () =>
          ((await r.call('GET', `/api/streams/${streamId}/stats`)).body.framesComplete ?? 0) > 100,
        15_000,
        `${r.who} receiving`,
      );
  }, 60_000); // 30 peers on 2 cores, each with its TLS handshakes

  it('checks rights at the streamer: non-members and visitors of private channels cannot watch', async () => {
    const { net, streamer, viewers, channelId } = await audience(1);
    const outsider = await net.addPeer('outsider');
    await signIn(outsider, 'outsider');
    const visitor = await net.addPeer('visitor');
    expect((await visitor.call('POST', '/api/visitor', { name: 'guest' })).status).toBe(200);
    const { streamId } = (
      await streamer.call('POST', `/api/channels/${channelId}/streams`, { source: 'synthetic' })
    ).body;
    await watch(viewers[0]!, streamId);
    // The outsider sees the stream in the tracker list, but the streamer refuses it.
    for (const p of [outsider, visitor]) {
      expect((await p.call('GET', '/api/streams')).body).toEqual([]);
      const r = await p.call('POST', `/api/streams/${streamId}/watch`);
      expect(r.status).toBe(404);
      expect(r.body.error.code).toBe('E_STREAM_NOT_FOUND');
    }
    expect(
      (await visitor.call('POST', `/api/channels/${channelId}/streams`, { source: 'synthetic' }))
        .status,
    ).toBe(403);
    const bad = await streamer.call('POST', `/api/channels/${channelId}/streams`, {
      source: 'tv',
      fps: 500,
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/source/);

    // Datagrams that are not ours, or ours from a stranger (plain RTP of the stream's SSRC,
    // which fails SRTP authentication), are counted and ignored.
    const udp = dgram.createSocket('udp4');
    const [ip, port] = (viewers[0]!.udp as string).split(':') as [string, string];
    const vs = (await streamer.call('GET', '/api/streams')).body[0];
    const forged = Buffer.alloc(40);
    forged[0] = 0x80;
    forged[1] = 96;
    forged.writeUInt32BE(vs.videoSsrc, 8);
    for (const d of [Buffer.from('garbage'), Buffer.alloc(3), forged])
      await new Promise((r) => udp.send(d, Number(port), ip, r));
    udp.close();
    await waitFor(async () => (await stats(viewers[0]!, streamId)).srtpAuthFailures >= 1);
    const before = (await stats(viewers[0]!, streamId)).framesComplete;
    await waitFor(async () => (await stats(viewers[0]!, streamId)).framesComplete > before + 10);
    expect(viewers[0]!.node.p2p.media.stats.malformed).toBeGreaterThanOrEqual(2);
  });

  it('a visitor watches a stream in a channel that allows visitors', async () => {
    const net = await createTestnet();
    const streamer = await net.addPeer('streamer');
    await signIn(streamer, 'streamer');
    const c = await streamer.call('POST', '/api/channels', { name: 'open', allowVisitors: true });
    const visitor = await net.addPeer('visitor');
    expect((await visitor.call('POST', '/api/visitor', { name: 'guest' })).status).toBe(200);
    expect((await visitor.call('POST', `/api/channels/${c.body.id}/join`)).status).toBe(200);
    const seen = collectEvents(visitor.uiUrl);
    await seen.ready;
    const { streamId } = (
      await streamer.call('POST', `/api/channels/${c.body.id}/streams`, { source: 'synthetic' })
    ).body;
    await waitFor(async () => (await visitor.call('GET', '/api/streams')).body.length === 1);
    await watch(visitor, streamId);
    await waitFor(async () => (await stats(visitor, streamId)).framesComplete > 20);
    expect((await visitor.call('DELETE', `/api/streams/${streamId}/watch`)).status).toBe(204);
    await waitFor(async () => (await stats(streamer, streamId)).viewers === 0);
    // The visitor's event stream told it when the stream went live and when it ended.
    expect((await streamer.call('DELETE', `/api/streams/${streamId}`)).status).toBe(204);
    await waitFor(() =>
      seen.events.some(
        (e) => e.event === 'stream' && e.data.state === 'ended' && e.data.streamId === streamId,
      ),
    );
    expect(seen.events.find((e) => e.event === 'stream')?.data).toMatchObject({
      state: 'live',
      streamId,
      streamer: 'streamer',
      channelId: c.body.id,
    });
  });

  it('the RTP ingest port takes well-formed VP8 and shrugs off garbage, RTCP and oversized packets', async () => {
    const { streamer, channelId } = await audience(0);
    const live = await streamer.call('POST', `/api/channels/${channelId}/streams`, {
      source: 'rtp',
    });
    const port = live.body.ingestPort as number;
    const udp = dgram.createSocket('udp4');
    const send = (d: Buffer) => new Promise((r) => udp.send(d, port, '127.0.0.1', r));
    const video = new RtpSender('video', 99);
    const huge = encodeRtp({
      marker: false,
      payloadType: 111,
      seq: 1,
      timestamp: 1,
      ssrc: 7,
      payload: Buffer.alloc(1178, 1), // a whole datagram: too large an Opus packet to send on
    });
    for (const d of [Buffer.from('nonsense'), Buffer.from([0x81, 201, 0, 1, 0, 0, 0, 1]), huge])
      await send(d);
    for (let i = 0; i < 10; i++) {
      const data = Buffer.alloc(3000, i);
      data[0] = i === 0 ? 0x10 : 0x11;
      for (const d of video.packetize({
        kind: 'video',
        data,
        keyframe: i === 0,
        captureMs: Date.now(),
      }))
        await send(d);
    }
    // Open until read, as a real sender's is: the port takes a datagram only from a socket this
    // user holds, which a closed one is no longer (shared/socket-owner.ts).
    await waitFor(async () => (await stats(streamer, live.body.streamId)).framesSent >= 9);
    udp.close();
    expect((await streamer.call('GET', '/api/me')).status).toBe(200);
  });
});
