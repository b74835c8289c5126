/**
 * A peer's own storage (`<data>/peer.db`): the channels each account on this peer joined, a
 * cache of their messages, and the durable outbox. A message this peer's user writes is inserted
 * here as `pending` before anything is sent, so a killed process loses nothing; it becomes
 * `delivered` when a replica acknowledged it (or it arrived from one), or `failed` when a replica
 * refused it for good (the reason is kept).
 *
 * Built in parts, each over the one before: the items, their effects and cursors
 * (peer-item-log.ts), the hosted channels (peer-hosting-store.ts), the outbox
 * (peer-outbox-store.ts); here, each account's channels and what it reads of them, and the
 * peer's small lasting facts (settings, revoked sessions).
 */
import type { Channel, FileRef } from '../protocol/common.js';
import type { ApiFile } from '../peer/api-shapes.js';
import { channelSettings } from '../shared/item-rules.js';
import { namedMentions } from '../shared/mention-syntax.js';
import { PeerOutboxStore } from './peer-outbox-store.js';
import { toChannel, toMessage, type LocalChannel, type LocalMessage } from './peer-store-rows.js';

export {
  hostNumbered,
  toStored,
  type Authored,
  type LocalChannel,
  type LocalMessage,
  type MessageState,
  type Via,
} from './peer-store-rows.js';

/** The peer's SQLite store. */
export class PeerStore extends PeerOutboxStore {
  /** How a message's files are shown (set by the node, which holds the files: peer/files.ts). */
  fileView?: (channelId: string, ref: FileRef) => ApiFile;

  get(key: string): string | undefined {
    return this.q.getKv.get(key)?.value;
  }

  set(key: string, value: string): void {
    this.q.setKv.run(key, value);
  }

  /** Forgets a key of `kv` (nothing when it is not there). */
  delete(key: string): void {
    this.q.deleteKv.run(key);
  }

  /** True when the server said this session was revoked (kept across restarts). */
  isSessionRevoked(sessionId: string): boolean {
    return this.q.isRevoked.get(sessionId) !== undefined;
  }

  /**
   * Keeps a session the server said was revoked. Bounded: past `max` the oldest go (their
   * certificates, at most MESSAGE_LIMITS.certTtlMs long, have most likely expired by then).
   */
  addRevokedSession(sessionId: string, now: number, max = 50_000): void {
    this.q.addRevoked.run(sessionId, now);
    const { n } = this.q.countRevoked.get()!;
    if (n > max) this.q.pruneRevoked.run(n - max);
  }

  /**
   * Records that `account` joined (or hosts, or views) a channel; the first time, since when its
   * messages count as unread (what was written before is history, not news).
   */
  saveChannel(account: string, c: Channel): void {
    this.q.upsertChannel.run(
      account,
      c.id,
      c.name,
      c.owner,
      c.allowVisitors ? 1 : 0,
      c.createdAt,
      c.topic ?? '',
      Date.now(),
    );
  }

  channels(account: string): LocalChannel[] {
    return this.q.channels.all(account).map(toChannel);
  }

  channel(account: string, id: string): LocalChannel | undefined {
    const r = this.q.channel.get(account, id);
    return r && toChannel(r);
  }

  unread(account: string, channelId: string): number {
    return this.q.unread.get(account, channelId, account)?.n ?? 0;
  }

  /**
   * Unread messages of a channel that mention `account` (by name or `here`): signed in its
   * `mentions` and named in its text, as the message shows it (PROTOCOL.md §2.2).
   */
  unreadMentions(account: string, channelId: string): number {
    const me = account.toLowerCase();
    let n = 0;
    for (const r of this.q.unreadMentions.iterate(account, channelId, account, account)) {
      const { mentions } = JSON.parse(r.ext) as { mentions?: string[] };
      if (namedMentions(r.text ?? undefined, mentions).some((x) => x === me || x === 'here')) n++;
    }
    return n;
  }

  markRead(account: string, channelId: string): void {
    this.q.markRead.run(channelId, account, channelId);
  }

  /**
   * An account leaves a channel (or learns it was removed, or the channel is gone). Once no
   * account here holds it, what was received of it goes; the outbox's items stay (SPEC §5: a
   * post accepted here is never lost): pending ones are still sent, and the replica that refuses
   * them says why they failed (README "Local API", `GET /api/outbox`).
   */
  dropChannel(account: string, channelId: string): void {
    this.db.transaction(() => {
      this.q.dropAccountChannel.run(account, channelId);
      if (!this.q.anyChannel.get(channelId) && !this.isHosted(channelId))
        this.q.dropReceived.run(channelId);
    })();
  }

  /**
   * True when the channel's owner removed this user (a `channel` item held here says so). `owner`
   * when this peer may no longer know it: once the removal dropped the channel's last row here.
   */
  isRemoved(channelId: string, username: string, owner = this.ownerOf(channelId)): boolean {
    const rows = this.q.channelItems.all(channelId).map(toMessage);
    if (rows.length === 0) return false;
    return channelSettings(rows, owner).removed.includes(username.toLowerCase());
  }

  /** Who wrote in a channel, as far as this peer's copy tells. */
  authors(channelId: string): string[] {
    return this.q.authors.all(channelId).map((r) => r.author);
  }

  /** The owner of a channel this peer knows ('' when none). */
  channelOwner(channelId: string): string {
    return this.ownerOf(channelId);
  }

  /** A page of the local copy: the newest `limit` before `before`, in channel order. */
  page(
    channelId: string,
    limit: number,
    before?: LocalMessage,
  ): { messages: LocalMessage[]; hasMore: boolean } {
    const rows = before
      ? this.q.olderThan.all(channelId, before.ts, before.lc, before.id, limit + 1)
      : this.q.newest.all(channelId, limit + 1);
    const hasMore = rows.length > limit;
    if (hasMore) rows.pop();
    return { messages: rows.reverse().map(toMessage), hasMore };
  }

  /**
   * Around a message: up to `half` before it, it, and up to `half` after it, in channel order;
   * whether older (`hasMore`) and newer (`hasNewer`) ones remain.
   */
  around(
    m: LocalMessage,
    half: number,
  ): { messages: LocalMessage[]; hasMore: boolean; hasNewer: boolean } {
    const older = this.q.olderThan.all(m.channelId, m.ts, m.lc, m.id, half + 1);
    const newer = this.q.newerThan.all(m.channelId, m.ts, m.lc, m.id, half + 1);
    const hasMore = older.length > half;
    const hasNewer = newer.length > half;
    if (hasMore) older.pop();
    if (hasNewer) newer.pop();
    return {
      messages: [...older.reverse().map(toMessage), m, ...newer.map(toMessage)],
      hasMore,
      hasNewer,
    };
  }

  /**
   * Messages of `channelIds` whose shown text matches `match` (shared/search-text.ts `ftsMatch`),
   * newest first, older than message `before` when given.
   */
  search(
    match: string,
    channelIds: readonly string[],
    limit: number,
    before?: string,
  ): Array<{ message: LocalMessage; shown: string }> {
    return this.index.hits(match, channelIds, limit, before).flatMap((h) => {
      const message = this.getMessage(h.id);
      return message ? [{ message, shown: h.shown }] : [];
    });
  }
}
