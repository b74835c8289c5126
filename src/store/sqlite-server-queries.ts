/**
 * The SQLite server store's prepared statements, made once per open database.
 */
import type Database from 'better-sqlite3';
import type { Role } from '../protocol/common.js';
import {
  MESSAGE_COLS,
  type ChannelRow,
  type MessageRow,
  type SessionRow,
} from './sqlite-server-rows.js';

/** The statements of `server.db`. */
export type ServerQueries = ReturnType<typeof serverQueries>;

/** Prepares every statement the store runs. */
export function serverQueries(db: Database.Database) {
  return {
    insertUser: db.prepare('INSERT INTO users (username, pass_hash, created_at) VALUES (?, ?, ?)'),
    insertNameKey: db.prepare('INSERT INTO user_name_keys (key, username) VALUES (?, ?)'),
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
    liveVisitorSessions: db.prepare<[], { session_id: string }>(
      "SELECT session_id FROM sessions WHERE role = 'visitor' AND revoked = 0",
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
    listChannels: db.prepare<[number, number, string, number, string, number], ChannelRow>(
      `SELECT * FROM channels c
         WHERE (created_at > ? OR (created_at = ? AND id > ?)) AND allow_visitors >= ?
           AND NOT EXISTS (SELECT 1 FROM removed r WHERE r.channel_id = c.id
                             AND r.username IN (SELECT value FROM json_each(?)))
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
    addDeletedChannel: db.prepare(
      'INSERT OR IGNORE INTO deleted_channels (id, deleted_at) VALUES (?, ?)',
    ),
    isDeletedChannel: db.prepare<[string], { id: string }>(
      'SELECT id FROM deleted_channels WHERE id = ?',
    ),
  };
}
