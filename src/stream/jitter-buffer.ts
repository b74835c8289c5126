/**
 * A receiver's jitter buffer for one RTP stream (one SSRC): it puts packets back in order, joins
 * them into frames, says which packets to ask for again (generic NACK), and hands out frames in
 * order. A frame that is not whole by its deadline is dropped, and it never holds back the frames
 * after it (SPEC §8).
 *
 * Deadlines are relative to arrival: no frame waits more than `deadlineMs` after its first packet
 * arrived. When the oldest waiting frame reaches that, whatever blocks it (an incomplete frame, or a
 * run of packets of which none arrived) is given up. Pure logic: time is a parameter, nothing here reads a
 * clock or a socket.
 */
import { SeqUnwrapper, type RtpPacket } from './rtp.js';
import { isVp8Keyframe, parseVp8Descriptor } from './vp8.js';

/** A whole frame, in order. */
export interface Frame {
  /** RTP timestamp. */
  timestamp: number;
  keyframe: boolean;
  captureMs?: number;
  /** Its packets in sequence order, as received. */
  packets: RtpPacket[];
  /** The media bytes (VP8 frame without descriptors; the Opus packet). */
  data: Uint8Array;
  /** When it became whole and was handed out. */
  at: number;
}

export interface JitterOptions {
  kind: 'video' | 'audio';
  /** How long a frame may wait for its missing packets. */
  deadlineMs: number;
  /** How long after a gap appears before the first request (tolerates reordering). */
  nackDelayMs?: number;
  /**
   * Time between two requests for the same packet. Default: twice the measured repair time
   * (request → packet, smoothed), within 10–200 ms, 40 ms before any repair was measured.
   */
  nackRetryMs?: number;
  /** Requests per packet at most. */
  maxNacks?: number;
  /** RTP clock rate, for the interarrival jitter (90 kHz video, 48 kHz audio by default). */
  clockRate?: number;
}

/** Counters since the buffer started. */
export interface JitterStats {
  framesComplete: number;
  framesDropped: number;
  packetsReceived: number;
  /** Packets given up on (never arrived before their deadline). */
  packetsLost: number;
  /** Packets that arrived after we asked for them. */
  packetsRecovered: number;
  duplicates: number;
  /** Packets that arrived after their frame was handed out or dropped. */
  late: number;
  /** Payloads that were not valid for the format. */
  malformed: number;
  bytesReceived: number;
  /** Sequence jumps taken as a restart of the sender. */
  restarts: number;
  /** Interarrival jitter (RFC 3550 §6.4.1), in timestamp units. */
  jitter: number;
}

interface Pending {
  key: number;
  timestamp: number;
  minSeq: number;
  maxSeq: number;
  start?: number;
  end?: number;
  count: number;
  firstAt: number;
  captureMs?: number;
}

interface Missing {
  detectedAt: number;
  askedAt: number;
  tries: number;
  nextAt: number;
}

/** A jump this large is a restarted sender, not a gap to repair. */
const MAX_GAP = 1000;
/** Packets held at most; past this the oldest frame is dropped whatever its deadline. */
const MAX_PACKETS = 4096;

export class JitterBuffer {
  readonly stats: JitterStats = {
    framesComplete: 0,
    framesDropped: 0,
    packetsReceived: 0,
    packetsLost: 0,
    packetsRecovered: 0,
    duplicates: 0,
    late: 0,
    malformed: 0,
    bytesReceived: 0,
    restarts: 0,
    jitter: 0,
  };
  /** True after a video frame was dropped, until a keyframe is handed out: ask for one (PLI). */
  needKeyframe: boolean;
  private readonly unwrap = new SeqUnwrapper();
  private readonly packets = new Map<number, RtpPacket>();
  private readonly frames = new Map<number, Pending>();
  private readonly missing = new Map<number, Missing>();
  private readonly droppedTimestamps: number[] = [];
  private next: number | undefined;
  private highest = 0;
  private emitted = false;
  private oldestArrival = Infinity;
  private lastTransit: number | undefined;
  private readonly nackDelayMs: number;
  private readonly nackRetryMs: number | undefined;
  /** Smoothed time from a NACK to the packet it asked for (an RTT estimate), ms. */
  private repairMs: number | undefined;
  private readonly maxNacks: number;

  constructor(private readonly opts: JitterOptions) {
    this.nackDelayMs = opts.nackDelayMs ?? 5;
    this.nackRetryMs = opts.nackRetryMs;
    this.maxNacks = opts.maxNacks ?? 10;
    this.needKeyframe = opts.kind === 'video';
  }

  /** Takes one packet; says whether it was new (the only kind worth forwarding). */
  push(p: RtpPacket, now: number): 'new' | 'duplicate' | 'late' | 'malformed' {
    let start = false;
    if (this.opts.kind === 'video') {
      try {
        const d = parseVp8Descriptor(p.payload);
        start = d.start && d.partition === 0;
      } catch {
        this.stats.malformed++;
        return 'malformed';
      }
    } else if (p.payload.length === 0) {
      this.stats.malformed++;
      return 'malformed';
    }
    let ext = this.unwrap.unwrap(p.seq);
    if (this.next !== undefined && Math.abs(ext - this.highest) > MAX_GAP) {
      this.restart();
      ext = this.unwrap.unwrap(p.seq);
    }
    if (this.next === undefined) {
      this.next = ext;
      this.highest = ext - 1;
    } else if (ext < this.next) {
      // Before anything was handed out, a reordered earlier packet still counts.
      if (this.emitted || this.next - ext > 64) {
        this.stats.late++;
        return 'late';
      }
      for (let s = ext + 1; s < this.next; s++) this.markMissing(s, now);
      this.next = ext;
    }
    if (this.packets.has(ext)) {
      this.stats.duplicates++;
      return 'duplicate';
    }
    if (this.opts.kind === 'video' && this.droppedTimestamps.includes(p.timestamp)) {
      this.stats.late++;
      return 'late';
    }
    if (ext > this.highest) {
      for (let s = this.highest + 1; s < ext; s++) this.markMissing(s, now);
      this.highest = ext;
      const clock = this.opts.clockRate ?? (this.opts.kind === 'video' ? 90_000 : 48_000);
      const transit = (now * clock) / 1000 - p.timestamp;
      if (this.lastTransit !== undefined) {
        const d = Math.abs(transit - this.lastTransit);
        if (d < clock * 10) this.stats.jitter += (d - this.stats.jitter) / 16;
      }
      this.lastTransit = transit;
    } else {
      const m = this.missing.get(ext);
      if (m) {
        if (m.tries > 0) {
          this.stats.packetsRecovered++;
          const sample = now - m.askedAt;
          this.repairMs =
            this.repairMs === undefined ? sample : this.repairMs * 0.875 + sample * 0.125;
        }
        this.missing.delete(ext);
      }
    }
    this.stats.packetsReceived++;
    this.stats.bytesReceived += p.payload.length;
    this.packets.set(ext, p);
    const key = this.opts.kind === 'video' ? p.timestamp : ext;
    let f = this.frames.get(key);
    if (!f) {
      f = { key, timestamp: p.timestamp, minSeq: ext, maxSeq: ext, count: 0, firstAt: now };
      this.frames.set(key, f);
    }
    f.count++;
    if (ext < f.minSeq) f.minSeq = ext;
    if (ext > f.maxSeq) f.maxSeq = ext;
    if (p.captureMs !== undefined) f.captureMs = p.captureMs;
    if (this.opts.kind === 'audio') {
      f.start = ext;
      f.end = ext;
    } else {
      if (start) f.start = ext;
      if (p.marker) f.end = ext;
    }
    return 'new';
  }

  /** Frames that are whole and next in order, after dropping those past their deadline. */
  poll(now: number): Frame[] {
    const out: Frame[] = [];
    for (;;) {
      const head = this.head();
      if (!head || this.next === undefined) break;
      const whole =
        head.start !== undefined &&
        head.end !== undefined &&
        head.count === head.end - head.start + 1;
      if (whole && head.start === this.next) {
        const frame = this.emit(head, now);
        if (frame) out.push(frame);
        else {
          this.stats.framesDropped++;
          this.drop(head);
        }
        continue;
      }
      // Whatever arrived first among the waiting frames has waited longest: once that is past the
      // deadline, the head (or the gap before it) is given up, so no frame waits longer. A gap
      // was seen when a later packet arrived, so this also bounds waiting for lost whole frames.
      if (now < this.oldestArrival + this.opts.deadlineMs && this.packets.size <= MAX_PACKETS)
        break;
      // Past the deadline: give up on what is missing before the head, or on the head itself.
      this.stats.framesDropped++;
      if (this.opts.kind === 'video') this.needKeyframe = true;
      if (whole && head.minSeq > this.next && head.start === head.minSeq) {
        this.skipTo(head.minSeq); // the gap was earlier frames; the head itself is whole
      } else {
        this.drop(head);
      }
    }
    return out;
  }

  /** Sequence numbers (16-bit) to ask for now. */
  nacks(now: number): number[] {
    const out: number[] = [];
    for (const [s, m] of this.missing) {
      if (this.next !== undefined && s < this.next) {
        this.missing.delete(s);
        continue;
      }
      if (now < m.nextAt || m.tries >= this.maxNacks) continue;
      if (now >= m.detectedAt + this.opts.deadlineMs) continue;
      m.tries++;
      m.askedAt = now;
      m.nextAt = now + this.retryMs();
      out.push(s & 0xffff);
    }
    return out;
  }

  private retryMs(): number {
    if (this.nackRetryMs !== undefined) return this.nackRetryMs;
    if (this.repairMs === undefined) return 40;
    return Math.min(200, Math.max(10, Math.round(this.repairMs * 2 + 5)));
  }

  /** Packets missing right now (for receiver reports). */
  get missingNow(): number {
    return this.missing.size;
  }

  /** Extended highest sequence number seen. */
  get highestSeq(): number {
    return this.highest;
  }

  /** The first frame in sequence order; sets oldestArrival over all waiting frames. */
  private head(): Pending | undefined {
    let head: Pending | undefined;
    this.oldestArrival = Infinity;
    for (const f of this.frames.values()) {
      if (!head || f.minSeq < head.minSeq) head = f;
      if (f.firstAt < this.oldestArrival) this.oldestArrival = f.firstAt;
    }
    return head;
  }

  /** Hands out a whole frame; undefined when its packets are not all its own (a forged run). */
  private emit(f: Pending, now: number): Frame | undefined {
    const packets: RtpPacket[] = [];
    for (let s = f.start!; s <= f.end!; s++) {
      const p = this.packets.get(s);
      if (!p || p.timestamp !== f.timestamp) return undefined;
      packets.push(p);
    }
    for (let s = f.start!; s <= f.end!; s++) this.packets.delete(s);
    this.frames.delete(f.key);
    this.next = f.end! + 1;
    this.emitted = true;
    let data: Uint8Array;
    let keyframe = false;
    if (this.opts.kind === 'video') {
      keyframe = isVp8Keyframe(packets[0]!.payload);
      const parts = packets.map((p) => p.payload.subarray(parseVp8Descriptor(p.payload).offset));
      data = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      if (keyframe) this.needKeyframe = false;
    } else {
      data = packets[0]!.payload;
    }
    this.stats.framesComplete++;
    return { timestamp: f.timestamp, keyframe, captureMs: f.captureMs, packets, data, at: now };
  }

  /** Drops a frame that will not be whole in time, with whatever is missing before it. */
  private drop(f: Pending): void {
    for (let s = f.minSeq; s <= f.maxSeq; s++) this.packets.delete(s);
    this.frames.delete(f.key);
    this.droppedTimestamps.push(f.timestamp);
    if (this.droppedTimestamps.length > 64) this.droppedTimestamps.shift();
    this.skipTo((f.end ?? f.maxSeq) + 1);
  }

  /** Moves the reading point, counting the packets that never came as lost. */
  private skipTo(seq: number): void {
    for (const s of this.missing.keys()) {
      if (s < seq) {
        this.missing.delete(s);
        this.stats.packetsLost++;
      }
    }
    this.next = Math.max(this.next ?? seq, seq);
    this.emitted = true;
  }

  private markMissing(s: number, now: number): void {
    if (!this.packets.has(s) && !this.missing.has(s))
      this.missing.set(s, {
        detectedAt: now,
        askedAt: now,
        tries: 0,
        nextAt: now + this.nackDelayMs,
      });
  }

  /** The sender restarted (or jumped): start over. */
  private restart(): void {
    this.stats.restarts++;
    this.unwrap.reset();
    this.packets.clear();
    this.frames.clear();
    this.missing.clear();
    this.next = undefined;
    this.emitted = false;
    this.lastTransit = undefined;
    if (this.opts.kind === 'video') this.needKeyframe = true;
  }
}
