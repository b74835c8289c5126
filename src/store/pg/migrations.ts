/**
 * The PostgreSQL server store's schema, as numbered migrations recorded in `schema_migrations`.
 * They run in one transaction under an advisory lock, so that server instances starting at once
 * apply each step exactly once. Never edit a step that shipped; add one.
 *
 * Layout: a message's key is (channel_id, seq), so `since` is a range scan of the primary key,
 * and history pages scan `messages_shown` (channel_id, ts, lc, id); both stay index range scans
 * whatever the table's size. Identifiers compare bytewise (COLLATE "C", as SQLite's BINARY);
 * usernames compare case-blind through lower() indexes (SQLite's NOCASE; usernames are ASCII).
 * `words` holds the folded words of what a message shows (search), kept by the store.
 */
import type pg from 'pg';
import { lookAlikeKeys } from '../../shared/look-alike.js';

/**
 * A step whose rows only JavaScript can compute: its SQL, then `fill`, in the same transaction.
 */
export interface PgMigrationStep {
  sql: string;
  fill: (client: pg.PoolClient) => Promise<void>;
}

/** The steps, in order. */
export const PG_MIGRATIONS: readonly (string | PgMigrationStep)[] = [
  `
  CREATE TABLE users (
    username TEXT NOT NULL,
    pass_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
  );
  CREATE UNIQUE INDEX users_name ON users (lower(username));
  CREATE TABLE sessions (
    session_id TEXT COLLATE "C" PRIMARY KEY,
    username TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'visitor')),
    created_at BIGINT NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT false,
    revoked_at BIGINT,
    public_key TEXT NOT NULL DEFAULT ''
  );
  CREATE INDEX sessions_live ON sessions (username, role, created_at) WHERE NOT revoked;
  CREATE TABLE channels (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    allow_visitors BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    last_seq BIGINT NOT NULL DEFAULT 0,
    topic TEXT NOT NULL DEFAULT ''
  );
  CREATE INDEX channels_owner ON channels (lower(owner));
  CREATE INDEX channels_directory ON channels (created_at, id);
  CREATE TABLE members (
    channel_id TEXT COLLATE "C" NOT NULL REFERENCES channels (id),
    username TEXT NOT NULL,
    joined_at BIGINT NOT NULL
  );
  CREATE UNIQUE INDEX members_key ON members (channel_id, lower(username));
  CREATE INDEX members_by_user ON members (lower(username));
  CREATE TABLE removed (
    channel_id TEXT COLLATE "C" NOT NULL,
    username TEXT NOT NULL
  );
  CREATE UNIQUE INDEX removed_key ON removed (channel_id, lower(username));
  CREATE TABLE messages (
    channel_id TEXT COLLATE "C" NOT NULL REFERENCES channels (id),
    seq BIGINT NOT NULL,
    id TEXT COLLATE "C" NOT NULL UNIQUE,
    arrival BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    author TEXT NOT NULL,
    ts BIGINT NOT NULL,
    lc BIGINT NOT NULL,
    text TEXT NOT NULL,
    sig TEXT NOT NULL,
    cert TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT COLLATE "C",
    ext TEXT,
    received_at BIGINT NOT NULL,
    words TSVECTOR,
    PRIMARY KEY (channel_id, seq)
  );
  CREATE INDEX messages_shown ON messages (channel_id, ts, lc, id) WHERE kind = 'message';
  CREATE INDEX messages_target ON messages (target) WHERE target IS NOT NULL;
  CREATE INDEX messages_channel_items ON messages (channel_id) WHERE kind = 'channel';
  CREATE INDEX messages_words ON messages USING gin (words) WHERE words IS NOT NULL;
  `,
  // 2: direct messages (dm-store.ts). A device's row is the lock its mailbox's writers take, so
  // its seqs commit in order and its cap holds; a user's rows are guarded by an advisory lock.
  `
  CREATE TABLE dm_devices (
    device_id TEXT COLLATE "C" PRIMARY KEY,
    username_lc TEXT NOT NULL,
    username TEXT NOT NULL,
    identity_key TEXT COLLATE "C" NOT NULL UNIQUE,
    spk_id BIGINT NOT NULL,
    spk_key TEXT NOT NULL,
    spk_sig TEXT NOT NULL,
    created BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
  );
  CREATE INDEX dm_devices_user ON dm_devices (username_lc, last_seen);
  CREATE TABLE dm_prekeys (
    n BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id TEXT COLLATE "C" NOT NULL REFERENCES dm_devices (device_id) ON DELETE CASCADE,
    id BIGINT NOT NULL,
    key TEXT NOT NULL,
    UNIQUE (device_id, id)
  );
  CREATE INDEX dm_prekeys_device ON dm_prekeys (device_id, n);
  CREATE TABLE dm_mailbox (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    to_user TEXT NOT NULL,
    to_device TEXT COLLATE "C" NOT NULL REFERENCES dm_devices (device_id) ON DELETE CASCADE,
    envelope_id TEXT COLLATE "C" NOT NULL,
    from_user TEXT NOT NULL,
    from_device TEXT NOT NULL,
    ts BIGINT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (to_device, envelope_id)
  );
  CREATE INDEX dm_mailbox_device ON dm_mailbox (to_device, seq);
  CREATE INDEX dm_mailbox_from ON dm_mailbox (to_user, lower(from_user));
  CREATE TABLE dm_blocks (
    username_lc TEXT NOT NULL,
    blocked_lc TEXT NOT NULL,
    blocked TEXT NOT NULL,
    PRIMARY KEY (username_lc, blocked_lc)
  );
  CREATE TABLE dm_lookups (
    username_lc TEXT NOT NULL,
    target_lc TEXT NOT NULL,
    PRIMARY KEY (username_lc, target_lc)
  );
  -- Which session speaks for which device, and through which instance (dm_publish).
  CREATE TABLE dm_bindings (
    device_id TEXT COLLATE "C" NOT NULL,
    session_id TEXT COLLATE "C" NOT NULL,
    instance TEXT NOT NULL,
    PRIMARY KEY (device_id, session_id)
  );
  CREATE INDEX dm_bindings_instance ON dm_bindings (instance);
  `,
  // 3: avatars (avatar-store.ts): each user's newest signed picture.
  `
  CREATE TABLE avatars (
    username_lc TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    type TEXT NOT NULL,
    data BYTEA NOT NULL,
    hash TEXT NOT NULL,
    ts BIGINT NOT NULL,
    sig TEXT NOT NULL,
    cert TEXT NOT NULL
  );
  `,
  // 4: limits shared by every instance (store/limit-rows.ts): login throttle budgets, the
  // prefixes each account logged in from, registrations per address prefix.
  `
  CREATE TABLE login_budgets (
    key TEXT COLLATE "C" PRIMARY KEY,
    failures INTEGER NOT NULL,
    locked_until BIGINT NOT NULL,
    last_failure BIGINT NOT NULL
  );
  CREATE INDEX login_budgets_idle ON login_budgets (last_failure);
  CREATE TABLE login_prefixes (
    account TEXT COLLATE "C" NOT NULL,
    prefix TEXT COLLATE "C" NOT NULL,
    last_at BIGINT NOT NULL,
    PRIMARY KEY (account, prefix)
  );
  CREATE TABLE registration_attempts (
    id TEXT COLLATE "C" PRIMARY KEY,
    prefix TEXT COLLATE "C" NOT NULL,
    at BIGINT NOT NULL
  );
  CREATE INDEX registration_attempts_prefix ON registration_attempts (prefix, at);
  CREATE INDEX registration_attempts_at ON registration_attempts (at);
  `,
  // 5: the server's file backups (pg/pg-file-store.ts), the tables of store/file-store.ts that
  // the server uses, with the chunk bytes in a row each (at most 256 KiB; a file at most 25 MiB).
  // Chunks are stored uncompressed (STORAGE EXTERNAL): most files are compressed already.
  `
  CREATE TABLE files (
    id TEXT COLLATE "C" PRIMARY KEY,
    manifest TEXT NOT NULL,
    size BIGINT NOT NULL,
    chunk_count INTEGER NOT NULL,
    held INTEGER NOT NULL DEFAULT 0,
    held_bytes BIGINT NOT NULL DEFAULT 0,
    owner TEXT NOT NULL,
    last_used BIGINT NOT NULL
  );
  CREATE INDEX files_owner ON files (owner);
  CREATE TABLE file_channels (
    file_id TEXT COLLATE "C" NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    channel_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (file_id, channel_id)
  );
  CREATE INDEX file_channels_channel ON file_channels (channel_id);
  CREATE TABLE file_chunks (
    file_id TEXT COLLATE "C" NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (file_id, idx)
  );
  ALTER TABLE file_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
  CREATE TABLE file_holders (
    file_id TEXT COLLATE "C" NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    channel_id TEXT COLLATE "C" NOT NULL,
    username TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (file_id, channel_id, username)
  );
  CREATE INDEX file_holders_channel ON file_holders (channel_id);
  CREATE TABLE file_messages (
    message_id TEXT COLLATE "C" NOT NULL,
    file_id TEXT COLLATE "C" NOT NULL,
    channel_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (message_id, file_id)
  );
  CREATE INDEX file_messages_file ON file_messages (file_id, channel_id);
  CREATE INDEX file_messages_channel ON file_messages (channel_id);
  CREATE TABLE file_puts (
    file_id TEXT COLLATE "C" NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    channel_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (file_id, channel_id)
  );
  CREATE INDEX file_puts_channel ON file_puts (channel_id);
  CREATE TABLE file_proofs (
    file_id TEXT COLLATE "C" NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    channel_id TEXT COLLATE "C" NOT NULL,
    idx INTEGER NOT NULL,
    PRIMARY KEY (file_id, channel_id, idx)
  );
  CREATE INDEX file_proofs_channel ON file_proofs (channel_id);
  `,
  // 6: bots and API tokens of the REST API (pg/pg-api-token-store.ts). Only the SHA-256 of a
  // token's secret is kept; revocation is a mark every instance reads on every request.
  `
  CREATE TABLE api_bots (
    username TEXT NOT NULL,
    owner TEXT NOT NULL,
    created_at BIGINT NOT NULL
  );
  CREATE UNIQUE INDEX api_bots_name ON api_bots (lower(username));
  CREATE INDEX api_bots_owner ON api_bots (lower(owner), created_at);
  CREATE TABLE api_tokens (
    id TEXT COLLATE "C" PRIMARY KEY,
    account TEXT NOT NULL,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    scopes TEXT[] NOT NULL,
    channels TEXT[],
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
  );
  CREATE INDEX api_tokens_owner ON api_tokens (lower(owner), created_at);
  CREATE INDEX api_tokens_account ON api_tokens (lower(account));
  `,
  // 7: every account's look-alike keys (shared/look-alike.ts), one row each, unique: a name that
  // looks like an account's is refused by the insert itself, whichever instance registers it.
  // Filled for the accounts there are, oldest first (a look-alike registered before keeps no key).
  {
    sql: `
  CREATE TABLE user_name_keys (
    key TEXT COLLATE "C" PRIMARY KEY,
    username TEXT NOT NULL
  );
  CREATE INDEX user_name_keys_user ON user_name_keys (lower(username));
  `,
    fill: async (client) => {
      const users = await client.query<{ username: string }>(
        'SELECT username FROM users ORDER BY created_at, username',
      );
      const keys: string[] = [];
      const names: string[] = [];
      for (const { username } of users.rows) {
        for (const k of lookAlikeKeys(username)) (keys.push(k), names.push(username));
      }
      await client.query(
        `INSERT INTO user_name_keys (key, username)
         SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING`,
        [keys, names],
      );
    },
  },
  // 8: visitor names present now, on every instance (pg/visitor-names.ts): one row per look-alike
  // key of a present visitor's name, held by its session and instance until its lease runs out.
  `
  CREATE TABLE visitor_names (
    key TEXT COLLATE "C" PRIMARY KEY,
    session_id TEXT COLLATE "C" NOT NULL,
    instance TEXT COLLATE "C" NOT NULL,
    expires_at BIGINT NOT NULL
  );
  CREATE INDEX visitor_names_session ON visitor_names (session_id);
  CREATE INDEX visitor_names_expiry ON visitor_names (expires_at);
  `,
  // 9: the live visitor sessions, for the instances to find those no instance holds any more
  // (pg/visitor-names.ts `unheld`: their instance died; another ends them once their grace ran).
  `
  CREATE INDEX sessions_visitors_live ON sessions (session_id) WHERE role = 'visitor' AND NOT revoked;
  `,
  // 10: the ids of deleted channels, never given to another channel: an item's signature covers
  // its channel's id alone, so a channel made under a deleted one's id would take (`forward`)
  // and show what its members signed for the deleted one (PROTOCOL.md §2.2).
  `
  CREATE TABLE deleted_channels (
    id TEXT COLLATE "C" PRIMARY KEY,
    deleted_at BIGINT NOT NULL
  );
  `,
];

/** Any 64-bit number of our own: the advisory lock migrations take ("hchat" in ASCII). */
const MIGRATION_LOCK = 0x6863686174;

/** Applies the pending steps, once, whoever else is starting on the same database. */
export async function migrate(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`);
    const r = await client.query<{ v: number | null }>(
      'SELECT max(version) AS v FROM schema_migrations',
    );
    const current = Number(r.rows[0]?.v ?? 0);
    if (!Number.isInteger(current) || current > PG_MIGRATIONS.length)
      throw new Error(
        `the database's schema version ${current} is newer than this program knows ` +
          `(${PG_MIGRATIONS.length}); use a newer hchat`,
      );
    for (let v = current; v < PG_MIGRATIONS.length; v++) {
      const step = PG_MIGRATIONS[v]!;
      await client.query(typeof step === 'string' ? step : step.sql);
      if (typeof step !== 'string') await step.fill(client);
      await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [v + 1]);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
