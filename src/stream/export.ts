/**
 * Export of a stream to local tools (ffmpeg, ffplay, VLC, GStreamer): whole frames are sent as
 * RTP, video to `port` and audio to `port + 2` (the usual even ports, RTCP beside each), with the
 * SDP that describes them. Plain RTP on loopback by default; with `srtp`, each m-line has its own
 * master key, handed to the tool in the SDP (`a=crypto`, RFC 4568 SDES) and nowhere else.
 */
import type { MediaSocket } from './media-socket.js';
import { SRTP_SUITE, SrtpContext, decodeMasterKey, encodeMasterKey, newMasterKey } from './srtp.js';
import { AUDIO_CLOCK, PT_OPUS, PT_VP8, VIDEO_CLOCK, encodeRtp, type RtpPacket } from './rtp.js';
import type { MediaKind } from './sender.js';
import { isVp8Keyframe } from './vp8.js';
import { UdpOwners } from '../shared/socket-owner.js';

/** The master keys of an SRTP export, base64 of key ‖ salt, one per m-line. */
export interface ExportKeys {
  video: string;
  audio: string;
}

/**
 * The SDP a tool needs to receive an exported stream on `ip`, ports `port` and `port + 2`; with
 * `keys`, the stream is SRTP (`RTP/SAVP` and an `a=crypto` line per m-line).
 */
export function exportSdp(streamId: string, ip: string, port: number, keys?: ExportKeys): string {
  const profile = keys ? 'RTP/SAVP' : 'RTP/AVP';
  const crypto = (k: string | undefined) => (k ? [`a=crypto:1 ${SRTP_SUITE} inline:${k}`] : []);
  return [
    'v=0',
    `o=- 0 0 IN IP4 ${ip}`,
    `s=Hybrid Chat stream ${streamId}`,
    `c=IN IP4 ${ip}`,
    't=0 0',
    `m=video ${port} ${profile} ${PT_VP8}`,
    `a=rtpmap:${PT_VP8} VP8/${VIDEO_CLOCK}`,
    ...crypto(keys?.video),
    'a=recvonly',
    `m=audio ${port + 2} ${profile} ${PT_OPUS}`,
    `a=rtpmap:${PT_OPUS} opus/${AUDIO_CLOCK}/2`,
    ...crypto(keys?.audio),
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
 * Sends the packets of whole frames to a local sink, video through a KeyframeGate. Not to a port
 * another local user holds (shared/socket-owner.ts): loopback is no boundary between users, and
 * a neighbour who took the port before the player would get the stream.
 */
export class RtpExport {
  sent = 0;
  /** Packets not sent: their port was held by another local user. */
  refused = 0;
  /** Whether each port (video, audio) is this user's or nobody's, looked up again each second. */
  private readonly holders = new UdpOwners(1000, true);
  private readonly gate = new KeyframeGate();
  /** With SRTP: the keys (for the SDP) and a sending context per m-line. */
  readonly keys?: ExportKeys;
  private readonly contexts?: Record<MediaKind, SrtpContext>;

  constructor(
    private readonly socket: MediaSocket,
    readonly ip: string,
    readonly port: number,
    srtp = false,
  ) {
    if (srtp) {
      this.keys = {
        video: encodeMasterKey(newMasterKey()),
        audio: encodeMasterKey(newMasterKey()),
      };
      this.contexts = {
        video: new SrtpContext(decodeMasterKey(this.keys.video)),
        audio: new SrtpContext(decodeMasterKey(this.keys.audio)),
      };
    }
  }

  /** The SDP that describes this export. */
  sdp(streamId: string): string {
    return exportSdp(streamId, this.ip, this.port, this.keys);
  }

  send(kind: MediaKind, packets: readonly RtpPacket[]): void {
    if (packets.length === 0) return;
    if (kind === 'video' && !this.gate.pass(packets, isVp8Keyframe(packets[0]!.payload))) return;
    const port = kind === 'video' ? this.port : this.port + 2;
    if (!this.holders.ours(this.ip, port)) {
      this.refused += packets.length;
      return;
    }
    const ctx = this.contexts?.[kind];
    for (const p of packets) {
      this.sent++;
      const d = encodeRtp(p);
      this.socket.sendPlain(ctx ? ctx.protectRtp(d) : d, { ip: this.ip, port });
    }
  }
}
