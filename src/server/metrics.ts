/**
 * The server's Prometheus metrics (SPEC §11, `GET /metrics`). One registry per server instance,
 * never prom-client's global one: tests run several servers in one process, and each must
 * answer for itself. What the server already counts (connections, traffic, message counters,
 * queues) is read when a scrape asks (collect callbacks), not counted a second time; what only
 * the wire shows (pushes by type, answers' latency) is read off the frames a connection writes.
 */
import client from 'prom-client';
import { HEADER_BYTES } from '../protocol/frame.js';
import { isOpName } from '../protocol/server-link.js';
import type { MessageCounts } from './channel-service.js';
import type { Conn } from './conn.js';
import type { FramedSocket } from '../shared/framed-socket.js';

/** What the metrics read from their server when scraped. */
export interface MetricsSource {
  conns(): Iterable<Conn<FramedSocket>>;
  trackerEntries(): number;
  counts: MessageCounts;
  /** Posts waiting for the group commit. */
  queuedPosts(): number;
  /** Signature checks waiting for (or on) the verify threads. */
  queuedVerifies(): number;
  /** Password hashes waiting for their turn, by class. */
  queuedScrypt(): { login: number; register: number };
  /** The P2P relay's links now and its counters, when it runs one. */
  relay(): { links: number; bytes: { p2p: number; media: number } } | undefined;
  /** REST API bearer checks: tokens read from the store (valid, invalid), and refusals before. */
  apiTokens(): { valid: number; invalid: number; throttled: number };
}

/** Frame types a server reads: a label outside these is `other` (labels stay few). */
const FRAME_TYPES = new Set(['hello', 'ping', 'pong', 'error']);

/** Request latency buckets, in seconds: a cached read is sub-millisecond, a login ~100 ms. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

// `{"t":"ev","ev":"` and `{"t":"res","id":`: how encodeFrame spells a push and an answer
// (JSON.stringify keeps the key order of the objects the server builds).
const EV_PREFIX = Buffer.from('{"t":"ev","ev":"');
/** A compact link's `message` push (PROTOCOL.md §3.11): counted as the event it stands for. */
const M_PREFIX = Buffer.from('{"t":"m",');
const RES_PREFIX = Buffer.from('{"t":"res","id":');

/** The metrics of one server instance. */
export class ServerMetrics {
  readonly registry = new client.Registry();
  private readonly framesReceived: client.Counter<'op'>;
  private readonly pushes: client.Counter<'type'>;
  private readonly errors: client.Counter<'code'>;
  private readonly latency: client.Histogram<'op'>;
  private readonly commit: client.Histogram;
  /** Requests read and not yet answered, per connection: id → op and start. */
  private readonly started = new WeakMap<Conn, Map<number, { op: string; t0: bigint }>>();

  constructor(src: MetricsSource) {
    const registers = [this.registry];
    // The process's own (CPU, memory, event-loop lag, GC), under their usual names.
    client.collectDefaultMetrics({ register: this.registry });
    new client.Gauge({
      name: 'hchat_connections',
      help: 'Open peer connections, by the role of their session (anonymous: none yet)',
      labelNames: ['role'],
      registers,
      collect() {
        const n = { peer: 0, visitor: 0, anonymous: 0 };
        for (const c of src.conns())
          n[c.session ? (c.session.role === 'user' ? 'peer' : 'visitor') : 'anonymous']++;
        for (const [role, v] of Object.entries(n)) this.set({ role }, v);
      },
    });
    new client.Gauge({
      name: 'hchat_sessions',
      help: 'Sessions with a connection to this instance',
      registers,
      collect() {
        const ids = new Set<string>();
        for (const c of src.conns()) if (c.session) ids.add(c.session.sessionId);
        this.set(ids.size);
      },
    });
    new client.Gauge({
      name: 'hchat_tracker_entries',
      help: 'Entries in the tracker list',
      registers,
      collect() {
        this.set(src.trackerEntries());
      },
    });
    new client.Counter({
      name: 'hchat_messages_stored_total',
      help: 'Messages stored, by how they came (post from a member, forward from a host)',
      labelNames: ['via'],
      registers,
      collect: followCounts('via', () => ({
        post: src.counts.posted,
        forward: src.counts.forwarded,
      })),
    });
    new client.Counter({
      name: 'hchat_messages_duplicate_total',
      help: 'Messages sent again that were already stored (idempotent retries, not stored twice)',
      labelNames: ['via'],
      registers,
      collect: followCounts('via', () => ({ any: src.counts.duplicates })),
    });
    this.pushes = new client.Counter({
      name: 'hchat_pushes_total',
      help: 'Event frames pushed to connections, by event type',
      labelNames: ['type'],
      registers,
    });
    this.framesReceived = new client.Counter({
      name: 'hchat_frames_received_total',
      help: 'Frames read from connections, by operation (requests) or frame type',
      labelNames: ['op'],
      registers,
    });
    this.errors = new client.Counter({
      name: 'hchat_errors_total',
      help: 'Requests answered with an error, by code',
      labelNames: ['code'],
      registers,
    });
    new client.Gauge({
      name: 'hchat_relay_links',
      help: 'P2P links the relay carries now, pending or paired (docs/PROTOCOL.md §3.10)',
      registers,
      collect() {
        this.set(src.relay()?.links ?? 0);
      },
    });
    new client.Counter({
      name: 'hchat_relay_bytes_total',
      help: 'Bytes the relay passed between the two sides of its links, both ways, by what they carry (P2P links, livestream media)',
      labelNames: ['kind'],
      registers,
      collect: followCounts('kind', () => src.relay()?.bytes ?? { p2p: 0, media: 0 }),
    });
    new client.Counter({
      name: 'hchat_api_token_reads_total',
      help: 'REST API bearer tokens read from the store, by what they turned out to be',
      labelNames: ['result'],
      registers,
      collect: followCounts('result', () => {
        const { valid, invalid } = src.apiTokens();
        return { valid, invalid };
      }),
    });
    new client.Counter({
      name: 'hchat_api_tokens_throttled_total',
      help: 'REST API requests refused (429 E_TOO_MANY_BAD_TOKENS) before their token was read: their address group sent too many bad tokens',
      registers,
      collect: followCount(() => src.apiTokens().throttled),
    });
    new client.Gauge({
      name: 'hchat_queue_depth',
      help: 'Work waiting: posts for the group commit, signature checks, password hashes',
      labelNames: ['queue'],
      registers,
      collect() {
        const scrypt = src.queuedScrypt();
        this.set({ queue: 'post_commit' }, src.queuedPosts());
        this.set({ queue: 'verify' }, src.queuedVerifies());
        this.set({ queue: 'scrypt_login' }, scrypt.login);
        this.set({ queue: 'scrypt_register' }, scrypt.register);
      },
    });
    new client.Gauge({
      name: 'hchat_connection_buffered_bytes',
      help: 'Bytes written to connections and not yet taken by the kernel (slow readers)',
      registers,
      collect() {
        let n = 0;
        for (const c of src.conns()) n += c.fs.socket.writableLength;
        this.set(n);
      },
    });
    this.latency = new client.Histogram({
      name: 'hchat_request_duration_seconds',
      help: 'From a request frame read to its answer written, by operation',
      labelNames: ['op'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.commit = new client.Histogram({
      name: 'hchat_store_batch_seconds',
      help: 'Time to store one batch of messages (a group commit of posts, or a forward)',
      buckets: LATENCY_BUCKETS,
      registers,
    });
  }

  /** A frame was read from `conn`: counted, and a request's clock starts. */
  frameIn(conn: Conn, f: Record<string, unknown>): void {
    if (f.t !== 'req') {
      const t = typeof f.t === 'string' && FRAME_TYPES.has(f.t) ? f.t : 'other';
      this.framesReceived.inc({ op: t });
      return;
    }
    const op = typeof f.op === 'string' && isOpName(f.op) ? f.op : 'unknown';
    this.framesReceived.inc({ op });
    if (!Number.isInteger(f.id)) return;
    let m = this.started.get(conn);
    if (!m) this.started.set(conn, (m = new Map()));
    // Bounded by the in-flight cap; a request never answered (its connection closing) is
    // forgotten with its connection, or here if a client keeps some unanswered.
    if (m.size >= 1024) m.clear();
    m.set(f.id as number, { op, t0: process.hrtime.bigint() });
  }

  /**
   * Bytes written to `conn` (one frame or several encoded back to back): pushes are counted by
   * event type, answers end their request's clock.
   */
  framesOut(conn: Conn, buf: Buffer): void {
    for (let o = 0; o + HEADER_BYTES <= buf.length;) {
      const len = buf.readUInt32BE(o);
      const body = o + HEADER_BYTES;
      if (startsWith(buf, body, EV_PREFIX)) {
        const from = body + EV_PREFIX.length;
        const to = buf.indexOf(0x22, from); // the closing quote; event names have no escapes
        if (to > from && to - from <= 40)
          this.pushes.inc({ type: buf.toString('latin1', from, to) });
      } else if (startsWith(buf, body, M_PREFIX)) {
        this.pushes.inc({ type: 'message' });
      } else if (startsWith(buf, body, RES_PREFIX)) {
        this.answered(conn, readInt(buf, body + RES_PREFIX.length));
      }
      o = body + len;
    }
  }

  /** A request was answered with this error code. */
  error(code: string): void {
    this.errors.inc({ code });
  }

  /** One batch of messages was stored in `seconds`. */
  batchStored(seconds: number): void {
    this.commit.observe(seconds);
  }

  /** The registry's text exposition. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private answered(conn: Conn, id: number | undefined): void {
    if (id === undefined) return;
    const m = this.started.get(conn);
    const s = m?.get(id);
    if (!s) return;
    m!.delete(id);
    this.latency.observe({ op: s.op }, Number(process.hrtime.bigint() - s.t0) / 1e9);
  }
}

/**
 * A counter's collect callback that follows counters kept elsewhere (label value → total): it
 * adds what they grew by since the last scrape, so the exposed value equals theirs.
 */
function followCounts<L extends string>(
  labelName: L,
  read: () => Record<string, number>,
): (this: client.Counter<L>) => void {
  const seen = new Map<string, number>();
  return function (this: client.Counter<L>) {
    for (const [value, total] of Object.entries(read())) {
      const delta = total - (seen.get(value) ?? 0);
      seen.set(value, total);
      // inc(0) too: a series is shown (at 0) before its first event.
      this.inc({ [labelName]: value } as Partial<Record<L, string>>, Math.max(0, delta));
    }
  };
}

/** followCounts for a counter without labels. */
function followCount(read: () => number): (this: client.Counter) => void {
  let seen = 0;
  return function (this: client.Counter) {
    const total = read();
    this.inc(Math.max(0, total - seen));
    seen = total;
  };
}

function startsWith(buf: Buffer, at: number, prefix: Buffer): boolean {
  return (
    at + prefix.length <= buf.length &&
    buf.compare(prefix, 0, prefix.length, at, at + prefix.length) === 0
  );
}

/** The non-negative integer written at `at` (a request id), if there is one. */
function readInt(buf: Buffer, at: number): number | undefined {
  let n = 0;
  let i = at;
  for (; i < buf.length && i - at < 16; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) break;
    n = n * 10 + d;
  }
  return i > at ? n : undefined;
}
