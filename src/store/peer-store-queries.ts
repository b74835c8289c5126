/**
 * The peer store's prepared statements, made once per open `peer.db` (peer-store-schema.ts).
 */
import type Database from 'better-sqlite3';
import {
  COLS,
  type ChannelRow,
  type MentionCandidate,
  type MessageRow,
} from './peer-store-rows.js';

/** The statements of `peer.db`. */
export type PeerQueries = ReturnType<typeof peerQueries>;

/** Prepares every statement the peer store runs. */
export function peerQueries(db: Database.Database) {
  return {
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
         AND m.kind = 'message'
         AND (m.ext IS NULL OR json_extract(m.ext, '$.digest') IS NULL)`,
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
