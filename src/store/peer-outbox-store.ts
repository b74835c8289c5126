/**
 * The durable outbox of a peer (SPEC §5): what its user writes is stored here as `pending` before
 * anything is sent, so a killed process loses nothing; it becomes `delivered` when a replica
 * acknowledged it, or `failed`, with the reason, when a replica refused it for good, and stays
 * readable until its author dismisses it.
 */
import { PeerHostingStore } from './peer-hosting-store.js';
import { toMessage, type LocalMessage, type Via } from './peer-store-rows.js';

/** The peer store's outbox, over its hosted channels and items (peer-hosting-store.ts). */
export class PeerOutboxStore extends PeerHostingStore {
  /** Stores a message the user just wrote, as pending: the durable outbox. */
  addPending(m: Omit<LocalMessage, 'state' | 'seq' | 'hostSeq' | 'error'>): void {
    this.db.transaction(() => {
      this.q.insertPending.run(...this.row(m));
      this.index.written();
      this.applied(m);
    })();
  }

  /** Marks an outbox message delivered, with the seq the server (or the host) gave it. */
  markDelivered(id: string, seq: number, via: Via = 'server'): void {
    this.db.transaction(() => {
      if (via === 'server') this.q.markDelivered.run(seq, id);
      else this.q.markDeliveredHost.run(seq, id);
      const m = this.q.getMessage.get(id);
      if (m && via === 'server') this.advanceCursor(m.channel_id);
      else if (m) this.advanceHostCursor(m.channel_id);
    })();
  }

  /** Marks an outbox message refused for good, keeping the reason. */
  markFailed(id: string, reason: string): void {
    this.q.markFailed.run(reason, id);
  }

  /** The oldest pending messages of `author`, in the order they were written. */
  pending(author: string, limit: number): LocalMessage[] {
    return this.q.pending.all(author, limit).map(toMessage);
  }

  pendingCount(author: string): number {
    return this.q.pendingCount.get(author)?.n ?? 0;
  }

  /**
   * `author`'s messages not delivered (pending, or failed), in the order they were written, in
   * every channel: also those of channels the account no longer reads, where nothing else shows
   * them.
   */
  undelivered(author: string, limit: number): LocalMessage[] {
    return this.q.undelivered.all(author, limit).map(toMessage);
  }

  /** `author` dismisses a failed message of theirs: it goes. False when there is none such. */
  discardFailed(author: string, id: string): boolean {
    return this.q.discardFailed.run(id, author).changes > 0;
  }

  /** The newest `limit` messages of a channel not yet delivered, in channel order. */
  undeliveredNewest(channelId: string, limit: number): LocalMessage[] {
    return this.q.newestUndelivered.all(channelId, limit).reverse().map(toMessage);
  }
}
