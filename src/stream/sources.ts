/**
 * Where a streamer's frames come from, besides the browser (peer/live.ts takes those from a
 * WebSocket): a synthetic source of realistic sizes and keyframe cadence for benchmarks and
 * tests, and an RTP ingest port that ffmpeg, OBS or GStreamer can send VP8 (PT 96) and Opus
 * (any other dynamic PT: 111 as in our SDP, or ffmpeg's default 97) to: plain RTP on loopback by
 * default, or SRTP under a master key the streamer makes (ffmpeg's `-srtp_out_params`).
 */
import dgram from 'node:dgram';
import { JitterBuffer } from './jitter-buffer.js';
import { PT_VP8, RtpError, isRtcp, parseRtp } from './rtp.js';
import type { MediaKind } from './sender.js';
import type { MediaFrame } from './sender.js';
import type { SrtpContext } from './srtp.js';
import { bindUdp } from '../shared/udp-bind.js';
import { UdpOwners } from '../shared/socket-owner.js';

/** A source of frames; `keyframe()` asks for the next video frame to be a keyframe. */
export interface FrameSource {
  keyframe(): void;
  close(): Promise<void>;
}

export interface SyntheticOptions {
  fps: number;
  bitrateKbps: number;
  /** Seconds between keyframes (default 2). */
  gopSeconds?: number;
}

/**
 * Frames of the sizes a VP8 encoder makes at this bitrate: a keyframe about five times a delta
 * frame, every `gopSeconds`, and an Opus packet of 20 ms (about 32 kbit/s) alongside. The bytes
 * are not decodable VP8; the first carries the keyframe bit, and each frame's capture time is
 * stamped in its RTP header.
 */
export class SyntheticSource implements FrameSource {
  private readonly videoTimer: NodeJS.Timeout;
  private readonly audioTimer: NodeJS.Timeout;
  private n = 0;
  private forceKey = true;

  constructor(opts: SyntheticOptions, onFrame: (f: MediaFrame) => void) {
    const gop = Math.max(1, Math.round(opts.fps * (opts.gopSeconds ?? 2)));
    const perFrame = (opts.bitrateKbps * 1000) / 8 / opts.fps;
    // Five deltas' worth in each keyframe, the same bytes a second on average.
    const delta = Math.max(16, Math.round((perFrame * gop) / (gop + 4)));
    const key = delta * 5;
    const keyBytes = Buffer.alloc(key, 0x5a);
    keyBytes[0] = 0x10;
    const deltaBytes = Buffer.alloc(delta, 0xa5);
    deltaBytes[0] = 0x11;
    const opus = Buffer.alloc(80, 0x3c);
    opus[0] = 0x78; // TOC: CELT fullband 20 ms, one frame
    this.videoTimer = setInterval(() => {
      const isKey = this.forceKey || this.n % gop === 0;
      this.forceKey = false;
      this.n++;
      onFrame({
        kind: 'video',
        data: isKey ? keyBytes : deltaBytes,
        keyframe: isKey,
        captureMs: Date.now(),
      });
    }, 1000 / opts.fps);
    this.audioTimer = setInterval(
      () => onFrame({ kind: 'audio', data: opus, keyframe: false, captureMs: Date.now() }),
      20,
    );
  }

  keyframe(): void {
    this.forceKey = true;
  }

  async close(): Promise<void> {
    clearInterval(this.videoTimer);
    clearInterval(this.audioTimer);
  }
}

/** Counters of an ingest port. */
export interface IngestStats {
  packets: number;
  malformed: number;
  /** Payload types that are neither VP8 (96) nor Opus (97-127). */
  ignored: number;
  videoFrames: number;
  audioFrames: number;
  /** SRTP ingest: datagrams whose tag did not verify (plain RTP included), replays. */
  srtpAuthFailures: number;
  srtpReplays: number;
  /** Datagrams from a socket of another local user than this process's (or root): dropped. */
  foreign: number;
}

/**
 * A local UDP port that accepts RTP (VP8 on PT 96, Opus on PT 97-127, RTCP multiplexed or not) and
 * turns it into whole frames for the streamer, which numbers and sends them anew. Only the
 * address it is bound to (loopback by default) can reach it, and of the local processes only this
 * process's user's (shared/socket-owner.ts): another user's datagrams are dropped, so that a
 * neighbour cannot stream as the streamer.
 */
export class RtpIngest implements FrameSource {
  private readonly socket = dgram.createSocket('udp4');
  private readonly buffers = new Map<MediaKind, { ssrc: number; jb: JitterBuffer }>();
  private readonly timer: NodeJS.Timeout;
  readonly stats: IngestStats = {
    packets: 0,
    malformed: 0,
    ignored: 0,
    videoFrames: 0,
    audioFrames: 0,
    srtpAuthFailures: 0,
    srtpReplays: 0,
    foreign: 0,
  };
  /** Whether each sender is this user's, looked up again every 5 s; a closed one is no one's. */
  private readonly senders = new UdpOwners(5000, false);

  private constructor(
    private readonly onFrame: (f: MediaFrame) => void,
    private readonly srtp?: SrtpContext,
  ) {
    this.socket.on('message', (d, from) => {
      if (this.senders.ours(from.address, from.port)) this.receive(d);
      else this.stats.foreign++;
    });
    this.socket.on('error', () => undefined);
    this.timer = setInterval(() => this.flush(Date.now()), 10);
    this.timer.unref();
  }

  /** Opens the port (0: any free one). */
  static async open(
    host: string,
    port: number,
    onFrame: (f: MediaFrame) => void,
    srtp?: SrtpContext,
  ): Promise<RtpIngest> {
    const ingest = new RtpIngest(onFrame, srtp);
    await bindUdp(ingest.socket, port, host);
    return ingest;
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** An RTP sender cannot be asked for a keyframe: its own keyframe interval applies. */
  keyframe(): void {}

  async close(): Promise<void> {
    clearInterval(this.timer);
    await new Promise<void>((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }

  private receive(datagram: Buffer): void {
    if (isRtcp(datagram)) return; // sender reports: nothing we need
    this.stats.packets++;
    let d = datagram;
    if (this.srtp) {
      const r = this.srtp.unprotectRtp(datagram);
      if (!r.ok) {
        if (r.reason === 'replay') this.stats.srtpReplays++;
        else if (r.reason === 'auth') this.stats.srtpAuthFailures++;
        else this.stats.malformed++;
        return;
      }
      d = r.packet;
    }
    try {
      const p = parseRtp(d);
      // VP8 on 96; Opus on any other dynamic type (111 in our SDP, 97 is ffmpeg's default).
      const kind: MediaKind | undefined =
        p.payloadType === PT_VP8 ? 'video' : p.payloadType > 96 ? 'audio' : undefined;
      if (!kind) {
        this.stats.ignored++;
        return;
      }
      let b = this.buffers.get(kind);
      // A new SSRC for a kind is a restarted sender: start its buffer over.
      if (!b || b.ssrc !== p.ssrc) {
        b = { ssrc: p.ssrc, jb: new JitterBuffer({ kind, deadlineMs: 100, maxNacks: 0 }) };
        this.buffers.set(kind, b);
      }
      // Copy out of the socket's buffer: frames outlive this callback.
      if (b.jb.push({ ...p, payload: Buffer.from(p.payload) }, Date.now()) === 'malformed')
        this.stats.malformed++;
      this.flush(Date.now());
    } catch (err) {
      if (!(err instanceof RtpError)) throw err;
      this.stats.malformed++;
    }
  }

  private flush(now: number): void {
    for (const [kind, b] of this.buffers) {
      for (const f of b.jb.poll(now)) {
        if (kind === 'video') this.stats.videoFrames++;
        else this.stats.audioFrames++;
        this.onFrame({ kind, data: f.data, keyframe: f.keyframe, captureMs: now });
      }
    }
  }
}
