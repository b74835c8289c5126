/**
 * Which local user holds a socket at the other end of a loopback exchange. Loopback is no
 * boundary between the users of one machine, and a secret alone does not keep a local door
 * closed, because secrets leak (a page left open sends the API token to whoever takes the UI
 * port while the peer is down). On Linux the kernel tells who owns each socket (`/proc/net/tcp`,
 * `/proc/net/udp` and their IPv6 twins, the `uid` column, as identd answers from it), so the
 * local API, the RTP ingest and the RTP exports deal with the peer's own OS user (or root) only.
 * Where those tables cannot be read (another operating system) the owner is 'unknown'.
 */
import fs from 'node:fs';
import os from 'node:os';
import net, { type Socket } from 'node:net';

/** A uid; 'unknown' when this system does not tell; undefined when no such socket is listed. */
export type Owner = number | 'unknown' | undefined;

const LE = os.endianness() === 'LE';

/** Each TCP connection's owner, looked up once (a connection carries many requests). */
const tcpOwners = new WeakMap<Socket, number | 'unknown'>();

/**
 * The owner of the other end of TCP connection `socket` (a connection between local ports). A
 * request made inside this process (Fastify's `inject`, no connection at all) is this process's.
 */
export function tcpPeerOwner(socket: Socket): Owner {
  if (!(socket instanceof net.Socket)) return process.geteuid?.() ?? 'unknown';
  const known = tcpOwners.get(socket);
  if (known !== undefined) return known;
  const { remoteAddress, remotePort, localAddress, localPort } = socket;
  const from = v4(remoteAddress);
  const to = v4(localAddress);
  if (from === undefined || to === undefined || !remotePort || !localPort) return undefined;
  // The other end's socket, as the kernel lists it: its local address is our remote one.
  const theirs = addr(from, remotePort);
  const ours = addr(to, localPort);
  const owner = lookUp('tcp', (local, remote) => local === theirs && remote === ours);
  if (owner !== undefined) tcpOwners.set(socket, owner);
  return owner;
}

/**
 * The owner of the UDP socket bound to `ip`:`port` (a datagram's source, or a destination),
 * bound to that address or to every address.
 */
export function udpOwner(ip: string, port: number): Owner {
  const a = v4(ip);
  if (a === undefined) return undefined;
  const exact = addr(a, port);
  const any = addr('0.0.0.0', port);
  return lookUp('udp', (local) => local === exact || local === any);
}

/**
 * Whether the UDP sockets at addresses (a datagram's source, an export's destination) are this
 * user's, each looked up again after `recheckMs` (a port another user let go may be this user's
 * next) and remembered for at most 64 addresses at once (senders come and go). A port nobody
 * holds counts as this user's when `unheld` says so (a player not started yet), else not (the
 * sender of a datagram that closed its socket: whose it was cannot be told).
 */
export class UdpOwners {
  private readonly known = new Map<string, { ok: boolean; at: number }>();

  constructor(
    private readonly recheckMs: number,
    private readonly unheld: boolean,
  ) {}

  /** Whether `ip`:`port` is held by this user (or root), or by nobody when that counts. */
  ours(ip: string, port: number): boolean {
    const key = `${ip}:${port}`;
    const now = Date.now();
    const seen = this.known.get(key);
    if (seen && now - seen.at < this.recheckMs) return seen.ok;
    const owner = udpOwner(ip, port);
    const ok = owner === undefined ? this.unheld : isThisUser(owner);
    if (this.known.size >= 64) this.known.clear();
    this.known.set(key, { ok, at: now });
    return ok;
  }
}

/** Whether `owner` is this process's user or root (or this system does not tell). */
export function isThisUser(owner: Owner): boolean {
  const me = process.geteuid?.();
  if (me === undefined || owner === 'unknown') return true;
  return owner === me || owner === 0;
}

/**
 * The uid of the first socket of /proc/net/`proto` (then its IPv6 twin, for IPv4 addresses
 * mapped) for which `match(local, remote)` (each `<hex ip>:<hex port>` in the IPv4 form) is true.
 */
function lookUp(proto: 'tcp' | 'udp', match: (local: string, remote: string) => boolean): Owner {
  let readAny = false;
  for (const [file, mapped] of [
    [`/proc/net/${proto}`, false],
    [`/proc/net/${proto}6`, true],
  ] as const) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'latin1');
    } catch {
      continue;
    }
    readAny = true;
    for (const line of text.split('\n')) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid …
      const f = line.trim().split(/\s+/);
      const local = mapped ? unmap(f[1]) : f[1];
      const remote = mapped ? unmap(f[2]) : f[2];
      if (local !== undefined && remote !== undefined && match(local, remote)) return Number(f[7]);
    }
  }
  return readAny ? undefined : 'unknown';
}

/** `::ffff:a.b.c.d` (its four 32-bit words each in this machine's byte order) as IPv4's form. */
function unmap(field: string | undefined): string | undefined {
  const prefix = `0000000000000000${LE ? 'FFFF0000' : '0000FFFF'}`;
  if (field === undefined) return undefined;
  // An unspecified IPv6 address listens on IPv4 too.
  if (field.startsWith('00000000000000000000000000000000:')) return `00000000${field.slice(32)}`;
  return field.startsWith(prefix) ? field.slice(prefix.length) : undefined;
}

/** The IPv4 address in `ip` (plain or mapped into IPv6), if any. */
function v4(ip: string | undefined): string | undefined {
  return ip === undefined ? undefined : /^(?:::ffff:)?(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1];
}

/** An address as the kernel prints it: the 32-bit value in this machine's byte order, the port. */
function addr(ip: string, port: number): string {
  const bytes = ip.split('.').map((n) => Number(n).toString(16).toUpperCase().padStart(2, '0'));
  const p = port.toString(16).toUpperCase().padStart(4, '0');
  return `${(LE ? bytes.reverse() : bytes).join('')}:${p}`;
}
