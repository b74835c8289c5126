/**
 * Microseconds per SRTP protect and unprotect (src/stream/srtp.ts) of a 1,190-byte RTP packet, and
 * per SRTCP protect and unprotect of a 32-byte NACK, in this process; the median of 7 batches.
 * Not part of `npm run bench`: a look at srtp.ts alone when changing it. Another version of
 * srtp.ts (say `git show HEAD~1:src/stream/srtp.ts > /tmp/before.ts`) may be given to compare.
 *
 *   node --import tsx bench/srtp-speed.ts [path/to/srtp.ts]      (SRTP_SPEED_N packets a batch)
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const file = path.resolve(
  process.argv[2] ?? path.join(import.meta.dirname, '../src/stream/srtp.ts'),
);
const { SrtpContext, newMasterKey } = (await import(
  pathToFileURL(file).href
)) as typeof import('../src/stream/srtp.js');
const N = Number(process.env.SRTP_SPEED_N ?? 20_000);
const master = newMasterKey();

function rtp(seq: number): Buffer {
  const p = Buffer.alloc(1190, 0xab);
  p[0] = 0x80;
  p[1] = 96;
  p.writeUInt16BE(seq & 0xffff, 2);
  p.writeUInt32BE(seq * 3000, 4);
  p.writeUInt32BE(0x1234abcd, 8);
  return p;
}

const nack = Buffer.from('81cd0003000000011234abcd00050000' + '0'.repeat(32), 'hex');

/**
 * µs per call of `f` on each of `make(batch)`'s items (made outside the clock): the median of 7
 * batches, after one of warm-up.
 */
function time<T>(make: (batch: number) => T[], f: (x: T) => void): number {
  const batches: number[] = [];
  for (let b = 0; b < 8; b++) {
    const items = make(b);
    const t0 = process.hrtime.bigint();
    for (const x of items) f(x);
    if (b > 0) batches.push(Number(process.hrtime.bigint() - t0) / 1e3 / items.length);
  }
  batches.sort((x, y) => x - y);
  return batches[3]!;
}

// Each batch its own packets (sequence numbers run on), so that the receiver sees no replay.
const packets = (b: number) => Array.from({ length: N }, (_, i) => rtp(b * N + i));
const send = new SrtpContext(master);
const protect = time(packets, (p) => send.protectRtp(p));
const tx = new SrtpContext(master);
const rx = new SrtpContext(master);
const unprotect = time(
  (b) => packets(b).map((p) => tx.protectRtp(p)),
  (d) => {
    if (!rx.unprotectRtp(d).ok) throw new Error('unprotect failed');
  },
);
const rtcpTx = new SrtpContext(master);
const rtcpRx = new SrtpContext(master);
const nacks = () => Array.from({ length: N }, () => nack);
const protectRtcp = time(nacks, (p) => rtcpTx.protectRtcp(p));
const unprotectRtcp = time(
  () => nacks().map((p) => rtcpTx.protectRtcp(p)),
  (d) => {
    if (!rtcpRx.unprotectRtcp(d).ok) throw new Error('unprotect failed');
  },
);
const f = (n: number) => n.toFixed(2);
console.log(
  `${path.basename(file)}: µs per packet (median of 7 batches of ${N}), node ${process.version}: ` +
    `SRTP protect ${f(protect)}, unprotect ${f(unprotect)} (1,190 bytes); ` +
    `SRTCP protect ${f(protectRtcp)}, unprotect ${f(unprotectRtcp)} (NACK, 32 bytes)`,
);
