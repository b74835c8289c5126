/**
 * The full-text index of what messages show, kept by SQLite itself (FTS5) in both stores
 * (peer migration 5, server migration 5). One row per message, keyed by the message row's
 * rowid: its newest edit's text by its author, else its own; gone once a delete erased it.
 * Triggers on `messages` keep it so, whatever order the items arrive in (an edit before its
 * message, a delete before either: store/item-columns.ts stores those as tombstones, text '').
 * Words are folded as unicode61 with `remove_diacritics 2` does (case, accents), and prefixes of
 * 1–6 letters have their own index (`prefix`): FTS5 answers a prefix term without one by merging
 * the lists of every word it starts, all of them, before the first result, which for a common
 * word over a million messages took ~50 ms (bench/search.ts); with one, it reads one list, newest
 * first, and stops at the limit. Longer words are rarer and rarely common.
 *
 * A new message is indexed a moment later, many at a time, not in the transaction that stores
 * it (migration SEARCH_DEFERRED_MIGRATION): FTS5 writes a segment per transaction, and with a
 * message a transaction (a small channel at a modest rate, the common case) that was about a
 * fifth of the server's CPU per message (issue 19). Its insert trigger only notes the row in
 * `message_fts_pending`; `drain` indexes what is noted, at most DRAIN_MS after it was stored and
 * always before a search, so a search still finds every message stored before it.
 * A row is in the index or pending, never both: an edit of a pending message is left to the
 * drain, which indexes what the row shows then.
 */
import type Database from 'better-sqlite3';
import { storageError } from './sqlite.js';

/**
 * The shown text of the message row `m` (SQL expression; `m` is a `messages` alias). The unary
 * `+` keeps SQLite on the `target` index (a channel's rows are many; a message's edits few).
 */
const SHOWN = (m: string) => `COALESCE((SELECT e.text FROM messages e
    WHERE e.target = ${m}.id AND e.kind = 'edit' AND e.text <> '' AND +e.channel_id = ${m}.channel_id
    AND lower(e.author) = lower(${m}.author)
    ORDER BY e.ts DESC, e.lc DESC, e.id DESC LIMIT 1), ${m}.text)`;

/** The target of edit `new`, when it shows (a message of its channel by its author, not erased). */
const EDITED = `SELECT m.rowid AS r, m.id, m.text, m.author, m.channel_id FROM messages m
    WHERE m.id = new.target AND m.kind = 'message' AND m.text <> ''
    AND m.channel_id = new.channel_id AND lower(m.author) = lower(new.author)`;

/** The migration that adds the index to a store's `messages` table and fills it. */
export const SEARCH_MIGRATION = `
  CREATE VIRTUAL TABLE message_fts USING fts5(
    text, tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3 4 5 6'
  );
  INSERT INTO message_fts (rowid, text)
    SELECT m.rowid, ${SHOWN('m')} FROM messages m WHERE m.kind = 'message' AND m.text <> '';
  CREATE TRIGGER message_fts_message AFTER INSERT ON messages
    WHEN new.kind = 'message' AND new.text <> '' BEGIN
    INSERT INTO message_fts (rowid, text) VALUES (new.rowid, ${SHOWN('new')});
  END;
  CREATE TRIGGER message_fts_edit AFTER INSERT ON messages
    WHEN new.kind = 'edit' AND new.text <> '' BEGIN
    DELETE FROM message_fts WHERE rowid IN (SELECT r FROM (${EDITED}));
    INSERT INTO message_fts (rowid, text) SELECT t.r, ${SHOWN('t')} FROM (${EDITED}) t;
  END;
  CREATE TRIGGER message_fts_erase AFTER UPDATE OF text ON messages
    WHEN new.kind = 'message' AND new.text = '' BEGIN
    DELETE FROM message_fts WHERE rowid = old.rowid;
  END;
  CREATE TRIGGER message_fts_drop AFTER DELETE ON messages WHEN old.kind = 'message' BEGIN
    DELETE FROM message_fts WHERE rowid = old.rowid;
  END;
`;

/** At most this long after a message is stored, it is in the index (searches do not wait). */
export const DRAIN_MS = 250;

/**
 * Indexes the pending rows. CROSS JOIN keeps SQLite's order: the pending rows first, each row
 * looked up by rowid. Left to choose, without statistics it scanned every message of the store
 * through messages_shown (`kind = 'message'`), a cost that grew with the store, not the batch.
 */
export const INDEX_PENDING = `INSERT INTO message_fts (rowid, text)
  SELECT m.rowid, ${SHOWN('m')} FROM message_fts_pending p CROSS JOIN messages m ON m.rowid = p.r
  WHERE m.kind = 'message' AND m.text <> ''`;

/**
 * The migration that makes indexing follow in batches (see the header): a new message's row is
 * noted as pending; an edit re-indexes its message only once that is indexed; a dropped row is
 * no longer pending (its rowid may be used again).
 */
export const SEARCH_DEFERRED_MIGRATION = `
  CREATE TABLE message_fts_pending (r INTEGER PRIMARY KEY);
  DROP TRIGGER message_fts_message;
  CREATE TRIGGER message_fts_message AFTER INSERT ON messages
    WHEN new.kind = 'message' AND new.text <> '' BEGIN
    INSERT OR IGNORE INTO message_fts_pending (r) VALUES (new.rowid);
  END;
  DROP TRIGGER message_fts_edit;
  CREATE TRIGGER message_fts_edit AFTER INSERT ON messages
    WHEN new.kind = 'edit' AND new.text <> '' BEGIN
    DELETE FROM message_fts WHERE rowid IN (SELECT r FROM (${EDITED}) t
      WHERE t.r NOT IN (SELECT r FROM message_fts_pending));
    INSERT INTO message_fts (rowid, text) SELECT t.r, ${SHOWN('t')} FROM (${EDITED}) t
      WHERE t.r NOT IN (SELECT r FROM message_fts_pending);
  END;
  DROP TRIGGER message_fts_drop;
  CREATE TRIGGER message_fts_drop AFTER DELETE ON messages WHEN old.kind = 'message' BEGIN
    DELETE FROM message_fts WHERE rowid = old.rowid;
    DELETE FROM message_fts_pending WHERE r = old.rowid;
  END;
`;

/** A match: the message's id and the text it shows. */
export interface IndexHit {
  id: string;
  shown: string;
}

/**
 * Searches a store's index: the newest `limit` matches (by the row's arrival in the store, which
 * is the channel's order on every replica but for history fetched later) among `channelIds`,
 * older than message `before` when given.
 */
export class SearchIndex {
  private readonly q;
  private readonly rowidOf;
  private readonly pending;
  private readonly drainTx;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly db: Database.Database) {
    this.pending = db.prepare<[], { r: number }>('SELECT r FROM message_fts_pending LIMIT 1');
    const index = db.prepare(INDEX_PENDING);
    const clear = db.prepare('DELETE FROM message_fts_pending');
    this.drainTx = db.transaction(() => {
      index.run();
      clear.run();
    });
    // `before` counts only as a message of a searched channel: any other (one of a channel the
    // searcher may not read) answers as an unknown id, so that it tells nothing of that channel.
    this.rowidOf = db.prepare<[string, string], { r: number }>(
      `SELECT rowid AS r FROM messages WHERE id = ? AND kind = 'message'
       AND channel_id IN (SELECT value FROM json_each(?))`,
    );
    this.q = db.prepare<[string, number, string, number], IndexHit>(
      `SELECT m.id AS id, f.text AS shown FROM message_fts f
       JOIN messages m ON m.rowid = f.rowid
       WHERE message_fts MATCH ? AND f.rowid < ?
       AND m.channel_id IN (SELECT value FROM json_each(?))
       ORDER BY f.rowid DESC LIMIT ?`,
    );
  }

  /** Rows matching `match` (an FTS5 expression from shared/search-text.ts `ftsMatch`). */
  hits(match: string, channelIds: readonly string[], limit: number, before?: string): IndexHit[] {
    if (channelIds.length === 0) return [];
    try {
      this.drain();
    } catch (err) {
      // The index cannot be written now (a full disk, another process's long write): the search
      // answers from what is indexed, and the timer tries again. Anything else is a fault.
      if (!cannotWriteNow(err)) throw err;
      this.written();
    }
    const channels = JSON.stringify(channelIds);
    const beforeRowid =
      before === undefined ? Number.MAX_SAFE_INTEGER : this.rowidOf.get(before, channels)?.r;
    if (beforeRowid === undefined) return [];
    return this.q.all(match, beforeRowid, channels, limit);
  }

  /** Messages were stored: they are indexed within DRAIN_MS, with whatever else came by then. */
  written(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      try {
        this.drain();
      } catch (err) {
        // Busy or full: again later. Anything else: the next write or search meets it (a search
        // then fails with it rather than answering from a stale index).
        if (this.db.open && cannotWriteNow(err)) this.written();
      }
    }, DRAIN_MS);
    this.timer.unref();
  }

  /** Indexes every message noted as pending, in one transaction. */
  drain(): void {
    if (this.pending.get() === undefined) return;
    // IMMEDIATE: the write lock first, as every other writer of these files takes it.
    this.drainTx.immediate();
  }

  /** Indexes what is pending and stops the timer; before the store closes its database. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    try {
      if (this.db.open) this.drain();
    } catch {
      // What is pending stays noted in the file: the next search or write after opening it
      // indexes it. Closing goes on.
    }
  }
}

/** An error that says the index cannot be written now but may be later: busy, locked or full. */
function cannotWriteNow(err: unknown): boolean {
  const code = String((err as { code?: unknown } | null)?.code ?? '');
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED') || !!storageError(err);
}
