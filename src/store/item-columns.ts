/**
 * How both stores keep an item of a channel's log in one row: `kind` and `target` in columns of
 * their own (looked up), `text` ('' when it has none), and the rest of the body (reply,
 * mentions, emoji, channel change, files) or a tombstone's digest as JSON in `ext`.
 */
import type { ChannelChange, FileRef, ItemKind, NewMessage } from '../protocol/common.js';
import { bodyDigest } from '../shared/message-id.js';

/** The columns of an item's row. */
export interface ItemColumns {
  kind: ItemKind;
  target: string | null;
  text: string;
  ext: string | null;
}

interface Ext {
  replyTo?: string;
  mentions?: string[];
  emoji?: string;
  change?: ChannelChange;
  files?: FileRef[];
  digest?: string;
}

type ItemPart = Pick<
  NewMessage,
  'kind' | 'target' | 'text' | 'replyTo' | 'mentions' | 'emoji' | 'change' | 'files' | 'digest'
>;

/** The row's columns of an item. */
export function itemColumns(m: ItemPart): ItemColumns {
  const ext: Ext = {};
  if (m.replyTo !== undefined) ext.replyTo = m.replyTo;
  if (m.mentions !== undefined) ext.mentions = [...m.mentions];
  if (m.emoji !== undefined) ext.emoji = m.emoji;
  if (m.change !== undefined) ext.change = m.change;
  if (m.files !== undefined) ext.files = m.files;
  if (m.digest !== undefined) ext.digest = m.digest;
  return {
    kind: m.kind ?? 'message',
    target: m.target ?? null,
    text: m.text ?? '',
    ext: Object.keys(ext).length > 0 ? JSON.stringify(ext) : null,
  };
}

/** The item's fields of a row (the wire's shape: `kind` only when not a message). */
export function itemOfColumns(r: ItemColumns): ItemPart {
  const out: ItemPart = {};
  if (r.kind !== 'message') out.kind = r.kind;
  if (r.target !== null) out.target = r.target;
  if (r.text !== '') out.text = r.text;
  if (r.ext !== null) Object.assign(out, JSON.parse(r.ext) as Ext);
  return out;
}

/** The same item without its body: what a delete leaves (its signature still verifies). */
export function tombstoneColumns(m: ItemPart): ItemColumns {
  return {
    kind: m.kind ?? 'message',
    target: m.target ?? null,
    text: '',
    ext: JSON.stringify({ digest: m.digest ?? bodyDigest(m) }),
  };
}

/**
 * True when two copies of an item (same id) are the same item: same header and body digest.
 * A tombstone and the full item it came from are the same item.
 */
export function sameItem(
  a: ItemPart & { channelId: string; author: string; ts: number; lc: number },
  b: ItemPart & { channelId: string; author: string; ts: number; lc: number },
): boolean {
  return (
    a.channelId === b.channelId &&
    a.author.toLowerCase() === b.author.toLowerCase() &&
    a.ts === b.ts &&
    a.lc === b.lc &&
    (a.kind ?? 'message') === (b.kind ?? 'message') &&
    (a.target ?? null) === (b.target ?? null) &&
    (a.digest ?? bodyDigest(a)) === (b.digest ?? bodyDigest(b))
  );
}
