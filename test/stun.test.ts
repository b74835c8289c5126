/**
 * Server-reflexive candidates (docs/PROTOCOL.md §3.8): the STUN codec against RFC 5769's test
 * vector and random addresses, and the server's `reflect` and STUN port on 127.0.0.1.
 */
import crypto from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BINDING_REQUEST,
  BINDING_SUCCESS,
  bindingRequest,
  bindingSuccess,
  looksLikeStun,
  parseStun,
} from '../src/protocol/stun.js';
import { stunBinding } from '../src/peer/reflexive.js';
import { MediaSocket } from '../src/stream/media-socket.js';
import { createTestnet, rawSession } from './testnet.js';

describe('STUN Binding codec', () => {
  it('encodes XOR-MAPPED-ADDRESS as RFC 5769 §2.2 does (192.0.2.1:32853)', () => {
    const tx = Buffer.from('b7e7a701bc34d686fa87dfae', 'hex');
    const b = bindingSuccess(tx, { ip: '192.0.2.1', port: 32853 });
    expect(b.subarray(0, 8).toString('hex')).toBe('0101000c2112a442');
    expect(b.subarray(8, 20)).toEqual(tx);
    expect(b.subarray(20).toString('hex')).toBe('00200008' + '0001a147' + 'e112a643');
    expect(parseStun(b)).toEqual({
      type: BINDING_SUCCESS,
      transactionId: tx,
      mapped: { ip: '192.0.2.1', port: 32853 },
    });
  });

  it('round-trips any IPv4 or IPv6 address and port', () => {
    const ip = fc.oneof(fc.ipV4(), fc.ipV6());
    fc.assert(
      fc.property(
        ip,
        fc.integer({ min: 1, max: 65535 }),
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        (addr, port, id) => {
          const tx = Buffer.from(id);
          const m = parseStun(bindingSuccess(tx, { ip: canonical(addr), port }));
          expect(m?.mapped).toEqual({ ip: canonical(addr), port });
        },
      ),
    );
  });

  it('refuses every truncation, a wrong cookie and lengths that disagree; RTP is not STUN', () => {
    const b = bindingSuccess(crypto.randomBytes(12), { ip: '203.0.113.7', port: 4242 });
    for (let n = 0; n < b.length; n++) expect(parseStun(b.subarray(0, n))).toBeUndefined();
    const cookie = Buffer.from(b);
    cookie[4] = cookie[4]! ^ 1;
    expect(parseStun(cookie)).toBeUndefined();
    const length = Buffer.from(b);
    length.writeUInt16BE(16, 2);
    expect(parseStun(length)).toBeUndefined();
    const rtp = Buffer.alloc(40);
    rtp[0] = 0x80;
    expect(looksLikeStun(rtp)).toBe(false);
    const req = parseStun(bindingRequest(Buffer.alloc(12, 7)));
    expect(req).toEqual({ type: BINDING_REQUEST, transactionId: Buffer.alloc(12, 7) });
  });
});

describe('reflect and the STUN port', () => {
  it('the server tells a connection its address and port, and a media socket its own', async () => {
    const tn = await createTestnet();
    const link = await tn.rawLink();
    const seen = await link.request('reflect', {});
    expect(seen).toEqual({ ip: '127.0.0.1', port: link.localPort, udpPort: expect.any(Number) });
    const media = new MediaSocket();
    await media.bind(0, '127.0.0.1');
    try {
      const mapped = await stunBinding(media, { ip: '127.0.0.1', port: seen.udpPort! });
      expect(mapped).toEqual({ ip: '127.0.0.1', port: media.port });
    } finally {
      await media.close();
    }
  });

  it('a peer stopping while it waits for a STUN answer throws nothing, and learns nothing', async () => {
    // Seen in CI: a STUN retry fired after the peer closed its media socket, and dgram threw
    // ERR_SOCKET_DGRAM_NOT_RUNNING from the timer, an uncaught exception in the peer.
    const silent = new MediaSocket();
    await silent.bind(0, '127.0.0.1');
    const media = new MediaSocket();
    await media.bind(0, '127.0.0.1');
    try {
      const asked = stunBinding(media, { ip: '127.0.0.1', port: silent.port });
      await media.close();
      expect(() =>
        media.sendPlain(Buffer.alloc(20), { ip: '127.0.0.1', port: silent.port }),
      ).not.toThrow();
      expect(await asked).toBeUndefined();
    } finally {
      await silent.close();
    }
  });

  it('keeps host candidates as claimed, and a server-reflexive one only at the address it saw', async () => {
    const tn = await createTestnet();
    const link = await tn.rawLink();
    await link.request('register', { username: 'carl', password: 'carl-pw' });
    await rawSession(link, { username: 'carl', password: 'carl-pw' });
    const { entry } = await link.request('submit_info', {
      ip: '10.9.9.9',
      port: 4000,
      udpPort: 4001,
      status: 'online',
      candidates: [
        { type: 'host', proto: 'tcp', ip: '10.9.9.9', port: 4000 },
        { type: 'srflx', proto: 'tcp', ip: '127.0.0.1', port: 5000, base: 4000 },
        // Someone else's address: not what the server saw, so not a reflexive candidate.
        { type: 'srflx', proto: 'udp', ip: '198.51.100.9', port: 5001, base: 4001 },
      ],
    });
    expect(entry.candidates).toEqual([
      { type: 'host', proto: 'tcp', ip: '10.9.9.9', port: 4000 },
      { type: 'srflx', proto: 'tcp', ip: '127.0.0.1', port: 5000, base: 4000 },
    ]);
  });
});

/** An address as Node writes it (IPv6 in its short form). */
function canonical(ip: string): string {
  return ip.includes(':') ? new URL(`http://[${ip}]`).hostname.slice(1, -1) : ip;
}
