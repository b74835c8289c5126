/**
 * The streamer's media engine for one live stream: frames from a source are packetized (VP8,
 * Opus), numbered and sent once to each direct child that consents; NACKs are answered from the
 * retransmit buffer (within each child's budget) and PLIs ask the source for a keyframe. Which viewers are children is decided by the
 * relay tree (peer/live.ts).
 */
import { randomInt } from 'node:crypto';
import type { MediaSocket, Remote, SsrcHandler } from './media-socket.js';
import type { RtcpPacket } from './rtcp.js';
import { RtpSender, type MediaFrame } from './sender.js';
import { Fanout } from './fanout.js';
import { RtpError, parseRtp, type RtpPacket } from './rtp.js';

/** Receives every frame sent, as its RTP packets (for export to local tools). */
export type PacketSink = (kind: MediaFrame['kind'], packets: RtpPacket[]) => void;

/** A fresh non-zero SSRC. */
export function newSsrc(): number {
  return randomInt(1, 2 ** 32 - 1);
}

export class Broadcast {
  readonly video: RtpSender;
  readonly audio: RtpSender;
  readonly fanout: Fanout;
  readonly sinks = new Set<PacketSink>();
  framesSent = 0;
  /** Frames a source gave that cannot be sent (see send). */
  framesRejected = 0;
  /** Bytes of one copy of the stream (every datagram once): the stream's own rate. */
  bytesProduced = 0;
  private lastKeyframeRequest = 0;
  private readonly handler: SsrcHandler;

  constructor(
    private readonly socket: MediaSocket,
    private readonly keyframeWanted: () => void,
  ) {
    this.video = new RtpSender('video', newSsrc());
    this.audio = new RtpSender('audio', newSsrc());
    // A child that just consented needs a keyframe to start from.
    this.fanout = new Fanout(socket, [this.video.ssrc, this.audio.ssrc], this.video.ssrc, () =>
      this.requestKeyframe(),
    );
    this.handler = { rtcp: (p, from) => this.rtcp(p, from) };
    socket.on(this.video.ssrc, this.handler);
    socket.on(this.audio.ssrc, this.handler);
  }

  /** Sends one frame to every child. */
  send(frame: MediaFrame): void {
    const sender = frame.kind === 'video' ? this.video : this.audio;
    let datagrams: Buffer[];
    try {
      datagrams = sender.packetize(frame);
    } catch (err) {
      // An Opus packet too large for one datagram (a foreign sender's): skipped, counted.
      if (!(err instanceof RtpError)) throw err;
      this.framesRejected++;
      return;
    }
    for (const d of datagrams) {
      this.bytesProduced += d.length;
      this.fanout.relay(sender.ssrc, d);
    }
    if (frame.kind === 'video') this.framesSent++;
    if (this.sinks.size > 0) {
      const packets = datagrams.map((d) => parseRtp(d));
      for (const s of this.sinks) s(frame.kind, packets);
    }
  }

  /** Asks the source for a keyframe, at most every 300 ms (every new viewer needs one). */
  requestKeyframe(): void {
    const now = Date.now();
    if (now - this.lastKeyframeRequest < 300) return;
    this.lastKeyframeRequest = now;
    this.keyframeWanted();
  }

  stop(): void {
    this.socket.off(this.video.ssrc, this.handler);
    this.socket.off(this.audio.ssrc, this.handler);
    this.fanout.stop();
    this.sinks.clear();
  }

  private rtcp(p: RtcpPacket, from: Remote): void {
    if (p.type === 'nack') this.fanout.answer(p.mediaSsrc, p.seqs, from);
    else if (p.type === 'pli' && this.fanout.consenting(from)) this.requestKeyframe();
    else if (p.type === 'app') this.fanout.app(p, from);
  }
}
