/**
 * SRTP and SRTCP (RFC 3711) with the AES_CM_128_HMAC_SHA1_80 profile, the one ffmpeg and every
 * WebRTC stack speak, built from node:crypto alone:
 *
 *   key derivation (§4.3)  AES-128 in counter mode as the PRF, key_derivation_rate 0: session
 *                          keys are derived once from the master key and salt
 *   encryption (§4.1.1)    AES-128-CM, IV = (k_s · 2^16) ⊕ (SSRC · 2^64) ⊕ (i · 2^16)
 *   authentication (§4.2)  HMAC-SHA1, tag truncated to 80 bits, compared in constant time
 *
 *   SRTP   = RTP header (clear) ‖ E(payload) ‖ tag(10)          tag over header ‖ E(payload) ‖ ROC
 *   SRTCP  = first 8 bytes (clear) ‖ E(rest) ‖ E-flag+index(4) ‖ tag(10)   tag over all before it
 *
 * The 48-bit SRTP index is ROC · 2^16 + SEQ, the ROC estimated from the highest sequence number
 * seen as Appendix A says, on the receiving and (for resent and reordered packets) the sending
 * side alike; SRTCP carries its 31-bit index. Each receiving side keeps a replay window per SSRC
 * (§3.3.2), updated only once a packet authenticated. One SrtpContext serves one direction: a
 * master key is never used by two senders.
 */
import crypto from 'node:crypto';

/** The profile's name, as SDES (`a=crypto`) and ffmpeg's `-srtp_out_suite` spell it. */
export const SRTP_SUITE = 'AES_CM_128_HMAC_SHA1_80';
export const MASTER_KEY_BYTES = 16;
export const MASTER_SALT_BYTES = 14;
/** Bytes SRTP adds to an RTP packet: the authentication tag. */
export const SRTP_TAG_BYTES = 10;
/** Bytes SRTCP adds to an RTCP packet: E flag and index (4), tag (10). */
export const SRTCP_TRAILER_BYTES = 4 + SRTP_TAG_BYTES;
/** Packets behind the highest index that are still told apart from replays (RFC: at least 64). */
export const REPLAY_WINDOW = 1024;
/** SSRCs one context keeps state for; the oldest is forgotten past it. */
const MAX_SSRCS = 64;

/** Why a packet was refused. */
export type SrtpFailure = 'auth' | 'replay' | 'malformed';

/** What unprotect gives: the RTP/RTCP packet in the clear, or why it was dropped. */
export type Unprotected = { ok: true; packet: Buffer } | { ok: false; reason: SrtpFailure };

/** A master key and salt: what the two ends of a direction share. */
export interface MasterKey {
  key: Buffer;
  salt: Buffer;
}

/** The session keys of one of SRTP or SRTCP. */
export interface SessionKeys {
  enc: Buffer;
  auth: Buffer;
  salt: Buffer;
}

/**
 * AES-CM (§4.1.1) under one key: the keystream is AES(IV) ‖ AES(IV + 1) ‖ …, which is AES-ECB of
 * those counter blocks. One ECB cipher object serves every packet (ECB keeps no state between
 * whole blocks), where a CTR cipher would have to be made per packet for its IV: making one costs
 * more than encrypting a 1,200-byte packet. The IV's low 16 bits are 0 (every IV here is some
 * value · 2^16) and a packet has far fewer than 2^16 blocks, so the counter is those 16 bits.
 */
class AesCm {
  private readonly ecb: crypto.Cipher;
  /** The counter blocks of the packet at hand, reused from packet to packet. */
  private counters = Buffer.alloc(0);

  constructor(key: Buffer) {
    this.ecb = crypto.createCipheriv('aes-128-ecb', key, null);
    this.ecb.setAutoPadding(false);
  }

  /** Writes `input` ⊕ the keystream from `iv` to `out` at `at`. */
  apply(iv: Buffer, input: Uint8Array, out: Uint8Array, at: number): void {
    const blocks = Math.ceil(input.length / 16);
    if (blocks > 0x10000 || iv[14] !== 0 || iv[15] !== 0)
      throw new RangeError('AES-CM: at most 2^16 blocks from an IV whose low 16 bits are 0');
    const n = blocks * 16;
    if (this.counters.length < n) this.counters = Buffer.alloc(Math.max(n, 1280));
    const c = this.counters.subarray(0, n);
    // IV in every block (doubling, a few copies rather than one a block), then each counter.
    iv.copy(c, 0, 0, 16);
    for (let filled = 16; filled < n; filled *= 2)
      c.copyWithin(filled, 0, Math.min(filled, n - filled));
    for (let j = 1, o = 30; j < blocks; j++, o += 16) {
      c[o] = j >>> 8;
      c[o + 1] = j & 0xff;
    }
    const ks = this.ecb.update(c);
    for (let k = 0; k < input.length; k++) out[at + k] = input[k]! ^ ks[k]!;
  }
}

/** What a context computes with, made once from its session keys. */
interface Keyed {
  keys: SessionKeys;
  cm: AesCm;
  /** The HMAC key, imported once rather than per packet. */
  auth: crypto.KeyObject;
}

function keyed(keys: SessionKeys): Keyed {
  return { keys, cm: new AesCm(keys.enc), auth: crypto.createSecretKey(keys.auth) };
}

/** A fresh random master key and salt. */
export function newMasterKey(): MasterKey {
  return { key: crypto.randomBytes(MASTER_KEY_BYTES), salt: crypto.randomBytes(MASTER_SALT_BYTES) };
}

/** key ‖ salt in base64: SDES `inline:` (RFC 4568 §6.1) and ffmpeg's `-srtp_out_params`. */
export function encodeMasterKey(m: MasterKey): string {
  return Buffer.concat([m.key, m.salt]).toString('base64');
}

/** Reads key ‖ salt from base64; throws RangeError on any other length. */
export function decodeMasterKey(s: string): MasterKey {
  const b = Buffer.from(s, 'base64');
  if (b.length !== MASTER_KEY_BYTES + MASTER_SALT_BYTES || b.toString('base64') !== s)
    throw new RangeError(`an SRTP master key is ${MASTER_KEY_BYTES + MASTER_SALT_BYTES} bytes`);
  return { key: b.subarray(0, MASTER_KEY_BYTES), salt: b.subarray(MASTER_KEY_BYTES) };
}

/**
 * AES-CM keystream (§4.1.1): AES-128 of IV, IV+1, … where IV = salt·2^16 ⊕ SSRC·2^64 ⊕ index·2^16.
 * The counter is the low 16 bits of the IV; node's CTR mode carries into higher bits only past
 * 2^16 blocks (1 MiB), far beyond any packet.
 */
export function aesCmKeystream(
  key: Buffer,
  salt: Buffer,
  ssrc: number,
  index: number,
  length: number,
): Buffer {
  const out = Buffer.alloc(length);
  new AesCm(key).apply(packetIv(salt, ssrc, index), out, out, 0);
  return out;
}

/** Derives the SRTP and SRTCP session keys (labels 0–2 and 3–5), key_derivation_rate 0. */
export function deriveSessionKeys(m: MasterKey): { srtp: SessionKeys; srtcp: SessionKeys } {
  if (m.key.length !== MASTER_KEY_BYTES || m.salt.length !== MASTER_SALT_BYTES)
    throw new RangeError('AES_CM_128 takes a 16-byte master key and a 14-byte master salt');
  const prf = (label: number, n: number) => {
    // x = key_id ⊕ master_salt, key_id = label ‖ r (r = 0, 48 bits), aligned to the right.
    const iv = Buffer.alloc(16);
    m.salt.copy(iv);
    iv[7]! ^= label;
    const out = Buffer.alloc(n);
    new AesCm(m.key).apply(iv, out, out, 0);
    return out;
  };
  return {
    srtp: { enc: prf(0, 16), auth: prf(1, 20), salt: prf(2, 14) },
    srtcp: { enc: prf(3, 16), auth: prf(4, 20), salt: prf(5, 14) },
  };
}

function packetIv(salt: Buffer, ssrc: number, index: number): Buffer {
  const iv = Buffer.alloc(16);
  salt.copy(iv);
  iv.writeUInt32BE((iv.readUInt32BE(4) ^ ssrc) >>> 0, 4);
  const hi = Math.floor(index / 2 ** 32) & 0xffff;
  iv.writeUInt16BE(iv.readUInt16BE(8) ^ hi, 8);
  iv.writeUInt32BE((iv.readUInt32BE(10) ^ index) >>> 0, 10);
  return iv;
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function tag(auth: crypto.KeyObject, ...parts: Uint8Array[]): Buffer {
  const h = crypto.createHmac('sha1', auth);
  for (const p of parts) h.update(p);
  return h.digest().subarray(0, SRTP_TAG_BYTES);
}

/** Bytes of an RTP header (fixed part, CSRCs, extension); undefined when it does not fit. */
function rtpHeaderBytes(d: Uint8Array, end: number): number | undefined {
  if (end < 12 || d[0]! >> 6 !== 2) return undefined;
  let o = 12 + (d[0]! & 0x0f) * 4;
  if (d[0]! & 0x10) {
    if (o + 4 > end) return undefined;
    o += 4 + ((d[o + 2]! << 8) | d[o + 3]!) * 4;
  }
  return o <= end ? o : undefined;
}

/** Replay window of one SSRC: the highest index seen and which of the last REPLAY_WINDOW were. */
class ReplayWindow {
  highest = -1;
  private readonly seen = new Float64Array(REPLAY_WINDOW).fill(-1);

  /** True when `index` authenticated before, or is too far behind to tell. */
  replayed(index: number): boolean {
    if (index > this.highest) return false;
    if (this.highest - index >= REPLAY_WINDOW) return true;
    return this.seen[index % REPLAY_WINDOW] === index;
  }

  accept(index: number): void {
    this.seen[index % REPLAY_WINDOW] = index;
    if (index > this.highest) this.highest = index;
  }
}

/**
 * The index of `seq` near the highest index so far (Appendix A's estimate of v = ROC − 1, ROC,
 * ROC + 1); -1 for a packet from before index 0, which no one sent under this key.
 */
export function estimateIndex(highest: number, seq: number): number {
  if (highest < 0) return seq;
  const roc = Math.floor(highest / 65536);
  const sl = highest % 65536;
  let v = roc;
  if (sl < 32768) {
    if (seq - sl > 32768) v = roc - 1;
  } else if (sl - 32768 > seq) {
    v = roc + 1;
  }
  return v < 0 ? -1 : v * 65536 + seq;
}

interface SsrcState {
  /** Receiving: the replay window (its highest index gives ROC and s_l). */
  window: ReplayWindow;
  /** Sending: the highest index sent; SRTCP: the next index to send. */
  sent: number;
}

/** SRTP and SRTCP for one direction of one hop, under one master key. */
export class SrtpContext {
  private readonly rtpKeys: Keyed;
  private readonly rtcpKeys: Keyed;
  private readonly rtpStates = new Map<number, SsrcState>();
  private readonly rtcpStates = new Map<number, SsrcState>();

  constructor(master: MasterKey) {
    const k = deriveSessionKeys(master);
    this.rtpKeys = keyed(k.srtp);
    this.rtcpKeys = keyed(k.srtcp);
  }

  /** RTP → SRTP. Throws RangeError on a packet that is not RTP (our own code made it). */
  protectRtp(p: Uint8Array): Buffer {
    const h = rtpHeaderBytes(p, p.length);
    if (h === undefined) throw new RangeError('not an RTP packet');
    const view = Buffer.from(p.buffer, p.byteOffset, p.byteLength);
    const ssrc = view.readUInt32BE(8);
    const s = this.state(this.rtpStates, ssrc);
    const index = estimateIndex(s.sent, view.readUInt16BE(2));
    if (index < 0) throw new RangeError('RTP packet from before this context began');
    if (index > s.sent) s.sent = index;
    const out = Buffer.allocUnsafe(p.length + SRTP_TAG_BYTES);
    view.copy(out, 0, 0, h);
    this.crypt(this.rtpKeys, ssrc, index, view.subarray(h), out, h);
    tag(this.rtpKeys.auth, out.subarray(0, p.length), u32(Math.floor(index / 65536))).copy(
      out,
      p.length,
    );
    return out;
  }

  /** SRTP → RTP, or why not: checked against the replay window, then authenticated. */
  unprotectRtp(d: Uint8Array): Unprotected {
    const end = d.length - SRTP_TAG_BYTES;
    if (end < 12) return { ok: false, reason: 'malformed' };
    const view = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    const ssrc = view.readUInt32BE(8);
    const known = this.rtpStates.get(ssrc);
    const seq = view.readUInt16BE(2);
    const index = estimateIndex(known?.window.highest ?? -1, seq);
    if (index < 0 || known?.window.replayed(index)) return { ok: false, reason: 'replay' };
    // The first packet of an SSRC may come after the sender's sequence wrapped once already
    // (the packets before it lost): ROC 1 is tried too, so that one loss cannot desynchronize.
    const body = view.subarray(0, end);
    const theirs = view.subarray(end);
    const rocs = known ? [Math.floor(index / 65536)] : [0, 1];
    const roc = rocs.find((r) =>
      crypto.timingSafeEqual(tag(this.rtpKeys.auth, body, u32(r)), theirs),
    );
    if (roc === undefined) return { ok: false, reason: 'auth' };
    // Authentic, so made by the holder of the key: a header that does not parse is its bug.
    const h = rtpHeaderBytes(d, end);
    if (h === undefined) return { ok: false, reason: 'malformed' };
    const i = roc * 65536 + seq;
    const out = Buffer.allocUnsafe(end);
    view.copy(out, 0, 0, h);
    this.crypt(this.rtpKeys, ssrc, i, view.subarray(h, end), out, h);
    this.state(this.rtpStates, ssrc).window.accept(i);
    return { ok: true, packet: out };
  }

  /** (Compound) RTCP → SRTCP, encrypted (E = 1), with the next index of its sender SSRC. */
  protectRtcp(p: Uint8Array): Buffer {
    if (p.length < 8 || p[0]! >> 6 !== 2) throw new RangeError('not an RTCP packet');
    const view = Buffer.from(p.buffer, p.byteOffset, p.byteLength);
    const ssrc = view.readUInt32BE(4);
    const s = this.state(this.rtcpStates, ssrc);
    const index = (s.sent = (s.sent + 1) & 0x7fffffff); // the first is 0 (§3.4)
    const out = Buffer.allocUnsafe(p.length + SRTCP_TRAILER_BYTES);
    view.copy(out, 0, 0, 8);
    this.crypt(this.rtcpKeys, ssrc, index, view.subarray(8), out, 8);
    out.writeUInt32BE((0x80000000 | index) >>> 0, p.length);
    tag(this.rtcpKeys.auth, out.subarray(0, p.length + 4)).copy(out, p.length + 4);
    return out;
  }

  /** SRTCP → RTCP, or why not. An E flag of 0 (RFC 3711 allows it) leaves the body clear. */
  unprotectRtcp(d: Uint8Array): Unprotected {
    const end = d.length - SRTCP_TRAILER_BYTES;
    if (end < 8) return { ok: false, reason: 'malformed' };
    const view = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    const ssrc = view.readUInt32BE(4);
    const word = view.readUInt32BE(end);
    const encrypted = (word & 0x80000000) !== 0;
    const index = word & 0x7fffffff;
    if (this.rtcpStates.get(ssrc)?.window.replayed(index)) return { ok: false, reason: 'replay' };
    const want = tag(this.rtcpKeys.auth, view.subarray(0, end + 4));
    if (!crypto.timingSafeEqual(want, view.subarray(end + 4))) return { ok: false, reason: 'auth' };
    if (d[0]! >> 6 !== 2) return { ok: false, reason: 'malformed' };
    const out = Buffer.allocUnsafe(end);
    view.copy(out, 0, 0, encrypted ? 8 : end);
    if (encrypted) this.crypt(this.rtcpKeys, ssrc, index, view.subarray(8, end), out, 8);
    this.state(this.rtcpStates, ssrc).window.accept(index);
    return { ok: true, packet: out };
  }

  private crypt(
    k: Keyed,
    ssrc: number,
    index: number,
    input: Buffer,
    out: Buffer,
    at: number,
  ): void {
    k.cm.apply(packetIv(k.keys.salt, ssrc, index), input, out, at);
  }

  private state(map: Map<number, SsrcState>, ssrc: number): SsrcState {
    let s = map.get(ssrc);
    if (!s) {
      if (map.size >= MAX_SSRCS) map.delete(map.keys().next().value!);
      s = { window: new ReplayWindow(), sent: -1 };
      map.set(ssrc, s);
    }
    return s;
  }
}
