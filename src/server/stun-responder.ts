/**
 * The server's STUN port (docs/PROTOCOL.md §3.8): answers each Binding request with the address
 * it came from, so that a peer learns the public address of its media socket (its UDP
 * server-reflexive candidate). Nothing else is answered, nothing is stored, no session is needed.
 * An answer is 32 bytes (IPv4) for a request of at least 20: the amplification a spoofed request
 * buys is at most 1.6 times, and each address group gets at most NAT_LIMITS.stunPerSecond.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { BINDING_REQUEST, bindingSuccess, parseStun } from '../protocol/stun.js';
import { NAT_LIMITS } from '../shared/limits.js';
import { RateLimiter } from '../shared/rate-limit.js';
import { bindUdp } from '../shared/udp-bind.js';

/** A UDP socket answering STUN Binding requests. */
export class StunResponder {
  private readonly socket: dgram.Socket;
  private readonly limiter = new RateLimiter(NAT_LIMITS.stunPerSecond, NAT_LIMITS.stunBurst);
  /** Binding requests answered (for tests and metrics). */
  answered = 0;

  constructor(
    host: string,
    private readonly prefixOf: (ip: string) => string,
  ) {
    this.socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    this.socket.on('message', (d, r) => this.receive(d, r));
    // ICMP errors for answers to vanished clients surface here: the port keeps going.
    this.socket.on('error', () => undefined);
  }

  listen(port: number, host: string): Promise<void> {
    return bindUdp(this.socket, port, host);
  }

  get port(): number {
    return this.socket.address().port;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve(); // never bound
      }
    });
  }

  private receive(d: Buffer, r: dgram.RemoteInfo): void {
    const m = parseStun(d);
    if (!m || m.type !== BINDING_REQUEST) return;
    const ip = r.address.replace(/^::ffff:/, '');
    if (this.limiter.take(this.prefixOf(ip)) > 0) return;
    this.answered++;
    this.socket.send(bindingSuccess(m.transactionId, { ip, port: r.port }), r.port, r.address);
  }
}
