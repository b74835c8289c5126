/**
 * How the peer store's rows (peer-store-schema.ts) become what the peer works with: its messages
 * with their delivery state and both numbers, its channels with their cursor, and the fields of
 * an item every replica agrees on.
 */
import type { Channel, StoredMessage } from '../protocol/common.js';
import { itemColumns, itemOfColumns, sameItem, type ItemColumns } from './item-columns.js';
import { canonicalSig } from './canonical-spelling.js';

/** Delivery state of a message on this peer. */
export type MessageState = 'pending' | 'delivered' | 'failed';

/** An item (a message, or a change to one or to the channel) as this peer holds it. */
export type LocalMessage = Omit<StoredMessage, 'seq'> & {
  state: MessageState;
  /** Sequence number on the server, once known. */
  seq: number | null;
  /** Sequence number on the channel's host, once known. */
  hostSeq: number | null;
  error: string | null;
};

/** A channel as one account on this peer sees it. */
export interface LocalChannel extends Channel {
  /** Highest server seq up to which this peer holds every message. */
  cursor: number;
}

/** Which replica's numbering a received message carries. */
export type Via = 'server' | 'host';

/** A message as a replica stores it, before any numbering (or with the server's). */
export type Authored = Omit<StoredMessage, 'seq'> & { seq?: number };

/** A row of `messages`, as `COLS` selects it. */
export interface MessageRow extends ItemColumns {
  local_seq: number;
  id: string;
  channel_id: string;
  author: string;
  ts: number;
  lc: number;
  text: string;
  sig: string;
  cert: string;
  state: MessageState;
  seq: number | null;
  host_seq: number | null;
  error: string | null;
}

/** A message that may mention someone: its text and members (`ext`, JSON). */
export interface MentionCandidate {
  text: string | null;
  ext: string;
}

/** The columns of a `channels` row that the peer reads. */
export interface ChannelRow {
  id: string;
  name: string;
  owner: string;
  allow_visitors: number;
  created_at: number;
  cursor: number;
  topic: string;
}

/** The message a row holds. */
export function toMessage(r: MessageRow): LocalMessage {
  return {
    id: r.id,
    channelId: r.channel_id,
    author: r.author,
    ts: r.ts,
    lc: r.lc,
    ...itemOfColumns(r),
    sig: canonicalSig(r.sig),
    cert: r.cert,
    state: r.state,
    seq: r.seq,
    hostSeq: r.host_seq,
    error: r.error,
  };
}

/** True when a stored row holds the same item (what the author signed) as `m`. */
export function sameContent(r: MessageRow, m: Omit<Authored, 'seq' | 'sig' | 'cert'>): boolean {
  return sameItem(toMessage(r), m);
}

/** The fields of a message every replica agrees on (no numbering, no local state). */
export function toStored(m: Omit<Authored, 'seq'>): Omit<StoredMessage, 'seq'> {
  return {
    id: m.id,
    channelId: m.channelId,
    author: m.author,
    ts: m.ts,
    lc: m.lc,
    ...itemOfColumns(itemColumns(m)),
    sig: m.sig,
    cert: m.cert,
  };
}

/** A message of a hosted channel as the P2P link carries it: `seq` is the host's number. */
export function hostNumbered(m: LocalMessage): StoredMessage {
  return { ...toStored(m), seq: m.hostSeq! };
}

/** The channel a row holds, as its account sees it. */
export function toChannel(r: ChannelRow): LocalChannel {
  return {
    id: r.id,
    name: r.name,
    owner: r.owner,
    allowVisitors: r.allow_visitors === 1,
    createdAt: r.created_at,
    cursor: r.cursor,
    ...(r.topic ? { topic: r.topic } : {}),
  };
}

/** The columns of `messages` a `MessageRow` holds. */
export const COLS =
  'local_seq, id, channel_id, author, ts, lc, text, sig, cert, state, seq, host_seq, error, kind, target, ext';
