import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  MAX_DATAGRAM,
  MAX_RTP_PACKET,
  RtpError,
  SeqUnwrapper,
  encodeRtp,
  isRtcp,
  parseRtp,
} from '../src/stream/rtp.js';
import {
  CONSENT_CHECK,
  encodeApp,
  encodeNack,
  encodePli,
  encodeReceiverReport,
  parseRtcp,
  type ReportBlock,
} from '../src/stream/rtcp.js';
import { isVp8Keyframe, packetizeVp8, parseVp8Descriptor } from '../src/stream/vp8.js';
import { RetransmitBuffer, RtpSender } from '../src/stream/sender.js';
import { Consent } from '../src/stream/consent.js';
import { RetransmitBudget } from '../src/stream/retransmit-budget.js';
import { STREAM_LIMITS } from '../src/shared/limits.js';
import { SrtpContext, newMasterKey } from '../src/stream/srtp.js';

const u32 = fc.nat({ max: 2 ** 32 - 1 });
const packet = fc.record({
  marker: fc.boolean(),
  payloadType: fc.integer({ min: 0, max: 127 }),
  seq: fc.nat({ max: 0xffff }),
  timestamp: u32,
  ssrc: u32,
  captureMs: fc.option(fc.integer({ min: 0, max: 4_000_000_000_000 }), { nil: undefined }),
  payload: fc.uint8Array({ maxLength: 1100 }),
});

/** Only RtpError may come out of a decoder, whatever it is fed. */
function onlyRtpErrors(f: () => unknown): void {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(RtpError);
  }
}

describe('RTP', () => {
  it('round-trips any packet, capture time to the millisecond', () => {
    fc.assert(
      fc.property(packet, (p) => {
        const d = encodeRtp(p);
        expect(d.length).toBeLessThanOrEqual(MAX_DATAGRAM);
        // RFC 5761: only payload types 64-95 with the marker could be mistaken for RTCP.
        if (p.payloadType < 64 || p.payloadType > 95) expect(isRtcp(d)).toBe(false);
        const back = parseRtp(d);
        expect({ ...back, payload: Buffer.from(back.payload) }).toEqual({
          ...p,
          payload: Buffer.from(p.payload),
        });
      }),
    );
  });

  it('refuses packets over 1,200 bytes', () => {
    expect(() =>
      encodeRtp({
        marker: false,
        payloadType: 96,
        seq: 1,
        timestamp: 1,
        ssrc: 1,
        payload: new Uint8Array(1189),
      }),
    ).toThrow(RtpError);
  });

  it('reads packets with CSRCs, padding and foreign extensions (as other tools send them)', () => {
    const b = Buffer.from([
      0xa1, 0x60, 0x00, 0x07, 0, 0, 0, 9, 0, 0, 0, 5, 0, 0, 0, 42 /* CSRC */, 0xab, 0xcd, 0x00,
      0x02 /* 2 words */, 1, 2, 3, 4, 5, 6, 7, 8, 0xde, 0xad, 0, 0, 3 /* pad 3 */,
    ]);
    b[0] = 0xb1; // V=2 P=1 X=1 CC=1
    const p = parseRtp(b);
    expect(p.seq).toBe(7);
    expect(p.ssrc).toBe(5);
    expect(p.captureMs).toBeUndefined();
    expect(Buffer.from(p.payload)).toEqual(Buffer.from([0xde, 0xad]));
  });

  it('never throws anything but RtpError on random or truncated bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        onlyRtpErrors(() => parseRtp(bytes));
        onlyRtpErrors(() => parseRtcp(bytes));
        onlyRtpErrors(() => parseVp8Descriptor(bytes));
      }),
    );
    fc.assert(
      fc.property(packet, fc.nat(), (p, cut) => {
        const d = encodeRtp(p);
        onlyRtpErrors(() => parseRtp(d.subarray(0, cut % d.length)));
      }),
    );
  });

  it('unwraps sequence numbers across the 16-bit wrap, in any local order', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 0xffff }),
        fc.array(fc.integer({ min: -20, max: 20 }), { minLength: 1, maxLength: 300 }),
        (start, jitter) => {
          const u = new SeqUnwrapper();
          const first = u.unwrap(start);
          jitter.forEach((j, i) => {
            const truth = i + 1 + j;
            expect(u.unwrap((start + truth + 0x10000) & 0xffff)).toBe(first + truth);
          });
        },
      ),
    );
  });
});

describe('RTCP', () => {
  it('round-trips generic NACKs of any set of nearby sequence numbers', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 0xffff }),
        fc.uniqueArray(fc.nat({ max: 300 }), { minLength: 1, maxLength: 80 }),
        u32,
        u32,
        (base, offsets, a, b) => {
          const seqs = offsets.map((o) => (base + o) & 0xffff);
          const [p, ...rest] = parseRtcp(encodeNack(a, b, seqs));
          expect(rest).toEqual([]);
          expect(p).toMatchObject({ type: 'nack', ssrc: a, mediaSsrc: b });
          expect(new Set((p as { seqs: number[] }).seqs)).toEqual(new Set(seqs));
        },
      ),
    );
  });

  it('round-trips PLI and receiver reports, also in one compound datagram', () => {
    const block = fc.record({
      ssrc: u32,
      fractionLost: fc.nat({ max: 255 }),
      totalLost: fc.integer({ min: -0x800000, max: 0x7fffff }),
      highestSeq: u32,
      jitter: u32,
    });
    fc.assert(
      fc.property(u32, u32, fc.array(block, { maxLength: 31 }), (a, b, reports: ReportBlock[]) => {
        const d = Buffer.concat([encodeReceiverReport(a, reports), encodePli(a, b)]);
        expect(isRtcp(d)).toBe(true);
        expect(parseRtcp(d)).toEqual([
          { type: 'rr', ssrc: a, reports },
          { type: 'pli', ssrc: a, mediaSsrc: b },
        ]);
      }),
    );
  });

  it('reads a sender report followed by SDES, as ffmpeg sends them', () => {
    const sr = Buffer.alloc(28);
    sr[0] = 0x80;
    sr[1] = 200;
    sr.writeUInt16BE(6, 2);
    sr.writeUInt32BE(77, 4);
    const sdes = Buffer.from([0x81, 202, 0, 1, 0, 0, 0, 77]);
    expect(parseRtcp(Buffer.concat([sr, sdes]))).toEqual([
      { type: 'sr', ssrc: 77, reports: [] },
      { type: 'other', pt: 202 },
    ]);
  });
});

describe('VP8 payload format', () => {
  it('cuts any frame into datagrams of at most 1,200 bytes and joins them back', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 20_000 }),
        fc.nat({ max: 0x7fff }),
        (frame, pid) => {
          const payloads = packetizeVp8(frame, pid);
          const parts = payloads.map((p, i) => {
            const d = parseVp8Descriptor(p);
            expect(d.start).toBe(i === 0);
            expect(d.pictureId).toBe(pid);
            return p.subarray(d.offset);
          });
          expect(Buffer.concat(parts)).toEqual(Buffer.from(frame));
          const sender = new RtpSender('video', 1234);
          const grams = sender.packetize({
            kind: 'video',
            data: frame,
            keyframe: false,
            captureMs: 1e12,
          });
          // Within the datagram budget once SRTP adds its tag.
          const srtp = new SrtpContext(newMasterKey());
          for (const g of grams) {
            expect(g.length).toBeLessThanOrEqual(MAX_RTP_PACKET);
            expect(srtp.protectRtp(g).length).toBeLessThanOrEqual(MAX_DATAGRAM);
          }
          expect(grams.map((g) => parseRtp(g).marker)).toEqual(
            grams.map((_, i) => i === grams.length - 1),
          );
        },
      ),
    );
  });

  it('tells keyframes by the P bit of the first partition', () => {
    expect(isVp8Keyframe(packetizeVp8(Buffer.from([0x10, 2, 0]), 1)[0]!)).toBe(true);
    expect(isVp8Keyframe(packetizeVp8(Buffer.from([0x11, 2, 0]), 1)[0]!)).toBe(false);
  });
});

describe('retransmit buffer', () => {
  it('keeps the last datagrams by sequence number and tells duplicates', () => {
    const b = new RetransmitBuffer(4);
    const d = (n: number) => Buffer.from([n]);
    expect(b.put(1, d(1))).toBe(true);
    expect(b.put(1, d(1))).toBe(false);
    for (let s = 2; s <= 5; s++) b.put(s, d(s));
    expect(b.get(1)).toBeUndefined();
    expect(b.get(5)).toEqual(d(5));
  });
});

describe('RTCP limits (docs/PROTOCOL.md §5.4)', () => {
  it('round-trips consent checks as APP packets and routes nothing else by mistake', () => {
    fc.assert(
      fc.property(u32, fc.uint8Array({ minLength: 12, maxLength: 12 }), (ssrc, nonce) => {
        const d = encodeApp(ssrc, CONSENT_CHECK, nonce);
        expect(d.length).toBe(24);
        expect(isRtcp(d)).toBe(true);
        expect(parseRtcp(d)).toEqual([
          { type: 'app', ssrc, subtype: 0, name: 'HCCQ', data: Buffer.from(nonce) },
        ]);
      }),
    );
  });

  it('refuses datagrams over 1,200 bytes and NACKs over 200 FCI entries; counts each seq once', () => {
    const big = Buffer.concat(Array.from({ length: 101 }, () => encodePli(1, 2)));
    expect(big.length).toBe(1212);
    expect(() => parseRtcp(big)).toThrow(RtpError);
    const fci = (n: number) => {
      const b = Buffer.alloc(12 + n * 4);
      b[0] = 0x81;
      b[1] = 205;
      b.writeUInt16BE(2 + n, 2);
      for (let i = 0; i < n; i++) b.writeUInt32BE(0x0005ffff, 12 + i * 4);
      return b;
    };
    expect(() => parseRtcp(fci(201))).toThrow(RtpError);
    const [p] = parseRtcp(fci(200));
    expect((p as { seqs: number[] }).seqs.sort((a, b) => a - b)).toEqual(
      Array.from({ length: 17 }, (_, i) => 5 + i),
    );
  });
});

describe('consent and retransmit budget', () => {
  const L = { ...STREAM_LIMITS };
  const a = { ip: '127.0.0.1', port: 5000 };

  it('gives consent only to an answer with the nonce of a check sent to that address', () => {
    const c = new Consent(L);
    c.setAddresses([a], 0);
    const [check] = c.due(0);
    expect(check!.to).toEqual(a);
    expect(c.fresh(a, 1)).toBe(false);
    expect(c.answer({ ...a, port: 5001 }, check!.nonce, 1)).toBe('refused');
    expect(c.answer(a, Buffer.alloc(12), 1)).toBe('refused');
    expect(c.answer(a, check!.nonce, 1)).toBe('granted');
    expect(c.answer(a, check!.nonce, 2)).toBe('refused'); // used up
    expect(c.fresh(a, 1 + L.consentExpiryMs - 1)).toBe(true);
    expect(c.fresh(a, 1 + L.consentExpiryMs)).toBe(false);
  });

  it('checks a silent address with backoff: a handful of checks, then one per period', () => {
    const c = new Consent(L);
    c.setAddresses([a], 0);
    let n = 0;
    for (let t = 0; t <= 4000; t += 5) n += c.due(t).length;
    expect(n).toBeGreaterThanOrEqual(5);
    expect(n).toBeLessThanOrEqual(8);
    let later = 0;
    for (let t = 4005; t <= 24_000; t += 5) later += c.due(t).length;
    expect(later).toBeLessThanOrEqual(11);
  });

  it('sends a packet again at most once per window, and never past the budget', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: 50 }), fc.nat({ max: 30 })), { maxLength: 300 }),
        fc.nat({ max: 200_000 }),
        (asks, media) => {
          const b = new RetransmitBudget(L);
          b.earn(media);
          let sent = 0;
          const last = new Map<number, number>();
          let now = 0;
          for (const [key, dt] of asks) {
            now += dt;
            if (b.take(key, 1000, now) === 'ok') {
              sent += 1000;
              expect(now - (last.get(key) ?? -Infinity)).toBeGreaterThanOrEqual(L.nackDedupMs);
              last.set(key, now);
            }
          }
          expect(sent).toBeLessThanOrEqual(
            Math.min(L.retransmitBurstBytes, media * L.retransmitBudgetRatio),
          );
        },
      ),
    );
  });
});
