/**
 * The browser's side of a livestream, over WebSockets on the local API (README "Livestream
 * API"): the page that goes live sends what WebCodecs encoded (`/publish`), and a watching page
 * receives whole frames to decode (`/play`). Both carry one binary message per frame:
 *
 *   publish (page → peer)  kind u8 (1 video, 2 audio) | flags u8 (bit 0: keyframe) | bytes
 *   play    (peer → page)  kind u8 | flags u8 | capture time f64 BE (ms) | RTP timestamp u32 BE | bytes
 *
 * and the peer sends the publishing page `{"type":"keyframe"}` (text) when a viewer needs one, and
 * the playing page `{"type":"stats", stats}` (text, the viewer's stats) every second. A playing
 * page that skipped frames to keep to live (web/src/live-lag.ts) asks for a keyframe with the
 * same `{"type":"keyframe"}` (text); the viewer passes it on at most every 500 ms (a PLI). Any other
 * message from a playing page closes its socket (1003, naming what was wrong).
 */
import type { WebSocket } from 'ws';
import { HchatError } from '../protocol/errors.js';
import type { LiveService } from './live.js';
import type { FrameSink } from '../stream/viewing.js';
import { MAX_RTP_PACKET, RTP_HEADER_BYTES } from '../stream/rtp.js';
import { KeyframeGate } from '../stream/export.js';

const KIND_VIDEO = 1;
const KIND_AUDIO = 2;
/** Frames queued towards a page past this are skipped (the page will resume at a keyframe). */
const MAX_BUFFERED = 4 * 1024 * 1024;
/** The keyframe request, exactly: to a publishing page, and from a playing one. */
const KEYFRAME_REQUEST = '{"type":"keyframe"}';
/** How often a playing page gets the viewer's stats. */
const STATS_MS = 1000;
/** Largest encoded frame a page may send. */
export const MAX_PUBLISHED_FRAME = 512 * 1024;

/** Feeds a browser-source stream from its page; the stream stops when the page goes away. */
export function publish(live: LiveService, streamId: string, ws: WebSocket): void {
  try {
    live.attachSource(streamId, {
      keyframe: () => {
        if (ws.readyState === ws.OPEN) ws.send(KEYFRAME_REQUEST);
      },
      close: async () => ws.close(1000, 'stream ended'),
    });
  } catch (err) {
    if (!(err instanceof HchatError)) throw err;
    ws.close(1008, err.code);
    return;
  }
  ws.on('message', (data, isBinary) => {
    const b = data as Buffer;
    const kind = b[0];
    const bad = (why: string) => ws.close(1003, why);
    if (!isBinary || b.length < 3) return bad('expected binary frames: kind, flags, bytes');
    if (kind !== KIND_VIDEO && kind !== KIND_AUDIO) return bad(`unknown kind ${kind}`);
    if (kind === KIND_AUDIO && b.length - 2 > MAX_RTP_PACKET - RTP_HEADER_BYTES)
      return bad('audio packet too large');
    try {
      live.frame(streamId, {
        kind: kind === KIND_VIDEO ? 'video' : 'audio',
        data: b.subarray(2),
        keyframe: (b[1]! & 1) === 1,
        captureMs: Date.now(),
      });
    } catch (err) {
      if (!(err instanceof HchatError)) throw err;
      ws.close(1008, err.code);
    }
  });
  ws.on('close', () => {
    live.stop(streamId).catch(() => undefined);
  });
}

/** Sends a watched stream's whole frames to a page, video from a keyframe on. */
export function play(live: LiveService, streamId: string, ws: WebSocket): void {
  const viewing = live.viewing(streamId);
  if (!viewing) {
    ws.close(1008, 'E_STREAM_NOT_FOUND');
    return;
  }
  const gate = new KeyframeGate();
  const sink: FrameSink = (kind, f) => {
    if (ws.readyState !== ws.OPEN) return;
    const congested = ws.bufferedAmount > MAX_BUFFERED;
    if (kind === 'video') {
      if (congested) gate.reset();
      if (congested || !gate.pass(f.packets, f.keyframe)) {
        viewing.requestKeyframe();
        return;
      }
    } else if (congested) {
      return;
    }
    const head = Buffer.allocUnsafe(14);
    head[0] = kind === 'video' ? KIND_VIDEO : KIND_AUDIO;
    head[1] = f.keyframe ? 1 : 0;
    head.writeDoubleBE(f.captureMs ?? Date.now(), 2);
    head.writeUInt32BE(f.timestamp >>> 0, 10);
    ws.send(Buffer.concat([head, f.data]));
  };
  viewing.sinks.add(sink);
  viewing.requestKeyframe(); // the page starts decoding at one
  ws.on('message', (data, isBinary) => {
    const text = isBinary ? undefined : (data as Buffer).toString('utf8');
    if (text === KEYFRAME_REQUEST) return viewing.requestKeyframe();
    ws.close(1003, `a playing page sends only ${KEYFRAME_REQUEST} (text)`);
  });
  // The overlay's figures ride the same socket: no polling that could outlive the stream.
  const stats = setInterval(() => {
    if (ws.readyState === ws.OPEN)
      ws.send(JSON.stringify({ type: 'stats', stats: viewing.stats() }));
  }, STATS_MS);
  ws.on('close', () => {
    clearInterval(stats);
    viewing.sinks.delete(sink);
  });
}
