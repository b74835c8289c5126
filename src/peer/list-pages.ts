/**
 * Lists the server answers a page at a time (PROTOCOL.md §3.3 `my_channels`, `members`): each is
 * cut to this peer's frame and says `next` while more remain, so it is asked again from there
 * until the list is whole. A peer that kept only the first page would take the rest as gone
 * (channels dropped, members refused at its host).
 */
import { HchatError } from '../protocol/errors.js';
import type { ServerLink } from './server-link.js';

/** Pages read for one list at most: a server that never ends one is refused. */
const MAX_PAGES = 10_000;

/** Every item of a paged list, asking again after each page's `next`. */
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

/** A channel's members, all of them (lower case, code-unit order). */
export function allMembers(link: ServerLink, channelId: string): Promise<string[]> {
  return readWhole(async (after) => {
    const r = await link.request('members', { channelId, ...(after ? { after } : {}) });
    return { items: r.members, next: r.next };
  });
}

/** The session's channels, all of them. */
export function allMyChannels(link: ServerLink) {
  return readWhole(async (after) => {
    const r = await link.request('my_channels', after ? { after } : {});
    return { items: r.channels, next: r.next };
  });
}
