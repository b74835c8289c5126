/**
 * What a session reads of the server's channels: the directory and its own
 * channels a page at a time, whether it may read a channel, history pages, sync since a cursor
 * and member lists, each cut to the receiver's frame.
 */
import { HchatError } from '../protocol/errors.js';
import type { Channel } from '../protocol/common.js';
import type { OpReq, OpRes } from '../protocol/server-link.js';
import { fitHistory, fitPage, listPage, pageBudget } from '../protocol/page-budget.js';
import type { ChannelCache } from './channel-cache.js';
import type { ChannelDeps } from './channel-deps.js';
import { REMOVED } from './channel-membership.js';
import type { Conn, Session } from './conn.js';

/** Reads of the channels of one server instance. */
export class ChannelReads {
  constructor(
    private readonly d: ChannelDeps,
    private readonly cache: ChannelCache,
    /** Whether the owner removed the user (channel-membership.ts). */
    private readonly membership: {
      isRemoved(channelId: string, username: string): Promise<boolean>;
    },
  ) {}

  /**
   * One page of the directory, in (createdAt, id) order after the cursor `after` (as `next`
   * gave it), cut to the receiver's frame; `next` when more remain. The channels this session may
   * join or view (SPEC: a visitor's allow visitors; none whose owner removed the user, or the
   * user who owns this bot, since neither may join it again).
   */
  async directory(conn: Conn, after: string | undefined): Promise<OpRes<'directory'>> {
    const s = conn.session!;
    const owner = s.role === 'user' ? await this.d.bots?.ownerOf(s.username) : undefined;
    const page = await this.d.store.listChannels({
      after: after === undefined ? undefined : parseCursor(after),
      limit: this.d.pageChannels + 1,
      visitorsOnly: s.role === 'visitor',
      removedOf:
        s.role === 'visitor' ? [] : owner === undefined ? [s.username] : [s.username, owner],
    });
    const slice = page.slice(0, this.d.pageChannels);
    const p = listPage(slice, conn.fs.peerMaxFrame, cursorOf, page.length > slice.length);
    return { channels: p.items, ...(p.next === undefined ? {} : { next: p.next }) };
  }

  /** A user's memberships (a visitor's: its views on this connection), all of them. */
  async channelsOfSession(conn: Conn): Promise<Channel[]> {
    const s = conn.session!;
    if (s.role === 'user') return this.d.store.channelsOf(s.username);
    const all = await Promise.all([...conn.subs].map((id) => this.cache.channel(id)));
    return all.filter((c) => c !== undefined);
  }

  /**
   * A user's memberships (a visitor's views on this connection), in (createdAt, id) order after
   * the cursor `after`, cut to the receiver's frame; `next` when more remain (1,000 channels
   * with long names and topics are more than a 1 MiB frame).
   */
  async myChannels(conn: Conn, after: string | undefined): Promise<OpRes<'my_channels'>> {
    const all = await this.channelsOfSession(conn);
    const from = after === undefined ? undefined : parseCursor(after);
    const list = all
      .filter(
        (c) =>
          !from ||
          c.createdAt > from.createdAt ||
          (c.createdAt === from.createdAt && c.id > from.id),
      )
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const p = listPage(list, conn.fs.peerMaxFrame, cursorOf);
    return { channels: p.items, ...(p.next === undefined ? {} : { next: p.next }) };
  }

  /**
   * The channel, if this session may read it (history, sync, search); visitors never learn of
   * other channels.
   */
  async readable(s: Session, channelId: string): Promise<Channel> {
    const c = await this.cache.channel(channelId);
    if (!c || (s.role === 'visitor' && !c.allowVisitors))
      throw new HchatError('E_CHANNEL_NOT_FOUND');
    if (s.role === 'user' && !(await this.cache.members(c.id)).has(s.username.toLowerCase())) {
      // A removed account is never a member: only a non-member's read looks it up.
      if (await this.membership.isRemoved(c.id, s.username)) throw REMOVED();
      if (!c.allowVisitors) throw new HchatError('E_NOT_MEMBER');
    }
    return c;
  }

  async history(conn: Conn, b: OpReq<'history'>): Promise<OpRes<'history'>> {
    await this.readable(conn.session!, b.channelId);
    const page = await this.d.store.history(b.channelId, b.limit, b.before);
    // The newest messages that fit the peer's frame limit (hasMore says older ones remain),
    // with the edits, deletes and reactions that name them (read with the page).
    const fit = fitHistory(
      page.messages,
      (kept) => {
        const ids = new Set(kept.map((m) => m.id));
        return page.related.filter((r) => ids.has(r.target!));
      },
      pageBudget(conn.fs.peerMaxFrame),
    );
    this.d.log.read(conn.reader, 'fetch', {
      peer: conn.name,
      channel: b.channelId,
      count: fit.messages.length,
      before: b.before,
    });
    return { messages: fit.messages, related: fit.related, hasMore: page.hasMore || fit.cut };
  }

  async sync(conn: Conn, b: OpReq<'sync'>): Promise<OpRes<'sync'>> {
    await this.readable(conn.session!, b.channelId);
    const all = await this.d.store.since(b.channelId, b.since, b.limit);
    // Cut to the peer's frame limit; lastSeq tells it that more remains.
    const messages = fitPage(all, pageBudget(conn.fs.peerMaxFrame), 'start').items;
    const lastSeq = await this.d.store.lastSeq(b.channelId);
    this.d.log.read(conn.reader, 'sync', {
      peer: conn.name,
      channel: b.channelId,
      since: b.since,
      count: messages.length,
    });
    return { messages, lastSeq };
  }

  async channelMembers(conn: Conn, b: OpReq<'members'>): Promise<OpRes<'members'>> {
    // Whoever may read the channel may see who is in it.
    const c = await this.readable(conn.session!, b.channelId);
    // In code-unit order after `after`, cut to the receiver's frame; `next` when more remain.
    const list = (await this.d.store.members(c.id))
      .filter((u) => b.after === undefined || u > b.after)
      .sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
    const p = listPage(list, conn.fs.peerMaxFrame, (last) => last);
    return { members: p.items, ...(p.next === undefined ? {} : { next: p.next }) };
  }
}

/** A channel's cursor in (createdAt, id) order, as `next` gives it. */
const cursorOf = (c: Channel) => `${c.createdAt}:${c.id}`;

/** A directory cursor (`createdAt:id`, as `next` gave it); a malformed one is E_BAD_REQUEST. */
function parseCursor(cursor: string): { createdAt: number; id: string } | undefined {
  const i = cursor.indexOf(':');
  const createdAt = Number(cursor.slice(0, i));
  if (i <= 0 || !Number.isFinite(createdAt))
    throw new HchatError('E_BAD_REQUEST', 'after: not a cursor this server gave');
  return { createdAt, id: cursor.slice(i + 1) };
}
