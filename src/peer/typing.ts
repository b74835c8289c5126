/**
 * Typing indicators on a peer (issue 13 item 5; docs/PROTOCOL.md §3.3, §4.2): what this peer's
 * user types is announced to the channel's current source (its host over P2P while that link is
 * up, the server otherwise; the host itself pushes to its members directly); what members type
 * in a channel hosted here is gated and pushed to its other subscribers; what the host or the
 * server pushes becomes a local `typing` event (GET /api/events). Never stored, never logged.
 * An invisible user sends none, and a host passes on none from a session it cannot see online.
 */
import { HchatError } from '../protocol/errors.js';
import type { Status, TrackerEntry } from '../protocol/common.js';
import type { TypingEvent } from '../protocol/typing-ops.js';
import type { LinkIdentity } from '../shared/handshake.js';
import { TYPING_LIMITS } from '../shared/limits.js';
import { RateLimiter } from '../shared/rate-limit.js';
import type { EventHub } from './event-hub.js';
import type { HostLink } from './host-link.js';
import type { HostService } from './host-service.js';
import type { ServerLink } from './server-link.js';
import type { SavedSession } from './session-file.js';
import { TRANSIENT } from './delivery.js';

/** What typing needs from its node. */
export interface TypingDeps {
  events: EventHub;
  hostService: HostService;
  session(): SavedSession | undefined;
  /** The status the user chose. */
  status(): Status;
  /** True when the logged-in account joined (or hosts) the channel. */
  isJoined(channelId: string): boolean;
  isHostedHere(channelId: string): boolean;
  /** The up host link that serves a channel, if any. */
  hostLink(channelId: string): HostLink | undefined;
  /** True when `link` is the up link that serves `channelId`. */
  serves(link: HostLink, channelId: string): boolean;
  /** The server link while it carries our session. */
  server(): ServerLink | undefined;
  /** The tracker entries this session sees (invisible sessions of others are not among them). */
  entries(): readonly TrackerEntry[];
}

/** One peer's typing indicators. */
export class Typing {
  /** As a host: one typing per member per hosted channel per interval. */
  private readonly gate = new RateLimiter(
    1000 / TYPING_LIMITS.intervalMs,
    1,
    TYPING_LIMITS.maxTracked,
  );

  constructor(private readonly d: TypingDeps) {}

  /**
   * This peer's user is typing in `channelId` (POST /api/channels/:id/typing). Sent to the
   * channel's current source; nothing is sent while invisible, or when no source is reachable.
   */
  async send(channelId: string): Promise<void> {
    const s = this.d.session();
    if (!s) throw new HchatError('E_AUTH_REQUIRED');
    if (s.role !== 'user') throw new HchatError('E_VISITOR_READ_ONLY', 'visitors cannot type');
    if (!this.d.isJoined(channelId)) throw new HchatError('E_NOT_MEMBER');
    if (this.d.status() !== 'online') return; // invisible (or offline): nobody learns of it
    if (this.d.isHostedHere(channelId)) {
      this.pass({ username: s.username, sessionId: s.sessionId, role: 'user' }, channelId);
      return;
    }
    const host = this.d.hostLink(channelId);
    const server = host ? undefined : this.d.server();
    try {
      if (host) await host.request('typing', { channelId });
      else await server?.request('typing', { channelId });
    } catch (err) {
      // A typing that does not get through is simply not shown: the next one will be.
      if (!(err instanceof HchatError) || !TRANSIENT.has(err.code)) throw err;
    }
  }

  /**
   * As the host: a member (the host service checked its rights) is typing. Passed on to the
   * other subscribers and to this peer's user unless the member's session is not visible online
   * here (an invisible user is never revealed) or it typed within the interval.
   */
  fromMember(who: LinkIdentity, channelId: string): void {
    const online = this.d
      .entries()
      .some((e) => e.sessionId === who.sessionId && e.status === 'online');
    if (online) this.pass(who, channelId);
  }

  /** A `typing` pushed by the server. */
  fromServer(e: TypingEvent): void {
    if (this.d.isJoined(e.channelId)) this.show(e);
  }

  /** A `typing` pushed by a host: taken only for a channel that host serves us. */
  fromHost(link: HostLink, e: TypingEvent): void {
    if (this.d.serves(link, e.channelId)) this.show(e);
  }

  private pass(who: LinkIdentity, channelId: string): void {
    if (this.gate.take(`${who.username.toLowerCase()}\n${channelId}`) > 0) return;
    const e = { channelId, username: who.username, expiresAt: Date.now() + TYPING_LIMITS.ttlMs };
    this.d.hostService.pushTyping(e);
    this.show(e);
  }

  /**
   * A local `typing` event, unless it is our own user's. Its expiry is counted on this peer's
   * clock (the pusher's `expiresAt` is on another machine's clock).
   */
  private show(e: TypingEvent): void {
    if (e.username.toLowerCase() === this.d.session()?.username.toLowerCase()) return;
    this.d.events.emit('typing', {
      channelId: e.channelId,
      username: e.username,
      expiresAt: Date.now() + TYPING_LIMITS.ttlMs,
    });
  }
}
