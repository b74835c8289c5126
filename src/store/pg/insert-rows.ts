/**
 * The common case of a batch, set-based: plain messages that are new (no item with their id is
 * stored, nothing stored or in the batch names them) need no rule and no lookup, so a run of
 * them is one multi-row INSERT with its search words, instead of an insert, two lookups and a
 * reindex each (five round trips a message: what held PostgreSQL's fan-out to a fifth of
 * SQLite's, docs/SCALING.md).
 */
import type pg from 'pg';
import type { StoredMessage } from '../../protocol/common.js';
import { indexWords } from '../../shared/search-text.js';
import { itemColumns, itemOfColumns } from '../item-columns.js';
import type { MessageInsert } from '../server-store.js';

/**
 * Another transaction stored an id of the batch after it was looked up (same id, another
 * channel: that channel's lock does not cover it). The transaction is rolled back and the batch
 * decided again item by item.
 */
export class StoredMeanwhile extends Error {
  constructor() {
    super('an id of the batch was stored meanwhile');
  }
}

/**
 * Which items of `batch` (by index) are new plain messages, after the batch's channels are
 * locked: one lookup of the ids stored and of the items naming any of them.
 */
export async function newMessages(
  client: pg.PoolClient,
  batch: readonly MessageInsert[],
): Promise<Set<number>> {
  const ids = batch.map((i) => i.message.id);
  const r = await client.query<{ id: string; target: string | null }>(
    'SELECT id, target FROM messages WHERE id = ANY($1::text[]) OR target = ANY($1::text[])',
    [ids],
  );
  const taken = new Set<string>();
  for (const row of r.rows) {
    taken.add(row.id);
    if (row.target !== null) taken.add(row.target);
  }
  for (const { message: m } of batch) if (m.target !== undefined) taken.add(m.target);
  const out = new Set<number>();
  batch.forEach(({ message: m }, i) => {
    if ((m.kind ?? 'message') === 'message' && !taken.has(m.id)) out.add(i);
    taken.add(m.id); // the same id again in the batch is a duplicate: decided one by one
  });
  return out;
}

/** Rows of new messages waiting for one INSERT. */
export class MessageRows {
  private rows: Record<string, unknown>[] = [];

  /** Adds `m` with number `seq`; answers it as it will be stored. */
  add(m: MessageInsert['message'], author: string, seq: number): StoredMessage {
    const c = itemColumns(m);
    this.rows.push({
      id: m.id,
      channel_id: m.channelId,
      seq,
      author,
      ts: m.ts,
      lc: m.lc,
      text: c.text,
      sig: m.sig,
      cert: m.cert,
      kind: c.kind,
      target: c.target,
      ext: c.ext,
      // What reindex (items.ts) finds for a message no edit names yet: its own text's words.
      words: c.text === '' ? null : indexWords(c.text),
    });
    const stored = { id: m.id, channelId: m.channelId, seq, author, ts: m.ts, lc: m.lc };
    return { ...stored, ...itemOfColumns(c), sig: m.sig, cert: m.cert };
  }

  /** Inserts the rows waiting, in their order (their `arrival` follows it). */
  async flush(client: pg.PoolClient, now: number): Promise<void> {
    if (this.rows.length === 0) return;
    const rows = this.rows;
    this.rows = [];
    const r = await client.query(
      `INSERT INTO messages
         (id, channel_id, seq, author, ts, lc, text, sig, cert, kind, target, ext, received_at, words)
       SELECT r.id, r.channel_id, r.seq, r.author, r.ts, r.lc, r.text, r.sig, r.cert, r.kind,
              r.target, r.ext, $2, array_to_tsvector(r.words)
       FROM ROWS FROM (json_to_recordset($1::json) AS (id text, channel_id text, seq bigint,
         author text, ts bigint, lc bigint, text text, sig text, cert text, kind text,
         target text, ext text, words text[])) WITH ORDINALITY
         AS r(id, channel_id, seq, author, ts, lc, text, sig, cert, kind, target, ext, words, n)
       ORDER BY r.n
       ON CONFLICT (id) DO NOTHING`,
      [JSON.stringify(rows), now],
    );
    if (r.rowCount !== rows.length) throw new StoredMeanwhile();
  }
}
