/**
 * The central server's storage: accounts, sessions, channels, memberships and messages.
 * `ServerStore` is the seam a PostgreSQL implementation will plug into; `SqliteServerStore` is
 * the embedded one.
 */
import type Database from 'better-sqlite3';
import { HchatError } from '../protocol/errors.js';
import type { Channel, NewMessage, Role, StoredMessage } from '../protocol/common.js';
import { openDatabase } from './sqlite.js';
import { SEARCH_MIGRATION, SearchIndex } from './search-index.js';
import { channelSettings, itemRefusal } from '../shared/item-rules.js';
import { erasedByDelete, erasedOnArrival, type ItemLookup } from './item-effects.js';
import {
  itemColumns,
  itemOfColumns,
  sameItem,
  tombstoneColumns,
  type ItemColumns,
} from './item-columns.js';

/** A registered account. */
export interface UserRecord {
  username: string;
  passHash: string;
}

/** A login session (user or visitor). */
export interface SessionRecord {
  sessionId: string;
  username: string;
  role: Role;
  createdAt: number;
  revoked: boolean;
  /** When it was revoked (ms since the epoch), if it was. */
  revokedAt?: number;
  /** The session's message key (raw Ed25519, base64url), certified at login and each resume. */
  publicKey: string;
}

/** A message to insert, with the author the server authenticated. */
export interface MessageInsert {
  message: NewMessage;
  author: string;
}

/** The outcome of inserting one message: its place in the channel, or that it was there. */
export interface InsertResult {
  seq: number;
  duplicate: boolean;
  stored: StoredMessage;
}

/** What the server needs from storage. */
export interface ServerStore {
  createUser(user: UserRecord): void;
  getUser(username: string): UserRecord | undefined;
  /** Every registered username (the server indexes their confusable skeletons at start). */
  usernames(): string[];
  createSession(s: Omit<SessionRecord, 'revoked'>): void;
  getSession(sessionId: string): SessionRecord | undefined;
  revokeSession(sessionId: string): void;
  /** A user's sessions that are not revoked, oldest first. */
  liveSessions(username: string, role: Role): SessionRecord[];
  /** How many channels a user owns. */
  ownedChannels(username: string): number;
  /** How many channels a user is a member of (owned ones included). */
  memberships(username: string): number;
  createChannel(c: Channel): void;
  getChannel(id: string): Channel | undefined;
  /**
   * Channels in (createdAt, id) order, after `after` when given, at most `limit`; only those
   * that allow visitors when `visitorsOnly` (a page of `directory`).
   */
  listChannels(o: {
    after?: { createdAt: number; id: string };
    limit: number;
    visitorsOnly: boolean;
  }): Channel[];
  channelsOf(username: string): Channel[];
  addMember(channelId: string, username: string): void;
  isMember(channelId: string, username: string): boolean;
  members(channelId: string): string[];
  /** Inserts a batch in one transaction; idempotent by message id. Throws nothing per item. */
  insertMessages(batch: readonly MessageInsert[]): (InsertResult | HchatError)[];
  /** Newest `limit` messages older than `before` (or the newest), in channel order. */
  history(
    channelId: string,
    limit: number,
    before?: string,
  ): { messages: StoredMessage[]; hasMore: boolean };
  /** Messages with seq > since, by seq, at most `limit`. */
  since(channelId: string, since: number, limit: number): StoredMessage[];
  lastSeq(channelId: string): number;
  /** The item with this id, if stored (a tombstone once deleted). */
  getItem(id: string): StoredMessage | undefined;
  /** The items that name these messages (edits, deletes, reactions), in HLC order. */
  related(ids: readonly string[]): StoredMessage[];
  /** True when the channel's owner removed this user (who may not read, post or join again). */
  isRemoved(channelId: string, username: string): boolean;
  /** A member leaves (the owner cannot: it deletes the channel instead). */
  removeMember(channelId: string, username: string): void;
  /**
   * Messages of `channelIds` whose shown text matches `match` (shared/search-text.ts `ftsMatch`),
   * newest first (by arrival), older than message `before` when given.
   */
  search(
    match: string,
    channelIds: readonly string[],
    limit: number,
    before?: string,
  ): StoredMessage[];
  close(): void;
}

const MIGRATIONS = [
  `
  CREATE TABLE users (
    username TEXT PRIMARY KEY COLLATE NOCASE,
    pass_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'visitor')),
    created_at INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE channels (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    allow_visitors INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE members (
    channel_id TEXT NOT NULL REFERENCES channels(id),
    username TEXT NOT NULL COLLATE NOCASE,
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (channel_id, username)
  ) WITHOUT ROWID;
  CREATE INDEX members_by_user ON members(username);
  CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    channel_id TEXT NOT NULL REFERENCES channels(id),
    seq INTEGER NOT NULL,
    author TEXT NOT NULL,
    ts INTEGER NOT NULL,
    lc INTEGER NOT NULL,
    text TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (channel_id, seq)
  );
  CREATE INDEX messages_order ON messages(channel_id, ts, lc, id);
  `,
  // 2: signed messages.
  `
  ALTER TABLE messages ADD COLUMN sig TEXT NOT NULL DEFAULT '';
  ALTER TABLE messages ADD COLUMN cert TEXT NOT NULL DEFAULT '';
  `,
  // 3: the session's key is kept, so that resume can renew its certificate; per-user lookups.
  `
  ALTER TABLE sessions ADD COLUMN public_key TEXT NOT NULL DEFAULT '';
  ALTER TABLE sessions ADD COLUMN revoked_at INTEGER;
  CREATE INDEX sessions_live ON sessions(username, role, created_at) WHERE revoked = 0;
  CREATE INDEX channels_owner ON channels(owner);
  `,
  // 4: rich messages: every item of a channel's log is a row (store/item-columns.ts).
  `
  ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'message';
  ALTER TABLE messages ADD COLUMN target TEXT;
  ALTER TABLE messages ADD COLUMN ext TEXT;
  CREATE INDEX messages_target ON messages(target) WHERE target IS NOT NULL;
  CREATE INDEX messages_shown ON messages(channel_id, ts, lc, id) WHERE kind = 'message';
  CREATE INDEX messages_channel_items ON messages(channel_id) WHERE kind = 'channel';
  ALTER TABLE channels ADD COLUMN topic TEXT NOT NULL DEFAULT '';
  CREATE TABLE removed (
    channel_id TEXT NOT NULL,
    username TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (channel_id, username)
  ) WITHOUT ROWID;
  `,
  // 5: full-text search over what messages show (store/search-index.ts). The index is keyed by
  // the messages' rowid, which only VACUUM would renumber (never run here).
  SEARCH_MIGRATION,
];

interface MessageRow extends ItemColumns {
  id: string;
  channel_id: string;
  seq: number;
  author: string;
  ts: number;
  lc: number;
  text: string;
  sig: string;
  cert: string;
}

interface ChannelRow {
  id: string;
  name: string;
  owner: string;
  allow_visitors: number;
  created_at: number;
  topic: string;
}

interface SessionRow {
  session_id: string;
  username: string;
  role: Role;
  created_at: number;
  revoked: number;
  revoked_at: number | null;
  public_key: string;
}

function toSession(r: SessionRow): SessionRecord {
  return {
    sessionId: r.session_id,
    username: r.username,
    role: r.role,
    createdAt: r.created_at,
    revoked: r.revoked === 1,
    revokedAt: r.revoked_at ?? undefined,
    publicKey: r.public_key,
  };
}

function toChannel(r: ChannelRow): Channel {
  return {
    id: r.id,
    name: r.name,
    owner: r.owner,
    allowVisitors: r.allow_visitors === 1,
    createdAt: r.created_at,
    ...(r.topic ? { topic: r.topic } : {}),
  };
}

function toMessage(r: MessageRow): StoredMessage {
  return {
    id: r.id,
    channelId: r.channel_id,
    seq: r.seq,
    author: r.author,
    ts: r.ts,
    lc: r.lc,
    ...itemOfColumns(r),
    sig: r.sig,
    cert: r.cert,
  };
}

const MESSAGE_COLS = 'id, channel_id, seq, author, ts, lc, text, sig, cert, kind, target, ext';

/** The embedded SQLite store, in `<data>/server.db`. */
export class SqliteServerStore implements ServerStore {
  private readonly db: Database.Database;
  private readonly q;
  private readonly index: SearchIndex;
  private readonly insertTx: Database.Transaction<
    (batch: readonly MessageInsert[], now: number) => (InsertResult | HchatError)[]
  >;

  constructor(file: string) {
    this.db = openDatabase(file, MIGRATIONS);
    const db = this.db;
    this.q = {
      insertUser: db.prepare(
        'INSERT INTO users (username, pass_hash, created_at) VALUES (?, ?, ?)',
      ),
      getUser: db.prepare<[string], { username: string; pass_hash: string }>(
        'SELECT username, pass_hash FROM users WHERE username = ?',
      ),
      insertSession: db.prepare(
        'INSERT INTO sessions (session_id, username, role, created_at, public_key) VALUES (?, ?, ?, ?, ?)',
      ),
      getSession: db.prepare<[string], SessionRow>('SELECT * FROM sessions WHERE session_id = ?'),
      liveSessions: db.prepare<[string, Role], SessionRow>(
        `SELECT * FROM sessions WHERE username = ? AND role = ? AND revoked = 0
         ORDER BY created_at, session_id`,
      ),
      memberships: db.prepare<[string], { n: number }>(
        'SELECT COUNT(*) AS n FROM members WHERE username = ?',
      ),
      ownedChannels: db.prepare<[string], { n: number }>(
        'SELECT COUNT(*) AS n FROM channels WHERE owner = ? COLLATE NOCASE',
      ),
      revokeSession: db.prepare(
        'UPDATE sessions SET revoked = 1, revoked_at = ? WHERE session_id = ? AND revoked = 0',
      ),
      insertChannel: db.prepare(
        'INSERT INTO channels (id, name, owner, allow_visitors, created_at) VALUES (?, ?, ?, ?, ?)',
      ),
      getChannel: db.prepare<[string], ChannelRow>('SELECT * FROM channels WHERE id = ?'),
      listChannels: db.prepare<[number, number, string, number, number], ChannelRow>(
        `SELECT * FROM channels
         WHERE (created_at > ? OR (created_at = ? AND id > ?)) AND allow_visitors >= ?
         ORDER BY created_at, id LIMIT ?`,
      ),
      channelsOf: db.prepare<[string], ChannelRow>(
        `SELECT c.* FROM channels c JOIN members m ON m.channel_id = c.id
         WHERE m.username = ? ORDER BY c.created_at, c.id`,
      ),
      addMember: db.prepare(
        'INSERT OR IGNORE INTO members (channel_id, username, joined_at) VALUES (?, ?, ?)',
      ),
      isMember: db.prepare<[string, string], { one: number }>(
        'SELECT 1 AS one FROM members WHERE channel_id = ? AND username = ?',
      ),
      members: db.prepare<[string], { username: string }>(
        'SELECT username FROM members WHERE channel_id = ?',
      ),
      getMessage: db.prepare<[string], MessageRow>(
        `SELECT ${MESSAGE_COLS} FROM messages WHERE id = ?`,
      ),
      setLastSeq: db.prepare('UPDATE channels SET last_seq = ? WHERE id = ?'),
      // Only an id already stored lets the insert through without a row (a duplicate).
      insertMessage: db.prepare(
        `INSERT INTO messages (id, channel_id, seq, author, ts, lc, text, sig, cert, kind, target, ext, received_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
      ),
      newest: db.prepare<[string, number], MessageRow>(
        `SELECT ${MESSAGE_COLS} FROM messages WHERE channel_id = ? AND kind = 'message'
         ORDER BY ts DESC, lc DESC, id DESC LIMIT ?`,
      ),
      olderThan: db.prepare<[string, number, number, string, number], MessageRow>(
        `SELECT ${MESSAGE_COLS} FROM messages WHERE channel_id = ? AND kind = 'message'
         AND (ts, lc, id) < (?, ?, ?) ORDER BY ts DESC, lc DESC, id DESC LIMIT ?`,
      ),
      since: db.prepare<[string, number, number], MessageRow>(
        `SELECT ${MESSAGE_COLS} FROM messages WHERE channel_id = ? AND seq > ?
         ORDER BY seq LIMIT ?`,
      ),
      lastSeq: db.prepare<[string], { last_seq: number }>(
        'SELECT last_seq FROM channels WHERE id = ?',
      ),
      related: db.prepare<[string], MessageRow>(
        `SELECT ${MESSAGE_COLS} FROM messages WHERE target = ? ORDER BY ts, lc, id`,
      ),
      erase: db.prepare('UPDATE messages SET text = ?, ext = ? WHERE id = ?'),
      channelItems: db.prepare<[string], MessageRow>(
        `SELECT ${MESSAGE_COLS} FROM messages WHERE channel_id = ? AND kind = 'channel'`,
      ),
      setChannel: db.prepare(
        'UPDATE channels SET name = ?, topic = ?, allow_visitors = ? WHERE id = ?',
      ),
      removeMember: db.prepare('DELETE FROM members WHERE channel_id = ? AND username = ?'),
      addRemoved: db.prepare('INSERT OR IGNORE INTO removed (channel_id, username) VALUES (?, ?)'),
      isRemoved: db.prepare<[string, string], { one: number }>(
        'SELECT 1 AS one FROM removed WHERE channel_id = ? AND username = ?',
      ),
      dropMessages: db.prepare('DELETE FROM messages WHERE channel_id = ?'),
      dropMembers: db.prepare('DELETE FROM members WHERE channel_id = ?'),
      dropChannel: db.prepare('DELETE FROM channels WHERE id = ?'),
    };
    this.index = new SearchIndex(db);
    this.insertTx = db.transaction((batch: readonly MessageInsert[], now: number) =>
      this.insertBatch(batch, now),
    );
  }

  createUser(user: UserRecord): void {
    try {
      this.q.insertUser.run(user.username, user.passHash, Date.now());
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new HchatError('E_USERNAME_TAKEN');
      }
      throw err;
    }
  }

  getUser(username: string): UserRecord | undefined {
    const r = this.q.getUser.get(username);
    return r && { username: r.username, passHash: r.pass_hash };
  }

  usernames(): string[] {
    return this.db
      .prepare<[], { username: string }>('SELECT username FROM users')
      .all()
      .map((r) => r.username);
  }

  createSession(s: Omit<SessionRecord, 'revoked'>): void {
    this.q.insertSession.run(s.sessionId, s.username, s.role, s.createdAt, s.publicKey);
  }

  getSession(sessionId: string): SessionRecord | undefined {
    const r = this.q.getSession.get(sessionId);
    return r && toSession(r);
  }

  liveSessions(username: string, role: Role): SessionRecord[] {
    return this.q.liveSessions.all(username, role).map(toSession);
  }

  memberships(username: string): number {
    return this.q.memberships.get(username)?.n ?? 0;
  }

  ownedChannels(username: string): number {
    return this.q.ownedChannels.get(username)?.n ?? 0;
  }

  revokeSession(sessionId: string): void {
    this.q.revokeSession.run(Date.now(), sessionId);
  }

  createChannel(c: Channel): void {
    this.db.transaction(() => {
      try {
        this.q.insertChannel.run(c.id, c.name, c.owner, c.allowVisitors ? 1 : 0, c.createdAt);
      } catch (err) {
        if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
          throw new HchatError('E_CHANNEL_EXISTS');
        }
        throw err;
      }
      this.q.addMember.run(c.id, c.owner, c.createdAt);
    })();
  }

  getChannel(id: string): Channel | undefined {
    const r = this.q.getChannel.get(id);
    return r && toChannel(r);
  }

  listChannels(o: {
    after?: { createdAt: number; id: string };
    limit: number;
    visitorsOnly: boolean;
  }): Channel[] {
    const t = o.after?.createdAt ?? Number.MIN_SAFE_INTEGER;
    const id = o.after?.id ?? '';
    return this.q.listChannels.all(t, t, id, o.visitorsOnly ? 1 : 0, o.limit).map(toChannel);
  }

  channelsOf(username: string): Channel[] {
    return this.q.channelsOf.all(username).map(toChannel);
  }

  addMember(channelId: string, username: string): void {
    this.q.addMember.run(channelId, username, Date.now());
  }

  isMember(channelId: string, username: string): boolean {
    return this.q.isMember.get(channelId, username) !== undefined;
  }

  members(channelId: string): string[] {
    return this.q.members.all(channelId).map((r) => r.username);
  }

  insertMessages(batch: readonly MessageInsert[]): (InsertResult | HchatError)[] {
    // IMMEDIATE: the write lock is taken before last_seq is read, so that another process on
    // the same file can never hand out the same numbers.
    return this.insertTx.immediate(batch, Date.now());
  }

  /**
   * One transaction per batch. Sequence numbers are counted in memory inside it and written
   * back once per channel; a message whose id is already stored is found by the insert's
   * conflict (no lookup before each insert) and answered as a duplicate, without a number.
   */
  private insertBatch(batch: readonly MessageInsert[], now: number): (InsertResult | HchatError)[] {
    const next = new Map<string, number>();
    const out = batch.map(({ message: m, author }): InsertResult | HchatError => {
      let last = next.get(m.channelId);
      if (last === undefined) {
        const row = this.q.lastSeq.get(m.channelId);
        if (!row) return new HchatError('E_CHANNEL_NOT_FOUND');
        last = row.last_seq;
      }
      const seq = last + 1;
      const item = { ...m, author };
      // Whether it may change what it names is decided here, in batch order: an edit posted
      // right after its message (pipelined) finds it. A message needs no rule (nor a lookup);
      // a change already stored is a duplicate, answered below.
      if ((m.kind ?? 'message') !== 'message' && !this.q.getMessage.get(m.id)) {
        const target = m.target === undefined ? undefined : this.getItem(m.target);
        const owner = this.getChannel(m.channelId)?.owner ?? '';
        const refused = itemRefusal(item, owner, target, true);
        if (refused) return refused;
      }
      const c = this.erasedHere(item) ? tombstoneColumns(m) : itemColumns(m);
      const { changes } = this.q.insertMessage.run(
        m.id,
        m.channelId,
        seq,
        author,
        m.ts,
        m.lc,
        c.text,
        m.sig,
        m.cert,
        c.kind,
        c.target,
        c.ext,
        now,
      );
      if (changes === 1) {
        next.set(m.channelId, seq);
        // As stored (a tombstone if its delete was here first); a delete erases others only.
        const stored = { id: m.id, channelId: m.channelId, seq, author, ts: m.ts, lc: m.lc };
        this.applyDelete(item);
        this.applyChannelChange(item);
        // A deleted channel takes no more items, in this batch or after.
        if (item.kind === 'channel' && item.change?.deleted) next.delete(m.channelId);
        return {
          seq,
          duplicate: false,
          stored: { ...stored, ...itemOfColumns(c), sig: m.sig, cert: m.cert },
        };
      }
      const existing = this.q.getMessage.get(m.id)!;
      if (!sameItem(toMessage(existing), item)) return new HchatError('E_MESSAGE_CONFLICT');
      return { seq: existing.seq, duplicate: true, stored: toMessage(existing) };
    });
    for (const [channelId, seq] of next) this.q.setLastSeq.run(seq, channelId);
    return out;
  }

  history(
    channelId: string,
    limit: number,
    before?: string,
  ): { messages: StoredMessage[]; hasMore: boolean } {
    let rows: MessageRow[];
    if (before === undefined) {
      rows = this.q.newest.all(channelId, limit + 1);
    } else {
      const b = this.q.getMessage.get(before);
      if (!b || b.channel_id !== channelId) throw new HchatError('E_NOT_FOUND', 'no such message');
      rows = this.q.olderThan.all(channelId, b.ts, b.lc, b.id, limit + 1);
    }
    const hasMore = rows.length > limit;
    if (hasMore) rows.pop();
    return { messages: rows.reverse().map(toMessage), hasMore };
  }

  since(channelId: string, since: number, limit: number): StoredMessage[] {
    return this.q.since.all(channelId, since, limit).map(toMessage);
  }

  lastSeq(channelId: string): number {
    return this.q.lastSeq.get(channelId)?.last_seq ?? 0;
  }

  getItem(id: string): StoredMessage | undefined {
    const r = this.q.getMessage.get(id);
    return r && toMessage(r);
  }

  related(ids: readonly string[]): StoredMessage[] {
    return ids.flatMap((id) => this.q.related.all(id).map(toMessage));
  }

  search(
    match: string,
    channelIds: readonly string[],
    limit: number,
    before?: string,
  ): StoredMessage[] {
    return this.index.hits(match, channelIds, limit, before).flatMap((h) => {
      const r = this.q.getMessage.get(h.id);
      return r ? [toMessage(r)] : [];
    });
  }

  /** How the erasure rules (item-effects.ts) find items here. */
  private readonly lookup: ItemLookup<StoredMessage> = {
    getItem: (id) => this.getItem(id),
    related: (id) => this.q.related.all(id).map(toMessage),
    owner: (channelId) => this.getChannel(channelId)?.owner ?? '',
  };

  private erasedHere(m: Omit<StoredMessage, 'seq'>): boolean {
    return erasedOnArrival(m, this.lookup);
  }

  isRemoved(channelId: string, username: string): boolean {
    return this.q.isRemoved.get(channelId, username) !== undefined;
  }

  removeMember(channelId: string, username: string): void {
    this.q.removeMember.run(channelId, username);
  }

  /**
   * After the owner's channel item is stored: the directory takes its settings (per field the
   * newest), a removed member loses membership for good, and a deleted channel is dropped with
   * everything in it.
   */
  private applyChannelChange(item: Omit<StoredMessage, 'seq'>): void {
    if (item.kind !== 'channel' || !item.change) return;
    const c = this.getChannel(item.channelId);
    if (!c) return;
    if (item.change.deleted) {
      this.q.dropMessages.run(c.id);
      this.q.dropMembers.run(c.id);
      this.q.dropChannel.run(c.id);
      return;
    }
    const s = channelSettings(this.q.channelItems.all(c.id).map(toMessage), c.owner);
    this.q.setChannel.run(
      s.name ?? c.name,
      s.topic ?? c.topic ?? '',
      (s.allowVisitors ?? c.allowVisitors) ? 1 : 0,
      c.id,
    );
    const gone = item.change.remove;
    if (gone && gone.toLowerCase() !== c.owner.toLowerCase()) {
      this.q.removeMember.run(c.id, gone);
      this.q.addRemoved.run(c.id, gone);
    }
  }

  /** After a delete is stored: its message and that message's edits lose their text. */
  private applyDelete(d: Omit<StoredMessage, 'seq'>): void {
    for (const m of erasedByDelete(d, this.lookup)) {
      const t = tombstoneColumns(m);
      this.q.erase.run(t.text, t.ext, m.id);
    }
  }

  close(): void {
    this.db.close();
  }
}
