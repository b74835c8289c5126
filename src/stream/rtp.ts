/**
 * RTP packets (RFC 3550) as the livestream sends them over UDP, peer to peer.
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |V=2|P|X|  CC   |M|     PT      |       sequence number         |
 *   |                           timestamp                           |
 *   |                             SSRC                              |
 *   |            CSRC list (CC × 32 bits), ignored                  |
 *   | 0xBEDE (one-byte header extensions, RFC 8285) | length (words) |
 *   | id=1 len=7 |  abs-capture-time: NTP seconds.fraction (64 bits) |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * The only extension we write is the capture time of the frame (element id 1, 8 bytes, the
 * layout of WebRTC's abs-capture-time), so that every receiver can tell a frame's age; tools that
 * do not know it skip it, as RFC 8285 requires. Parsing validates every length against the
 * datagram before reading, and anything malformed is an RtpError, never an exception of another
 * kind.
 */
import { SRTP_TAG_BYTES } from './srtp.js';

/** Largest datagram we send (SPEC §8), SRTP tag or SRTCP trailer included. */
export const MAX_DATAGRAM = 1200;
/** Largest RTP packet, so that it stays within MAX_DATAGRAM once SRTP adds its tag. */
export const MAX_RTP_PACKET = MAX_DATAGRAM - SRTP_TAG_BYTES;
/** Bytes of our RTP header with the capture-time extension. */
export const RTP_HEADER_BYTES = 12 + 4 + 12;
/** Payload types of our session (dynamic range, as in the SDP we hand out). */
export const PT_VP8 = 96;
export const PT_OPUS = 111;
/** Clock rates of the payload formats (RFC 7741 §4.1, RFC 7587 §4.1). */
export const VIDEO_CLOCK = 90_000;
export const AUDIO_CLOCK = 48_000;

const ABS_CAPTURE_TIME_ID = 1;
const NTP_EPOCH_OFFSET_S = 2_208_988_800;

/** One RTP packet, decoded. */
export interface RtpPacket {
  marker: boolean;
  payloadType: number;
  /** 16-bit sequence number. */
  seq: number;
  /** 32-bit media timestamp. */
  timestamp: number;
  ssrc: number;
  /** Wall-clock capture time of the frame, in milliseconds since 1970, when the sender said. */
  captureMs?: number;
  payload: Uint8Array;
}

/** A datagram that is not a well-formed RTP packet. */
export class RtpError extends Error {}

/** True when a datagram looks like RTCP rather than RTP (RFC 5761 §4: PT 192–223). */
export function isRtcp(datagram: Uint8Array): boolean {
  return datagram.length >= 2 && datagram[1]! >= 192 && datagram[1]! <= 223;
}

/** Encodes a packet: one allocation of exactly the datagram's size. */
export function encodeRtp(p: RtpPacket): Buffer {
  const ext = p.captureMs !== undefined;
  const size = 12 + (ext ? 16 : 0) + p.payload.length;
  if (size > MAX_RTP_PACKET)
    throw new RtpError(`RTP packet of ${size} bytes exceeds ${MAX_RTP_PACKET}`);
  const b = Buffer.allocUnsafe(size);
  b[0] = 0x80 | (ext ? 0x10 : 0);
  b[1] = (p.marker ? 0x80 : 0) | (p.payloadType & 0x7f);
  b.writeUInt16BE(p.seq & 0xffff, 2);
  b.writeUInt32BE(p.timestamp >>> 0, 4);
  b.writeUInt32BE(p.ssrc >>> 0, 8);
  let o = 12;
  if (ext) {
    b.writeUInt16BE(0xbede, o);
    b.writeUInt16BE(3, o + 2);
    b[o + 4] = (ABS_CAPTURE_TIME_ID << 4) | 7;
    const ms = p.captureMs!;
    const s = Math.floor(ms / 1000);
    b.writeUInt32BE((s + NTP_EPOCH_OFFSET_S) >>> 0, o + 5);
    b.writeUInt32BE(Math.floor(((ms - s * 1000) / 1000) * 2 ** 32) >>> 0, o + 9);
    b[o + 13] = 0;
    b[o + 14] = 0;
    b[o + 15] = 0;
    o += 16;
  }
  b.set(p.payload, o);
  return b;
}

/** Decodes one datagram; the payload is a view into it (no copy). */
export function parseRtp(d: Uint8Array): RtpPacket {
  if (d.length < 12) throw new RtpError(`RTP packet of ${d.length} bytes is shorter than 12`);
  const b0 = d[0]!;
  if (b0 >> 6 !== 2) throw new RtpError(`RTP version ${b0 >> 6}, expected 2`);
  const view = new DataView(d.buffer, d.byteOffset, d.byteLength);
  let end = d.length;
  if (b0 & 0x20) {
    const pad = d[end - 1]!;
    if (pad === 0 || pad > end - 12) throw new RtpError(`bad RTP padding length ${pad}`);
    end -= pad;
  }
  let o = 12 + (b0 & 0x0f) * 4;
  let captureMs: number | undefined;
  if (b0 & 0x10) {
    if (o + 4 > end) throw new RtpError('RTP header extension is truncated');
    const profile = view.getUint16(o);
    const words = view.getUint16(o + 2);
    const extEnd = o + 4 + words * 4;
    if (extEnd > end) throw new RtpError('RTP header extension is longer than the packet');
    if (profile === 0xbede) captureMs = readCaptureTime(d, view, o + 4, extEnd);
    o = extEnd;
  }
  if (o > end) throw new RtpError('RTP header is longer than the packet');
  return {
    marker: (d[1]! & 0x80) !== 0,
    payloadType: d[1]! & 0x7f,
    seq: view.getUint16(2),
    timestamp: view.getUint32(4),
    ssrc: view.getUint32(8),
    captureMs,
    payload: d.subarray(o, end),
  };
}

/** Walks one-byte extension elements (RFC 8285 §4.2) for the capture time. */
function readCaptureTime(
  d: Uint8Array,
  view: DataView,
  o: number,
  end: number,
): number | undefined {
  while (o < end) {
    const h = d[o]!;
    if (h === 0) {
      o++; // padding
      continue;
    }
    const id = h >> 4;
    const len = (h & 0x0f) + 1;
    if (id === 15) return undefined; // reserved: stop processing (RFC 8285)
    if (o + 1 + len > end) throw new RtpError('RTP header extension element is truncated');
    if (id === ABS_CAPTURE_TIME_ID && len >= 8) {
      // NTP seconds wrap in 2036: a value with the top bit clear is in era 1 (RFC 4330 §3).
      const ntp = view.getUint32(o + 1);
      const s = ntp + (ntp < 0x80000000 ? 2 ** 32 : 0) - NTP_EPOCH_OFFSET_S;
      const frac = view.getUint32(o + 5) / 2 ** 32;
      return s * 1000 + Math.round(frac * 1000);
    }
    o += 1 + len;
  }
  return undefined;
}

/**
 * Unwraps 16-bit sequence numbers into a monotone counter: each new number is placed nearest to
 * the highest seen so far (RFC 3550 A.1).
 */
export class SeqUnwrapper {
  private highest: number | undefined;

  /** The extended sequence number of `seq`. */
  unwrap(seq: number): number {
    if (this.highest === undefined) {
      this.highest = seq + 65536; // room below the first packet for reordered earlier ones
      return this.highest;
    }
    let delta = (seq - (this.highest & 0xffff)) & 0xffff;
    if (delta >= 0x8000) delta -= 0x10000;
    const ext = this.highest + delta;
    if (ext > this.highest) this.highest = ext;
    return ext;
  }

  reset(): void {
    this.highest = undefined;
  }
}
