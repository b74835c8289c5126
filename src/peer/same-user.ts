/**
 * Which local user opened a connection to the local API: the boundary of the peer is its OS user
 * (docs/SECURITY.md "Local processes"), and the token alone does not hold it there, because a
 * token can leak to another user (a page left open sends it to whoever takes the UI port while
 * the peer is down). On Linux the kernel tells who owns each TCP socket (`/proc/net/tcp`, the
 * `uid` column, as identd answers it): a connection from a socket of another user than this
 * process's, or root, is refused whatever it carries. Where that table cannot be read (another
 * operating system), nothing is refused on this ground.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Socket } from 'node:net';

const LE = os.endianness() === 'LE';

/** Each connection's owner, looked up once (a connection carries many requests). */
const owners = new WeakMap<Socket, number | 'unknown'>();

/**
 * The uid owning the other end of `socket` (a connection to a port of this machine), 'unknown'
 * when the kernel's tables cannot be read here, or undefined when it is not in them (closed).
 */
export function ownerOf(socket: Socket): number | 'unknown' | undefined {
  const known = owners.get(socket);
  if (known !== undefined) return known;
  const { remoteAddress, remotePort, localAddress, localPort } = socket;
  if (!remoteAddress || !remotePort || !localAddress || !localPort) return undefined;
  const owner = lookUp(remoteAddress, remotePort, localAddress, localPort);
  if (owner !== undefined) owners.set(socket, owner);
  return owner;
}

/**
 * Whether `socket` was opened by this process's user or root; true where that cannot be told.
 */
export function fromThisUser(socket: Socket): boolean {
  const me = process.geteuid?.();
  if (me === undefined) return true;
  const owner = ownerOf(socket);
  if (owner === 'unknown') return true;
  return owner === me || owner === 0;
}

/**
 * The uid of the socket whose local end is `from` and remote end `to` (the client's socket, as
 * the kernel lists it), from /proc/net/tcp (IPv4) and /proc/net/tcp6 (an IPv4 address mapped).
 */
function lookUp(
  fromIp: string,
  fromPort: number,
  toIp: string,
  toPort: number,
): number | 'unknown' | undefined {
  const v4 = (ip: string) => /^(?:::ffff:)?(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1];
  const a = v4(fromIp);
  const b = v4(toIp);
  if (a === undefined || b === undefined) return undefined;
  const tables: Array<[string, (ip: string) => string]> = [
    ['/proc/net/tcp', hex4],
    // ::ffff:a.b.c.d, its four 32-bit words printed each in this machine's byte order.
    ['/proc/net/tcp6', (ip) => `0000000000000000${LE ? 'FFFF0000' : '0000FFFF'}${hex4(ip)}`],
  ];
  let readAny = false;
  for (const [file, form] of tables) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'latin1');
    } catch {
      continue;
    }
    readAny = true;
    const local = `${form(a)}:${port(fromPort)}`;
    const remote = `${form(b)}:${port(toPort)}`;
    for (const line of text.split('\n')) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid …
      const f = line.trim().split(/\s+/);
      if (f[1] === local && f[2] === remote) return Number(f[7]);
    }
  }
  return readAny ? undefined : 'unknown';
}

/** An IPv4 address as the kernel prints it: the 32-bit value in this machine's byte order. */
function hex4(ip: string): string {
  const bytes = ip.split('.').map((n) => Number(n).toString(16).toUpperCase().padStart(2, '0'));
  return (LE ? bytes.reverse() : bytes).join('');
}

function port(p: number): string {
  return p.toString(16).toUpperCase().padStart(4, '0');
}
