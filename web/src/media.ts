/**
 * The browser's media for livestreams (README "Livestream API"): camera and microphone encoded
 * with WebCodecs (VP8 and Opus, realtime) and sent to the local peer over a WebSocket; a watched
 * stream's frames received the same way, decoded with WebCodecs onto a canvas and played through
 * an AudioContext. Message layouts are in src/peer/live-ws.ts.
 */

import type { ViewerStats } from './api.js';
import { withKey } from './auth.js';
import { LiveLag } from './live-lag.js';

const KIND_VIDEO = 1;
const KIND_AUDIO = 2;

// Chromium exposes MediaStreamTrackProcessor on window; TypeScript's DOM types do not have it.
declare class MediaStreamTrackProcessor<T> {
  constructor(init: { track: MediaStreamTrack });
  readonly readable: ReadableStream<T>;
}

function wsUrl(path: string): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${withKey(path)}`;
}

function pack(kind: number, flags: number, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + bytes.length);
  out[0] = kind;
  out[1] = flags;
  out.set(bytes, 2);
  return out;
}

/** A running broadcast from this page. */
export interface Broadcast {
  preview: MediaStream;
  stop(): void;
}

/**
 * The camera and microphone, asked of the browser before a stream is made (so that viewers are
 * never told of a stream that cannot start); a refusal is said in words a user can act on, not
 * the browser's "Requested device not found".
 */
export async function captureMedia(opts: {
  fps: number;
  width?: number;
  height?: number;
}): Promise<MediaStream> {
  try {
    return await navigator.mediaDevices.getUserMedia({
      video: { width: opts.width ?? 640, height: opts.height ?? 360, frameRate: opts.fps },
      audio: true,
    });
  } catch (err) {
    throw new Error(mediaRefusal(err));
  }
}

/** What to tell a user whose camera or microphone could not be had. */
export function mediaRefusal(err: unknown): string {
  switch ((err as { name?: unknown } | null)?.name) {
    case 'NotFoundError':
      return 'No camera or microphone was found: connect one to go live.';
    case 'NotAllowedError':
      return 'This page may not use your camera and microphone: allow them for it (the icon in the address bar), then Go live again.';
    case 'NotReadableError':
      return 'Your camera or microphone is in use by another program: close it, then Go live again.';
    case 'OverconstrainedError':
      return 'Your camera cannot film at 640×360 and 30 frames a second.';
    default:
      return `The camera could not start (${err instanceof Error ? err.message : String(err)}).`;
  }
}

/**
 * Encodes `media` (from captureMedia) and feeds the stream `streamId` (created with
 * `source: "browser"`); its tracks are the broadcast's from then on. The peer asks for a keyframe
 * when a viewer joins.
 */
export async function broadcast(
  streamId: string,
  media: MediaStream,
  opts: { fps: number; bitrateKbps: number; width?: number; height?: number },
  onError: (message: string) => void,
): Promise<Broadcast> {
  const width = opts.width ?? 640;
  const height = opts.height ?? 360;
  const ws = new WebSocket(wsUrl(`/api/streams/${streamId}/publish`));
  ws.binaryType = 'arraybuffer';
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error('could not reach this peer'));
  });
  let wantKey = true;
  let stopped = false;
  // About a second of the stream at its bitrate (at least 128 KiB, room for a keyframe): a page
  // or a peer that cannot keep up drops frames here rather than queueing seconds of video, which
  // every viewer would then see late (2 MB was 20 s at 800 kbit/s, and a frozen page's viewers
  // kept getting its backlog long after its last frame).
  const maxBuffered = Math.max(128 * 1024, opts.bitrateKbps * 125);
  const send = (kind: number, flags: number, bytes: Uint8Array) => {
    if (ws.readyState === WebSocket.OPEN && ws.bufferedAmount < maxBuffered)
      ws.send(pack(kind, flags, bytes));
    else if (kind === KIND_VIDEO) wantKey = true;
  };
  ws.onmessage = (e) => {
    if (typeof e.data === 'string' && JSON.parse(e.data).type === 'keyframe') wantKey = true;
  };

  const video = new VideoEncoder({
    output: (chunk) => {
      const bytes = new Uint8Array(chunk.byteLength);
      chunk.copyTo(bytes);
      send(KIND_VIDEO, chunk.type === 'key' ? 1 : 0, bytes);
    },
    error: (e) => onError(`video encoder: ${e.message}`),
  });
  video.configure({
    codec: 'vp8',
    width,
    height,
    bitrate: opts.bitrateKbps * 1000,
    framerate: opts.fps,
    latencyMode: 'realtime',
  });
  // Frames are taken from a playing <video> of the camera at the stream's rate.
  const el = document.createElement('video');
  el.muted = true;
  el.playsInline = true;
  el.srcObject = new MediaStream(media.getVideoTracks());
  await el.play();
  const started = performance.now();
  let n = 0;
  const timer = setInterval(() => {
    if (stopped || el.readyState < 2 || video.encodeQueueSize > 2) return;
    const frame = new VideoFrame(el, {
      timestamp: Math.round((performance.now() - started) * 1000),
    });
    // Keyframes on request (a viewer joined or lost one), and every 4 s so nobody waits long.
    video.encode(frame, { keyFrame: wantKey || n++ % (opts.fps * 4) === 0 });
    wantKey = false;
    frame.close();
  }, 1000 / opts.fps);

  // Audio: raw AudioData from the microphone track into an Opus encoder.
  let audio: AudioEncoder | undefined;
  const track = media.getAudioTracks()[0];
  if (track && typeof MediaStreamTrackProcessor !== 'undefined') {
    const reader = new MediaStreamTrackProcessor<AudioData>({ track }).readable.getReader();
    void (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || stopped) {
          value?.close();
          return;
        }
        if (!audio) {
          audio = new AudioEncoder({
            output: (chunk) => {
              const bytes = new Uint8Array(chunk.byteLength);
              chunk.copyTo(bytes);
              send(KIND_AUDIO, 0, bytes);
            },
            error: (e) => onError(`audio encoder: ${e.message}`),
          });
          audio.configure({
            codec: 'opus',
            sampleRate: value.sampleRate,
            numberOfChannels: value.numberOfChannels,
            bitrate: 32_000,
          });
        }
        audio.encode(value);
        value.close();
      }
    })().catch((e: unknown) => onError(`microphone: ${String(e)}`));
  }
  ws.onclose = (e) => {
    // 1000: the peer ended the stream on our request; anything else is news to the user.
    if (!stopped && e.code !== 1000) onError(`the stream ended (${e.reason || e.code})`);
  };
  return {
    preview: media,
    stop() {
      stopped = true;
      clearInterval(timer);
      for (const t of media.getTracks()) t.stop();
      if (video.state !== 'closed') video.close();
      if (audio && audio.state !== 'closed') audio.close();
      ws.close();
    },
  };
}

/** Counters of a playback, for the overlay and tests. */
export interface PlaybackCounters {
  framesDrawn: number;
  audioFrames: number;
  decodeErrors: number;
  /** Video frames not decoded because the page was behind live (live-lag.ts). */
  framesSkipped: number;
}

/** Video frames waiting in the decoder past which the page counts as behind (a second's worth). */
const MAX_DECODE_QUEUE = 30;

/** This page's clock in milliseconds since the epoch, never going back. */
const monotonicNow = () => performance.timeOrigin + performance.now();

/** Plays a watched stream onto `canvas`, with its stats as they come; returns a stop function. */
export function play(
  streamId: string,
  canvas: HTMLCanvasElement,
  counters: PlaybackCounters,
  audioContext: AudioContext | undefined,
  onStats: (stats: ViewerStats) => void,
): () => void {
  const ctx2d = canvas.getContext('2d');
  const ws = new WebSocket(wsUrl(`/api/streams/${streamId}/play`));
  ws.binaryType = 'arraybuffer';
  let haveKey = false;
  const video = new VideoDecoder({
    output: (frame) => {
      if (canvas.width !== frame.displayWidth) canvas.width = frame.displayWidth;
      if (canvas.height !== frame.displayHeight) canvas.height = frame.displayHeight;
      ctx2d?.drawImage(frame, 0, 0);
      frame.close();
      counters.framesDrawn++;
    },
    error: () => {
      counters.decodeErrors++;
      haveKey = false;
    },
  });
  video.configure({ codec: 'vp8' });
  let audio: AudioDecoder | undefined;
  let playAt = 0;
  const lag = new LiveLag();
  // Waiting for a keyframe (after skipping, or a lost one): ask the peer, at most twice a second.
  let askedAt = -Infinity;
  const askKeyframe = () => {
    const now = performance.now();
    if (now - askedAt < 500 || ws.readyState !== WebSocket.OPEN) return;
    askedAt = now;
    ws.send(JSON.stringify({ type: 'keyframe' }));
  };
  ws.onmessage = (e) => {
    if (typeof e.data === 'string') {
      const m = JSON.parse(e.data) as { type?: string; stats?: ViewerStats };
      if (m.type === 'stats' && m.stats) onStats(m.stats);
      return;
    }
    if (!(e.data instanceof ArrayBuffer)) return;
    const b = new Uint8Array(e.data);
    if (b.length < 15) return;
    const view = new DataView(e.data);
    const key = (b[1]! & 1) === 1;
    const late = lag.behind(view.getFloat64(2), monotonicNow());
    const rtpTs = view.getUint32(10);
    const data = b.subarray(14);
    if (b[0] === KIND_VIDEO) {
      // Behind live: skip to it, and start again at its next keyframe.
      if (late || video.decodeQueueSize > MAX_DECODE_QUEUE) {
        haveKey = false;
        counters.framesSkipped++;
        askKeyframe();
        return;
      }
      if (!key && !haveKey) return askKeyframe();
      haveKey = true;
      if (video.state !== 'configured') return;
      video.decode(
        new EncodedVideoChunk({
          type: key ? 'key' : 'delta',
          timestamp: Math.round((rtpTs / 90) * 1000),
          data,
        }),
      );
    } else if (b[0] === KIND_AUDIO && audioContext) {
      if (late) return; // its time has passed: the sound goes on from live
      if (!audio) {
        audio = new AudioDecoder({
          output: (d) => {
            counters.audioFrames++;
            const buf = audioContext.createBuffer(
              d.numberOfChannels,
              d.numberOfFrames,
              d.sampleRate,
            );
            for (let c = 0; c < d.numberOfChannels; c++) {
              const plane = new Float32Array(d.numberOfFrames);
              d.copyTo(plane, { planeIndex: c, format: 'f32-planar' });
              buf.copyToChannel(plane, c);
            }
            d.close();
            const src = audioContext.createBufferSource();
            src.buffer = buf;
            src.connect(audioContext.destination);
            // A small lead absorbs jitter; a late packet starts a new run instead of piling up.
            playAt = Math.max(playAt, audioContext.currentTime + 0.05);
            src.start(playAt);
            playAt += buf.duration;
          },
          error: () => counters.decodeErrors++,
        });
        // The Opus TOC byte says whether the packets are stereo (bit 2).
        audio.configure({
          codec: 'opus',
          sampleRate: 48_000,
          numberOfChannels: data[0]! & 0x04 ? 2 : 1,
        });
      }
      if (audio.state === 'configured')
        audio.decode(
          new EncodedAudioChunk({ type: 'key', timestamp: Math.round((rtpTs / 48) * 1000), data }),
        );
    }
  };
  return () => {
    ws.close();
    if (video.state !== 'closed') video.close();
    if (audio && audio.state !== 'closed') audio.close();
  };
}
