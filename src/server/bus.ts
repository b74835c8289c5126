/**
 * The server's event fan-out seam. A server instance publishes what happened (a stored message,
 * a tracker change) on the bus and delivers what it receives from the bus to its own
 * connections. `LocalBus` serves one instance; a NATS or Redis bus lets several instances that
 * share one database see each other's events (SPEC §11).
 */
import type { StoredMessage, TrackerEntry } from '../protocol/common.js';
import type { MailEnvelope } from '../protocol/dm.js';

/** Everything instances tell each other. */
export type BusEvent =
  | { kind: 'message'; channelId: string; message: StoredMessage; exceptSession?: string }
  /** A tracker entry appeared (no `before`), changed, or left (no `after`). */
  | { kind: 'tracker'; before?: TrackerEntry; after?: TrackerEntry }
  | { kind: 'member_joined'; channelId: string; username: string }
  /** A member left, or its owner removed it: it no longer reads the channel. */
  | { kind: 'member_left'; channelId: string; username: string }
  /** The owner changed the channel (a `channel` item was stored): caches are stale. */
  | { kind: 'channel_changed'; channelId: string; deleted: boolean }
  /** A member is typing (never stored; typing-service.ts). */
  | { kind: 'typing'; channelId: string; username: string; expiresAt: number }
  /** A user set a new avatar (avatar-service.ts). */
  | { kind: 'avatar'; username: string; hash: string; ts: number }
  /** An envelope was left in a device's mailbox (dm-service.ts): its bound connections hear. */
  | { kind: 'dm'; deviceId: string; envelope: MailEnvelope };

/** Publish/subscribe between server instances. */
export interface EventBus {
  publish(event: BusEvent): void;
  /** Returns a function that unsubscribes. */
  subscribe(handler: (event: BusEvent) => void): () => void;
  close(): Promise<void>;
}

/** In-process bus: delivers synchronously to this process's subscribers. */
export class LocalBus implements EventBus {
  private readonly handlers = new Set<(event: BusEvent) => void>();

  publish(event: BusEvent): void {
    for (const h of this.handlers) h(event);
  }

  subscribe(handler: (event: BusEvent) => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  async close(): Promise<void> {
    this.handlers.clear();
  }
}
