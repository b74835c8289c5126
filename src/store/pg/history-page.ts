/**
 * A history page on PostgreSQL in one round trip: the messages before a given one (or the
 * newest) and the items naming them, from one prepared statement. Measured at 1M messages under
 * load (docs/SCALING.md): the three statements this replaced (the `before` row, the page, then
 * its related items), each parsed and planned anew, took 1.8× as long at p99 and 2.7× at p50;
 * what a page costs is its round trips and plans, not the index range scan it reads.
 */
import { HchatError } from '../../protocol/errors.js';
import type { StoredMessage } from '../../protocol/common.js';
import type { HistoryPage } from '../server-store.js';
import type { Queryable } from './items.js';
import { PG_MESSAGE_COLS, toMessage } from './rows.js';

const M_COLS = PG_MESSAGE_COLS.split(', ')
  .map((c) => `m.${c}`)
  .join(', ');

/**
 * The page (`$1` channel, `$2` rows), newest first by the `messages_shown` index, then the items
 * naming its messages. Rows come back ordered: the page's oldest first (`of_ts` null), then each
 * message's related items, message by message, in HLC order. With `before`, `$3` is its id: its
 * (ts, lc, id) is read in the same statement, from the same channel only.
 */
function pageSql(before: boolean): string {
  const older = before
    ? `AND (ts, lc, id) < (SELECT ts, lc, id FROM messages WHERE id = $3 AND channel_id = $1 AND kind = 'message')`
    : '';
  return `WITH page AS MATERIALIZED (
      SELECT ${PG_MESSAGE_COLS} FROM messages WHERE channel_id = $1 AND kind = 'message' ${older}
      ORDER BY ts DESC, lc DESC, id DESC LIMIT $2)
    SELECT NULL::bigint AS of_ts, NULL::bigint AS of_lc, NULL::text COLLATE "C" AS of_id,
           ${PG_MESSAGE_COLS} FROM page
    UNION ALL
    SELECT p.ts, p.lc, p.id, ${M_COLS} FROM page p JOIN messages m ON m.target = p.id
    ORDER BY of_ts NULLS FIRST, of_lc, of_id, ts, lc, id`;
}

/** Named, so that each connection parses and plans them once (generic plan: index scans). */
const NEWEST = { name: 'history_newest', text: pageSql(false) };
const BEFORE = { name: 'history_before', text: pageSql(true) };

/** The newest `limit` messages older than `before` (or the newest), with their related items. */
export async function historyPage(
  q: Queryable,
  channelId: string,
  limit: number,
  before?: string,
): Promise<HistoryPage> {
  const r =
    before === undefined
      ? await q.query({ ...NEWEST, values: [channelId, limit + 1] })
      : await q.query({ ...BEFORE, values: [channelId, limit + 1, before] });
  const rows = r.rows as { of_ts: unknown }[];
  const pageRows = rows.filter((row) => row.of_ts === null);
  if (pageRows.length === 0 && before !== undefined) {
    // Nothing older, or no such message in this channel: only an empty page asks which.
    const b = await q.query(
      `SELECT 1 FROM messages WHERE id = $1 AND channel_id = $2 AND kind = 'message'`,
      [before, channelId],
    );
    if (b.rows.length === 0) throw new HchatError('E_NOT_FOUND', 'no such message');
  }
  const hasMore = pageRows.length > limit;
  const messages = (hasMore ? pageRows.slice(1) : pageRows).map(toMessage);
  const shown = new Set(messages.map((m) => m.id));
  const related: StoredMessage[] = [];
  for (const row of rows.slice(pageRows.length)) {
    const item = toMessage(row);
    if (shown.has(item.target!)) related.push(item);
  }
  return { messages, hasMore, related };
}
