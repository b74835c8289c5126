/**
 * Typing indicators on the server (docs/PROTOCOL.md §3.3 `typing`, §3.5): a member's `typing` is
 * checked (the channel exists, the caller is a member), gated (one per user per channel per
 * TYPING_LIMITS.intervalMs; the rest are dropped quietly) and published on the bus; every
 * instance pushes it to its connections subscribed to the channel, except the typist's own.
 * Nothing is stored, and nothing is logged per typing (PROTOCOL.md §6).
 */
import { HchatError } from '../protocol/errors.js';
import { encodeFrame } from '../protocol/frame.js';
import type { Channel, TrackerEntry } from '../protocol/common.js';
import type { OpReq } from '../protocol/server-link.js';
import { RateLimiter } from '../shared/rate-limit.js';
import { TYPING_LIMITS } from '../shared/limits.js';
import type { BusEvent, EventBus } from './bus.js';
import type { Conn } from './conn.js';

/** What typing needs from its server. */
export interface TypingDeps {
  bus: EventBus;
  /** A channel, if it exists (ChannelService's cache). */
  channel(channelId: string): Promise<Channel | undefined>;
  /** The users (lower-case) of a channel (ChannelService's cache). */
  membersOf(channelId: string): Promise<ReadonlySet<string>>;
  /** Connections of this instance subscribed to a channel's pushes. */
  subscribersOf(channelId: string): Iterable<Conn>;
  /** The tracker entry a connection announced, if any. */
  entryOf(conn: Conn): TrackerEntry | undefined;
  limits?: Partial<Pick<typeof TYPING_LIMITS, 'intervalMs' | 'ttlMs'>>;
}

/** Typing on one server instance. */
export class TypingService {
  private readonly gate: RateLimiter;
  private readonly ttlMs: number;

  constructor(private readonly d: TypingDeps) {
    const interval = d.limits?.intervalMs ?? TYPING_LIMITS.intervalMs;
    // One token, refilled once per interval: the first typing passes, repeats within it do not.
    this.gate = new RateLimiter(1000 / interval, 1, TYPING_LIMITS.maxTracked);
    this.ttlMs = d.limits?.ttlMs ?? TYPING_LIMITS.ttlMs;
  }

  /** `typing` from a user's connection: refused as a post would be, else passed on or dropped. */
  async typing(conn: Conn, b: OpReq<'typing'>): Promise<Record<string, never>> {
    const s = conn.session!;
    const c = await this.d.channel(b.channelId);
    if (!c) throw new HchatError('E_CHANNEL_NOT_FOUND');
    const user = s.username.toLowerCase();
    if (!(await this.d.membersOf(c.id)).has(user)) throw new HchatError('E_NOT_MEMBER');
    // An invisible session (or one that never announced itself) is not revealed by its typing;
    // like a repeat within the interval, it is answered as if passed on.
    if (this.d.entryOf(conn)?.status !== 'online') return {};
    if (this.gate.take(`${user}\n${c.id}`) > 0) return {};
    this.d.bus.publish({
      kind: 'typing',
      channelId: c.id,
      username: s.username,
      expiresAt: Date.now() + this.ttlMs,
    });
    return {};
  }

  /** Pushes a typing state to this instance's subscribers of its channel but the typist's. */
  deliver(e: Extract<BusEvent, { kind: 'typing' }>): void {
    const frame = encodeFrame({
      t: 'ev',
      ev: 'typing',
      body: { channelId: e.channelId, username: e.username, expiresAt: e.expiresAt },
    });
    const typist = e.username.toLowerCase();
    for (const c of this.d.subscribersOf(e.channelId)) {
      if (c.session?.username.toLowerCase() === typist) continue;
      c.fs.sendEncoded(frame);
    }
  }
}
