/**
 * The one STUN exchange Hybrid Chat uses (RFC 5389 Binding, written by hand: no dependency): a
 * peer asks the server's UDP port "where do I come from?" and learns the public address of its
 * media socket (its server-reflexive UDP candidate, docs/PROTOCOL.md §3.8). Pure codec: no
 * sockets here.
 *
 * Header (20 bytes): type (2: 0x0001 Binding request, 0x0101 Binding success), length of the
 * attributes (2), magic cookie 0x2112A442 (4), transaction id (12). The answer carries one
 * XOR-MAPPED-ADDRESS (0x0020): reserved (1), family (1: 0x01 IPv4, 0x02 IPv6), port XOR the
 * cookie's top 16 bits (2), address XOR the cookie (IPv4) or the cookie and transaction id (IPv6).
 */
export const STUN_COOKIE = 0x2112a442;
export const BINDING_REQUEST = 0x0001;
export const BINDING_SUCCESS = 0x0101;
const XOR_MAPPED_ADDRESS = 0x0020;
const HEADER = 20;
/** Nothing we send or answer is longer: a longer datagram is not ours to parse. */
export const STUN_MAX = 548;

/** A decoded STUN message: what this codec understands of it. */
export interface StunMessage {
  type: number;
  /** 12 bytes. */
  transactionId: Buffer;
  /** XOR-MAPPED-ADDRESS, decoded, when present. */
  mapped?: { ip: string; port: number };
}

/**
 * True when a datagram is shaped as STUN (RFC 7983's demultiplexing: first byte 0–3, and the
 * cookie), so that a socket carrying SRTP too can set it apart before any other parsing.
 */
export function looksLikeStun(d: Uint8Array): boolean {
  return (
    d.length >= HEADER &&
    d.length <= STUN_MAX &&
    d[0]! < 4 &&
    Buffer.from(d.buffer, d.byteOffset, d.byteLength).readUInt32BE(4) === STUN_COOKIE
  );
}

/** A Binding request with a fresh (or given) transaction id. */
export function bindingRequest(transactionId: Buffer): Buffer {
  const b = Buffer.alloc(HEADER);
  b.writeUInt16BE(BINDING_REQUEST, 0);
  b.writeUInt16BE(0, 2);
  b.writeUInt32BE(STUN_COOKIE, 4);
  transactionId.copy(b, 8, 0, 12);
  return b;
}

/** The Binding success answer telling `from` its address as seen. */
export function bindingSuccess(transactionId: Buffer, from: { ip: string; port: number }): Buffer {
  const v6 = from.ip.includes(':');
  const addrLen = v6 ? 16 : 4;
  const b = Buffer.alloc(HEADER + 4 + 4 + addrLen);
  b.writeUInt16BE(BINDING_SUCCESS, 0);
  b.writeUInt16BE(4 + 4 + addrLen, 2);
  b.writeUInt32BE(STUN_COOKIE, 4);
  transactionId.copy(b, 8, 0, 12);
  b.writeUInt16BE(XOR_MAPPED_ADDRESS, HEADER);
  b.writeUInt16BE(4 + addrLen, HEADER + 2);
  b[HEADER + 5] = v6 ? 0x02 : 0x01;
  b.writeUInt16BE(from.port ^ (STUN_COOKIE >>> 16), HEADER + 6);
  const addr = v6 ? ipv6Bytes(from.ip) : Buffer.from(from.ip.split('.').map(Number));
  const mask = xorMask(transactionId, addrLen);
  for (let i = 0; i < addrLen; i++) b[HEADER + 8 + i] = addr[i]! ^ mask[i]!;
  return b;
}

/**
 * Decodes a STUN message, or returns undefined for anything malformed (wrong cookie, lengths
 * that disagree, an attribute running past the end). Unknown attributes are skipped.
 */
export function parseStun(d: Uint8Array): StunMessage | undefined {
  if (!looksLikeStun(d)) return undefined;
  const b = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  const length = b.readUInt16BE(2);
  if (length % 4 !== 0 || HEADER + length !== b.length) return undefined;
  const msg: StunMessage = {
    type: b.readUInt16BE(0),
    transactionId: Buffer.from(b.subarray(8, 20)),
  };
  let at = HEADER;
  while (at + 4 <= b.length) {
    const type = b.readUInt16BE(at);
    const len = b.readUInt16BE(at + 2);
    const end = at + 4 + len;
    if (end > b.length) return undefined;
    if (type === XOR_MAPPED_ADDRESS && msg.mapped === undefined) {
      const family = b[at + 5];
      const addrLen = family === 0x01 ? 4 : family === 0x02 ? 16 : 0;
      if (addrLen === 0 || len !== 4 + addrLen) return undefined;
      const port = b.readUInt16BE(at + 6) ^ (STUN_COOKIE >>> 16);
      const mask = xorMask(msg.transactionId, addrLen);
      const addr = Buffer.alloc(addrLen);
      for (let i = 0; i < addrLen; i++) addr[i] = b[at + 8 + i]! ^ mask[i]!;
      msg.mapped = { ip: addrLen === 4 ? [...addr].join('.') : ipv6Text(addr), port };
    }
    at = end + ((4 - (len % 4)) % 4); // attributes are padded to 4 bytes
  }
  return msg;
}

/** The cookie, then (IPv6) the transaction id: what an address is XORed with. */
function xorMask(transactionId: Buffer, len: number): Buffer {
  const m = Buffer.alloc(16);
  m.writeUInt32BE(STUN_COOKIE, 0);
  transactionId.copy(m, 4, 0, 12);
  return m.subarray(0, len);
}

function ipv6Bytes(ip: string): Buffer {
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const words = (s: string | undefined) => (s ? s.split(':').map((w) => parseInt(w, 16)) : []);
  const h = words(head);
  const t = words(tail);
  const all =
    tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const b = Buffer.alloc(16);
  all.forEach((w, i) => b.writeUInt16BE(w, i * 2));
  return b;
}

function ipv6Text(b: Buffer): string {
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(b.readUInt16BE(i).toString(16));
  // The WHATWG URL parser writes an IPv6 address in its canonical short form, as Node's sockets do.
  return new URL(`http://[${words.join(':')}]`).hostname.slice(1, -1);
}
