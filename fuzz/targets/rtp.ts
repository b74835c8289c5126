/**
 * RTP, RTCP and VP8 parsers (src/stream/rtp.ts, rtcp.ts, vp8.ts) and what a receiver does with the
 * packets (src/stream/jitter-buffer.ts), as media-socket.ts dispatches datagrams. Contract: only
 * RtpError escapes a parser; a parsed packet's fields are in range and its payload lies inside the
 * datagram; the jitter buffer never throws, asks only for 16-bit sequence numbers and hands out
 * frames made of the packets it was given.
 *
 * Input: datagrams, each a 2-byte big-endian length then that many bytes (the last one takes what
 * is left), arriving one millisecond apart.
 */
import { RtpError, encodeRtp, isRtcp, parseRtp, PT_OPUS, PT_VP8 } from '../../src/stream/rtp.js';
import { encodeNack, encodePli, encodeReceiverReport, parseRtcp } from '../../src/stream/rtcp.js';
import { isVp8Keyframe, packetizeVp8, parseVp8Descriptor } from '../../src/stream/vp8.js';
import { JitterBuffer } from '../../src/stream/jitter-buffer.js';
import { ContractViolation, type FuzzTarget } from '../engine/target.js';

function check(cond: boolean, what: string): void {
  if (!cond) throw new ContractViolation(what);
}

/** Runs `f`; an RtpError is the documented refusal, anything else escapes. */
function refusable<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (err) {
    if (err instanceof RtpError) return undefined;
    throw err;
  }
}

function* datagrams(data: Buffer): Generator<Buffer> {
  let o = 0;
  while (o < data.length) {
    if (o + 2 > data.length) return;
    const len = data.readUInt16BE(o);
    o += 2;
    yield data.subarray(o, Math.min(data.length, o + len));
    o += len;
  }
}

const isU16 = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xffff;
const isU32 = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xffffffff;

function run(data: Buffer): void {
  const video = new JitterBuffer({ kind: 'video', deadlineMs: 20 });
  const audio = new JitterBuffer({ kind: 'audio', deadlineMs: 20 });
  let now = 1_000;
  for (const d of datagrams(data)) {
    now += 1;
    if (isRtcp(d)) {
      const packets = refusable(() => parseRtcp(d)) ?? [];
      for (const p of packets) {
        if (p.type === 'nack') {
          check(p.seqs.every(isU16), 'NACK sequence number outside 16 bits');
          check(
            p.seqs.length <= (d.length / 4) * 17,
            'more NACKed numbers than the datagram holds',
          );
        }
        if (p.type === 'rr' || p.type === 'sr') {
          check(p.reports.length <= 31, 'more than 31 report blocks');
          check(isU32(p.ssrc), 'SSRC outside 32 bits');
        }
      }
      continue;
    }
    const p = refusable(() => parseRtp(d));
    if (!p) continue;
    check(isU16(p.seq) && isU32(p.timestamp) && isU32(p.ssrc), 'RTP header field out of range');
    check(p.payloadType >= 0 && p.payloadType < 128, 'payload type outside 7 bits');
    const off = p.payload.byteOffset - d.byteOffset;
    check(off >= 12 && off + p.payload.length <= d.length, 'payload outside the datagram');
    check(p.captureMs === undefined || Number.isFinite(p.captureMs), 'capture time not finite');
    const desc = refusable(() => parseVp8Descriptor(p.payload));
    if (desc) check(desc.offset < p.payload.length, 'VP8 data offset past the payload');
    refusable(() => isVp8Keyframe(p.payload));
    const jb = p.payloadType === PT_OPUS ? audio : video;
    jb.push(p, now);
    for (const s of jb.nacks(now))
      check(isU16(s), 'jitter buffer asks for a number outside 16 bits');
    for (const f of jb.poll(now)) {
      check(f.packets.length > 0, 'frame without packets');
      check(
        f.packets.every((q) => q.timestamp === f.timestamp),
        'frame mixes timestamps',
      );
    }
  }
  for (const jb of [video, audio]) {
    jb.poll(now + 10_000);
    jb.nacks(now + 10_000);
  }
}

function record(d: Buffer): Buffer {
  const h = Buffer.alloc(2);
  h.writeUInt16BE(d.length);
  return Buffer.concat([h, d]);
}

function seeds(): Buffer[] {
  const frame = Buffer.alloc(3000, 0x42);
  frame[0] = 0x10; // keyframe bit clear
  const vp8 = packetizeVp8(frame, 300).map((payload, i, all) =>
    encodeRtp({
      marker: i === all.length - 1,
      payloadType: PT_VP8,
      seq: 65534 + i,
      timestamp: 90_000,
      ssrc: 0x1234,
      captureMs: 1_764_150_000_000,
      payload,
    }),
  );
  const opus = encodeRtp({
    marker: false,
    payloadType: PT_OPUS,
    seq: 7,
    timestamp: 960,
    ssrc: 0x5678,
    payload: Buffer.from([0xfc, 0xff, 0xfe]),
  });
  const rr = encodeReceiverReport(1, [
    { ssrc: 0x1234, fractionLost: 3, totalLost: -2, highestSeq: 70000, jitter: 12 },
  ]);
  const compound = Buffer.concat([
    rr,
    encodeNack(1, 0x1234, [65535, 0, 1, 5, 30]),
    encodePli(1, 0x1234),
  ]);
  return [
    Buffer.concat(vp8.map(record)),
    Buffer.concat([vp8[1]!, vp8[0]!, vp8[2]!].map(record)),
    record(opus),
    record(compound),
    record(encodeNack(9, 0x5678, [1, 2, 3])),
    Buffer.concat([record(opus), record(rr), ...vp8.slice(0, 1).map(record)]),
  ];
}

const target: FuzzTarget = {
  name: 'rtp',
  description: 'RTP/RTCP/VP8 parsers and jitter buffers fed datagrams: only RtpError escapes',
  cover: [
    '/src/stream/rtp.ts',
    '/src/stream/rtcp.ts',
    '/src/stream/vp8.ts',
    '/src/stream/jitter-buffer.ts',
  ],
  maxLen: 4096,
  seeds,
  run,
};
export default target;
