/**
 * The PostgreSQL store's reads and writes of items inside a transaction: lookups for the item
 * rules (item-effects.ts wants them synchronous, so what one item needs is read first), and the
 * search words of what a message shows (the newest edit's text by its author, else its own,
 * none once erased: what SQLite's triggers keep in search-index.ts).
 */
import type pg from 'pg';
import type { StoredMessage } from '../../protocol/common.js';
import { indexWords } from '../../shared/search-text.js';
import type { ItemLookup } from '../item-effects.js';
import { PG_MESSAGE_COLS, toMessage } from './rows.js';

/** A pool, or one client (inside a transaction, or the bench's own). */
export type Queryable = pg.Pool | pg.ClientBase;

/** The item with this id, if stored. */
export async function itemById(q: Queryable, id: string): Promise<StoredMessage | undefined> {
  const r = await q.query(`SELECT ${PG_MESSAGE_COLS} FROM messages WHERE id = $1`, [id]);
  return r.rows[0] === undefined ? undefined : toMessage(r.rows[0]);
}

/** The items naming each of `ids` (edits, deletes, reactions), per id in order, HLC order. */
export async function relatedTo(q: Queryable, ids: readonly string[]): Promise<StoredMessage[]> {
  if (ids.length === 0) return [];
  const r = await q.query(
    `SELECT ${PG_MESSAGE_COLS.split(', ')
      .map((c) => `m.${c}`)
      .join(', ')} FROM unnest($1::text[]) WITH ORDINALITY AS t(id, ord)
     JOIN messages m ON m.target = t.id
     ORDER BY t.ord, m.ts, m.lc, m.id`,
    [ids],
  );
  return r.rows.map(toMessage);
}

/**
 * What the item rules read about `m`: it and the item it names, and the items naming either,
 * read now so that the rules decide synchronously.
 */
export async function lookupFor(
  q: Queryable,
  m: { id: string; target?: string },
  owner: string,
): Promise<ItemLookup<StoredMessage>> {
  const ids = m.target === undefined ? [m.id] : [m.id, m.target];
  const items = new Map<string, StoredMessage>();
  for (const id of ids) {
    const item = await itemById(q, id);
    if (item) items.set(id, item);
  }
  const related = new Map<string, StoredMessage[]>(ids.map((id) => [id, []]));
  for (const r of await relatedTo(q, ids)) related.get(r.target!)?.push(r);
  return {
    getItem: (id) => items.get(id),
    related: (id) => related.get(id) ?? [],
    owner: () => owner,
  };
}

/** Recomputes the search words of message `id` from what it shows now. */
export async function reindex(q: Queryable, id: string): Promise<void> {
  const r = await q.query<{ shown: string | null }>(
    `SELECT CASE WHEN m.kind = 'message' AND m.text <> '' THEN COALESCE((SELECT e.text
       FROM messages e WHERE e.target = m.id AND e.kind = 'edit' AND e.text <> ''
       AND e.channel_id = m.channel_id AND lower(e.author) = lower(m.author)
       ORDER BY e.ts DESC, e.lc DESC, e.id DESC LIMIT 1), m.text) END AS shown
     FROM messages m WHERE m.id = $1`,
    [id],
  );
  const shown = r.rows[0]?.shown;
  await q.query('UPDATE messages SET words = array_to_tsvector($2::text[]) WHERE id = $1', [
    id,
    shown ? indexWords(shown) : null,
  ]);
}
