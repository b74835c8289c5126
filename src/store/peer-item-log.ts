/**
 * The items of a peer's channels as `<data>/peer.db` holds them, and what the parts built on it
 * (peer-hosting-store.ts, peer-outbox-store.ts, peer-store.ts) share: the database, items stored
 * as they arrive from the server or a host (idempotent by id), what a stored item does (a delete
 * erases its message, the owner's channel item changes the channel), and the cursors up to which
 * this peer holds every message without a gap.
 */
import type Database from 'better-sqlite3';
import type { StoredMessage } from '../protocol/common.js';
import { channelSettings } from '../shared/item-rules.js';
import { erasedByDelete, erasedOnArrival, eraser, type ItemLookup } from './item-effects.js';
import { itemColumns, tombstoneColumns } from './item-columns.js';
import { canonicalSig } from './canonical-spelling.js';
import { openDatabase } from './sqlite.js';
import { SearchIndex } from './search-index.js';
import { PEER_MIGRATIONS } from './peer-store-schema.js';
import { peerQueries, type PeerQueries } from './peer-store-queries.js';
import { sameContent, toMessage, type Authored, type LocalMessage } from './peer-store-rows.js';

/** The peer's SQLite store: its items, their effects and cursors. */
export class PeerItemLog {
  protected readonly db: Database.Database;
  protected readonly q: PeerQueries;
  protected readonly index: SearchIndex;

  constructor(file: string) {
    this.db = openDatabase(file, PEER_MIGRATIONS);
    const db = this.db;
    this.index = new SearchIndex(db);
    this.q = peerQueries(db);
  }

  /**
   * The bound values of an item's insert (id … cert, kind, target, ext): a message or edit whose
   * delete is here already is stored as a tombstone (store/item-columns.ts).
   */
  protected row(m: Omit<Authored, 'seq'>) {
    const c = this.erasedHere(m) ? tombstoneColumns(m) : itemColumns(m);
    return [
      m.id,
      m.channelId,
      m.author,
      m.ts,
      m.lc,
      c.text,
      m.sig,
      m.cert,
      c.kind,
      c.target,
      c.ext,
    ];
  }

  protected ownerOf(channelId: string): string {
    return this.q.anyChannel.get(channelId)?.owner ?? '';
  }

  /** How the erasure rules (item-effects.ts) find items here. */
  private readonly lookup: ItemLookup<LocalMessage> = {
    getItem: (id) => this.getMessage(id),
    related: (id) => this.q.related.all(id).map(toMessage),
    owner: (channelId) => this.ownerOf(channelId),
  };

  /** The delete held that erased this tombstone (posted with it: `post`'s `deletedBy`). */
  eraserOf(m: Omit<Authored, 'seq'>): LocalMessage | undefined {
    return eraser(m, this.lookup);
  }

  private erasedHere(m: Omit<Authored, 'seq'>): boolean {
    return erasedOnArrival(m, this.lookup);
  }

  /** After an item is stored: a delete erases, a channel item changes the channel. */
  protected applied(m: Omit<Authored, 'seq'>): void {
    this.applyDelete(m);
    this.applyChannelChange(m);
  }

  /**
   * After the owner's channel item is stored: every account's view of the channel takes its
   * settings (per field the newest); a removed member leaves the host's member list, and the
   * channel leaves the removed account's list; a deleted channel leaves every list, and its
   * messages go (a host keeps them until the server has the deletion: `purgeDeleted`), but the
   * outbox's: a pending item is still sent (a replica's refusal tells why it failed), a failed
   * one stays readable (`undelivered`) until its author dismisses it.
   */
  private applyChannelChange(item: Omit<Authored, 'seq'>): void {
    if (item.kind !== 'channel' || !item.change) return;
    const c = this.q.anyChannel.get(item.channelId);
    const owner = c?.owner ?? '';
    if (!c || item.author.toLowerCase() !== owner.toLowerCase()) return;
    if (item.change.deleted) {
      this.q.dropChannelRows.run(item.channelId);
      if (!this.isHosted(item.channelId)) this.q.dropReceived.run(item.channelId);
      return;
    }
    const rows = this.q.channelItems.all(item.channelId).map(toMessage);
    const s = channelSettings(rows, owner);
    this.q.setChannel.run(
      s.name ?? c.name,
      s.topic ?? c.topic,
      (s.allowVisitors ?? c.allow_visitors === 1) ? 1 : 0,
      item.channelId,
    );
    const gone = item.change.remove;
    if (gone && gone.toLowerCase() !== owner.toLowerCase()) {
      this.q.dropMember.run(item.channelId, gone);
      this.q.dropAccountChannel.run(gone, item.channelId);
    }
  }

  /** After a delete is stored: its message and that message's edits lose their text. */
  private applyDelete(d: Omit<Authored, 'seq'>): void {
    for (const m of erasedByDelete(d, this.lookup)) {
      const t = tombstoneColumns(m);
      this.q.erase.run(t.text, t.ext, m.id);
    }
  }

  /**
   * The items that name these messages (edits, deletes, reactions), from this peer's copy: what
   * `messageState` (shared/item-rules.ts) folds into what each shows.
   */
  related(ids: readonly string[]): LocalMessage[] {
    return ids.flatMap((id) => this.q.related.all(id).map(toMessage));
  }

  /**
   * Stores messages the server sent (push, fetch or sync; a host's go through storeFromHost);
   * idempotent by id. A pending message of ours that comes back this way is delivered. Returns
   * the ones that were new here.
   */
  storeReceived(messages: readonly StoredMessage[]): StoredMessage[] {
    return this.db.transaction(() => {
      const fresh: StoredMessage[] = [];
      const channels = new Set<string>();
      for (const m of messages) {
        const before = this.q.getMessage.get(m.id);
        this.q.insertStored.run(...this.row(m), m.seq);
        this.index.written();
        if (!before) {
          fresh.push(m);
          this.applied(m);
        }
        channels.add(m.channelId);
      }
      for (const c of channels) this.advanceCursor(c);
      return fresh;
    })();
  }

  /**
   * Stores messages a host sent, numbered by its host seq; idempotent by id. A message whose
   * host seq already numbers another message here is not stored (a host must number each message
   * once): it is returned in `conflicts`.
   */
  storeFromHost(messages: readonly StoredMessage[]): {
    fresh: StoredMessage[];
    conflicts: StoredMessage[];
  } {
    return this.db.transaction(() => {
      const fresh: StoredMessage[] = [];
      const conflicts: StoredMessage[] = [];
      const channels = new Set<string>();
      for (const m of messages) {
        const taken = this.q.idAtHostSeq.get(m.channelId, m.seq);
        const before = this.q.getMessage.get(m.id);
        if (
          (taken && taken.id !== m.id) ||
          (before?.host_seq != null && before.host_seq !== m.seq)
        ) {
          conflicts.push(m);
          continue;
        }
        this.q.insertFromHost.run(...this.row(m), m.seq);
        this.index.written();
        if (!before) {
          fresh.push(m);
          this.applied(m);
        }
        channels.add(m.channelId);
      }
      for (const c of channels) this.advanceHostCursor(c);
      return { fresh, conflicts };
    })();
  }

  /** True when this peer hosts the channel: its primary copy is here (peer-hosting-store.ts). */
  isHosted(channelId: string): boolean {
    return this.q.isHosted.get(channelId) !== undefined;
  }

  /** Runs `fn` in one transaction (one commit for many writes). */
  batch<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /** True when this exact message (content and signature) is stored here already. */
  holds(m: StoredMessage): boolean {
    const r = this.q.getMessage.get(m.id);
    return (
      r !== undefined && canonicalSig(r.sig) === m.sig && r.cert === m.cert && sameContent(r, m)
    );
  }

  /** Highest host seq up to which this member holds every message of the channel. */
  hostCursor(channelId: string): number {
    return this.q.hostCursor.get(channelId)?.cursor ?? 0;
  }

  protected advanceHostCursor(channelId: string): void {
    let c = this.hostCursor(channelId);
    const start = c;
    while (this.q.hasHostSeq.get(channelId, c + 1)) c++;
    if (c > start) this.q.setHostCursor.run(c, channelId, c);
  }

  getMessage(id: string): LocalMessage | undefined {
    const r = this.q.getMessage.get(id);
    return r && toMessage(r);
  }

  /** Lowest cursor any account on this peer holds for a channel (where catch-up starts). */
  cursor(channelId: string): number {
    return this.q.cursor.get(channelId)?.cursor ?? 0;
  }

  /** Moves the channel's cursor over every contiguous seq this peer now holds. */
  protected advanceCursor(channelId: string): void {
    let c = this.cursor(channelId);
    const start = c;
    while (this.q.hasSeq.get(channelId, c + 1)) c++;
    if (c > start) this.q.setCursor.run(c, channelId, c);
  }

  close(): void {
    this.index.close();
    this.db.close();
  }
}
