/**
 * SRTP/SRTCP (stream/srtp.ts): the RFC 3711 test vectors (B.2 keystream, B.3 key derivation),
 * round trips over random packets and sequence numbers (wraparound carries into the ROC), and
 * the refusals: any flipped bit is `auth`, a replayed or far-behind packet is `replay`.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  REPLAY_WINDOW,
  SRTCP_TRAILER_BYTES,
  SRTP_TAG_BYTES,
  SrtpContext,
  aesCmKeystream,
  decodeMasterKey,
  deriveSessionKeys,
  encodeMasterKey,
  estimateIndex,
  newMasterKey,
} from '../src/stream/srtp.js';
import { encodeRtp } from '../src/stream/rtp.js';
import { encodeApp, encodeNack, encodeReceiverReport, parseRtcp } from '../src/stream/rtcp.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function rtp(seq: number, ssrc = 0x11223344, payload = Buffer.from('media payload')): Buffer {
  return encodeRtp({
    marker: false,
    payloadType: 96,
    seq,
    timestamp: 1234,
    ssrc,
    captureMs: 1_700_000_000_000,
    payload,
  });
}

/** A sender and a receiver of one direction, as the two ends of a hop hold them. */
function pair() {
  const m = newMasterKey();
  return { tx: new SrtpContext(m), rx: new SrtpContext(m), m };
}

describe('RFC 3711 test vectors', () => {
  it('B.2: the AES-CM keystream', () => {
    const key = hex('2B7E151628AED2A6ABF7158809CF4F3C');
    const salt = hex('F0F1F2F3F4F5F6F7F8F9FAFBFCFD');
    // Blocks 0000–0002 and FEFF–FF01 of the counter, as the RFC lists them.
    const ks = aesCmKeystream(key, salt, 0, 0, 0xff02 * 16);
    expect(ks.subarray(0, 48).toString('hex').toUpperCase()).toBe(
      'E03EAD0935C95E80E166B16DD92B4EB4D23513162B02D0F72A43A2FE4A5F97AB41E95B3BB0A2E8DD477901E4FCA894C0',
    );
    expect(
      ks
        .subarray(ks.length - 48)
        .toString('hex')
        .toUpperCase(),
    ).toBe(
      'EC8CDF7398607CB0F2D21675EA9EA1E4362B7C3C6773516318A077D7FC5073AE6A2CC3787889374FBEB4C81B17BA6C44',
    );
  });

  it('B.3: key derivation', () => {
    const k = deriveSessionKeys({
      key: hex('E1F97A0D3E018BE0D64FA32C06DE4139'),
      salt: hex('0EC675AD498AFEEBB6960B3AABE6'),
    });
    expect(k.srtp.enc.toString('hex').toUpperCase()).toBe('C61E7A93744F39EE10734AFE3FF7A087');
    expect(k.srtp.salt.toString('hex').toUpperCase()).toBe('30CBBC08863D8C85D49DB34A9AE1');
    expect(k.srtp.auth.toString('hex').toUpperCase()).toBe(
      'CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4',
    );
  });
});

describe('SRTP', () => {
  it('master keys travel as base64 of key ‖ salt, and nothing else is accepted', () => {
    const m = newMasterKey();
    const s = encodeMasterKey(m);
    expect(s).toHaveLength(40);
    expect(decodeMasterKey(s)).toEqual(m);
    expect(() => decodeMasterKey(s.slice(4))).toThrow(RangeError);
  });

  it('round-trips random RTP packets over random sequence runs, across the wrap into the ROC', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 0xffff }),
        fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 60 }),
        fc.uint8Array({ minLength: 0, maxLength: 1100 }),
        fc.nat({ max: 2 ** 32 - 1 }),
        (start, steps, payload, ssrc) => {
          const { tx, rx } = pair();
          let seq = start;
          for (const step of steps) {
            const p = rtp(seq, ssrc, Buffer.from(payload));
            const s = tx.protectRtp(p);
            expect(s.length).toBe(p.length + SRTP_TAG_BYTES);
            expect(s.subarray(0, 12)).toEqual(p.subarray(0, 12)); // the header stays clear
            const r = rx.unprotectRtp(s);
            expect(r).toEqual({ ok: true, packet: p });
            seq = (seq + step) & 0xffff;
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('the same sequence number after a wrap is a new packet, not a replay (ROC + 1)', () => {
    const { tx, rx } = pair();
    const before = tx.protectRtp(rtp(100));
    expect(rx.unprotectRtp(before).ok).toBe(true);
    for (let s = 20_000; s < 65_536 + 100; s += 20_000)
      expect(rx.unprotectRtp(tx.protectRtp(rtp(s & 0xffff))).ok).toBe(true);
    const after = tx.protectRtp(rtp(100));
    // Same header, another index: another keystream and tag.
    expect(after.equals(before)).toBe(false);
    expect(rx.unprotectRtp(after).ok).toBe(true);
    expect(rx.unprotectRtp(before)).toEqual({ ok: false, reason: 'replay' });
  });

  it('a receiver whose first packet came after the sender wrapped still follows (ROC 1)', () => {
    const { tx, rx } = pair();
    tx.protectRtp(rtp(65_530)); // lost
    const p = rtp(3);
    expect(rx.unprotectRtp(tx.protectRtp(p))).toEqual({ ok: true, packet: p });
    expect(rx.unprotectRtp(tx.protectRtp(rtp(4))).ok).toBe(true);
  });

  it('estimates the index as Appendix A says', () => {
    expect(estimateIndex(-1, 7)).toBe(7);
    expect(estimateIndex(65_535, 2)).toBe(65_538); // wrapped: ROC + 1
    expect(estimateIndex(65_538, 65_534)).toBe(65_534); // late packet of ROC − 1
    expect(estimateIndex(10, 65_000)).toBe(-1); // before index 0
    expect(estimateIndex(3 * 65_536 + 40_000, 39_000)).toBe(3 * 65_536 + 39_000);
  });

  it('any flipped bit is refused as auth, and the packet after it still passes', () => {
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 0, max: 7 }), (at, bit) => {
        const { tx, rx } = pair();
        const s = tx.protectRtp(rtp(500));
        const bad = Buffer.from(s);
        bad[at % bad.length]! ^= 1 << bit;
        const r = rx.unprotectRtp(bad);
        // Flipping a sequence-number bit can also land behind index 0 (a replay by estimate).
        expect(r.ok).toBe(false);
        if (at % bad.length !== 2 && at % bad.length !== 3)
          expect(r).toEqual({ ok: false, reason: 'auth' });
        expect(rx.unprotectRtp(s).ok).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('a packet under another key is auth; one too short to hold a tag is malformed', () => {
    const { tx } = pair();
    const other = new SrtpContext(newMasterKey());
    expect(other.unprotectRtp(tx.protectRtp(rtp(1)))).toEqual({ ok: false, reason: 'auth' });
    expect(other.unprotectRtp(Buffer.alloc(15))).toEqual({ ok: false, reason: 'malformed' });
    expect(other.unprotectRtp(rtp(1).subarray(0, 20))).toEqual({ ok: false, reason: 'malformed' });
  });

  it('refuses a replay, and a packet far behind the window, but takes late packets inside it', () => {
    const { tx, rx } = pair();
    const sent = Array.from({ length: REPLAY_WINDOW + 10 }, (_, i) => tx.protectRtp(rtp(i)));
    // Deliver every packet but #5 and the last; then #5 late, inside the window.
    for (let i = 0; i < sent.length - 1; i++)
      if (i !== REPLAY_WINDOW + 5) expect(rx.unprotectRtp(sent[i]!).ok).toBe(true);
    expect(rx.unprotectRtp(sent[REPLAY_WINDOW + 5]!).ok).toBe(true);
    expect(rx.unprotectRtp(sent[REPLAY_WINDOW + 5]!)).toEqual({ ok: false, reason: 'replay' });
    expect(rx.unprotectRtp(sent[REPLAY_WINDOW]!)).toEqual({ ok: false, reason: 'replay' });
    expect(rx.unprotectRtp(sent[3]!)).toEqual({ ok: false, reason: 'replay' }); // behind the window
    expect(rx.unprotectRtp(sent[sent.length - 1]!).ok).toBe(true);
  });

  it('a forged packet does not move the window (state changes only once authenticated)', () => {
    const { tx, rx } = pair();
    expect(rx.unprotectRtp(tx.protectRtp(rtp(10))).ok).toBe(true);
    const forged = tx.protectRtp(rtp(30_000));
    forged[forged.length - 1]! ^= 1;
    expect(rx.unprotectRtp(forged).ok).toBe(false);
    expect(rx.unprotectRtp(tx.protectRtp(rtp(11))).ok).toBe(true);
  });
});

describe('SRTCP', () => {
  const compound = (n: number) =>
    Buffer.concat([
      encodeReceiverReport(0xabcdef01, [
        { ssrc: 7, fractionLost: n & 0xff, totalLost: n, highestSeq: n, jitter: 3 },
      ]),
      encodeNack(0xabcdef01, 7, [n & 0xffff, (n + 2) & 0xffff]),
    ]);

  it('round-trips random compound RTCP, encrypted after the first 8 bytes, with E and index', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 0xffff }), { minLength: 1, maxLength: 40 }), (ns) => {
        const { tx, rx } = pair();
        ns.forEach((n, i) => {
          const p = compound(n);
          const s = tx.protectRtcp(p);
          expect(s.length).toBe(p.length + SRTCP_TRAILER_BYTES);
          expect(s.subarray(0, 8)).toEqual(p.subarray(0, 8));
          expect(s.subarray(8, p.length).equals(p.subarray(8))).toBe(false);
          expect(s.readUInt32BE(p.length)).toBe((0x80000000 | i) >>> 0);
          const r = rx.unprotectRtcp(s);
          expect(r).toEqual({ ok: true, packet: p });
          if (r.ok) expect(parseRtcp(r.packet)).toEqual(parseRtcp(p));
        });
      }),
      { numRuns: 40 },
    );
  });

  it('any flipped bit is auth (replay when it lands on an index already seen); replays are refused', () => {
    const { tx, rx } = pair();
    const first = tx.protectRtcp(encodeApp(5, 'HCCQ', Buffer.alloc(12, 1)));
    expect(rx.unprotectRtcp(first).ok).toBe(true);
    expect(rx.unprotectRtcp(first)).toEqual({ ok: false, reason: 'replay' });
    const s = tx.protectRtcp(encodeApp(5, 'HCCQ', Buffer.alloc(12, 2)));
    for (let i = 0; i < s.length * 8; i++) {
      const bad = Buffer.from(s);
      bad[i >> 3]! ^= 1 << (i & 7);
      const r = rx.unprotectRtcp(bad);
      expect(r.ok).toBe(false);
      // The low bit of the index flipped gives index 0, already received.
      if (!(i >> 3 === s.length - SRTCP_TRAILER_BYTES + 3 && (i & 7) === 0))
        expect(r).toEqual({ ok: false, reason: 'auth' });
    }
    expect(rx.unprotectRtcp(s).ok).toBe(true);
  });

  it('a packet far behind the window is a replay; under another key it is auth', () => {
    const { tx, rx } = pair();
    const sent = Array.from({ length: REPLAY_WINDOW + 2 }, (_, i) => tx.protectRtcp(compound(i)));
    expect(rx.unprotectRtcp(sent[sent.length - 1]!).ok).toBe(true);
    expect(rx.unprotectRtcp(sent[0]!)).toEqual({ ok: false, reason: 'replay' });
    expect(rx.unprotectRtcp(sent[5]!).ok).toBe(true); // never seen, inside the window
    expect(new SrtpContext(newMasterKey()).unprotectRtcp(sent[1]!)).toEqual({
      ok: false,
      reason: 'auth',
    });
  });
});
