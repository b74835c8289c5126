/**
 * A TCP socket speaking frames (protocol/frame.ts): decodes what arrives, coalesces what leaves
 * (one write system call per event-loop turn), bounds the bytes queued for a slow reader, and
 * ends the connection with an error frame when the other end breaks the protocol.
 */
import type net from 'node:net';
import { DEFAULT_MAX_FRAME, FrameDecoder, HEADER_BYTES, encodeFrame } from '../protocol/frame.js';
import { HchatError } from '../protocol/errors.js';

/** Bytes queued towards one socket before it is closed as a slow consumer. */
export const MAX_QUEUED_BYTES = 16 * 1024 * 1024;
/**
 * Bytes queued towards the other end past which its next frames wait: a peer that asks and does
 * not read its answers stops being served (TCP pushes back on it) instead of making this process
 * compute and hold answers for it.
 */
export const READ_PAUSE_BYTES = 2 * 1024 * 1024;

/** Traffic counters, shared by every socket of a process that wants them. */
export interface TrafficStats {
  bytesIn: number;
  bytesOut: number;
  framesIn: number;
  framesOut: number;
}

/** Fresh zeroed counters. */
export function newTrafficStats(): TrafficStats {
  return { bytesIn: 0, bytesOut: 0, framesIn: 0, framesOut: 0 };
}

/** Callbacks of a FramedSocket. */
export interface FramedSocketHandlers {
  /** One decoded frame; throwing HchatError ends the connection with that error. */
  frame(obj: Record<string, unknown>): void;
  /** The connection is gone (either side, any reason); called once. */
  close(reason: HchatError | undefined): void;
}

/** A socket's other end as `ip` (IPv4-mapped IPv6 shown as IPv4) and `port`. */
export function remoteOf(socket: net.Socket): { ip: string; port: number } {
  return {
    ip: (socket.remoteAddress ?? '?').replace(/^::ffff:/, ''),
    port: socket.remotePort ?? 0,
  };
}

/** A socket that sends and receives frames. */
export class FramedSocket {
  private readonly decoder: FrameDecoder;
  private corked = false;
  /** Reading stopped until the other end drains what we queued for it. */
  private paused = false;
  /** Reading stopped by the handler (hold/release). */
  private held = false;
  private closed = false;
  private closeReason: HchatError | undefined;
  /** When the last frame arrived (ms since epoch): liveness for heartbeats. */
  lastSeen = Date.now();
  /** The largest frame the other end accepts (from its hello; 1 MiB unless it said). */
  peerMaxFrame = DEFAULT_MAX_FRAME;
  /**
   * Serving ends (the server, a host) stop reading a peer that does not read its answers
   * (READ_PAUSE_BYTES). Connecting ends never do: if both sides waited for the other to read,
   * neither would.
   */
  pausesReading = false;

  constructor(
    readonly socket: net.Socket,
    private readonly handlers: FramedSocketHandlers,
    maxFrame?: number,
    private readonly stats?: TrafficStats,
    /** Sees every buffer written (one frame or several back to back): the server's metrics. */
    private readonly written?: (bytes: Buffer) => void,
  ) {
    this.decoder = new FrameDecoder(maxFrame);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {
      // 'close' follows; the reason is the socket's own, not a protocol error.
    });
    socket.on('close', () => {
      this.closed = true;
      this.handlers.close(this.closeReason);
    });
  }

  /** Remote address as `ip`, `port`. */
  get remote(): { ip: string; port: number } {
    return remoteOf(this.socket);
  }

  /**
   * Changes the largest frame accepted from now on: a small cap until the other end has
   * authenticated, the full one after (see FrameDecoder.setMaxFrame).
   */
  setMaxFrame(n: number): void {
    this.decoder.setMaxFrame(n);
  }

  /** The largest frame accepted now. */
  get maxFrame(): number {
    return this.decoder.max;
  }

  /** Bytes received that do not yet form a whole frame. */
  get pendingBytes(): number {
    return this.decoder.pending;
  }

  get isOpen(): boolean {
    return !this.closed && !this.socket.destroyed;
  }

  /**
   * Stops taking frames from this connection (its handler has enough work in hand); what arrives
   * meanwhile waits in the kernel, which pushes back on the sender. `release` takes them again.
   */
  hold(): void {
    if (this.held) return;
    this.held = true;
    this.socket.pause();
  }

  /** Takes frames again after `hold`. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    if (!this.paused) this.socket.resume();
    this.pump();
  }

  /** Encodes and sends one frame. */
  send(obj: object): void {
    this.sendEncoded(encodeFrame(obj));
  }

  /**
   * Answers request `id` with `body`, unless the answer would exceed what the other end accepts:
   * then with E_FRAME_TOO_LARGE for that request alone (a frame it cannot take would end the
   * link). Pages are cut to fit before they get here (protocol/page-budget.ts).
   */
  answer(id: number, body: unknown): void {
    const frame = encodeFrame({ t: 'res', id, body });
    if (frame.length - HEADER_BYTES <= this.peerMaxFrame) return this.sendEncoded(frame);
    const e = new HchatError(
      'E_FRAME_TOO_LARGE',
      `the answer (${frame.length} bytes) exceeds your maximum frame of ${this.peerMaxFrame}`,
    );
    this.send({ t: 'res', id, error: e.toWire() });
  }

  /** Sends bytes already encoded as a frame (a broadcast encoded once for many sockets). */
  sendEncoded(frame: Buffer): void {
    if (!this.isOpen) return;
    if (this.socket.writableLength > MAX_QUEUED_BYTES) {
      this.fail(new HchatError('E_SLOW_CONSUMER'));
      return;
    }
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(frame);
    this.written?.(frame);
    if (this.stats) {
      this.stats.bytesOut += frame.length;
      this.stats.framesOut++;
    }
  }

  /** Sends an error frame and closes: the end of this connection only. */
  fail(err: HchatError): void {
    if (!this.isOpen) return;
    this.closeReason = err;
    const frame = encodeFrame({ t: 'error', code: err.code, message: err.message });
    if (this.corked) {
      this.corked = false;
      this.socket.uncork();
    }
    this.socket.end(frame);
    // A peer that never reads must not keep the socket open for ever.
    setTimeout(() => this.socket.destroy(), 2000).unref();
    this.closed = true;
  }

  /** Closes without sending an error frame; `reason` is what the close handler is told. */
  close(reason?: HchatError): void {
    if (reason) this.closeReason = reason;
    this.closed = true;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  /** Closes at once (tests simulating a crash, shutdown). */
  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.lastSeen = Date.now();
    if (this.stats) this.stats.bytesIn += chunk.length;
    this.decoder.feed(chunk);
    this.pump();
  }

  /**
   * Handles the frames received so far, one at a time (a handler may change the frame cap for
   * the frames after it), while the other end reads what we send: past READ_PAUSE_BYTES queued
   * towards it, reading stops until the queue drains.
   */
  private pump(): void {
    while (!this.closed && !this.held) {
      if (this.pausesReading && this.socket.writableLength > READ_PAUSE_BYTES) {
        if (!this.paused) {
          this.paused = true;
          this.socket.pause();
          this.socket.once('drain', () => {
            this.paused = false;
            if (!this.held) this.socket.resume();
            this.pump();
          });
        }
        return;
      }
      let f: Record<string, unknown> | undefined;
      try {
        f = this.decoder.next();
      } catch (err) {
        this.fail(err as HchatError);
        return;
      }
      if (f === undefined) return;
      if (this.stats) this.stats.framesIn++;
      try {
        this.handlers.frame(f);
      } catch (err) {
        // Nothing a peer sends may end the process: a protocol error closes this link with its
        // code; anything else (a bug, a storage error) closes it with E_INTERNAL and is reported.
        if (err instanceof HchatError) this.fail(err);
        else {
          console.error('hchat: closing a connection after an unexpected error:', err);
          this.fail(new HchatError('E_INTERNAL'));
        }
      }
    }
  }
}
