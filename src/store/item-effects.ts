/**
 * What storing an item does to the items already stored (PROTOCOL.md §2.2 _Erasure_), decided
 * alike by both stores: a message or edit whose delete is held is stored as a tombstone, and a
 * delete that takes a message away erases it and its edits.
 */
import { deletes, type RuleItem } from '../shared/item-rules.js';

/** How a store finds items. */
export interface ItemLookup<T extends RuleItem> {
  getItem(id: string): T | undefined;
  /** The items whose `target` is this id. */
  related(id: string): T[];
  /** The channel's owner ('' when unknown). */
  owner(channelId: string): string;
}

/** The message an item belongs to for erasure: itself, or the message an edit is of. */
function messageOf<T extends RuleItem>(m: RuleItem, look: ItemLookup<T>): RuleItem | undefined {
  const kind = m.kind ?? 'message';
  const message = kind === 'message' ? m : kind === 'edit' ? look.getItem(m.target!) : undefined;
  return message && (message.kind ?? 'message') === 'message' ? message : undefined;
}

/** True when a delete held already takes away this message (or the message this edit is of). */
export function erasedOnArrival<T extends RuleItem>(m: RuleItem, look: ItemLookup<T>): boolean {
  return eraser(m, look) !== undefined;
}

/** The delete held that takes away this message (or the message this edit is of), if any. */
export function eraser<T extends RuleItem>(m: RuleItem, look: ItemLookup<T>): T | undefined {
  const message = messageOf(m, look);
  if (!message) return undefined;
  const owner = look.owner(m.channelId);
  return look.related(message.id).find((d) => deletes(d, message, owner));
}

/** The items a just-stored delete erases: its message and that message's edits, not yet erased. */
export function erasedByDelete<T extends RuleItem>(d: RuleItem, look: ItemLookup<T>): T[] {
  if (d.kind !== 'delete' || d.target === undefined) return [];
  const message = look.getItem(d.target);
  if (!message || !deletes(d, message, look.owner(d.channelId))) return [];
  return [message, ...look.related(message.id)].filter(
    (m) => ((m.kind ?? 'message') === 'message' || m.kind === 'edit') && m.digest === undefined,
  );
}
