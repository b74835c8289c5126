/**
 * The SQLite server store's schema: numbered migrations kept in `user_version` (sqlite.ts).
 * Never edit a step that shipped; add one.
 */
import { lookAlikeKeys } from '../shared/look-alike.js';
import { SEARCH_DEFERRED_MIGRATION, SEARCH_MIGRATION } from './search-index.js';
import type { Migration } from './sqlite.js';

/** The migrations of `server.db`, in order. */
export const SERVER_MIGRATIONS: Migration[] = [
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
  // 6: limits shared by the server instances of a deployment (limit-rows.ts), kept here too so
  // that both stores behave alike.
  `
  CREATE TABLE login_budgets (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    locked_until INTEGER NOT NULL,
    last_failure INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX login_budgets_idle ON login_budgets(last_failure);
  CREATE TABLE login_prefixes (
    account TEXT NOT NULL,
    prefix TEXT NOT NULL,
    last_at INTEGER NOT NULL,
    PRIMARY KEY (account, prefix)
  ) WITHOUT ROWID;
  CREATE TABLE registration_attempts (
    id TEXT PRIMARY KEY,
    prefix TEXT NOT NULL,
    at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX registration_attempts_prefix ON registration_attempts(prefix, at);
  CREATE INDEX registration_attempts_at ON registration_attempts(at);
  `,
  // 7: new messages are indexed for search in batches, after the transaction that stores them.
  SEARCH_DEFERRED_MIGRATION,
  // 8: messages_order duplicated messages_shown for every query the server runs (pages are of
  // shown messages; sync goes by seq), and cost every insert a page write.
  `DROP INDEX messages_order;`,
  // 9: every account's look-alike keys (shared/look-alike.ts), unique, as on PostgreSQL (the
  // store refuses a look-alike itself); filled for the accounts there are, oldest first.
  {
    sql: `
  CREATE TABLE user_name_keys (
    key TEXT PRIMARY KEY,
    username TEXT NOT NULL COLLATE NOCASE
  ) WITHOUT ROWID;
  `,
    fill: (db) => {
      const users = db
        .prepare<[], { username: string }>(
          'SELECT username FROM users ORDER BY created_at, username',
        )
        .all();
      const add = db.prepare('INSERT OR IGNORE INTO user_name_keys (key, username) VALUES (?, ?)');
      for (const { username } of users)
        for (const k of lookAlikeKeys(username)) add.run(k, username);
    },
  },
  // 10: the live visitor sessions, for finding those no lease holds (a restart lost them all:
  // the names are held in memory, visitor-names.ts), to end them once their grace ran out.
  `CREATE INDEX sessions_visitors_live ON sessions(session_id) WHERE role = 'visitor' AND revoked = 0;`,
  // 11: the ids of deleted channels, never given to another channel: an item's signature covers
  // its channel's id alone, so a channel made under a deleted one's id would take (`forward`)
  // and show what its members signed for the deleted one (PROTOCOL.md §2.2).
  `
  CREATE TABLE deleted_channels (
    id TEXT PRIMARY KEY,
    deleted_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
];
