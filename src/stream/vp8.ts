/**
 * The VP8 RTP payload format (RFC 7741): a frame is cut into packets, each starting with a payload
 * descriptor. We write the same 4-byte descriptor as libavformat and browsers do:
 *
 *    0 1 2 3 4 5 6 7
 *   +-+-+-+-+-+-+-+-+
 *   |X|R|N|S|R| PID |  X=1; S=1 on the first packet of the frame; PID=0
 *   |I|L|T|K| RSV   |  I=1: a picture id follows
 *   |M| PictureID   |  M=1: 15-bit picture id (high 7 bits here, low 8 in the next byte)
 *   |   PictureID   |
 *   +-+-+-+-+-+-+-+-+
 *
 * and read any valid descriptor (L, T, K, 7-bit ids), so that ffmpeg, OBS or GStreamer can feed
 * us. A frame is a keyframe when bit P of the VP8 payload header (the first byte of the first
 * partition) is 0 (RFC 7741 §4.3).
 */
import { MAX_RTP_PACKET, RTP_HEADER_BYTES, RtpError } from './rtp.js';

const DESCRIPTOR_BYTES = 4;
/** Most VP8 bytes in one packet, so that the datagram stays within MAX_DATAGRAM under SRTP. */
export const VP8_CHUNK = MAX_RTP_PACKET - RTP_HEADER_BYTES - DESCRIPTOR_BYTES;

/** What a packet's descriptor says. */
export interface Vp8Descriptor {
  /** First packet of a partition. */
  start: boolean;
  partition: number;
  pictureId?: number;
  /** Offset of the VP8 bytes in the RTP payload. */
  offset: number;
}

/** Cuts a frame into RTP payloads (descriptor + VP8 bytes), in sending order. */
export function packetizeVp8(frame: Uint8Array, pictureId: number): Buffer[] {
  if (frame.length === 0) throw new RtpError('empty VP8 frame');
  const out: Buffer[] = [];
  for (let o = 0; o < frame.length; o += VP8_CHUNK) {
    const chunk = frame.subarray(o, Math.min(frame.length, o + VP8_CHUNK));
    const p = Buffer.allocUnsafe(DESCRIPTOR_BYTES + chunk.length);
    p[0] = o === 0 ? 0x90 : 0x80;
    p[1] = 0x80;
    p[2] = 0x80 | ((pictureId >> 8) & 0x7f);
    p[3] = pictureId & 0xff;
    p.set(chunk, DESCRIPTOR_BYTES);
    out.push(p);
  }
  return out;
}

/** Reads a payload descriptor; throws RtpError when it does not fit the payload. */
export function parseVp8Descriptor(p: Uint8Array): Vp8Descriptor {
  if (p.length < 1) throw new RtpError('empty VP8 payload');
  const b0 = p[0]!;
  let o = 1;
  let pictureId: number | undefined;
  if (b0 & 0x80) {
    if (p.length < 2) throw new RtpError('VP8 descriptor is truncated');
    const x = p[1]!;
    o = 2;
    if (x & 0x80) {
      if (o >= p.length) throw new RtpError('VP8 picture id is truncated');
      if (p[o]! & 0x80) {
        if (o + 1 >= p.length) throw new RtpError('VP8 picture id is truncated');
        pictureId = ((p[o]! & 0x7f) << 8) | p[o + 1]!;
        o += 2;
      } else {
        pictureId = p[o]! & 0x7f;
        o += 1;
      }
    }
    if (x & 0x40) o += 1; // TL0PICIDX
    if (x & 0x30) o += 1; // TID/Y/KEYIDX
  }
  if (o >= p.length) throw new RtpError('VP8 payload has no data after its descriptor');
  return { start: (b0 & 0x10) !== 0, partition: b0 & 0x07, pictureId, offset: o };
}

/** True when the first packet of a frame starts a keyframe. */
export function isVp8Keyframe(firstPayload: Uint8Array): boolean {
  const d = parseVp8Descriptor(firstPayload);
  return d.start && d.partition === 0 && (firstPayload[d.offset]! & 0x01) === 0;
}
