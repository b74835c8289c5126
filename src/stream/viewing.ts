/**
 * A viewer's media engine for one stream: it takes RTP only from its parent, repairs loss with
 * NACKs to the parent, asks for keyframes with PLI, sends receiver reports, hands whole frames to
 * its sinks (browser, export, stats), answers its parent's consent checks, and relays to its own
 * children (those that answer its consent checks) when the streamer made it a relay. A parent that goes silent is reported (`stalled`) so the streamer can place us elsewhere.
 */
import { z } from 'zod';
import type { MediaSocket, Remote, SsrcHandler } from './media-socket.js';
import {
  CONSENT_ANSWER,
  CONSENT_CHECK,
  encodeApp,
  encodeNack,
  encodePli,
  encodeReceiverReport,
  type RtcpPacket,
} from './rtcp.js';
import { JitterBuffer, type Frame } from './jitter-buffer.js';
import { Fanout } from './fanout.js';
import type { MediaKind } from './sender.js';
import type { RtpPacket } from './rtp.js';
import { newSsrc } from './broadcast.js';

/** Receives every whole frame, in order. */
export type FrameSink = (kind: MediaKind, frame: Frame) => void;

/** The parent as the viewer knows it. */
export interface Parent extends Remote {
  username: string;
}

export interface ViewingOptions {
  videoSsrc: number;
  audioSsrc: number;
  parent: Parent;
  /** How long a frame may wait for repairs (jitter buffer deadline). */
  deadlineMs?: number;
  /** Silence from the parent after which it counts as stalled. */
  stallMs?: number;
  /** The parent stalled (or vanished): ask the streamer for another. */
  stalled(): void;
}

/** What `GET /api/streams/:id/stats` reports for a viewer (the local API's document names it). */
export const ViewerStats = z.object({
  framesComplete: z.number().int(),
  framesDropped: z.number().int(),
  packetsLost: z.number().int(),
  packetsRecovered: z.number().int(),
  latencyMs: z.object({ p50: z.number().nullable(), p99: z.number().nullable() }),
  bitrateKbps: z.number(),
  fps: z.number(),
  parent: z.string(),
  audioFrames: z.number().int(),
  uploadBytes: z.number().int(),
  children: z.array(z.string()),
  nacksSent: z.number().int(),
  plisSent: z.number().int(),
  foreignDatagrams: z.number().int(),
});
export type ViewerStats = z.infer<typeof ViewerStats>;

const TICK_MS = 10;
const REPORT_MS = 1000;
const LATENCIES = 2000;

export class Viewing {
  readonly fanout: Fanout;
  readonly sinks = new Set<FrameSink>();
  private parentAddr: Parent;
  private readonly video: JitterBuffer;
  private readonly audio: JitterBuffer;
  private readonly ownSsrc = newSsrc();
  private readonly handlers: Record<MediaKind, SsrcHandler>;
  private readonly timer: NodeJS.Timeout;
  private readonly latencies = new Float64Array(LATENCIES);
  private latencyCount = 0;
  private lastMediaAt: number;
  private lastPli = 0;
  private lastStall = 0;
  private lastReport = 0;
  private nacksSent = 0;
  private plisSent = 0;
  private foreign = 0;
  private readonly reported = {
    video: { highest: -1, received: 0 },
    audio: { highest: -1, received: 0 },
  };
  /** [time, video frames, bytes] a second apart, for rates over the last seconds. */
  private readonly samples: Array<[number, number, number]> = [];

  constructor(
    private readonly socket: MediaSocket,
    private readonly opts: ViewingOptions,
  ) {
    const deadlineMs = opts.deadlineMs ?? 400;
    this.video = new JitterBuffer({ kind: 'video', deadlineMs });
    this.audio = new JitterBuffer({ kind: 'audio', deadlineMs });
    this.parentAddr = opts.parent;
    // A child that just consented needs a keyframe: ask our parent (PLI, rate-limited).
    this.fanout = new Fanout(socket, [opts.videoSsrc, opts.audioSsrc], opts.videoSsrc, () =>
      this.sendPli(Date.now(), false),
    );
    this.handlers = {
      video: { rtp: (p, d, f) => this.rtp('video', p, d, f), rtcp: (p, f) => this.rtcp(p, f) },
      audio: { rtp: (p, d, f) => this.rtp('audio', p, d, f), rtcp: (p, f) => this.rtcp(p, f) },
    };
    socket.on(opts.videoSsrc, this.handlers.video);
    socket.on(opts.audioSsrc, this.handlers.audio);
    this.lastMediaAt = Date.now();
    this.timer = setInterval(() => this.tick(Date.now()), TICK_MS);
    this.timer.unref();
  }

  get parent(): Parent {
    return this.parentAddr;
  }

  /** A new parent (the streamer moved us): media is accepted from it alone from now on. */
  setParent(p: Parent): void {
    this.parentAddr = p;
    this.lastMediaAt = Date.now();
    this.sendPli(Date.now(), true);
  }

  /** A sink needs a keyframe (it joined late, or skipped frames): PLI, at most every 500 ms. */
  requestKeyframe(): void {
    this.sendPli(Date.now(), false);
  }

  stop(): void {
    clearInterval(this.timer);
    this.fanout.stop();
    this.socket.off(this.opts.videoSsrc, this.handlers.video);
    this.socket.off(this.opts.audioSsrc, this.handlers.audio);
    this.sinks.clear();
  }

  stats(): ViewerStats {
    const v = this.video.stats;
    const lat = [...this.latencies.subarray(0, Math.min(this.latencyCount, LATENCIES))].sort(
      (a, b) => a - b,
    );
    const pct = (q: number) =>
      lat.length === 0
        ? null
        : Math.round(lat[Math.min(lat.length - 1, Math.floor(q * lat.length))]!);
    const first = this.samples[0];
    const now: [number, number, number] = [
      Date.now(),
      v.framesComplete,
      v.bytesReceived + this.audio.stats.bytesReceived,
    ];
    const span = first ? (now[0] - first[0]) / 1000 : 0;
    return {
      framesComplete: v.framesComplete,
      framesDropped: v.framesDropped,
      packetsLost: v.packetsLost + this.audio.stats.packetsLost,
      packetsRecovered: v.packetsRecovered + this.audio.stats.packetsRecovered,
      latencyMs: { p50: pct(0.5), p99: pct(0.99) },
      bitrateKbps: span > 0 ? Math.round(((now[2] - first![2]) * 8) / 1000 / span) : 0,
      fps: span > 0 ? Math.round((now[1] - first![1]) / span) : 0,
      parent: this.parentAddr.username,
      audioFrames: this.audio.stats.framesComplete,
      uploadBytes: this.fanout.uploadBytes,
      children: this.fanout.children.map((c) => c.username),
      nacksSent: this.nacksSent,
      plisSent: this.plisSent,
      foreignDatagrams: this.foreign + this.fanout.foreign,
    };
  }

  private rtp(kind: MediaKind, p: RtpPacket, d: Buffer, from: Remote): void {
    if (from.port !== this.parentAddr.port || from.ip !== this.parentAddr.ip) {
      this.foreign++;
      return;
    }
    const now = Date.now();
    this.lastMediaAt = now;
    const jb = kind === 'video' ? this.video : this.audio;
    if (jb.push(p, now) === 'new') this.fanout.relay(p.ssrc, d);
    this.deliver(kind, jb.poll(now));
  }

  private rtcp(p: RtcpPacket, from: Remote): void {
    if (p.type === 'nack') {
      // What we do not have, our own NACKs are already fetching; it reaches the child then.
      this.fanout.answer(p.mediaSsrc, p.seqs, from);
    } else if (p.type === 'pli' && this.fanout.consenting(from)) {
      this.sendPli(Date.now(), false);
    } else if (p.type === 'app' && p.name === CONSENT_CHECK) {
      // Consent to media is given only to the parent the streamer named over our own link, and
      // the answer goes to it alone, whatever the check's source claims.
      if (from.port !== this.parentAddr.port || from.ip !== this.parentAddr.ip) {
        this.foreign++;
        return;
      }
      this.socket.send(encodeApp(p.ssrc, CONSENT_ANSWER, p.data), this.parentAddr);
    } else if (p.type === 'app') {
      this.fanout.app(p, from);
    }
  }

  private deliver(kind: MediaKind, frames: Frame[]): void {
    for (const f of frames) {
      if (kind === 'video' && f.captureMs !== undefined) {
        this.latencies[this.latencyCount++ % LATENCIES] = f.at - f.captureMs;
      }
      for (const s of this.sinks) s(kind, f);
    }
  }

  private tick(now: number): void {
    this.deliver('video', this.video.poll(now));
    this.deliver('audio', this.audio.poll(now));
    for (const [jb, ssrc] of [
      [this.video, this.opts.videoSsrc],
      [this.audio, this.opts.audioSsrc],
    ] as const) {
      const seqs = jb.nacks(now);
      if (seqs.length === 0) continue;
      this.nacksSent++;
      // 200 numbers take at most 200 FCI entries: 812 bytes, within one datagram.
      for (let i = 0; i < seqs.length; i += 200)
        this.socket.send(encodeNack(this.ownSsrc, ssrc, seqs.slice(i, i + 200)), this.parentAddr);
    }
    if (this.video.needKeyframe) this.sendPli(now, false);
    if (now - this.lastReport >= REPORT_MS) {
      this.lastReport = now;
      this.report();
      this.samples.push([now, this.video.stats.framesComplete, this.bytes()]);
      if (this.samples.length > 3) this.samples.shift();
    }
    const stallMs = this.opts.stallMs ?? 2000;
    if (now - this.lastMediaAt > stallMs && now - this.lastStall > stallMs) {
      this.lastStall = now;
      this.opts.stalled();
    }
  }

  private bytes(): number {
    return this.video.stats.bytesReceived + this.audio.stats.bytesReceived;
  }

  private sendPli(now: number, force: boolean): void {
    if (!force && now - this.lastPli < 500) return;
    this.lastPli = now;
    this.plisSent++;
    this.socket.send(encodePli(this.ownSsrc, this.opts.videoSsrc), this.parentAddr);
  }

  /** Receiver reports to the parent: loss since the last report, total loss, jitter. */
  private report(): void {
    const block = (jb: JitterBuffer, ssrc: number, prev: { highest: number; received: number }) => {
      const expected = prev.highest < 0 ? 0 : jb.highestSeq - prev.highest;
      const lost = expected - (jb.stats.packetsReceived - prev.received);
      prev.highest = jb.highestSeq;
      prev.received = jb.stats.packetsReceived;
      return {
        ssrc,
        fractionLost: expected > 0 && lost > 0 ? Math.floor((lost * 256) / expected) : 0,
        totalLost: jb.stats.packetsLost,
        highestSeq: jb.highestSeq >>> 0,
        jitter: Math.round(jb.stats.jitter),
      };
    };
    this.socket.send(
      encodeReceiverReport(this.ownSsrc, [
        block(this.video, this.opts.videoSsrc, this.reported.video),
        block(this.audio, this.opts.audioSsrc, this.reported.audio),
      ]),
      this.parentAddr,
    );
  }
}
