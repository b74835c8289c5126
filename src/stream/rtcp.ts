/**
 * RTCP (RFC 3550 §6) and its feedback messages (RFC 4585 §6), the subset the livestream speaks:
 *
 *   receiver report  PT=201  header RC=blocks, sender SSRC, 24-byte report blocks
 *   sender report    PT=200  read (ffmpeg sends them), never written
 *   generic NACK     PT=205 FMT=1  sender SSRC, media SSRC, FCI: PID (16) + BLP (16) ...
 *   PLI              PT=206 FMT=1  sender SSRC, media SSRC, no FCI
 *   APP              PT=204        SSRC, 4-character name, data: our consent check (`HCCQ`) and
 *                                  answer (`HCCR`), SSRC = the stream's video SSRC, data = nonce
 *
 * Every packet starts with V=2, P, a 5-bit count/format, PT and a length in 32-bit words minus
 * one; a datagram may hold several (a compound packet). Others (SDES, BYE) are skipped. A
 * datagram over MAX_DATAGRAM, or a NACK with more than `maxNackFci` entries, is refused whole.
 */
import { MAX_DATAGRAM, RtpError } from './rtp.js';
import { STREAM_LIMITS } from '../shared/limits.js';

/** APP name of a consent check (parent → child address), RFC 7675's idea over RTCP. */
export const CONSENT_CHECK = 'HCCQ';
/** APP name of a consent answer (child → its parent), echoing the check's nonce. */
export const CONSENT_ANSWER = 'HCCR';

/** One report block of a receiver report. */
export interface ReportBlock {
  ssrc: number;
  /** Fraction lost since the last report, 0–255 (of 256). */
  fractionLost: number;
  /** Cumulative packets lost (24-bit signed). */
  totalLost: number;
  /** Extended highest sequence number received. */
  highestSeq: number;
  /** Interarrival jitter, in timestamp units. */
  jitter: number;
}

export type RtcpPacket =
  | { type: 'rr'; ssrc: number; reports: ReportBlock[] }
  | { type: 'sr'; ssrc: number; reports: ReportBlock[] }
  | { type: 'nack'; ssrc: number; mediaSsrc: number; seqs: number[] }
  | { type: 'pli'; ssrc: number; mediaSsrc: number }
  | { type: 'app'; ssrc: number; subtype: number; name: string; data: Buffer }
  | { type: 'other'; pt: number };

/** Encodes a generic NACK for these 16-bit sequence numbers (grouped as PID + bitmask). */
export function encodeNack(ssrc: number, mediaSsrc: number, seqs: readonly number[]): Buffer {
  const sorted = [...new Set(seqs.map((s) => s & 0xffff))].sort((a, b) => a - b);
  const fci: Array<[number, number]> = [];
  for (const s of sorted) {
    const last = fci[fci.length - 1];
    const d = last ? (s - last[0]) & 0xffff : 0;
    if (last && d >= 1 && d <= 16) last[1] |= 1 << (d - 1);
    else fci.push([s, 0]);
  }
  const b = Buffer.allocUnsafe(12 + fci.length * 4);
  b[0] = 0x81;
  b[1] = 205;
  b.writeUInt16BE(2 + fci.length, 2);
  b.writeUInt32BE(ssrc >>> 0, 4);
  b.writeUInt32BE(mediaSsrc >>> 0, 8);
  fci.forEach(([pid, blp], i) => {
    b.writeUInt16BE(pid, 12 + i * 4);
    b.writeUInt16BE(blp, 14 + i * 4);
  });
  return b;
}

/** Encodes a picture loss indication: the receiver needs a keyframe. */
export function encodePli(ssrc: number, mediaSsrc: number): Buffer {
  const b = Buffer.allocUnsafe(12);
  b[0] = 0x81;
  b[1] = 206;
  b.writeUInt16BE(2, 2);
  b.writeUInt32BE(ssrc >>> 0, 4);
  b.writeUInt32BE(mediaSsrc >>> 0, 8);
  return b;
}

/** Encodes a receiver report with up to 31 blocks. */
export function encodeReceiverReport(ssrc: number, reports: readonly ReportBlock[]): Buffer {
  if (reports.length > 31) throw new RtpError('at most 31 report blocks');
  const b = Buffer.allocUnsafe(8 + reports.length * 24);
  b[0] = 0x80 | reports.length;
  b[1] = 201;
  b.writeUInt16BE(1 + reports.length * 6, 2);
  b.writeUInt32BE(ssrc >>> 0, 4);
  reports.forEach((r, i) => {
    const o = 8 + i * 24;
    b.writeUInt32BE(r.ssrc >>> 0, o);
    b[o + 4] = Math.max(0, Math.min(255, r.fractionLost | 0));
    b.writeIntBE(Math.max(-0x800000, Math.min(0x7fffff, r.totalLost | 0)), o + 5, 3);
    b.writeUInt32BE(r.highestSeq >>> 0, o + 8);
    b.writeUInt32BE(r.jitter >>> 0, o + 12);
    b.writeUInt32BE(0, o + 16); // LSR: we send no sender reports to echo
    b.writeUInt32BE(0, o + 20); // DLSR
  });
  return b;
}

/** Encodes an APP packet (RFC 3550 §6.7): `name` is 4 ASCII characters, `data` whole words. */
export function encodeApp(ssrc: number, name: string, data: Uint8Array, subtype = 0): Buffer {
  if (name.length !== 4 || data.length % 4 !== 0)
    throw new RtpError('APP: 4-character name and whole words of data');
  const b = Buffer.allocUnsafe(12 + data.length);
  b[0] = 0x80 | (subtype & 0x1f);
  b[1] = 204;
  b.writeUInt16BE(2 + data.length / 4, 2);
  b.writeUInt32BE(ssrc >>> 0, 4);
  b.write(name, 8, 'latin1');
  b.set(data, 12);
  return b;
}

/** Decodes a (compound) RTCP datagram; throws RtpError when any length does not fit. */
export function parseRtcp(d: Uint8Array): RtcpPacket[] {
  if (d.length > MAX_DATAGRAM)
    throw new RtpError(`RTCP datagram of ${d.length} bytes exceeds ${MAX_DATAGRAM}`);
  const view = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const out: RtcpPacket[] = [];
  let o = 0;
  while (o < d.length) {
    if (o + 4 > d.length) throw new RtpError('RTCP header is truncated');
    const b0 = d[o]!;
    if (b0 >> 6 !== 2) throw new RtpError(`RTCP version ${b0 >> 6}, expected 2`);
    const count = b0 & 0x1f;
    const pt = d[o + 1]!;
    const len = (view.getUint16(o + 2) + 1) * 4;
    if (o + len > d.length) throw new RtpError('RTCP packet is longer than the datagram');
    const body = o + 4;
    const end = o + len;
    const need = (n: number) => {
      if (body + n > end) throw new RtpError(`RTCP packet type ${pt} is too short`);
    };
    switch (pt) {
      case 200:
      case 201: {
        const fixed = pt === 200 ? 24 : 4;
        need(fixed + count * 24);
        const reports: ReportBlock[] = [];
        for (let i = 0; i < count; i++) {
          const r = body + fixed + i * 24;
          reports.push({
            ssrc: view.getUint32(r),
            fractionLost: d[r + 4]!,
            totalLost: (view.getInt32(r + 4) << 8) >> 8,
            highestSeq: view.getUint32(r + 8),
            jitter: view.getUint32(r + 12),
          });
        }
        out.push({ type: pt === 200 ? 'sr' : 'rr', ssrc: view.getUint32(body), reports });
        break;
      }
      case 205:
      case 206: {
        need(8);
        const ssrc = view.getUint32(body);
        const mediaSsrc = view.getUint32(body + 4);
        if (pt === 205 && count === 1) {
          if ((end - body - 8) / 4 > STREAM_LIMITS.maxNackFci)
            throw new RtpError(`NACK with more than ${STREAM_LIMITS.maxNackFci} FCI entries`);
          // Each sequence number once, however often the FCI repeats it.
          const seqs = new Set<number>();
          for (let f = body + 8; f + 4 <= end; f += 4) {
            const pid = view.getUint16(f);
            const blp = view.getUint16(f + 2);
            seqs.add(pid);
            for (let bit = 0; bit < 16; bit++)
              if (blp & (1 << bit)) seqs.add((pid + bit + 1) & 0xffff);
          }
          out.push({ type: 'nack', ssrc, mediaSsrc, seqs: [...seqs] });
        } else if (pt === 206 && count === 1) {
          out.push({ type: 'pli', ssrc, mediaSsrc });
        } else {
          out.push({ type: 'other', pt });
        }
        break;
      }
      case 204: {
        need(8);
        out.push({
          type: 'app',
          ssrc: view.getUint32(body),
          subtype: count,
          name: Buffer.from(d.buffer, d.byteOffset + body + 4, 4).toString('latin1'),
          data: Buffer.from(d.subarray(body + 8, end)),
        });
        break;
      }
      default:
        out.push({ type: 'other', pt });
    }
    o = end;
  }
  return out;
}
