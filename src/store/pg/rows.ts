/**
 * How the PostgreSQL store's rows become the protocol's records. Rows are input like any other
 * (common.md: every boundary validates what it reads): each is parsed by a schema here, BIGINT
 * columns (strings from the driver) become safe integers, and a row that does not fit throws.
 */
import { z } from 'zod';
import type { Channel, StoredMessage } from '../../protocol/common.js';
import { ItemKind } from '../../protocol/common.js';
import type { SessionRecord } from '../server-store.js';
import { canonicalSig } from '../canonical-spelling.js';
import { itemOfColumns } from '../item-columns.js';

/** A BIGINT column: the driver's decimal string (or a number), as a safe integer. */
export const Int = z.union([z.number(), z.string().regex(/^-?\d{1,16}$/)]).transform((v, ctx) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) ctx.addIssue({ code: 'custom', message: 'not a safe integer' });
  return n;
});

const SessionRow = z.object({
  session_id: z.string(),
  username: z.string(),
  role: z.enum(['user', 'visitor']),
  created_at: Int,
  revoked: z.boolean(),
  revoked_at: Int.nullable(),
  public_key: z.string(),
});

const ChannelRow = z.object({
  id: z.string(),
  name: z.string(),
  owner: z.string(),
  allow_visitors: z.boolean(),
  created_at: Int,
  topic: z.string(),
});

const MessageRow = z.object({
  id: z.string(),
  channel_id: z.string(),
  seq: Int,
  author: z.string(),
  ts: Int,
  lc: Int,
  text: z.string(),
  sig: z.string(),
  cert: z.string(),
  kind: ItemKind,
  target: z.string().nullable(),
  ext: z.string().nullable(),
});

/** The columns `toMessage` reads. */
export const PG_MESSAGE_COLS =
  'id, channel_id, seq, author, ts, lc, text, sig, cert, kind, target, ext';

/** A sessions row as a SessionRecord. */
export function toSession(row: unknown): SessionRecord {
  const r = SessionRow.parse(row);
  return {
    sessionId: r.session_id,
    username: r.username,
    role: r.role,
    createdAt: r.created_at,
    revoked: r.revoked,
    revokedAt: r.revoked_at ?? undefined,
    publicKey: r.public_key,
  };
}

/** A channels row as a Channel. */
export function toChannel(row: unknown): Channel {
  const r = ChannelRow.parse(row);
  return {
    id: r.id,
    name: r.name,
    owner: r.owner,
    allowVisitors: r.allow_visitors,
    createdAt: r.created_at,
    ...(r.topic ? { topic: r.topic } : {}),
  };
}

/** A messages row as a StoredMessage (its body from item-columns.ts). */
export function toMessage(row: unknown): StoredMessage {
  const r = MessageRow.parse(row);
  return {
    id: r.id,
    channelId: r.channel_id,
    seq: r.seq,
    author: r.author,
    ts: r.ts,
    lc: r.lc,
    ...itemOfColumns(r),
    sig: canonicalSig(r.sig),
    cert: r.cert,
  };
}

/** A count or number column. */
export function toInt(v: unknown): number {
  return Int.parse(v);
}
