/**
 * A peer's P2P door: what connections may cost before their handshake (docs/PROTOCOL.md §4.1)
 * is complete. Each is counted from its first TCP byte, per address prefix and in total, until
 * its `auth` is checked or it closes; past either cap (P2P_DOOR_LIMITS) a new connection is
 * destroyed at once. The 5 s deadline and the 16 KiB frame cap bound what each one holds; this
 * bounds how many a stranger holds at once, as the server's door does (server/door.ts).
 */
import type net from 'node:net';
import { addressPrefix } from '../shared/address-prefix.js';
import { P2P_DOOR_LIMITS } from '../shared/limits.js';
import { remoteOf } from '../shared/framed-socket.js';

export class P2PDoor {
  /** `ip:port` of each connection counted, with its prefix. */
  private readonly waiting = new Map<string, string>();
  private readonly perPrefix = new Map<string, number>();

  constructor(private readonly limits = P2P_DOOR_LIMITS) {}

  /** A TCP connection arrived: false (and the socket destroyed) past a cap. */
  admit(socket: net.Socket): boolean {
    const { ip, port } = remoteOf(socket);
    const prefix = addressPrefix(ip);
    if (
      this.waiting.size >= this.limits.unauthenticatedTotal ||
      (this.perPrefix.get(prefix) ?? 0) >= this.limits.unauthenticatedPerAddress
    ) {
      socket.destroy();
      return false;
    }
    const key = `${ip}:${port}`;
    this.waiting.set(key, prefix);
    this.perPrefix.set(prefix, (this.perPrefix.get(prefix) ?? 0) + 1);
    socket.once('close', () => this.done(ip, port));
    return true;
  }

  /** The connection from `ip`:`port` completed its handshake (or closed): no longer counted. */
  done(ip: string, port: number): void {
    const key = `${ip}:${port}`;
    const prefix = this.waiting.get(key);
    if (prefix === undefined) return;
    this.waiting.delete(key);
    const n = (this.perPrefix.get(prefix) ?? 0) - 1;
    if (n > 0) this.perPrefix.set(prefix, n);
    else this.perPrefix.delete(prefix);
  }
}
