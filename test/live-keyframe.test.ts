/**
 * A watching page that skipped frames to keep to live asks for a keyframe on its `/play` socket
 * (README "Livestream API"): the request reaches the stream's source, through the viewer's PLI to
 * the streamer's peer, as `{"type":"keyframe"}` on its `/publish` socket, at most every 500 ms
 * whatever the page sends; and anything else a playing page sends closes its socket (1003)
 * naming what is expected. This test is both pages: alice's publishing one (a `browser` stream,
 * VP8-shaped bytes) and bob's playing one, over the real local API of two real peers.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';
import { authHeaders, twoMembers, waitFor, type TestPeer } from './testnet.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A WebSocket on a peer's local API, open. */
async function socket(p: TestPeer, route: string): Promise<WebSocket> {
  const url = new URL(route, p.uiUrl.replace('http', 'ws'));
  const ws = new WebSocket(url, { headers: authHeaders(p.uiUrl) });
  onTestFinished(() => ws.terminate());
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

/** A VP8-shaped frame as the publish socket takes it: kind 1, flags, bytes. */
const frame = (key: boolean, n: number) =>
  Buffer.concat([Buffer.from([1, key ? 1 : 0]), Buffer.alloc(600, n & 0xff)]);

describe('a playing page asks for a keyframe', () => {
  it("bob's request reaches alice's publishing page, twice a second at most; anything else closes his socket", async () => {
    const { pa, pb, ch } = await twoMembers('studio');
    const made = await pa.call('POST', `/api/channels/${ch.id}/streams`, {
      source: 'browser',
      fps: 25,
    });
    expect(made.status).toBe(201);
    const streamId = made.body.streamId as string;

    // Alice's page: frames at 25 fps, a keyframe when asked and every 4 s; it counts the asks.
    const pub = await socket(pa, `/api/streams/${streamId}/publish`);
    const asks: number[] = [];
    let wantKey = true;
    pub.on('message', (data, isBinary) => {
      if (!isBinary && String(data) === '{"type":"keyframe"}') {
        asks.push(Date.now());
        wantKey = true;
      }
    });
    let n = 0;
    const feed = setInterval(() => {
      pub.send(frame(wantKey || n % 100 === 0, n++));
      wantKey = false;
    }, 40);
    onTestFinished(() => clearInterval(feed));

    await waitFor(
      async () => ((await pb.call('GET', '/api/streams')).body as unknown[]).length > 0,
      15_000,
      'bob to see the stream',
    );
    expect((await pb.call('POST', `/api/streams/${streamId}/watch`, {})).status).toBe(200);
    const play = await socket(pb, `/api/streams/${streamId}/play`);
    let frames = 0;
    play.on('message', (_d, isBinary) => {
      if (isBinary) frames++;
    });
    await waitFor(() => frames > 10, 15_000, 'frames on bob’s play socket');

    // Joining asked for keyframes; once that is over, nothing asks for one.
    await sleep(1500);
    const quiet = asks.length;
    await sleep(1500);
    expect(asks.length).toBe(quiet);

    // Bob's page asks, ten times in a second: alice's page is asked at least once, at most
    // three times (the viewer's PLI is every 500 ms at most).
    const from = Date.now();
    for (let i = 0; i < 10; i++) {
      play.send(JSON.stringify({ type: 'keyframe' }));
      await sleep(100);
    }
    await waitFor(() => asks.some((t) => t >= from), 5000, "the keyframe request at alice's page");
    await sleep(1000);
    const got = asks.filter((t) => t >= from).length;
    expect(got).toBeGreaterThanOrEqual(1);
    expect(got).toBeLessThanOrEqual(3);

    // Anything else closes the socket, naming what it takes.
    const closed = new Promise<[number, string]>((r) =>
      play.once('close', (code, reason) => r([code, String(reason)])),
    );
    play.send(JSON.stringify({ type: 'pause' }));
    const [code, reason] = await closed;
    expect(code).toBe(1003);
    expect(reason).toMatch(/keyframe/);
  }, 60_000);
});
