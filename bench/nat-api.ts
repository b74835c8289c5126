/**
 * What the NAT bench needs of a peer in a home namespace beyond `HomePeer.call` (JSON): its local
 * API in raw bytes (a file up and down), its event stream (when a message reaches the host) and a
 * watched stream's whole frames (the page's `/play` WebSocket), all through the home's forwarder
 * socket (test/netns-core.ts), as `call` goes.
 */
import http from 'node:http';
import WebSocket from 'ws';
import type { HomePeer } from '../test/netns-core.js';

/** One local API request in bytes; the status and the whole answer. */
export function rawCall(
  peer: HomePeer,
  method: string,
  route: string,
  body?: Buffer,
  type = 'application/octet-stream',
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { ...target(peer, route), method, headers: headers(peer, body && type) },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The peer's `GET /api/events`: `wait(test)` resolves with the first `message` event from now
 * on whose message passes `test` (or one that came before `wait` was called and nobody took).
 */
export interface MessageEvents {
  wait(test: (m: { text?: string; id: string }) => boolean, ms?: number): Promise<void>;
  close(): void;
}

export function messageEvents(peer: HomePeer): Promise<MessageEvents> {
  type Message = { text?: string; id: string };
  const unclaimed: Message[] = [];
  const waiting: Array<{ test: (m: Message) => boolean; done: () => void }> = [];
  const take = (m: Message) => {
    const i = waiting.findIndex((w) => w.test(m));
    if (i < 0) return void unclaimed.push(m);
    waiting.splice(i, 1)[0]!.done();
  };
  return new Promise((resolve, reject) => {
    const req = http.get(
      { ...target(peer, '/api/events'), headers: headers(peer) },
      (res: http.IncomingMessage) => {
        if (res.statusCode !== 200) return reject(new Error(`events: ${res.statusCode}`));
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (d: string) => {
          buf += d;
          let end: number;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            if (!/^event: message$/m.test(block)) continue;
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (data) take((JSON.parse(data) as { message: Message }).message);
          }
        });
        res.on('error', () => undefined);
        resolve({
          wait: (test, ms = 10_000) =>
            new Promise((done, fail) => {
              const i = unclaimed.findIndex(test);
              if (i >= 0) return void (unclaimed.splice(i, 1), done());
              const timer = setTimeout(() => fail(new Error('no such message event')), ms);
              waiting.push({
                test,
                done: () => {
                  clearTimeout(timer);
                  done();
                },
              });
            }),
          close: () => req.destroy(),
        });
      },
    );
    req.on('error', reject);
  });
}

/** One whole frame as the viewer's page gets it, dated by the bench's clock on arrival. */
export interface PlayedFrame {
  video: boolean;
  /** The streamer's capture time (its `Date.now()`, whole ms), from the frame's RTP extension. */
  captureMs: number;
  /** The bench's wall clock (`clock`) when the message came: the same clock (one kernel). */
  arrivedMs: number;
  /** The frame's bytes (its payload, without the RTP headers). */
  bytes: number;
}

/**
 * The wall clock in fractions of a millisecond (`Date.now()` has whole ones, truncated): the
 * monotonic clock plus its offset to the wall clock, read where `Date.now()` turns over (the wall
 * clock is then a whole ms). The turnover lies between the monotonic readings either side of the
 * last two `Date.now()` calls; the scheduler may stop the loop between them for a ms (2 shared
 * cores), so of up to 20 turnovers the one they bracket tightest is kept (5 µs is enough).
 */
export function fineClock(): () => number {
  let best = { width: Infinity, offset: 0 };
  for (let i = 0; i < 20 && best.width > 0.005; i++) {
    // Each monotonic reading precedes the `Date.now()` call after it.
    let at = performance.now();
    const first = Date.now();
    let before = at;
    let wall = first;
    while (wall === first) {
      before = at;
      at = performance.now();
      wall = Date.now();
    }
    const width = performance.now() - before;
    if (width < best.width) best = { width, offset: wall - at };
  }
  const offset = best.offset;
  return () => offset + performance.now();
}

/**
 * The viewer's `GET /api/streams/:id/play` (src/peer/live-ws.ts): `onFrame` gets each frame as
 * it comes (video from a keyframe on), dated by `clock`; resolves once the socket is open.
 */
export function playFrames(
  peer: HomePeer,
  streamId: string,
  clock: () => number,
  onFrame: (f: PlayedFrame) => void,
): Promise<WebSocket> {
  const ws = new WebSocket(`ws+unix://${peer.api.socketPath}:/api/streams/${streamId}/play`, {
    headers: headers(peer),
  });
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    // Dated first: nothing of the bench's own runs between the message and its time.
    const arrivedMs = clock();
    // Text messages are the viewer's stats, once a second: not frames.
    if (!isBinary) return;
    onFrame({
      video: data[0] === 1,
      captureMs: data.readDoubleBE(2),
      arrivedMs,
      bytes: data.length - 14,
    });
  });
  // After the open, an error or close matters only as frames that stop coming (the caller
  // counts them); rejecting a settled promise does nothing.
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.on('error', reject);
    ws.once('close', (code, why) => reject(new Error(`play: closed ${code} ${why.toString()}`)));
  });
}

function target(peer: HomePeer, route: string): http.RequestOptions {
  return { socketPath: peer.api.socketPath, path: route };
}

function headers(peer: HomePeer, type?: string): Record<string, string> {
  return {
    host: `127.0.0.1:${peer.api.port}`,
    authorization: `Bearer ${peer.api.token}`,
    ...(type ? { 'content-type': type } : {}),
  };
}
