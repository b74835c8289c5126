/**
 * How the SQLite server store's rows become the protocol's records (and the columns it reads).
 */
import type { Channel, Role, StoredMessage } from '../protocol/common.js';
import type { SessionRecord } from './server-store.js';
import { canonicalSig } from './canonical-spelling.js';
import { itemOfColumns, type ItemColumns } from './item-columns.js';

export interface MessageRow extends ItemColumns {
  id: string;
  channel_id: string;
  seq: number;
  author: string;
  ts: number;
  lc: number;
  text: string;
  sig: string;
  cert: string;
}

export interface ChannelRow {
  id: string;
  name: string;
  owner: string;
  allow_visitors: number;
  created_at: number;
  topic: string;
}

export interface SessionRow {
  session_id: string;
  username: string;
  role: Role;
  created_at: number;
  revoked: number;
  revoked_at: number | null;
  public_key: string;
}

export function toSession(r: SessionRow): SessionRecord {
  return {
    sessionId: r.session_id,
    username: r.username,
    role: r.role,
    createdAt: r.created_at,
    revoked: r.revoked === 1,
    revokedAt: r.revoked_at ?? undefined,
    publicKey: r.public_key,
  };
}

export function toChannel(r: ChannelRow): Channel {
  return {
    id: r.id,
    name: r.name,
    owner: r.owner,
    allowVisitors: r.allow_visitors === 1,
    createdAt: r.created_at,
    ...(r.topic ? { topic: r.topic } : {}),
  };
}

export function toMessage(r: MessageRow): StoredMessage {
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

/** The columns of a message row that make a StoredMessage. */
export const MESSAGE_COLS =
  'id, channel_id, seq, author, ts, lc, text, sig, cert, kind, target, ext';
