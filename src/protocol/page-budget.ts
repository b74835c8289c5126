/**
 * Pages that fit the receiver's frame limit (PROTOCOL.md §1): a page of items is cut, by bytes,
 * so that the answer carrying it stays under the other end's `maxFrame`. The receiver learns
 * that more remains (`hasMore`, `lastSeq` beyond its cursor, or `next`) and asks again, so
 * nothing is lost and no answer ever breaks the link.
 */
import { FRAME_LIMITS } from '../shared/limits.js';
import { HchatError } from './errors.js';

/** Bytes an item takes inside a JSON array (its encoding and a comma). */
export function itemBytes(item: unknown): number {
  return Buffer.byteLength(JSON.stringify(item)) + 1;
}

/** The byte budget for a page's items in an answer to a receiver that takes `maxFrame` bytes. */
export function pageBudget(maxFrame: number): number {
  return Math.max(1024, maxFrame - FRAME_LIMITS.envelopeBytes);
}

/**
 * The longest run of `items` that fits in `budget` bytes, kept from the start (oldest first:
 * sync) or from the end (newest: a history page). At least one item is kept, if any (a single
 * item always fits a frame: every item's size is bounded far below it). `cut` says whether some
 * were left out.
 */
export function fitPage<T>(
  items: readonly T[],
  budget: number,
  keep: 'start' | 'end',
): { items: T[]; cut: boolean } {
  let used = 0;
  let n = 0;
  for (; n < items.length; n++) {
    const item = keep === 'start' ? items[n] : items[items.length - 1 - n];
    used += itemBytes(item);
    if (used > budget && n > 0) break;
  }
  if (n === items.length) return { items: [...items], cut: false };
  return {
    items: keep === 'start' ? items.slice(0, n) : items.slice(items.length - n),
    cut: true,
  };
}

/**
 * A page of a list (`directory`, `get_list`, `my_channels`, `members`): the longest run of
 * `items` from the start that fits a receiver taking `maxFrame` bytes, and `next`, the cursor of
 * its last item, when some were cut or `more` remain beyond `items`.
 */
export function listPage<T>(
  items: readonly T[],
  maxFrame: number,
  cursorOf: (last: T) => string,
  more = false,
): { items: T[]; next?: string } {
  const fit = fitPage(items, pageBudget(maxFrame), 'start');
  const last = fit.items[fit.items.length - 1];
  return (fit.cut || more) && last !== undefined
    ? { items: fit.items, next: cursorOf(last) }
    : { items: fit.items };
}

/**
 * A history page: the newest messages that fit, then as many of the items naming them
 * (`related`, oldest first) as fit the rest of the budget.
 */
export function fitHistory<T>(
  messages: readonly T[],
  related: (kept: T[]) => readonly T[],
  budget: number,
): { messages: T[]; related: T[]; cut: boolean } {
  const page = fitPage(messages, budget, 'end');
  return withRelated(page, related(page.items), budget);
}

/** `fitHistory` with a lookup of related items that answers later (the server's store). */
export async function fitHistoryAsync<T>(
  messages: readonly T[],
  related: (kept: T[]) => Promise<readonly T[]>,
  budget: number,
): Promise<{ messages: T[]; related: T[]; cut: boolean }> {
  const page = fitPage(messages, budget, 'end');
  return withRelated(page, await related(page.items), budget);
}

function withRelated<T>(
  page: { items: T[]; cut: boolean },
  related: readonly T[],
  budget: number,
): { messages: T[]; related: T[]; cut: boolean } {
  const used = page.items.reduce((n, m) => n + itemBytes(m), 0);
  const rest = fitPage(related, budget - used, 'start');
  const fits = used + rest.items.reduce((n, m) => n + itemBytes(m), 0) <= budget;
  return { messages: page.items, related: fits ? rest.items : [], cut: page.cut };
}

/** Pages read for one list at most: a server that never ends one is refused. */
const MAX_PAGES = 10_000;

/**
 * Every item of a paged list (the reader's side of the above: `my_channels`, `members`), asking
 * again after each page's `next`; a list that does not move on, or never ends, is refused.
 */
export async function readWhole<T>(
  page: (after: string | undefined) => Promise<{ items: T[]; next?: string | undefined }>,
): Promise<T[]> {
  const all: T[] = [];
  let after: string | undefined;
  for (let n = 0; n < MAX_PAGES; n++) {
    const p = await page(after);
    all.push(...p.items);
    if (p.next === undefined) return all;
    if (p.next === after || p.items.length === 0)
      throw new HchatError('E_BAD_FRAME', 'a page of a list that does not move on');
    after = p.next;
  }
  throw new HchatError('E_BAD_FRAME', `a list of more than ${MAX_PAGES} pages`);
}
