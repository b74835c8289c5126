/**
 * A livestream hop's datagrams over a TCP connection (docs/PROTOCOL.md §5.6), for a hop whose
 * UDP cannot cross the NATs between (a NAT that draws a new port per destination, or UDP blocked
 * outright): the connection is one the server's relay spliced (§3.10, kind `media`), and each
 * SRTP or SRTCP datagram travels as RFC 4571 frames it, behind a 16-bit length. The datagrams
 * are the ones the hop would have sent over UDP, under the same hop keys: the relay sees SRTP.
 *
 * Media tolerates loss, not delay: when the connection's send buffer holds more than
 * MAX_BUFFERED bytes (a slow path), datagrams are dropped and counted, and the receiver's NACKs
 * and PLIs repair what mattered, as on a lossy UDP path.
 */
import type net from 'node:net';
import { MAX_DATAGRAM } from './rtp.js';

/** Bytes waiting in the send buffer past which datagrams are dropped (about 0.5 s at 4 Mbit/s). */
const MAX_BUFFERED = 256 * 1024;

export class MediaTunnel {
  private buf: Buffer = Buffer.alloc(0);
  private closed = false;
  readonly stats = { sent: 0, received: 0, dropped: 0, malformed: 0 };

  constructor(
    private readonly socket: net.Socket,
    private readonly onDatagram: (d: Buffer) => void,
    onClose: () => void,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.read(d));
    socket.on('error', () => undefined);
    socket.once('close', () => {
      this.closed = true;
      onClose();
    });
    socket.resume();
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Sends one datagram; false when it was dropped (closed, too big, or the path is behind). */
  send(d: Uint8Array): boolean {
    if (this.closed || d.length > MAX_DATAGRAM || this.socket.writableLength > MAX_BUFFERED) {
      this.stats.dropped++;
      return false;
    }
    const head = Buffer.alloc(2);
    head.writeUInt16BE(d.length);
    this.socket.write(Buffer.concat([head, d]));
    this.stats.sent++;
    return true;
  }

  close(): void {
    this.socket.destroy();
  }

  private read(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let off = 0;
    while (this.buf.length - off >= 2) {
      const len = this.buf.readUInt16BE(off);
      if (len === 0 || len > MAX_DATAGRAM) {
        // Not a framing we could resynchronise: the hop is lost, the stall logic moves on.
        this.stats.malformed++;
        this.socket.destroy();
        return;
      }
      if (this.buf.length - off < 2 + len) break;
      const d = Buffer.from(this.buf.subarray(off + 2, off + 2 + len));
      off += 2 + len;
      this.stats.received++;
      this.onDatagram(d);
    }
    this.buf = this.buf.subarray(off);
  }
}
