// SRTP / SRTCP, AES_CM_128_HMAC_SHA1_80, written by an outsider from RFC 3711 and PROTOCOL.md
// §5.4 with node:crypto only (no MKI, key_derivation_rate 0). Deliberately not shared with the
// reference implementation, so interop proves both read the RFC alike.
import crypto from 'node:crypto';

const aesCm = (key: Buffer, iv: Buffer, data: Buffer) => {
  const c = crypto.createCipheriv('aes-128-ctr', key, iv);
  return Buffer.concat([c.update(data), c.final()]);
};

/** RFC 3711 §4.3.1 with r = 0: x = label·2^48 ⊕ master salt; IV = x·2^16. */
function derive(masterKey: Buffer, masterSalt: Buffer, label: number, len: number) {
  const x = Buffer.from(masterSalt);
  x[7]! ^= label;
  const iv = Buffer.concat([x, Buffer.alloc(2)]);
  return aesCm(masterKey, iv, Buffer.alloc(len));
}

export interface Keys {
  rtpEnc: Buffer;
  rtpAuth: Buffer;
  rtpSalt: Buffer;
  rtcpEnc: Buffer;
  rtcpAuth: Buffer;
  rtcpSalt: Buffer;
}

/** `inline` form of §5.4: base64 of key (16) ‖ salt (14). */
export function keysFrom(inline: string): Keys {
  const b = Buffer.from(inline, 'base64');
  if (b.length !== 30) throw new Error('bad master key length ' + b.length);
  const k = b.subarray(0, 16);
  const s = b.subarray(16);
  return {
    rtpEnc: derive(k, s, 0, 16),
    rtpAuth: derive(k, s, 1, 20),
    rtpSalt: derive(k, s, 2, 14),
    rtcpEnc: derive(k, s, 3, 16),
    rtcpAuth: derive(k, s, 4, 20),
    rtcpSalt: derive(k, s, 5, 14),
  };
}

export const randomInline = () => crypto.randomBytes(30).toString('base64');

/** IV = (k_s·2^16) ⊕ (SSRC·2^64) ⊕ (index·2^16). */
function iv(salt: Buffer, ssrc: number, index: number) {
  const v = Buffer.concat([salt, Buffer.alloc(2)]);
  const s = Buffer.alloc(4);
  s.writeUInt32BE(ssrc >>> 0);
  for (let i = 0; i < 4; i++) v[4 + i]! ^= s[i]!;
  const idx = Buffer.alloc(6);
  idx.writeUIntBE(index, 0, 6);
  for (let i = 0; i < 6; i++) v[8 + i]! ^= idx[i]!;
  return v;
}

const hmac10 = (key: Buffer, ...parts: Buffer[]) => {
  const h = crypto.createHmac('sha1', key);
  for (const p of parts) h.update(p);
  return h.digest().subarray(0, 10);
};

export function rtpHeaderLength(p: Buffer) {
  const cc = p[0]! & 0x0f;
  let n = 12 + 4 * cc;
  if (p[0]! & 0x10) n += 4 + 4 * p.readUInt16BE(n + 2);
  return n;
}

/** Protect one RTP packet whose packet index is `roc·2^16 + seq`. */
export function protectRtp(k: Keys, rtp: Buffer, roc: number) {
  const h = rtpHeaderLength(rtp);
  const ssrc = rtp.readUInt32BE(8);
  const index = roc * 65536 + rtp.readUInt16BE(2);
  const enc = aesCm(k.rtpEnc, iv(k.rtpSalt, ssrc, index), rtp.subarray(h));
  const body = Buffer.concat([rtp.subarray(0, h), enc]);
  const r = Buffer.alloc(4);
  r.writeUInt32BE(roc >>> 0);
  return Buffer.concat([body, hmac10(k.rtpAuth, body, r)]);
}

/** Unprotect with a known ROC; null when the tag fails. */
export function unprotectRtp(k: Keys, p: Buffer, roc: number): Buffer | null {
  if (p.length < 12 + 10) return null;
  const body = p.subarray(0, p.length - 10);
  const r = Buffer.alloc(4);
  r.writeUInt32BE(roc >>> 0);
  if (!crypto.timingSafeEqual(hmac10(k.rtpAuth, body, r), p.subarray(p.length - 10))) return null;
  const h = rtpHeaderLength(body);
  const ssrc = body.readUInt32BE(8);
  const index = roc * 65536 + body.readUInt16BE(2);
  return Buffer.concat([
    body.subarray(0, h),
    aesCm(k.rtpEnc, iv(k.rtpSalt, ssrc, index), body.subarray(h)),
  ]);
}

/** A receiver's per-SSRC ROC estimate (RFC 3711 Appendix A). */
export class RocTracker {
  private s = new Map<number, { roc: number; sl: number }>();
  guess(ssrc: number, seq: number) {
    const st = this.s.get(ssrc);
    if (!st) return 0;
    if (st.sl < 32768) return seq - st.sl > 32768 ? st.roc - 1 : st.roc;
    return st.sl - 32768 > seq ? st.roc + 1 : st.roc;
  }
  accept(ssrc: number, seq: number, roc: number) {
    const st = this.s.get(ssrc);
    if (!st || roc * 65536 + seq > st.roc * 65536 + st.sl) this.s.set(ssrc, { roc, sl: seq });
  }
}

/** Protect one compound RTCP packet with SRTCP index `index` (E = 1). */
export function protectRtcp(k: Keys, rtcp: Buffer, index: number) {
  const ssrc = rtcp.readUInt32BE(4);
  const enc = aesCm(k.rtcpEnc, iv(k.rtcpSalt, ssrc, index), rtcp.subarray(8));
  const e = Buffer.alloc(4);
  e.writeUInt32BE((0x80000000 | index) >>> 0);
  const body = Buffer.concat([rtcp.subarray(0, 8), enc, e]);
  return Buffer.concat([body, hmac10(k.rtcpAuth, body)]);
}

/** Unprotect SRTCP: the packet and its index, or null when the tag fails. */
export function unprotectRtcp(k: Keys, p: Buffer): { rtcp: Buffer; index: number } | null {
  if (p.length < 8 + 4 + 10) return null;
  const body = p.subarray(0, p.length - 10);
  if (!crypto.timingSafeEqual(hmac10(k.rtcpAuth, body), p.subarray(p.length - 10))) return null;
  const ei = body.readUInt32BE(body.length - 4);
  const index = ei & 0x7fffffff;
  const inner = body.subarray(8, body.length - 4);
  const ssrc = body.readUInt32BE(4);
  const clear = ei & 0x80000000 ? aesCm(k.rtcpEnc, iv(k.rtcpSalt, ssrc, index), inner) : inner;
  return { rtcp: Buffer.concat([body.subarray(0, 8), clear]), index };
}

/** §5.4 consent check / answer: APP, PT 204, SSRC, name, 12-byte nonce (24 bytes). */
export function app(ssrc: number, name: 'HCCQ' | 'HCCR', nonce: Buffer) {
  const b = Buffer.alloc(24);
  b[0] = 0x80;
  b[1] = 204;
  b.writeUInt16BE(5, 2);
  b.writeUInt32BE(ssrc >>> 0, 4);
  b.write(name, 8, 'ascii');
  nonce.copy(b, 12);
  return b;
}

/** An RTCP receiver report with no blocks (8 bytes). */
export function emptyRr(ssrc: number) {
  const b = Buffer.alloc(8);
  b[0] = 0x80;
  b[1] = 201;
  b.writeUInt16BE(1, 2);
  b.writeUInt32BE(ssrc >>> 0, 4);
  return b;
}

export const isRtcp = (d: Buffer) => d.length > 1 && d[1]! >= 192 && d[1]! <= 223;
