/**
 * Loopback captures for the tests that look at what crosses a wire: tcpdump on `lo` (Debian's
 * package; root), and the TCP and UDP payloads of the pcap file it writes.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { onTestFinished } from 'vitest';

/** True when tcpdump is installed and this process may capture (root). */
export const canCapture =
  spawnSync('tcpdump', ['--version'], { stdio: 'ignore' }).status === 0 && process.getuid?.() === 0;

/**
 * Starts tcpdump on `iface` (lo by default) for `filter` into `file`, inside network namespace
 * `ns` when given (test/netns.ts); resolves, once it listens, with its stop.
 */
export async function startCapture(
  file: string,
  filter: string,
  where: { iface?: string; ns?: string } = {},
): Promise<() => Promise<void>> {
  const args = [
    '-i',
    where.iface ?? 'lo',
    '--immediate-mode',
    '-U',
    '-n',
    '-s',
    '0',
    '-w',
    file,
    filter,
  ];
  const [cmd, ...pre] = where.ns ? ['ip', 'netns', 'exec', where.ns, 'tcpdump'] : ['tcpdump'];
  const proc = spawn(cmd!, [...pre, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  onTestFinished(async () => {
    proc.kill('SIGKILL');
    await exited;
  });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    proc.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('listening on')) resolve();
    });
    proc.once('exit', () => reject(new Error(`tcpdump: ${err}`)));
  });
  return async () => {
    await new Promise((r) => setTimeout(r, 300)); // the last packets reach the file
    proc.kill('SIGINT');
    await exited;
  };
}

/** One captured TCP segment or UDP datagram. */
export interface Packet {
  proto: 'tcp' | 'udp';
  src: number;
  dst: number;
  payload: Buffer;
}

/** The TCP and UDP payloads over IPv4 of a pcap file (Ethernet, Linux cooked v1/v2 or raw). */
export function packets(file: string): Packet[] {
  const b = fs.readFileSync(file);
  const le = b.readUInt32LE(0) === 0xa1b2c3d4;
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const link = u32(20);
  const l2 = link === 1 ? 14 : link === 113 ? 16 : link === 276 ? 20 : 0;
  const out: Packet[] = [];
  for (let o = 24; o + 16 <= b.length;) {
    const len = u32(o + 8);
    const ip = b.subarray(o + 16 + l2, o + 16 + len);
    o += 16 + len;
    if (ip.length < 28 || ip[0]! >> 4 !== 4) continue;
    const l4 = ip.subarray((ip[0]! & 0x0f) * 4, ip.readUInt16BE(2));
    if (ip[9] === 6) {
      const off = (l4[12]! >> 4) * 4;
      out.push({
        proto: 'tcp',
        src: l4.readUInt16BE(0),
        dst: l4.readUInt16BE(2),
        payload: l4.subarray(off),
      });
    } else if (ip[9] === 17) {
      out.push({
        proto: 'udp',
        src: l4.readUInt16BE(0),
        dst: l4.readUInt16BE(2),
        payload: l4.subarray(8, l4.readUInt16BE(4)),
      });
    }
  }
  return out;
}
