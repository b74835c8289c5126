/**
 * A batch of items into the PostgreSQL store, in one transaction, decided as the SQLite store
 * decides (sqlite-server-store.ts insertBatch): numbers per channel 1, 2, 3… without gaps, an
 * id already stored a duplicate (or a conflict if it differs), refusals by the item rules,
 * tombstones, erasures and channel changes.
 *
 * Several server instances may write one channel at once: the batch first locks its channels'
 * rows (`SELECT … FOR UPDATE`, in id order so that two batches never wait on each other in a
 * circle), so that `last_seq` is read and written back by one transaction at a time. A batch
 * is a fixed number of round trips for its runs of new plain messages (insert-rows.ts), plus a
 * few for each other item.
 */
import type pg from 'pg';
import { HchatError } from '../../protocol/errors.js';
import type { StoredMessage } from '../../protocol/common.js';
import { channelSettings, itemRefusal } from '../../shared/item-rules.js';
import { erasedByDelete, erasedOnArrival } from '../item-effects.js';
import { itemColumns, itemOfColumns, sameItem, tombstoneColumns } from '../item-columns.js';
import { revokedPoster, type InsertResult, type MessageInsert } from '../server-store.js';
import { itemById, lookupFor, reindex } from './items.js';
import { MessageRows, newMessages } from './insert-rows.js';
import { toChannel, toInt, PG_MESSAGE_COLS, toMessage } from './rows.js';

/**
 * Inserts `batch` with `client` inside a transaction the caller opened. New plain messages go in
 * runs of one INSERT (insert-rows.ts); any other item is decided alone, after the run before it
 * is stored, so that it sees it. `runs` false decides every item alone (after StoredMeanwhile).
 */
export async function insertBatch(
  client: pg.PoolClient,
  batch: readonly MessageInsert[],
  now: number,
  runs = true,
): Promise<(InsertResult | HchatError)[]> {
  const channelIds = [...new Set(batch.map((i) => i.message.channelId))].sort();
  const locked = await client.query<{ id: string; owner: string; last_seq: unknown }>(
    'SELECT id, owner, last_seq FROM channels WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE',
    [channelIds],
  );
  const owners = new Map(locked.rows.map((r) => [r.id, r.owner]));
  const revoked = await revokedPosters(client, batch);
  /** Each open channel's last number; a channel deleted in this batch leaves. */
  const last = new Map(locked.rows.map((r) => [r.id, toInt(r.last_seq)]));
  const moved = new Map<string, number>();
  const fresh = runs ? await newMessages(client, batch) : new Set<number>();
  const rows = new MessageRows();
  const out: (InsertResult | HchatError)[] = [];
  for (const [i, { message: m, author, session, leavers }] of batch.entries()) {
    if (session !== undefined && revoked.has(session)) {
      out.push(revokedPoster());
      continue;
    }
    const before = last.get(m.channelId);
    if (before === undefined) {
      out.push(new HchatError('E_CHANNEL_NOT_FOUND'));
      continue;
    }
    const seq = before + 1;
    if (fresh.has(i)) {
      out.push({ seq, duplicate: false, stored: rows.add(m, author, seq) });
      last.set(m.channelId, seq);
      moved.set(m.channelId, seq);
      continue;
    }
    await rows.flush(client, now);
    const r = await insertItem(
      client,
      { message: m, author, leavers },
      seq,
      owners.get(m.channelId),
      now,
    );
    out.push(r);
    if (r instanceof HchatError || r.duplicate) continue;
    last.set(m.channelId, seq);
    moved.set(m.channelId, seq);
    // A deleted channel takes no more items, in this batch or after.
    if (m.kind === 'channel' && m.change?.deleted) {
      last.delete(m.channelId);
      moved.delete(m.channelId);
    }
  }
  await rows.flush(client, now);
  if (moved.size > 0) {
    await client.query(
      `UPDATE channels c SET last_seq = v.seq
       FROM unnest($1::text[], $2::bigint[]) AS v(id, seq) WHERE c.id = v.id`,
      [[...moved.keys()], [...moved.values()]],
    );
  }
  return out;
}

/**
 * The batch's posting sessions that are revoked: one primary-key lookup per batch, in its
 * transaction, so that a logout committed on any instance before it is seen.
 */
async function revokedPosters(
  client: pg.PoolClient,
  batch: readonly MessageInsert[],
): Promise<Set<string>> {
  const ids = [...new Set(batch.flatMap((i) => (i.session === undefined ? [] : [i.session])))];
  if (ids.length === 0) return new Set();
  const r = await client.query<{ session_id: string }>(
    'SELECT session_id FROM sessions WHERE session_id = ANY($1::text[]) AND revoked',
    [ids],
  );
  return new Set(r.rows.map((row) => String(row.session_id)));
}

/** One item decided alone, as number `seq` if it is stored: rules, erasure, its effects. */
async function insertItem(
  client: pg.PoolClient,
  { message: m, author, leavers }: MessageInsert,
  seq: number,
  owner = '',
  now: number,
): Promise<InsertResult | HchatError> {
  const item = { ...m, author };
  const kind = m.kind ?? 'message';
  if (kind !== 'message' && !(await itemById(client, m.id))) {
    const target = m.target === undefined ? undefined : await itemById(client, m.target);
    const refused = itemRefusal(item, owner, target, true);
    if (refused) return refused;
  }
  const erased =
    (kind === 'message' || kind === 'edit') &&
    erasedOnArrival(item, await lookupFor(client, m, owner));
  const c = erased ? tombstoneColumns(m) : itemColumns(m);
  const ins = await client.query(
    `INSERT INTO messages (id, channel_id, seq, author, ts, lc, text, sig, cert, kind, target, ext, received_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (id) DO NOTHING`,
    [
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
    ],
  );
  if (ins.rowCount === 1) {
    if (c.kind === 'message' && c.text !== '') await reindex(client, m.id);
    if (c.kind === 'edit' && c.text !== '' && c.target !== null) await reindex(client, c.target);
    const stored = { id: m.id, channelId: m.channelId, seq, author, ts: m.ts, lc: m.lc };
    if (kind === 'delete') await applyDelete(client, item, owner);
    await applyChannelChange(client, item, leavers);
    return {
      seq,
      duplicate: false,
      stored: { ...stored, ...itemOfColumns(c), sig: m.sig, cert: m.cert },
    };
  }
  const existing = (await itemById(client, m.id))!;
  if (!sameItem(existing, item)) return new HchatError('E_MESSAGE_CONFLICT');
  return { seq: existing.seq, duplicate: true, stored: existing };
}

/** After a delete is stored: its message and that message's edits lose their text. */
async function applyDelete(
  client: pg.PoolClient,
  d: Omit<StoredMessage, 'seq'>,
  owner: string,
): Promise<void> {
  for (const m of erasedByDelete(d, await lookupFor(client, d, owner))) {
    const t = tombstoneColumns(m);
    await client.query('UPDATE messages SET text = $1, ext = $2, words = NULL WHERE id = $3', [
      t.text,
      t.ext,
      m.id,
    ]);
  }
}

/**
 * After the owner's channel item is stored: the directory takes its settings (per field the
 * newest), a removed member loses membership for good, and a deleted channel is dropped with
 * everything in it.
 */
async function applyChannelChange(
  client: pg.PoolClient,
  item: Omit<StoredMessage, 'seq'>,
  leavers: readonly string[] = [],
): Promise<void> {
  if (item.kind !== 'channel' || !item.change) return;
  const row = await client.query('SELECT * FROM channels WHERE id = $1', [item.channelId]);
  if (row.rows.length === 0) return;
  const c = toChannel(row.rows[0]);
  if (item.change.deleted) {
    await client.query('DELETE FROM messages WHERE channel_id = $1', [c.id]);
    await client.query('DELETE FROM members WHERE channel_id = $1', [c.id]);
    await client.query('DELETE FROM channels WHERE id = $1', [c.id]);
    await client.query(
      'INSERT INTO deleted_channels (id, deleted_at) VALUES ($1, $2) ON CONFLICT DO NOTHING',
      [c.id, Date.now()],
    );
    return;
  }
  const items = await client.query(
    `SELECT ${PG_MESSAGE_COLS} FROM messages WHERE channel_id = $1 AND kind = 'channel'`,
    [c.id],
  );
  const s = channelSettings(items.rows.map(toMessage), c.owner);
  await client.query(
    'UPDATE channels SET name = $1, topic = $2, allow_visitors = $3 WHERE id = $4',
    [s.name ?? c.name, s.topic ?? c.topic ?? '', s.allowVisitors ?? c.allowVisitors, c.id],
  );
  const gone = item.change.remove;
  if (gone && gone.toLowerCase() !== c.owner.toLowerCase()) {
    // The removed member, and the accounts that leave with it (its bots), never the owner.
    const out = [gone, ...leavers]
      .map((u) => u.toLowerCase())
      .filter((u) => u !== c.owner.toLowerCase());
    await client.query(
      'DELETE FROM members WHERE channel_id = $1 AND lower(username) = ANY($2::text[])',
      [c.id, out],
    );
    await client.query(
      'INSERT INTO removed (channel_id, username) VALUES ($1, $2) ON CONFLICT DO NOTHING',
      [c.id, gone],
    );
  }
}
