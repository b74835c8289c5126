/**
 * A peer's UDP socket for livestream media (SPEC §8): SRTP and SRTCP multiplexed on one port
 * (RFC 5761), every datagram under the key of its hop (hops.ts). What arrives is authenticated
 * and decrypted first, then handed in the clear to whoever registered the SSRC (NACK and PLI by
 * media SSRC, APP by its SSRC, reports by their first block); what is sent is protected with the
 * key of the hop to its destination, and never leaves in the clear: a datagram for a remote we
 * hold no key for is not sent (counted). Datagrams under no key, a wrong key or replayed are
 * dropped and counted, never parsed. Malformed datagrams and datagrams for no stream of ours are
 * counted and ignored; `--udp-loss` drops a fraction of what arrives, at random, to test loss
 * recovery on a kernel without netem. `sendPlain` is for exports to local tools alone. A hop whose
 * UDP cannot cross the NATs between travels over a media tunnel (media-tunnel.ts) that stands
 * here for one more remote: sent and received through it as through the socket.
 */
import { looksLikeStun } from '../protocol/stun.js';
import dgram from 'node:dgram';
import { MAX_DATAGRAM, RtpError, isRtcp, parseRtp, type RtpPacket } from './rtp.js';
import { parseRtcp, type RtcpPacket } from './rtcp.js';
import { HopTable, type Hop } from './hops.js';
import type { SrtpFailure } from './srtp.js';
import { bindUdp } from '../shared/udp-bind.js';
import type net from 'node:net';
import { MediaTunnel } from './media-tunnel.js';

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
  /** Arrived under no key of ours: an SRTP SSRC we receive no stream of, or an unknown sender. */
  srtpUnkeyed: number;
  /** Not sent: no key for that destination and stream (a child that has not asked yet). */
  unkeyedSends: number;
}

export class MediaSocket {
  private readonly socket = dgram.createSocket('udp4');
  private readonly handlers = new Map<number, SsrcHandler>();
  private isClosed = false;
  /** Hops carried over TCP (§5.6), by the made-up remote that stands for each. */
  private readonly tunnels = new Map<string, MediaTunnel>();
  private tunnelSeq = 0;
  readonly stats: MediaSocketStats = {
    received: 0,
    sent: 0,
    bytesSent: 0,
    bytesReceived: 0,
    dropped: 0,
    malformed: 0,
    foreign: 0,
    srtpUnkeyed: 0,
    unkeyedSends: 0,
  };
  /** The keys of every hop of ours. */
  readonly hops = new HopTable();

  /**
   * `benchPlain` is for bench/ alone (bench/plain-peer.ts; no flag of `hchat` reaches it): hops
   * are keyed and looked up as always, but their keys are not applied, so datagrams travel as
   * plain RTP/RTCP and `npm run bench` can measure what SRTP costs in the same run.
   */
  constructor(
    private readonly loss = 0,
    private readonly benchPlain = false,
  ) {
    if (!(loss >= 0 && loss < 1)) throw new RangeError('udp loss must be in [0, 1)');
    this.socket.on('message', (d, r) => this.receive(d, { ip: r.address, port: r.port }));
    // ICMP port unreachable and friends surface here; a media socket keeps going.
    this.socket.on('error', () => undefined);
  }

  async bind(port: number, host: string): Promise<void> {
    await bindUdp(this.socket, port, host);
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

  /**
   * Sends one RTP or RTCP packet under the key of its hop; returns the bytes sent (for upload
   * accounting), 0 when there is no key for that destination and stream.
   */
  send(packet: Uint8Array, to: Remote): number {
    const rtcp = isRtcp(packet);
    const hop = this.hops.outbound(to, rtcp ? routeSsrc(packet) : ssrcOf(packet));
    if (!hop) {
      this.stats.unkeyedSends++;
      return 0;
    }
    if (this.benchPlain) return this.sendPlain(packet, to); // bench only: see the constructor
    const d = rtcp ? hop.send.protectRtcp(packet) : hop.send.protectRtp(packet);
    if (d.length > MAX_DATAGRAM) throw new RangeError(`${d.length}-byte datagram over the budget`);
    return this.sendPlain(d, to);
  }

  /** Whether close() was called: nothing is sent after it. */
  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * Sends a datagram as it is: SRTP made by the caller, or RTP to a local tool. After close() it
   * sends nothing and returns 0, as a timer may still fire (a STUN retry, a stream's report).
   */
  sendPlain(datagram: Uint8Array, to: Remote): number {
    if (this.isClosed) return 0;
    const tunnel = this.tunnels.get(`${to.ip}:${to.port}`);
    if (tunnel) {
      if (!tunnel.send(datagram)) return 0;
      this.stats.sent++;
      this.stats.bytesSent += datagram.length;
      return datagram.length;
    }
    this.stats.sent++;
    this.stats.bytesSent += datagram.length;
    this.socket.send(datagram, to.port, to.ip);
    return datagram.length;
  }

  /**
   * Carries a hop over a TCP connection (a media tunnel through the server's relay, §5.6): the
   * answer is the remote that stands for it (`relay:<n>`, no address), to key the hop by and
   * send to as to any other; what arrives through it is received as from that remote.
   */
  tunnel(socket: net.Socket, onClose: () => void): Remote {
    this.tunnelSeq = (this.tunnelSeq % 65535) + 1;
    const remote = { ip: 'relay', port: this.tunnelSeq };
    const key = `${remote.ip}:${remote.port}`;
    this.tunnels.get(key)?.close();
    const t = new MediaTunnel(
      socket,
      (d) => this.receive(d, remote),
      () => {
        if (this.tunnels.get(key) === t) this.tunnels.delete(key);
        onClose();
      },
    );
    this.tunnels.set(key, t);
    return remote;
  }

  /** Closes the tunnel that `remote` stands for, if it is one. */
  closeTunnel(remote: Remote): void {
    this.tunnels.get(`${remote.ip}:${remote.port}`)?.close();
  }

  close(): Promise<void> {
    this.isClosed = true;
    for (const t of this.tunnels.values()) t.close();
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }

  /**
   * Where STUN datagrams go (peer/reflexive.ts): the server's Binding answers share this socket,
   * as its public address is the one to learn, and are told apart by their first byte and cookie
   * (RFC 7983) before anything is parsed as SRTP.
   */
  onStun: ((datagram: Buffer, from: Remote) => void) | undefined;

  private receive(datagram: Buffer, from: Remote): void {
    if (looksLikeStun(datagram)) {
      this.onStun?.(datagram, from);
      return;
    }
    if (this.loss > 0 && Math.random() < this.loss) {
      this.stats.dropped++;
      return;
    }
    this.stats.received++;
    this.stats.bytesReceived += datagram.length;
    const rtcp = isRtcp(datagram);
    const d = this.unprotect(datagram, from, rtcp);
    if (!d) return;
    try {
      if (rtcp) {
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

  /** The packet in the clear, or undefined when no hop's key verifies it (counted). */
  private unprotect(d: Buffer, from: Remote, rtcp: boolean): Buffer | undefined {
    // Too short to name a hop (an SRTCP sender SSRC ends at byte 8, an RTP SSRC at 12): the
    // socket counts it. Longer but still too short for SRTP is the hop's srtpMalformed below.
    if (d.length < (rtcp ? 8 : 12)) {
      this.stats.malformed++;
      return undefined;
    }
    const hops: Hop[] = rtcp
      ? this.hops.inboundRtcp(from, d.readUInt32BE(4))
      : [this.hops.inboundRtp(d.readUInt32BE(8))].filter((h): h is Hop => h !== undefined);
    if (hops.length === 0) {
      this.stats.srtpUnkeyed++;
      return undefined;
    }
    if (this.benchPlain) return d; // bench only: see the constructor
    let first: SrtpFailure | undefined;
    for (const hop of hops) {
      const r = rtcp ? hop.recv.unprotectRtcp(d) : hop.recv.unprotectRtp(d);
      if (r.ok) return r.packet;
      first ??= r.reason;
    }
    // Counted once, on the stream of the first candidate (the only one, but for a peer that
    // feeds one address several streams).
    const c = hops[0]!.counters;
    if (first === 'auth') c.srtpAuthFailures++;
    else if (first === 'replay') c.srtpReplays++;
    else c.srtpMalformed++;
    return undefined;
  }

  /** Receiver reports go to the handler of the first SSRC they report on. */
  private reportHandler(p: RtcpPacket): SsrcHandler | undefined {
    if ((p.type === 'rr' || p.type === 'sr') && p.reports.length > 0)
      return this.handlers.get(p.reports[0]!.ssrc);
    return undefined;
  }
}

function ssrcOf(packet: Uint8Array): number {
  if (packet.length < 12) throw new RangeError('not an RTP packet');
  return Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength).readUInt32BE(8);
}

/**
 * The stream an RTCP packet of ours is about, by its first packet: the media SSRC of a NACK or
 * PLI, the SSRC of an APP (consent), the first block of a report.
 */
function routeSsrc(packet: Uint8Array): number {
  const b = Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength);
  const pt = b[1]!;
  if ((pt === 205 || pt === 206) && b.length >= 12) return b.readUInt32BE(8);
  if (pt === 201 && (b[0]! & 0x1f) > 0 && b.length >= 12) return b.readUInt32BE(8);
  if (pt === 200 && (b[0]! & 0x1f) > 0 && b.length >= 32) return b.readUInt32BE(28);
  if (b.length >= 8) return b.readUInt32BE(4);
  throw new RangeError('not an RTCP packet');
}
