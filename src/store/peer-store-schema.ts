/**
 * The peer store's schema (`<data>/peer.db`, peer-store.ts): numbered migrations kept in
 * `user_version` (sqlite.ts). Never edit a step that shipped; add one.
 */
import { SEARCH_DEFERRED_MIGRATION, SEARCH_MIGRATION } from './search-index.js';

/** The migrations of `peer.db`, in order. */
export const PEER_MIGRATIONS = [
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
