/**
 * The one decision "may this item change that message or channel?" (SPEC §7), made alike by the
 * server, the host and every member, and the one way every replica turns a set of items into
 * what a message shows (PROTOCOL.md §2.2). Both are pure: replicas holding the same items show
 * the same state, whatever order the items came in.
 *
 * - edit: by the message's author only; per message the newest edit (HLC order, then id) wins.
 * - delete: by the message's author, or by the channel's owner as moderator; wins over edits.
 * - react / unreact: any member; per (user, emoji) the newest of the two wins.
 * - channel: by the channel's owner only.
 */
import { HchatError } from '../protocol/errors.js';
import type { ChannelChange, ItemKind } from '../protocol/common.js';
import { namedMentions } from './mention-syntax.js';

/** The fields of an item these rules read. */
export interface RuleItem {
  id: string;
  channelId: string;
  author: string;
  ts: number;
  lc: number;
  kind?: ItemKind;
  target?: string;
  text?: string;
  mentions?: readonly string[];
  emoji?: string;
  change?: ChannelChange;
  /** Set on a tombstone: the body was erased (its delete took it away). */
  digest?: string;
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
/** What orders the items of one log: time, logical counter, then id. */
type Order = Pick<RuleItem, 'ts' | 'lc' | 'id'>;

/** HLC order, then id: the total order every replica agrees on. */
export function newer(a: Order, b: Order): boolean {
  return a.ts !== b.ts ? a.ts > b.ts : a.lc !== b.lc ? a.lc > b.lc : a.id > b.id;
}

/**
 * Why `item` may not enter a channel owned by `owner`, or undefined. `target` is the item it
 * names, when this replica holds it; `requireTarget` refuses an item whose target is unknown
 * (the host and the server, which hold every earlier item of the channel), where a member just
 * keeps it until its target arrives (it has no effect before).
 */
export function itemRefusal(
  item: RuleItem,
  owner: string,
  target: RuleItem | undefined,
  requireTarget: boolean,
): HchatError | undefined {
  const kind = item.kind ?? 'message';
  if (kind === 'message') return undefined;
  if (kind === 'channel') {
    return same(item.author, owner)
      ? undefined
      : new HchatError('E_FORBIDDEN', "only the channel's owner changes the channel");
  }
  if (!target) {
    return requireTarget
      ? new HchatError('E_NOT_FOUND', `${kind}: no such message in this channel`)
      : undefined;
  }
  if ((target.kind ?? 'message') !== 'message' || target.channelId !== item.channelId)
    return new HchatError('E_NOT_FOUND', `${kind}: the target is not a message of this channel`);
  if (kind === 'edit' && !same(item.author, target.author))
    return new HchatError('E_FORBIDDEN', 'only its author edits a message');
  if (kind === 'delete' && !same(item.author, target.author) && !same(item.author, owner)) {
    return new HchatError(
      'E_FORBIDDEN',
      "only its author or the channel's owner deletes a message",
    );
  }
  return undefined;
}

/** True when `d` is a delete that takes `message` away in a channel owned by `owner`. */
export function deletes(d: RuleItem, message: RuleItem, owner: string): boolean {
  return (
    d.kind === 'delete' &&
    d.target === message.id &&
    d.channelId === message.channelId &&
    (same(d.author, message.author) || same(d.author, owner))
  );
}

/**
 * Why a tombstone may not be posted with `deletedBy` (PROTOCOL.md §2.2), or undefined: the
 * delete must take away the tombstone's message, which is the tombstone itself or, for an
 * erased edit, the message it edits (`edited`, when this replica holds it).
 */
export function tombstoneRefusal(
  tomb: RuleItem,
  deletedBy: RuleItem,
  owner: string,
  edited: RuleItem | undefined,
): HchatError | undefined {
  const message = tomb.kind === 'edit' ? edited : tomb;
  if (!message) return new HchatError('E_NOT_FOUND', 'edit: no such message in this channel');
  if (deletes(deletedBy, message, owner)) return undefined;
  return new HchatError(
    'E_FORBIDDEN',
    "deletedBy: it does not take this message away (a delete of it, in its channel, by its author or the channel's owner)",
  );
}

/** The order a tombstone and its delete are stored in: the message before what names it. */
export function tombstoneOrder<T extends RuleItem>(tomb: T, deletedBy: T): [T, T] {
  return deletedBy.target === tomb.id ? [tomb, deletedBy] : [deletedBy, tomb];
}

/** What a message shows, given the items that name it. */
export interface MessageState {
  deleted: boolean;
  /** The text shown: the newest edit's, else the message's own (absent once deleted). */
  text?: string;
  /** The shown item's signed `mentions` that its text names (the others ping nobody). */
  mentions?: readonly string[];
  /** When the shown edit was made. */
  editedAt?: number;
  /** Per emoji, in order of its first reaction: who reacted (sorted). */
  reactions: Array<{ emoji: string; users: string[] }>;
}

/** Folds the items naming `message` (in any order, any duplicates) into what it shows. */
export function messageState(
  message: RuleItem,
  related: readonly RuleItem[],
  owner: string,
): MessageState {
  let lastEdit: RuleItem | undefined;
  let deleted = false;
  const votes: Vote[] = [];
  for (const r of related) {
    if (r.target !== message.id || r.channelId !== message.channelId) continue;
    if (deletes(r, message, owner)) deleted = true;
    else if (r.kind === 'edit' && same(r.author, message.author) && r.text !== undefined) {
      if (!lastEdit || newer(r, lastEdit)) lastEdit = r;
    } else if ((r.kind === 'react' || r.kind === 'unreact') && r.emoji !== undefined)
      votes.push(r as Vote);
  }
  // A tombstone's text is gone wherever it came from: it shows as deleted (an honest replica
  // holds its delete too; a dishonest one that erased a message without one hides nothing more
  // than by withholding it).
  if (deleted || message.digest !== undefined) return { deleted: true, reactions: [] };
  const reactions = foldReactions(votes);
  const shown = lastEdit ?? message;
  const state: MessageState = { deleted: false, text: shown.text, reactions };
  // A signed mention the text does not name shows nowhere, so it counts nowhere (§2.2).
  if (shown.mentions) state.mentions = namedMentions(shown.text, shown.mentions);
  if (lastEdit) state.editedAt = lastEdit.ts;
  return state;
}

/** A reply's preview of the message it quotes: its first 200 code points, a quote's line. */
export function quotePreview(text: string): string {
  return [...text].slice(0, 200).join('');
}

/** A reaction given (`react`) or taken back (`unreact`) by `author`, in a channel or a DM. */
export interface Vote {
  id: string;
  author: string;
  ts: number;
  lc: number;
  kind: 'react' | 'unreact';
  emoji: string;
}

/**
 * The reactions a message shows, from every react and unreact naming it (any order, any
 * duplicates): per user and emoji the newest (by `ts`, `lc`, then `id`) counts; per emoji, in
 * order of its earliest standing reaction, who reacted (sorted).
 */
export function foldReactions(votes: readonly Vote[]): Array<{ emoji: string; users: string[] }> {
  const newest = new Map<string, Vote>(); // `${user}\n${emoji}` -> newest react/unreact
  for (const v of votes) {
    const key = `${v.author.toLowerCase()}\n${v.emoji}`;
    const had = newest.get(key);
    if (!had || newer(v, had)) newest.set(key, v);
  }
  const byEmoji = new Map<string, { first: Vote; users: string[] }>();
  for (const v of newest.values()) {
    if (v.kind !== 'react') continue;
    const e = byEmoji.get(v.emoji);
    if (!e) byEmoji.set(v.emoji, { first: v, users: [v.author] });
    else {
      e.users.push(v.author);
      if (newer(e.first, v)) e.first = v;
    }
  }
  return [...byEmoji.entries()]
    .sort(([, a], [, b]) => (newer(a.first, b.first) ? 1 : -1))
    .map(([emoji, e]) => ({ emoji, users: e.users.sort((a, b) => a.localeCompare(b)) }));
}

/** Why a removed member may neither read, join nor post (every replica says the same). */
export const REMOVED_REASON = 'removed from this channel by its owner';

/** Folds a channel's `channel` items by its owner into the settings they set (per field, newest). */
export function channelSettings(
  items: readonly RuleItem[],
  owner: string,
): { name?: string; topic?: string; allowVisitors?: boolean; removed: string[]; deleted: boolean } {
  const newest = new Map<string, RuleItem>();
  const removed = new Set<string>();
  let deleted = false;
  for (const i of items) {
    if (i.kind !== 'channel' || !i.change || !same(i.author, owner)) continue;
    for (const f of ['name', 'topic', 'allowVisitors'] as const) {
      if (i.change[f] === undefined) continue;
      const n = newest.get(f);
      if (!n || newer(i, n)) newest.set(f, i);
    }
    if (i.change.remove) removed.add(i.change.remove.toLowerCase());
    if (i.change.deleted) deleted = true;
  }
  return {
    name: newest.get('name')?.change?.name,
    topic: newest.get('topic')?.change?.topic,
    allowVisitors: newest.get('allowVisitors')?.change?.allowVisitors,
    removed: [...removed].sort(),
    deleted,
  };
}
