/**
 * Media over TCP (docs/PROTOCOL.md §5.6): RFC 4571 framing of a hop's datagrams across any
 * chunking TCP makes of them, a length it cannot resynchronise from, and a slow path that drops
 * datagrams rather than queueing them; and the rule that picks a hop's address or its tunnel
 * from the candidates on both sides.
 */
import net from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Candidate } from '../src/protocol/common.js';
import { mediaAddress, needsTunnel } from '../src/peer/media-address.js';
import { MediaTunnel } from '../src/stream/media-tunnel.js';

/** Two ends of one real TCP connection on 127.0.0.1. */
async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const a = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const b = await accepted;
  server.close();
  await new Promise((r) => a.once('connect', r));
  return [a, b];
}

describe('media tunnel framing', () => {
  it('delivers every datagram whole and in order, however the bytes are cut', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 1200 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 10 }),
        async (datagrams, cuts) => {
          const [a, b] = await socketPair();
          const got: Buffer[] = [];
          new MediaTunnel(
            b,
            (d) => got.push(d),
            () => undefined,
          );
          // Frames as RFC 4571 writes them, sent in pieces of the drawn sizes.
          const wire = Buffer.concat(
            datagrams.map((d) => Buffer.concat([Buffer.from([d.length >> 8, d.length & 255]), d])),
          );
          for (let off = 0, i = 0; off < wire.length; i++) {
            const n = cuts[i % cuts.length]!;
            a.write(wire.subarray(off, off + n));
            off += n;
            await new Promise((r) => setImmediate(r));
          }
          await new Promise<void>((r, j) => {
            const t = setTimeout(
              () => j(new Error(`got ${got.length} of ${datagrams.length}`)),
              2000,
            );
            const check = () =>
              got.length >= datagrams.length ? (clearTimeout(t), r()) : setTimeout(check, 5);
            check();
          });
          a.destroy();
          b.destroy();
          expect(got.map((d) => d.toString('hex'))).toEqual(
            datagrams.map((d) => Buffer.from(d).toString('hex')),
          );
        },
      ),
      { numRuns: 25 },
    );
  });

  it('closes on a length of 0 or over the datagram budget, and sends through its own framing', async () => {
    for (const bad of [Buffer.from([0, 0]), Buffer.from([0xff, 0xff, 1, 2, 3])]) {
      const [a, b] = await socketPair();
      let closed = false;
      const t = new MediaTunnel(
        b,
        () => undefined,
        () => (closed = true),
      );
      a.write(bad);
      await new Promise((r) => setTimeout(r, 100));
      expect(closed).toBe(true);
      expect(t.stats.malformed).toBe(1);
      a.destroy();
    }
    const [a, b] = await socketPair();
    const got: Buffer[] = [];
    const ta = new MediaTunnel(
      a,
      () => undefined,
      () => undefined,
    );
    new MediaTunnel(
      b,
      (d) => got.push(d),
      () => undefined,
    );
    expect(ta.send(Buffer.from('srtp'))).toBe(true);
    expect(ta.send(Buffer.alloc(5000))).toBe(false); // over a datagram's budget: dropped
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toEqual([Buffer.from('srtp')]);
    a.destroy();
    b.destroy();
  });
});

const c = (
  type: 'host' | 'srflx',
  proto: 'tcp' | 'udp',
  ip: string,
  port: number,
  base?: number,
): Candidate => ({ type, proto, ip, port, ...(base === undefined ? {} : { base }) });

describe('which address a hop uses, or its tunnel', () => {
  const cone = (home: number) => [
    c('host', 'udp', `10.0.${home}.2`, 5000),
    c('srflx', 'udp', `203.0.113.${10 + home}`, 5000, 5000),
    c('srflx', 'tcp', `203.0.113.${10 + home}`, 4000, 4000),
  ];
  const given = { ip: '10.0.9.9', port: 1 };

  it('another home: its public address; the same home: its LAN one; no candidates: as given', () => {
    expect(mediaAddress(given, cone(2), '203.0.113.11')).toEqual({
      ip: '203.0.113.12',
      port: 5000,
    });
    expect(mediaAddress(given, cone(2), undefined)).toEqual({ ip: '203.0.113.12', port: 5000 });
    expect(mediaAddress(given, cone(2), '203.0.113.12')).toEqual({ ip: '10.0.2.2', port: 5000 });
    expect(mediaAddress(given, undefined, '203.0.113.11')).toEqual(given);
    expect(mediaAddress(given, [c('host', 'udp', '198.51.100.7', 9)], undefined)).toEqual(given);
  });

  it('a tunnel when either NAT draws ports or blocks UDP, never inside one home or without NATs', () => {
    const symmetric = [
      c('srflx', 'udp', '203.0.113.12', 61234, 5000),
      c('srflx', 'tcp', '203.0.113.12', 40001, 4000),
    ];
    const udpBlocked = [
      c('host', 'udp', '10.0.2.2', 5000),
      c('srflx', 'tcp', '203.0.113.12', 4000, 4000),
    ];
    expect(needsTunnel(cone(1), cone(2))).toBe(false);
    expect(needsTunnel([], [])).toBe(false);
    expect(needsTunnel(cone(1), symmetric)).toBe(true);
    expect(needsTunnel(symmetric, cone(1))).toBe(true);
    expect(needsTunnel(cone(1), udpBlocked)).toBe(true);
    expect(needsTunnel(udpBlocked, [])).toBe(true);
    // Both behind the same router: the LAN carries it, whatever the router does outside.
    expect(needsTunnel(symmetric, [c('srflx', 'udp', '203.0.113.12', 7, 5)])).toBe(false);
  });
});
