import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { api, createTestnet, signIn, waitFor, type TestPeer, type Testnet } from './testnet.js';
import { spawnHchat } from './processes.js';
import type { PeerOptions } from '../src/peer/node.js';

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
  it('10 viewers at 2 % loss get at least 99 % of frames in time; the server carries no media', async () => {
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
    if (process.env.HCHAT_SHOW)
      console.log(JSON.stringify(all), JSON.stringify(await stats(streamer, streamId)));
    for (const s of all) {
      const ratio = s.framesComplete / (s.framesComplete + s.framesDropped);
      expect(ratio, JSON.stringify(s)).toBeGreaterThanOrEqual(0.99);
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
});
