/**
 * The sending end of compact links (PROTOCOL.md §3.11; protocol/compact.ts): one numbering of
 * certificates and channels per process, shared by all its links, so that a push is encoded once
 * for every compact link however many there are; and per link, which numbers the other end holds,
 * so that each certificate and channel id crosses a link once.
 */
import type { StoredMessage } from '../protocol/common.js';
import { COMPACT_LIMITS, RefWindow } from '../protocol/compact.js';
import { encodeFrame } from '../protocol/frame.js';
import { messageId } from './message-id.js';
import { readClaims } from './tokens.js';

/** A certificate's number, its account name and its `ref` frame. */
export interface CertRef {
  n: number;
  u: string | undefined;
  def: Buffer;
}

/** A channel's number and its `ref` frame. */
export interface ChannelRef {
  n: number;
  def: Buffer;
}

/** Certificates (and channels) numbered at once; the least recently used are forgotten past it. */
const REGISTRY_CAP = 65_536;

/** Numbers for certificates and channels, one sequence each per process. */
export class RefRegistry {
  private nextCert = 0;
  private nextChannel = 0;
  private readonly certs = new Map<string, CertRef>();
  private readonly channels = new Map<string, ChannelRef>();

  cert(cert: string): CertRef {
    let r = this.certs.get(cert);
    if (r) {
      this.certs.delete(cert);
    } else {
      const n = this.nextCert++;
      const u = readClaims(cert)?.u;
      r = {
        n,
        u: typeof u === 'string' ? u : undefined,
        def: encodeFrame({ t: 'ref', k: n, cert }),
      };
    }
    this.certs.set(cert, r);
    if (this.certs.size > REGISTRY_CAP) this.certs.delete(this.certs.keys().next().value!);
    return r;
  }

  channel(channelId: string): ChannelRef {
    let r = this.channels.get(channelId);
    if (r) {
      this.channels.delete(channelId);
    } else {
      const n = this.nextChannel++;
      r = { n, def: encodeFrame({ t: 'ref', c: n, channelId }) };
    }
    this.channels.set(channelId, r);
    if (this.channels.size > REGISTRY_CAP) this.channels.delete(this.channels.keys().next().value!);
    return r;
  }
}

/**
 * Items encoded compactly, and the numbers they use (which the receiving link must hold before
 * they arrive). At most COMPACT_LIMITS.refsPerFrame certificates are named by number; the items
 * of any further author carry their certificate whole.
 */
export interface CompactBatch {
  items: Record<string, unknown>[];
  certs: CertRef[];
  channels: ChannelRef[];
}

/** Encodes `items` compactly with `registry`'s numbers. */
export function compactBatch(registry: RefRegistry, items: readonly StoredMessage[]): CompactBatch {
  const certs = new Map<number, CertRef>();
  const channels = new Map<number, ChannelRef>();
  const out = items.map((m) => {
    const ch = registry.channel(m.channelId);
    channels.set(ch.n, ch);
    if (channels.size > COMPACT_LIMITS.refsPerFrame)
      throw new Error(`a compact frame names at most ${COMPACT_LIMITS.refsPerFrame} channels`);
    const cert = registry.cert(m.cert);
    const byNumber = certs.has(cert.n) || certs.size < COMPACT_LIMITS.refsPerFrame;
    if (byNumber) certs.set(cert.n, cert);
    return compactItem(m, ch.n, cert, byNumber);
  });
  return { items: out, certs: [...certs.values()], channels: [...channels.values()] };
}

/**
 * One item without what the receiver knows or derives: the channel as number `c`, the
 * certificate as number `k` (or whole, when `byNumber` is false), the id when it is the one its
 * content gives, the author when it is the certificate's.
 */
function compactItem(
  m: StoredMessage,
  c: number,
  cert: CertRef,
  byNumber: boolean,
): Record<string, unknown> {
  const { id, channelId: _channel, author, cert: whole, ...rest } = m;
  const out: Record<string, unknown> = { c, ...rest };
  if (byNumber) out.k = cert.n;
  else out.cert = whole;
  if (author !== cert.u) out.author = author;
  if (messageId(m) !== id) out.id = id;
  return out;
}

/** One compact link's end: which numbers the other end holds, and how to send it more. */
export class LinkRefs {
  private readonly certs = new RefWindow();
  private readonly channels = new RefWindow();

  constructor(private readonly send: (frame: Buffer) => void) {}

  /** Sends the `ref` frames `batch` needs that the other end does not hold (before `batch`). */
  prepare(batch: Pick<CompactBatch, 'certs' | 'channels'>): void {
    this.certs.ensure(
      batch.certs.map((r) => r.n),
      (n) => this.send(batch.certs.find((r) => r.n === n)!.def),
    );
    this.channels.ensure(
      batch.channels.map((r) => r.n),
      (n) => this.send(batch.channels.find((r) => r.n === n)!.def),
    );
  }
}

/** One channel's pushes of a turn: each frame, and all back to back. */
export interface Pushed {
  frames: Buffer[];
  all: Buffer;
}

/** Messages as compact `m` frames and the numbers they use. */
export interface CompactPush extends Pushed {
  batch: CompactBatch;
}

/** The full form (§3.5 `message` events) of one channel's messages, for links not compact. */
export function fullPush(channelId: string, messages: readonly StoredMessage[]): Pushed {
  return pushed(
    messages.map((message) =>
      encodeFrame({ t: 'ev', ev: 'message', body: { channelId, message } }),
    ),
  );
}

/** Frames, each and all back to back (one write for a recipient that gets them all). */
function pushed(frames: Buffer[]): Pushed {
  return { frames, all: frames.length === 1 ? frames[0]! : Buffer.concat(frames) };
}

/** Encodes `messages` (pushed together) once for every compact link. */
export function compactPush(
  registry: RefRegistry,
  messages: readonly StoredMessage[],
): CompactPush {
  const batch = compactBatch(registry, messages);
  return { ...pushed(batch.items.map((item) => encodeFrame({ t: 'm', ...item }))), batch };
}

/** The answer of history, sync or search, as compactPage takes it. */
export interface Page {
  messages: StoredMessage[];
  related?: StoredMessage[];
}

/**
 * A page (the answer of history, sync or search) for a compact link: its items compact, after
 * the `ref` frames the link lacks for them have been sent.
 */
export function compactPage(registry: RefRegistry, refs: LinkRefs, page: Page): object {
  const related = page.related ?? [];
  const batch = compactBatch(registry, [...page.messages, ...related]);
  refs.prepare(batch);
  const n = page.messages.length;
  return {
    ...page,
    messages: batch.items.slice(0, n),
    ...(page.related ? { related: batch.items.slice(n) } : {}),
  };
}
