/**
 * The media hops against someone on the path (docs/PROTOCOL.md §5.4, docs/SECURITY.md): altered
 * SRTP, SRTP under a wrong key, plain RTP and replays of datagrams captured on the wire (tcpdump
 * on loopback) are sent to a viewer's UDP port while it watches. They are dropped and counted,
 * never reach the jitter buffer, and the stream plays on. And the keys of a hop go to no one but
 * that hop's child.
 */
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitFor, type TestPeer } from '../testnet.js';
import { liveStage, openViewerSession, parentLink } from './stream-kit.js';
import { canCapture, packets, startCapture } from '../pcap.js';
import { SrtpContext, newMasterKey } from '../../src/stream/srtp.js';
import { encodeRtp } from '../../src/stream/rtp.js';
import { HchatError } from '../../src/protocol/errors.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const stats = async (p: TestPeer, streamId: string) =>
  (await p.call('GET', `/api/streams/${streamId}/stats`)).body;

/** UDP payloads to `port` on loopback, captured with tcpdump for `ms`. */
async function capture(port: number, ms: number): Promise<Buffer[]> {
  const file = path.join(fs.mkdtempSync('/tmp/hchat-pcap-'), 'cap.pcap');
  const stop = await startCapture(file, `udp and dst port ${port}`);
  await sleep(ms);
  await stop();
  return packets(file)
    .filter((p) => p.proto === 'udp')
    .map((p) => Buffer.from(p.payload));
}

describe('hostile path (SRTP)', { timeout: 60_000 }, () => {
  it.skipIf(!canCapture)(
    'altered, wrongly keyed, plain and replayed datagrams to a watching viewer are dropped and counted; the stream plays on',
    async () => {
      const { viewers, streamId } = await liveStage(1);
      const viewer = viewers[0]!;
      await waitFor(async () => (await stats(viewer, streamId)).framesComplete >= 10, 10_000);
      const [ip, portText] = (viewer.udp as string).split(':') as [string, string];
      const port = Number(portText);
      // What the streamer sent the viewer for 2.5 s: SRTP media and SRTCP consent checks (one
      // every 2 s).
      const captured = await capture(port, 2500);
      const rtp = captured.filter((d) => !(d[1]! >= 192 && d[1]! <= 223));
      const rtcp = captured.filter((d) => d[1]! >= 192 && d[1]! <= 223);
      expect(rtp.length).toBeGreaterThan(30);
      expect(rtcp.length).toBeGreaterThan(0);
      const replays = [...rtp.slice(0, 30), ...rtcp.slice(0, 2)];
      const info = (await viewer.call('GET', '/api/streams')).body.find(
        (x: { streamId: string }) => x.streamId === streamId,
      );
      const videoSsrc = info.videoSsrc as number;
      const video = rtp.filter((d) => d.readUInt32BE(8) === videoSsrc);
      const lastVideoSeq = video[video.length - 1]!.readUInt16BE(2);
      // No payload crosses the wire in the clear: the synthetic delta frames are 0xA5 bytes.
      for (const d of rtp) expect(d.includes(Buffer.alloc(16, 0xa5))).toBe(false);

      const before = await stats(viewer, streamId);
      const udp = dgram.createSocket('udp4');
      const send = (d: Buffer) => new Promise((r) => udp.send(d, port, ip, r));
      // 1. Replays of captured datagrams (already received): replay.
      for (const d of replays) await send(d);
      // 2. Altered: a newer sequence number (past the replay check) and a flipped payload bit.
      const altered = rtp.slice(0, 30).map((d, i) => {
        const a = Buffer.from(d);
        a.writeUInt16BE((a.readUInt16BE(2) + 1000 + i) & 0xffff, 2);
        a[a.length - 20]! ^= 1 << (i % 8);
        return a;
      });
      for (const d of altered) await send(d);
      // 3. Under a key of the attacker's own, and 4. plain RTP: auth.
      const mine = new SrtpContext(newMasterKey());
      for (let i = 0; i < 20; i++) {
        const p = encodeRtp({
          marker: true,
          payloadType: 96,
          seq: (lastVideoSeq + 2000 + i) & 0xffff,
          timestamp: 0,
          ssrc: videoSsrc,
          payload: Buffer.concat([Buffer.from([0x90, 0x80, 0x80, 0x01, 0x10]), Buffer.alloc(200)]),
        });
        await send(i % 2 ? mine.protectRtp(p) : p);
      }
      udp.close();
      let now: any;
      await waitFor(
        async () => {
          now = await stats(viewer, streamId);
          return (
            now.srtpReplays - before.srtpReplays >= replays.length &&
            now.srtpAuthFailures - before.srtpAuthFailures >= 50
          );
        },
        5000,
        () => `the refusals to be counted: ${JSON.stringify({ before, now })}`,
      );
      const after = await stats(viewer, streamId);
      console.log(
        `sent ${replays.length} replays, 30 altered, 10 wrong-key, 10 plain: replays +${after.srtpReplays - before.srtpReplays}, auth failures +${after.srtpAuthFailures - before.srtpAuthFailures}, jitter buffer frames dropped +${after.framesDropped - before.framesDropped}`,
      );
      // Nothing of it reached the jitter buffer: no frame was dropped for it, none made up.
      expect(after.framesDropped).toBe(before.framesDropped);
      expect(after.foreignDatagrams).toBe(before.foreignDatagrams);
      await waitFor(
        async () => (await stats(viewer, streamId)).framesComplete > after.framesComplete + 30,
        10_000,
        'the viewer to play 30 more frames',
      );
    },
  );

  it('a relay gives its hop keys to its child only: a non-child is refused', async () => {
    // k = 1: streamer -> honest0 -> honest1.
    const { net, viewers, streamId } = await liveStage(2, 1);
    const [relay, child] = viewers as [TestPeer, TestPeer];
    await waitFor(async () => (await stats(child, streamId)).parent === 'honest0', 10_000);
    await waitFor(async () => (await stats(child, streamId)).framesComplete >= 10, 10_000);
    const { link, session } = await openViewerSession(net, 'streamer', { name: 'mallory' });
    const r = relay.node as any;
    const relayAt = {
      username: 'honest0',
      role: 'user' as const,
      ip: '127.0.0.1',
      port: r.p2p.advertised.port as number,
      udpPort: r.p2p.advertised.udpPort as number,
      sessionId: r.session.sessionId as string,
    };
    const ask = async (l: typeof link) =>
      l.request('stream_key', { streamId }).then(
        () => 'granted',
        (e: HchatError) => e.code,
      );
    // Not watching at all: the relay refuses, and so does the streamer.
    const toRelay = parentLink(relayAt, session);
    await toRelay.start();
    expect(await ask(toRelay)).toBe('E_FORBIDDEN');
    expect(await ask(link)).toBe('E_FORBIDDEN');
    // Watching, placed under the child (k = 1): still no child of the relay, nor of the streamer.
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((res) => udp.bind(0, '127.0.0.1', res));
    const a = await link.request('watch', { streamId, udpPort: udp.address().port, p2pPort: 9 });
    expect(a.parent.username).toBe('honest1');
    expect(await ask(toRelay)).toBe('E_FORBIDDEN');
    expect(await ask(link)).toBe('E_FORBIDDEN');
    // A stream the relay does not watch.
    expect(
      await toRelay
        .request('stream_key', { streamId: '00000000-0000-4000-8000-000000000000' })
        .then(
          () => 'granted',
          (e: HchatError) => e.code,
        ),
    ).toBe('E_STREAM_NOT_FOUND');
    // The honest child was keyed by its relay and plays; the refusals are in the relay's log.
    const played = (await stats(child, streamId)).framesComplete;
    await waitFor(async () => (await stats(child, streamId)).framesComplete > played + 20, 10_000);
    toRelay.stop();
    link.stop();
    udp.close();
    await sleep(50);
  });
});
