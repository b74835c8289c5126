/**
 * Export of a stream to local tools (ffmpeg, ffplay, VLC, GStreamer): whole frames are sent as
 * RTP, video to `port` and audio to `port + 2` (the usual even ports, RTCP beside each), with the
 * SDP that describes them.
 */
import type { MediaSocket } from './media-socket.js';
import { AUDIO_CLOCK, PT_OPUS, PT_VP8, VIDEO_CLOCK, encodeRtp, type RtpPacket } from './rtp.js';
import type { MediaKind } from './sender.js';
import { isVp8Keyframe } from './vp8.js';

/** The SDP a tool needs to receive an exported stream on `ip`, ports `port` and `port + 2`. */
export function exportSdp(streamId: string, ip: string, port: number): string {
  return [
    'v=0',
    `o=- 0 0 IN IP4 ${ip}`,
    `s=Hybrid Chat stream ${streamId}`,
    `c=IN IP4 ${ip}`,
    't=0 0',
    `m=video ${port} RTP/AVP ${PT_VP8}`,
    `a=rtpmap:${PT_VP8} VP8/${VIDEO_CLOCK}`,
    'a=recvonly',
    `m=audio ${port + 2} RTP/AVP ${PT_OPUS}`,
    `a=rtpmap:${PT_OPUS} opus/${AUDIO_CLOCK}/2`,
    'a=recvonly',
    '',
  ].join('\r\n');
}

/**
 * Lets video through to a decoder only from a keyframe on, and after any gap in the sequence (a
 * frame dropped upstream, or skipped by the sink) only from the next keyframe: a decoder never
 * sees a frame it cannot decode.
 */
export class KeyframeGate {
  private nextSeq: number | undefined;

  /** True when this frame (its packets, in order) may go to the decoder. */
  pass(packets: readonly RtpPacket[], keyframe: boolean): boolean {
    if (packets[0]!.seq !== this.nextSeq && !keyframe) {
      this.nextSeq = undefined;
      return false;
    }
    this.nextSeq = (packets[packets.length - 1]!.seq + 1) & 0xffff;
    return true;
  }

  /** The sink skipped a frame: wait for a keyframe. */
  reset(): void {
    this.nextSeq = undefined;
  }
}

/**
 * Sends the packets of whole frames to a local sink, video through a KeyframeGate.
 */
export class RtpExport {
  sent = 0;
  private readonly gate = new KeyframeGate();

  constructor(
    private readonly socket: MediaSocket,
    readonly ip: string,
    readonly port: number,
  ) {}

  send(kind: MediaKind, packets: readonly RtpPacket[]): void {
    if (packets.length === 0) return;
    if (kind === 'video' && !this.gate.pass(packets, isVp8Keyframe(packets[0]!.payload))) return;
    const port = kind === 'video' ? this.port : this.port + 2;
    for (const p of packets) {
      this.sent++;
      this.socket.sendPlain(encodeRtp(p), { ip: this.ip, port });
    }
  }
}
