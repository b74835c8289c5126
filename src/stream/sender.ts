/**
 * The sending side of one RTP stream: frames in, datagrams out (packetizing per payload format,
 * numbering, stamping the capture time), and the buffer of recent datagrams that answers NACKs.
 * Relays keep the same buffer of what they forwarded. Pure logic: no socket.
 */
import { randomInt } from 'node:crypto';
import {
  AUDIO_CLOCK,
  PT_OPUS,
  PT_VP8,
  VIDEO_CLOCK,
  encodeRtp,
  MAX_RTP_PACKET,
  RtpError,
  RTP_HEADER_BYTES,
} from './rtp.js';
import { packetizeVp8 } from './vp8.js';

export type MediaKind = 'video' | 'audio';

/** One encoded frame from a source (camera, ingest, synthetic). */
export interface MediaFrame {
  kind: MediaKind;
  /** VP8 frame, or one Opus packet. */
  data: Uint8Array;
  keyframe: boolean;
  /** Capture time, milliseconds since 1970. */
  captureMs: number;
}

/** Numbers and packetizes the frames of one SSRC. */
export class RtpSender {
  private seq = randomInt(0, 0x10000);
  private pictureId = randomInt(0, 0x8000);
  private readonly base = randomInt(0, 2 ** 32);
  private readonly origin: number;
  readonly payloadType: number;
  readonly clockRate: number;

  constructor(
    readonly kind: MediaKind,
    readonly ssrc: number,
    origin = Date.now(),
  ) {
    this.payloadType = kind === 'video' ? PT_VP8 : PT_OPUS;
    this.clockRate = kind === 'video' ? VIDEO_CLOCK : AUDIO_CLOCK;
    this.origin = origin;
  }

  /** The datagrams of one frame, in sending order. */
  packetize(frame: MediaFrame): Buffer[] {
    const timestamp =
      (this.base + Math.round(((frame.captureMs - this.origin) * this.clockRate) / 1000)) >>> 0;
    const payloads =
      this.kind === 'video'
        ? packetizeVp8(frame.data, (this.pictureId = (this.pictureId + 1) & 0x7fff))
        : [frame.data];
    if (this.kind === 'audio' && frame.data.length > MAX_RTP_PACKET - RTP_HEADER_BYTES)
      throw new RtpError(`Opus packet of ${frame.data.length} bytes does not fit a datagram`);
    return payloads.map((payload, i) =>
      encodeRtp({
        marker: this.kind === 'video' && i === payloads.length - 1,
        payloadType: this.payloadType,
        seq: (this.seq = (this.seq + 1) & 0xffff),
        timestamp,
        ssrc: this.ssrc,
        captureMs: Math.round(frame.captureMs),
        payload,
      }),
    );
  }
}

/** The last `size` datagrams of one SSRC by sequence number, to answer NACKs from. */
export class RetransmitBuffer {
  private readonly seqs: Int32Array;
  private readonly datagrams: Array<Buffer | undefined>;

  constructor(private readonly size = 2048) {
    this.seqs = new Int32Array(size).fill(-1);
    this.datagrams = new Array(size);
  }

  /** Keeps a datagram; false when this sequence number is already kept (a duplicate). */
  put(seq: number, datagram: Buffer): boolean {
    const i = seq % this.size;
    if (this.seqs[i] === seq) return false;
    this.seqs[i] = seq;
    this.datagrams[i] = datagram;
    return true;
  }

  get(seq: number): Buffer | undefined {
    const i = seq % this.size;
    return this.seqs[i] === seq ? this.datagrams[i] : undefined;
  }
}
