/**
 * Groups source addresses into budgets: every IPv4 address of one /24 (and every IPv6 address of
 * one /64) is one sender for the per-address limits, so an attacker who owns a block of addresses
 * (127.0.0.2, 127.0.0.3, … or a whole /64 handed out by any host) gets one budget, not thousands.
 */
import net from 'node:net';
import { ADDRESS_LIMITS } from './limits.js';

/** How many leading bits of an address make its budget. */
export interface PrefixBits {
  ipv4PrefixBits: number;
  ipv6PrefixBits: number;
}

/** The budget key of `ip`, e.g. `127.0.0.0/24` or `2001:db8:0:1::/64`. */
export function addressPrefix(ip: string, bits: PrefixBits = ADDRESS_LIMITS): string {
  const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  if (net.isIPv4(v4)) {
    const n = Math.max(0, Math.min(32, bits.ipv4PrefixBits));
    const value = v4.split('.').reduce((acc, p) => acc * 256 + Number(p), 0);
    const masked = n === 0 ? 0 : Math.floor(value / 2 ** (32 - n)) * 2 ** (32 - n);
    const parts = [24, 16, 8, 0].map((s) => Math.floor(masked / 2 ** s) % 256);
    return `${parts.join('.')}/${n}`;
  }
  if (net.isIPv6(ip)) {
    const n = Math.max(0, Math.min(128, bits.ipv6PrefixBits));
    const groups = expandIPv6(ip);
    const out: string[] = [];
    for (let g = 0; g < 8; g++) {
      const keep = Math.max(0, Math.min(16, n - g * 16));
      const mask = keep === 0 ? 0 : (0xffff << (16 - keep)) & 0xffff;
      out.push((groups[g]! & mask).toString(16));
    }
    return `${out.join(':')}/${n}`;
  }
  return ip; // not an address (a test double): its own budget
}

/** The eight 16-bit groups of an IPv6 address (with `::` and an embedded IPv4 tail expanded). */
function expandIPv6(ip: string): number[] {
  let text = ip.split('%')[0]!;
  const v4tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4tail) {
    const b = v4tail[1]!.split('.').map(Number);
    text =
      text.slice(0, -v4tail[1]!.length) +
      `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail !== undefined ? Array(8 - h.length - t.length).fill('0') : [];
  return [...h, ...fill, ...t].map((g) => parseInt(g, 16) || 0);
}
