/**
 * A peer's UDP socket for livestream media (SPEC §8): RTP and RTCP multiplexed on one port
 * (RFC 5761), handed to whoever registered the SSRC (NACK and PLI by media SSRC, APP by its SSRC,
 * reports by their first block). Malformed datagrams and datagrams for no
 * stream of ours are counted and ignored; `--udp-loss` drops a fraction of what arrives, at
 * random, to test loss recovery on a kernel without netem.
 */
import dgram from 'node:dgram';
import { RtpError, isRtcp, parseRtp, type RtpPacket } from './rtp.js';
import { parseRtcp, type RtcpPacket } from './rtcp.js';

/** The sender of a datagram. */
export interface Remote {
  ip: string;
  port: number;
}

/** Receives what arrives for one SSRC. */
export interface SsrcHandler {
  rtp?(p: RtpPacket, datagram: Buffer, from: Remote): void;
  rtcp?(p: RtcpPacket, from: Remote): void;
}

/** Counters of the socket. */
export interface MediaSocketStats {
  received: number;
  sent: number;
  bytesSent: number;
  bytesReceived: number;
  /** Dropped on purpose (`--udp-loss`). */
  dropped: number;
  malformed: number;
  /** Well-formed, but for no stream of ours. */
  foreign: number;
}

export class MediaSocket {
  private readonly socket = dgram.createSocket('udp4');
  private readonly handlers = new Map<number, SsrcHandler>();
  readonly stats: MediaSocketStats = {
    received: 0,
    sent: 0,
    bytesSent: 0,
    bytesReceived: 0,
    dropped: 0,
    malformed: 0,
    foreign: 0,
  };

  constructor(private readonly loss = 0) {
    if (!(loss >= 0 && loss < 1)) throw new RangeError('udp loss must be in [0, 1)');
    this.socket.on('message', (d, r) => this.receive(d, { ip: r.address, port: r.port }));
    // ICMP port unreachable and friends surface here; a media socket keeps going.
    this.socket.on('error', () => undefined);
  }

  async bind(port: number, host: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind(port, host, () => {
        this.socket.off('error', reject);
        resolve();
      });
    });
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** Routes this SSRC's packets to `h` (replacing any previous handler). */
  on(ssrc: number, h: SsrcHandler): void {
    this.handlers.set(ssrc >>> 0, h);
  }

  off(ssrc: number, h?: SsrcHandler): void {
    if (!h || this.handlers.get(ssrc >>> 0) === h) this.handlers.delete(ssrc >>> 0);
  }

  /** Sends one datagram; returns its size (for upload accounting). */
  send(datagram: Uint8Array, to: Remote): number {
    this.stats.sent++;
    this.stats.bytesSent += datagram.length;
    this.socket.send(datagram, to.port, to.ip);
    return datagram.length;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }

  private receive(d: Buffer, from: Remote): void {
    if (this.loss > 0 && Math.random() < this.loss) {
      this.stats.dropped++;
      return;
    }
    this.stats.received++;
    this.stats.bytesReceived += d.length;
    try {
      if (isRtcp(d)) {
        for (const p of parseRtcp(d)) {
          const ssrc =
            p.type === 'nack' || p.type === 'pli'
              ? p.mediaSsrc
              : p.type === 'app'
                ? p.ssrc
                : undefined;
          const h = ssrc === undefined ? this.reportHandler(p) : this.handlers.get(ssrc);
          if (h?.rtcp) h.rtcp(p, from);
          else if (p.type !== 'other') this.stats.foreign++;
        }
        return;
      }
      const p = parseRtp(d);
      const h = this.handlers.get(p.ssrc);
      if (h?.rtp) h.rtp(p, d, from);
      else this.stats.foreign++;
    } catch (err) {
      if (!(err instanceof RtpError)) throw err;
      this.stats.malformed++;
    }
  }

  /** Receiver reports go to the handler of the first SSRC they report on. */
  private reportHandler(p: RtcpPacket): SsrcHandler | undefined {
    if ((p.type === 'rr' || p.type === 'sr') && p.reports.length > 0)
      return this.handlers.get(p.reports[0]!.ssrc);
    return undefined;
  }
}
