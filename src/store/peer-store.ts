/**
 * A peer's own storage (`<data>/peer.db`): the channels each account on this peer joined, a
 * cache of their messages, and the durable outbox. A message this peer's user writes is inserted
 * here as `pending` before anything is sent, so a killed process loses nothing; it becomes
 * `delivered` when a replica acknowledged it (or it arrived from one), or `failed` when a replica
 * refused it for good (the reason is kept).
 */
import type Database from 'better-sqlite3';
import type { Channel, FileRef, StoredMessage } from '../protocol/common.js';
import type { ApiFile } from '../peer/api-shapes.js';
import { HchatError } from '../protocol/errors.js';
import { channelSettings } from '../shared/item-rules.js';
import { namedMentions } from '../shared/mention-syntax.js';
import { erasedByDelete, erasedOnArrival, eraser, type ItemLookup } from './item-effects.js';
import { openDatabase } from './sqlite.js';
import { SEARCH_DEFERRED_MIGRATION, SEARCH_MIGRATION, SearchIndex } from './search-index.js';
import {
  itemColumns,
  itemOfColumns,
  sameItem,
  tombstoneColumns,
  type ItemColumns,
} from './item-columns.js';
import { canonicalSig } from './canonical-spelling.js';

/** Delivery state of a message on this peer. */
export type MessageState = 'pending' | 'delivered' | 'failed';

/** An item (a message, or a change to one or to the channel) as this peer holds it. */
export type LocalMessage = Omit<StoredMessage, 'seq'> & {
  state: MessageState;
  /** Sequence number on the server, once known. */
  seq: number | null;
  /** Sequence number on the channel's host, once known. */
  hostSeq: number | null;
  error: string | null;
};

/** A channel as one account on this peer sees it. */
export interface LocalChannel extends Channel {
  /** Highest server seq up to which this peer holds every message. */
  cursor: number;
}

const MIGRATIONS = [
  `
  CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE channels (
    account TEXT NOT NULL COLLATE NOCASE,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    allow_visitors INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    cursor INTEGER NOT NULL DEFAULT 0,
    read_local INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account, id)
  );
  CREATE TABLE messages (
    local_seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    channel_id TEXT NOT NULL,
    author TEXT NOT NULL,
    ts INTEGER NOT NULL,
    lc INTEGER NOT NULL,
    text TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    seq INTEGER,
    error TEXT
  );
  CREATE INDEX messages_order ON messages(channel_id, ts, lc, id);
  CREATE INDEX messages_seq ON messages(channel_id, seq);
  CREATE INDEX messages_pending ON messages(author, local_seq) WHERE state = 'pending';
  `,
  // 2: channel hosting. A hosted channel's primary copy is here, numbered by host_seq; members
  // keep a cursor into it (host_cursor) beside their server cursor.
  `
  CREATE TABLE hosted (channel_id TEXT PRIMARY KEY, last_host_seq INTEGER NOT NULL DEFAULT 0);
  CREATE TABLE hosted_members (
    channel_id TEXT NOT NULL,
    username TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (channel_id, username)
  ) WITHOUT ROWID;
  ALTER TABLE messages ADD COLUMN host_seq INTEGER;
  CREATE UNIQUE INDEX messages_host_seq ON messages(channel_id, host_seq);
  CREATE INDEX messages_upload ON messages(channel_id, host_seq) WHERE seq IS NULL;
  ALTER TABLE channels ADD COLUMN host_cursor INTEGER NOT NULL DEFAULT 0;
  `,
  // 3: signed messages.
  `
  ALTER TABLE messages ADD COLUMN sig TEXT NOT NULL DEFAULT '';
  ALTER TABLE messages ADD COLUMN cert TEXT NOT NULL DEFAULT '';
  `,
  // 4: rich messages. Every item of a channel's log (message, edit, delete, reaction, channel
  // change) is a row; `target` names the message a change is about (store/item-columns.ts).
  `
  ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'message';
  ALTER TABLE messages ADD COLUMN target TEXT;
  ALTER TABLE messages ADD COLUMN ext TEXT;
  CREATE INDEX messages_target ON messages(target) WHERE target IS NOT NULL;
  CREATE INDEX messages_shown ON messages(channel_id, ts, lc, id) WHERE kind = 'message';
  CREATE INDEX messages_channel_items ON messages(channel_id) WHERE kind = 'channel';
  ALTER TABLE channels ADD COLUMN topic TEXT NOT NULL DEFAULT '';
  `,
  // 5: full-text search over what messages show (store/search-index.ts).
  SEARCH_MIGRATION,
  // 6: new messages are indexed for search in batches, after the transaction that stores them.
  SEARCH_DEFERRED_MIGRATION,
  // 7: sessions the server said were revoked (logout): their P2P handshakes are refused here,
  // after a restart too (PROTOCOL.md §4.1).
  `
  CREATE TABLE revoked_sessions (session_id TEXT PRIMARY KEY, learnt_at INTEGER NOT NULL);
  CREATE INDEX revoked_sessions_learnt ON revoked_sessions(learnt_at);
  `,
  // 8: when the account joined the channel on this peer (ms). The history written before that is
  // not unread: a channel joined (or first seen on this device) opens at its newest message, as in
  // Discord, not at its first under a "New messages" divider. 0 (before): everything counts.
  `
  ALTER TABLE channels ADD COLUMN joined_at INTEGER NOT NULL DEFAULT 0;
  `,
];

interface MessageRow extends ItemColumns {
  local_seq: number;
  id: string;
  channel_id: string;
  author: string;
  ts: number;
  lc: number;
  text: string;
  sig: string;
  cert: string;
  state: MessageState;
  seq: number | null;
  host_seq: number | null;
  error: string | null;
}

/** A message that may mention someone: its text and members (`ext`, JSON). */
interface MentionCandidate {
  text: string | null;
  ext: string;
}

interface ChannelRow {
  id: string;
  name: string;
  owner: string;
  allow_visitors: number;
  created_at: number;
  cursor: number;
  topic: string;
}

function toMessage(r: MessageRow): LocalMessage {
  return {
    id: r.id,
    channelId: r.channel_id,
    author: r.author,
    ts: r.ts,
    lc: r.lc,
    ...itemOfColumns(r),
    sig: canonicalSig(r.sig),
    cert: r.cert,
    state: r.state,
    seq: r.seq,
    hostSeq: r.host_seq,
    error: r.error,
  };
}

/** True when a stored row holds the same item (what the author signed) as `m`. */
function sameContent(r: MessageRow, m: Omit<Authored, 'seq' | 'sig' | 'cert'>): boolean {
  return sameItem(toMessage(r), m);
}

/** The fields of a message every replica agrees on (no numbering, no local state). */
export function toStored(m: Omit<Authored, 'seq'>): Omit<StoredMessage, 'seq'> {
  return {
    id: m.id,
    channelId: m.channelId,
    author: m.author,
    ts: m.ts,
    lc: m.lc,
    ...itemOfColumns(itemColumns(m)),
    sig: m.sig,
    cert: m.cert,
  };
}

/** A message of a hosted channel as the P2P link carries it: `seq` is the host's number. */
export function hostNumbered(m: LocalMessage): StoredMessage {
  return { ...toStored(m), seq: m.hostSeq! };
}

function toChannel(r: ChannelRow): LocalChannel {
  return {
    id: r.id,
    name: r.name,
    owner: r.owner,
    allowVisitors: r.allow_visitors === 1,
    createdAt: r.created_at,
    cursor: r.cursor,
    ...(r.topic ? { topic: r.topic } : {}),
  };
}

const COLS =
  'local_seq, id, channel_id, author, ts, lc, text, sig, cert, state, seq, host_seq, error, kind, target, ext';

/** Which replica's numbering a received message carries. */
export type Via = 'server' | 'host';

/** A message as a replica stores it, before any numbering (or with the server's). */
export type Authored = Omit<StoredMessage, 'seq'> & { seq?: number };

/** The peer's SQLite store. */
export class PeerStore {
  private readonly db: Database.Database;
  private readonly q;
  private readonly index: SearchIndex;
  /** How a message's files are shown (set by the node, which holds the files: peer/files.ts). */
  fileView?: (channelId: string, ref: FileRef) => ApiFile;

  constructor(file: string) {
    this.db = openDatabase(file, MIGRATIONS);
    const db = this.db;
    this.index = new SearchIndex(db);
    this.q = {
      getKv: db.prepare<[string], { value: string }>('SELECT value FROM kv WHERE key = ?'),
      setKv: db.prepare(
        'INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      ),
      deleteKv: db.prepare('DELETE FROM kv WHERE key = ?'),
      isRevoked: db.prepare<[string], { n: number }>(
        'SELECT 1 AS n FROM revoked_sessions WHERE session_id = ?',
      ),
      addRevoked: db.prepare(
        'INSERT INTO revoked_sessions (session_id, learnt_at) VALUES (?, ?) ON CONFLICT DO NOTHING',
      ),
      countRevoked: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM revoked_sessions'),
      pruneRevoked: db.prepare(
        `DELETE FROM revoked_sessions WHERE session_id IN
           (SELECT session_id FROM revoked_sessions ORDER BY learnt_at LIMIT ?)`,
      ),
      upsertChannel: db.prepare(
        `INSERT INTO channels (account, id, name, owner, allow_visitors, created_at, topic, joined_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(account, id) DO UPDATE SET name = excluded.name,
           allow_visitors = excluded.allow_visitors, topic = excluded.topic`,
      ),
      channels: db.prepare<[string], ChannelRow>(
        'SELECT * FROM channels WHERE account = ? ORDER BY created_at, id',
      ),
      channel: db.prepare<[string, string], ChannelRow>(
        'SELECT * FROM channels WHERE account = ? AND id = ?',
      ),
      unread: db.prepare<[string, string, string], { n: number }>(
        `SELECT COUNT(*) AS n FROM messages m JOIN channels c ON c.id = m.channel_id AND c.account = ?
         WHERE m.channel_id = ? AND m.local_seq > c.read_local AND m.ts >= c.joined_at
         AND m.author <> ? COLLATE NOCASE
         AND m.kind = 'message'`,
      ),
      // Candidates only: whether the text names the mention is checked in unreadMentions.
      unreadMentions: db.prepare<[string, string, string, string], MentionCandidate>(
        `SELECT m.text AS text, m.ext AS ext FROM messages m JOIN channels c ON c.id = m.channel_id AND c.account = ?
         WHERE m.channel_id = ? AND m.local_seq > c.read_local AND m.ts >= c.joined_at
         AND m.author <> ? COLLATE NOCASE
         AND m.kind = 'message' AND m.ext IS NOT NULL
         AND EXISTS (SELECT 1 FROM json_each(m.ext, '$.mentions') j WHERE j.value IN (lower(?), 'here'))`,
      ),
      markRead: db.prepare(
        `UPDATE channels SET read_local = (SELECT COALESCE(MAX(local_seq), 0) FROM messages WHERE channel_id = ?)
         WHERE account = ? AND id = ?`,
      ),
      insertPending: db.prepare(
        `INSERT INTO messages (id, channel_id, author, ts, lc, text, sig, cert, kind, target, ext, state)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')`,
      ),
      getMessage: db.prepare<[string], MessageRow>(`SELECT ${COLS} FROM messages WHERE id = ?`),
      insertStored: db.prepare(
        `INSERT INTO messages (id, channel_id, author, ts, lc, text, sig, cert, kind, target, ext, state, seq)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'delivered', ?)
         ON CONFLICT(id) DO UPDATE SET state = 'delivered', seq = excluded.seq, error = NULL
         WHERE messages.state <> 'delivered' OR messages.seq IS NULL`,
      ),
      markDelivered: db.prepare(
        `UPDATE messages SET state = 'delivered', seq = ?, error = NULL WHERE id = ?`,
      ),
      markDeliveredHost: db.prepare(
        `UPDATE messages SET state = 'delivered', host_seq = ?, error = NULL WHERE id = ?`,
      ),
      markFailed: db.prepare(
        `UPDATE messages SET state = 'failed', error = ? WHERE id = ? AND state = 'pending'`,
      ),
      pending: db.prepare<[string, number], MessageRow>(
        `SELECT ${COLS} FROM messages WHERE state = 'pending' AND author = ? COLLATE NOCASE
         AND channel_id NOT IN (SELECT channel_id FROM hosted) ORDER BY local_seq LIMIT ?`,
      ),
      pendingCount: db.prepare<[string], { n: number }>(
        `SELECT COUNT(*) AS n FROM messages WHERE state = 'pending' AND author = ? COLLATE NOCASE`,
      ),
      undelivered: db.prepare<[string, number], MessageRow>(
        `SELECT ${COLS} FROM messages WHERE state <> 'delivered' AND author = ? COLLATE NOCASE
         AND kind = 'message' ORDER BY local_seq LIMIT ?`,
      ),
      discardFailed: db.prepare(
        `DELETE FROM messages WHERE id = ? AND author = ? COLLATE NOCASE AND state = 'failed'
         AND kind = 'message'`,
      ),
      newestUndelivered: db.prepare<[string, number], MessageRow>(
        `SELECT ${COLS} FROM messages WHERE channel_id = ? AND state <> 'delivered' AND kind = 'message'
         ORDER BY ts DESC, lc DESC, id DESC LIMIT ?`,
      ),
      newest: db.prepare<[string, number], MessageRow>(
        `SELECT ${COLS} FROM messages WHERE channel_id = ? AND kind = 'message'
         ORDER BY ts DESC, lc DESC, id DESC LIMIT ?`,
      ),
      olderThan: db.prepare<[string, number, number, string, number], MessageRow>(
        `SELECT ${COLS} FROM messages WHERE channel_id = ? AND kind = 'message' AND (ts, lc, id) < (?, ?, ?)
         ORDER BY ts DESC, lc DESC, id DESC LIMIT ?`,
      ),
      cursor: db.prepare<[string], { cursor: number }>(
        'SELECT MIN(cursor) AS cursor FROM channels WHERE id = ?',
      ),
      hasSeq: db.prepare<[string, number], { one: number }>(
        'SELECT 1 AS one FROM messages WHERE channel_id = ? AND seq = ?',
      ),
      setCursor: db.prepare('UPDATE channels SET cursor = ? WHERE id = ? AND cursor < ?'),
      hostCursor: db.prepare<[string], { cursor: number }>(
        'SELECT MIN(host_cursor) AS cursor FROM channels WHERE id = ?',
      ),
      idAtHostSeq: db.prepare<[string, number], { id: string }>(
        'SELECT id FROM messages WHERE channel_id = ? AND host_seq = ?',
      ),
      hasHostSeq: db.prepare<[string, number], { one: number }>(
        'SELECT 1 AS one FROM messages WHERE channel_id = ? AND host_seq = ?',
      ),
      setHostCursor: db.prepare(
        'UPDATE channels SET host_cursor = ? WHERE id = ? AND host_cursor < ?',
      ),
      insertFromHost: db.prepare(
        `INSERT INTO messages (id, channel_id, author, ts, lc, text, sig, cert, kind, target, ext, state, host_seq)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'delivered', ?)
         ON CONFLICT(id) DO UPDATE SET state = 'delivered', host_seq = excluded.host_seq, error = NULL
         WHERE messages.host_seq IS NULL`,
      ),
      markHosted: db.prepare('INSERT OR IGNORE INTO hosted (channel_id) VALUES (?)'),
      isHosted: db.prepare<[string], { one: number }>(
        'SELECT 1 AS one FROM hosted WHERE channel_id = ?',
      ),
      hostedIds: db.prepare<[], { channel_id: string }>('SELECT channel_id FROM hosted'),
      nextHostSeq: db.prepare<[string], { last_host_seq: number }>(
        'UPDATE hosted SET last_host_seq = last_host_seq + 1 WHERE channel_id = ? RETURNING last_host_seq',
      ),
      lastHostSeq: db.prepare<[string], { last_host_seq: number }>(
        'SELECT last_host_seq FROM hosted WHERE channel_id = ?',
      ),
      insertHosted: db.prepare(
        `INSERT INTO messages (id, channel_id, author, ts, lc, text, sig, cert, kind, target, ext, state, seq, host_seq)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      setHostSeq: db.prepare('UPDATE messages SET host_seq = ? WHERE id = ?'),
      setServerSeq: db.prepare(
        `UPDATE messages SET seq = ?, state = CASE WHEN state = 'pending' THEN 'delivered' ELSE state END
         WHERE id = ? AND seq IS NULL`,
      ),
      hostSince: db.prepare<[string, number, number], MessageRow>(
        `SELECT ${COLS} FROM messages WHERE channel_id = ? AND host_seq > ? ORDER BY host_seq LIMIT ?`,
      ),
      toUpload: db.prepare<[number], MessageRow>(
        `SELECT ${COLS} FROM messages WHERE seq IS NULL AND host_seq IS NOT NULL
         AND channel_id IN (SELECT channel_id FROM hosted) ORDER BY channel_id, host_seq LIMIT ?`,
      ),
      /** The channel as any account here holds it (settings are alike for all). */
      anyChannel: db.prepare<[string], ChannelRow>('SELECT * FROM channels WHERE id = ? LIMIT 1'),
      related: db.prepare<[string], MessageRow>(
        `SELECT ${COLS} FROM messages WHERE target = ? ORDER BY ts, lc, id`,
      ),
      erase: db.prepare('UPDATE messages SET text = ?, ext = ? WHERE id = ?'),
      channelItems: db.prepare<[string], MessageRow>(
        `SELECT ${COLS} FROM messages WHERE channel_id = ? AND kind = 'channel'`,
      ),
      setChannel: db.prepare(
        'UPDATE channels SET name = ?, topic = ?, allow_visitors = ? WHERE id = ?',
      ),
      dropMember: db.prepare('DELETE FROM hosted_members WHERE channel_id = ? AND username = ?'),
      dropAccountChannel: db.prepare('DELETE FROM channels WHERE account = ? AND id = ?'),
      dropChannelRows: db.prepare('DELETE FROM channels WHERE id = ?'),
      dropMessages: db.prepare('DELETE FROM messages WHERE channel_id = ?'),
      /** The channel's items but this peer's own undelivered ones (its outbox, pending or failed). */
      dropReceived: db.prepare("DELETE FROM messages WHERE channel_id = ? AND state = 'delivered'"),
      dropHosted: db.prepare('DELETE FROM hosted WHERE channel_id = ?'),
      dropHostedMembers: db.prepare('DELETE FROM hosted_members WHERE channel_id = ?'),
      authors: db.prepare<[string], { author: string }>(
        'SELECT DISTINCT author FROM messages WHERE channel_id = ? COLLATE NOCASE',
      ),
      newerThan: db.prepare<[string, number, number, string, number], MessageRow>(
        `SELECT ${COLS} FROM messages WHERE channel_id = ? AND kind = 'message' AND (ts, lc, id) > (?, ?, ?)
         ORDER BY ts, lc, id LIMIT ?`,
      ),
      setMember: db.prepare(
        'INSERT OR IGNORE INTO hosted_members (channel_id, username) VALUES (?, ?)',
      ),
      clearMembers: db.prepare('DELETE FROM hosted_members WHERE channel_id = ?'),
      isHostedMember: db.prepare<[string, string], { one: number }>(
        'SELECT 1 AS one FROM hosted_members WHERE channel_id = ? AND username = ?',
      ),
    };
  }

  /**
   * The bound values of an item's insert (id … cert, kind, target, ext): a message or edit whose
   * delete is here already is stored as a tombstone (store/item-columns.ts).
   */
  private row(m: Omit<Authored, 'seq'>) {
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

  private ownerOf(channelId: string): string {
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
  private applied(m: Omit<Authored, 'seq'>): void {
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

  /** A hosted channel deleted, once the server holds the deletion: everything of it goes. */
  purgeDeleted(channelId: string): void {
    this.db.transaction(() => {
      this.q.dropMessages.run(channelId);
      this.q.dropHosted.run(channelId);
      this.q.dropHostedMembers.run(channelId);
      this.q.dropChannelRows.run(channelId);
    })();
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

  /** A member left a hosted channel, or was removed. */
  removeMember(channelId: string, username: string): void {
    this.q.dropMember.run(channelId, username);
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

  /** Who wrote in a channel, as far as this peer's copy tells. */
  authors(channelId: string): string[] {
    return this.q.authors.all(channelId).map((r) => r.author);
  }

  /** The owner of a channel this peer knows ('' when none). */
  channelOwner(channelId: string): string {
    return this.ownerOf(channelId);
  }

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

  /** Stores a message the user just wrote, as pending: the durable outbox. */
  addPending(m: Omit<LocalMessage, 'state' | 'seq' | 'hostSeq' | 'error'>): void {
    this.db.transaction(() => {
      this.q.insertPending.run(...this.row(m));
      this.index.written();
      this.applied(m);
    })();
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

  // ---- hosting: this peer holds the channel's primary copy ------------------------------------

  /** Marks a channel as hosted here. */
  markHosted(channelId: string): void {
    this.q.markHosted.run(channelId);
  }

  isHosted(channelId: string): boolean {
    return this.q.isHosted.get(channelId) !== undefined;
  }

  hostedIds(): string[] {
    return this.q.hostedIds.all().map((r) => r.channel_id);
  }

  lastHostSeq(channelId: string): number {
    return this.q.lastHostSeq.get(channelId)?.last_host_seq ?? 0;
  }

  /**
   * Accepts a message into a hosted channel's primary copy: idempotent by id, numbered by the
   * next host seq when new. `seq` is the server's number when it came from the server.
   * Returns its host seq and whether it was there already, or an error for a conflicting id.
   */
  hostAccept(
    m: Authored,
    state: 'pending' | 'delivered',
  ): { hostSeq: number; duplicate: boolean; message: StoredMessage } | HchatError {
    return this.db.transaction(() => {
      const existing = this.q.getMessage.get(m.id);
      if (existing) {
        if (!sameContent(existing, m)) return new HchatError('E_MESSAGE_CONFLICT');
        let hostSeq = existing.host_seq;
        const duplicate = hostSeq !== null;
        if (hostSeq === null) {
          hostSeq = this.q.nextHostSeq.get(m.channelId)!.last_host_seq;
          this.q.setHostSeq.run(hostSeq, m.id);
        }
        if (m.seq !== undefined) {
          this.q.setServerSeq.run(m.seq, m.id);
          this.advanceCursor(m.channelId);
        }
        return { hostSeq, duplicate, message: { ...toStored(m), seq: hostSeq } };
      }
      const hostSeq = this.q.nextHostSeq.get(m.channelId)!.last_host_seq;
      this.q.insertHosted.run(...this.row(m), state, m.seq ?? null, hostSeq);
      this.index.written();
      this.applied(m);
      if (m.seq !== undefined) this.advanceCursor(m.channelId);
      return { hostSeq, duplicate: false, message: { ...toStored(m), seq: hostSeq } };
    })();
  }

  /** Messages of a hosted channel after `since` in host order, numbered by host seq. */
  hostSince(channelId: string, since: number, limit: number): StoredMessage[] {
    return this.q.hostSince.all(channelId, since, limit).map((r) => hostNumbered(toMessage(r)));
  }

  /** Messages of hosted channels the server has not acknowledged yet, in host order. */
  toUpload(limit: number): LocalMessage[] {
    return this.q.toUpload.all(limit).map(toMessage);
  }

  /** Records the server's numbers for messages (it has copies); own pending ones are delivered. */
  setServerSeqs(acks: ReadonlyArray<{ id: string; seq: number }>): void {
    this.db.transaction(() => {
      const channels = new Set<string>();
      for (const { id, seq } of acks) {
        this.q.setServerSeq.run(seq, id);
        const m = this.q.getMessage.get(id);
        if (m) channels.add(m.channel_id);
      }
      for (const c of channels) this.advanceCursor(c);
    })();
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

  /** Replaces the member list of a hosted channel. */
  setMembers(channelId: string, members: readonly string[]): void {
    this.db.transaction(() => {
      this.q.clearMembers.run(channelId);
      for (const u of members) this.q.setMember.run(channelId, u);
    })();
  }

  addMember(channelId: string, username: string): void {
    this.q.setMember.run(channelId, username);
  }

  isMember(channelId: string, username: string): boolean {
    return this.q.isHostedMember.get(channelId, username) !== undefined;
  }

  /** Highest host seq up to which this member holds every message of the channel. */
  hostCursor(channelId: string): number {
    return this.q.hostCursor.get(channelId)?.cursor ?? 0;
  }

  private advanceHostCursor(channelId: string): void {
    let c = this.hostCursor(channelId);
    const start = c;
    while (this.q.hasHostSeq.get(channelId, c + 1)) c++;
    if (c > start) this.q.setHostCursor.run(c, channelId, c);
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

  getMessage(id: string): LocalMessage | undefined {
    const r = this.q.getMessage.get(id);
    return r && toMessage(r);
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

  /** Lowest cursor any account on this peer holds for a channel (where catch-up starts). */
  cursor(channelId: string): number {
    return this.q.cursor.get(channelId)?.cursor ?? 0;
  }

  /** Moves the channel's cursor over every contiguous seq this peer now holds. */
  private advanceCursor(channelId: string): void {
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
