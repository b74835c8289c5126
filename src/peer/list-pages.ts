/**
 * Lists the server answers a page at a time (PROTOCOL.md §3.3 `my_channels`, `members`): each is
 * cut to this peer's frame and says `next` while more remain, so it is asked again from there
 * until the list is whole. A peer that kept only the first page would take the rest as gone
 * (channels dropped, members refused at its host).
 */
import { readWhole } from '../protocol/page-budget.js';
import type { ServerLink } from './server-link.js';

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
