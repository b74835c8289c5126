/**
 * The server's channels (SPEC §4–§5): create, directory, join, history, sync, subscriptions,
 * posts (group-committed: one transaction per event-loop turn, answered after commit), forwards
 * from hosts, and the fan-out of stored messages to subscribed connections, encoded once.
 * The store answers asynchronously: channels and members are cached (`channel`, `members`
 * load them; presence and typing read the cache), a user's check-then-act steps (count, then
 * create or join) run one at a time per user, and a connection's posts are prepared in the order
 * they came, so that they are stored, answered and pushed in that order.
 *
 * ChannelService is the one face the server's dispatch, bus delivery, presence and typing see;
 * the work is done by its parts: the caches (channel-cache.ts), joins, leaves and removals
 * (channel-membership.ts), reads (channel-reads.ts), posts and forwards (channel-posts.ts), and
 * subscriptions and pushes (channel-fanout.ts).
 */
import type { Channel } from '../protocol/common.js';
import type { OpReq, OpRes } from '../protocol/server-link.js';
import { HchatError } from '../protocol/errors.js';
import type { BusEvent } from './bus.js';
import { ChannelCache } from './channel-cache.js';
import type { ChannelDeps } from './channel-deps.js';
import { ChannelFanout } from './channel-fanout.js';
import { ChannelMembership } from './channel-membership.js';
import { ChannelPosts } from './channel-posts.js';
import { ChannelReads } from './channel-reads.js';
import type { Conn, Session } from './conn.js';

export type { ChannelDeps, ChannelOps, MessageCounts } from './channel-deps.js';

/** Channels, messages and their fan-out on one server instance. */
export class ChannelService {
  private readonly cache: ChannelCache;
  private readonly fanout: ChannelFanout;
  private readonly membership: ChannelMembership;
  private readonly reads: ChannelReads;
  private readonly posts: ChannelPosts;

  constructor(private readonly d: ChannelDeps) {
    this.cache = new ChannelCache(d);
    this.fanout = new ChannelFanout(d);
    this.membership = new ChannelMembership(d, this.cache, this.fanout);
    this.reads = new ChannelReads(d, this.cache, this.membership);
    this.posts = new ChannelPosts(d, this.cache, this.membership);
  }

  // ---- membership (channel-membership.ts) -------------------------------------------------

  createChannel(conn: Conn, b: OpReq<'channel_create'>): Promise<Channel> {
    return this.membership.createChannel(conn, b);
  }

  join(conn: Conn, channelId: string): Promise<Channel> {
    return this.membership.join(conn, channelId);
  }

  /** A member leaves a channel: no more pushes, no more reads unless it joins again. */
  leave(conn: Conn, channelId: string): Promise<void> {
    return this.membership.leave(conn, channelId);
  }

  /** A user joined a channel (bus): caches and the owner's and user's connections learn it. */
  memberJoined(e: Extract<BusEvent, { kind: 'member_joined' }>): void {
    this.membership.memberJoined(e);
  }

  /** A member left or was removed (bus): caches forget it, its connections stop getting pushes. */
  memberLeft(e: Extract<BusEvent, { kind: 'member_left' }>): void {
    this.membership.memberLeft(e);
  }

  /** The owner changed the channel (bus): cached settings are read again. */
  channelChanged(e: Extract<BusEvent, { kind: 'channel_changed' }>): void {
    this.membership.channelChanged(e);
  }

  // ---- the caches (channel-cache.ts) --------------------------------------------------------

  /** The channel with this id, from the cache or the store. */
  channel(id: string): Promise<Channel | undefined> {
    return this.cache.channel(id);
  }

  /** The channel if it is cached (it was read for a request or a push): presence's view. */
  cachedChannel(id: string): Channel | undefined {
    return this.cache.cachedChannel(id);
  }

  /** The users (lower-case) of a channel, owner included, cached. */
  members(channelId: string): Promise<ReadonlySet<string>> {
    return this.cache.members(channelId);
  }

  /** The cached members of a channel (empty when not loaded): presence and typing's view. */
  cachedMembers(channelId: string): ReadonlySet<string> {
    return this.cache.cachedMembers(channelId);
  }

  // ---- reads (channel-reads.ts) -------------------------------------------------------------

  /** One page of the directory after the cursor `after`. */
  directory(conn: Conn, after: string | undefined): Promise<OpRes<'directory'>> {
    return this.reads.directory(conn, after);
  }

  /** A user's memberships (a visitor's: its views on this connection), all of them. */
  channelsOfSession(conn: Conn): Promise<Channel[]> {
    return this.reads.channelsOfSession(conn);
  }

  /** A user's memberships (a visitor's views on this connection), one page after `after`. */
  myChannels(conn: Conn, after: string | undefined): Promise<OpRes<'my_channels'>> {
    return this.reads.myChannels(conn, after);
  }

  /** The channel, if this session may read it (history, sync, search). */
  readable(s: Session, channelId: string): Promise<Channel> {
    return this.reads.readable(s, channelId);
  }

  history(conn: Conn, b: OpReq<'history'>): Promise<OpRes<'history'>> {
    return this.reads.history(conn, b);
  }

  sync(conn: Conn, b: OpReq<'sync'>): Promise<OpRes<'sync'>> {
    return this.reads.sync(conn, b);
  }

  channelMembers(conn: Conn, b: OpReq<'members'>): Promise<OpRes<'members'>> {
    return this.reads.channelMembers(conn, b);
  }

  // ---- subscriptions and fan-out (channel-fanout.ts) ----------------------------------------

  async subscribe(conn: Conn, b: OpReq<'subscribe'>): Promise<OpRes<'subscribe'>> {
    const s = conn.session!;
    const ok: string[] = [];
    for (const id of b.channelIds) {
      try {
        await this.readable(s, id);
        ok.push(id);
      } catch (err) {
        if (!(err instanceof HchatError)) throw err;
      }
    }
    this.setSubscriptions(conn, ok);
    this.d.log.write('subscribe', { peer: conn.name, count: ok.length });
    return { channelIds: ok };
  }

  /** Connections of this instance subscribed to a channel's pushes. */
  subscribersOf(channelId: string): ReadonlySet<Conn> {
    return this.fanout.subscribersOf(channelId);
  }

  setSubscriptions(conn: Conn, channelIds: readonly string[]): void {
    this.fanout.setSubscriptions(conn, channelIds);
  }

  /** Pushes a stored message to every subscribed connection, at the end of the turn. */
  deliverMessage(e: Extract<BusEvent, { kind: 'message' }>): void {
    this.fanout.deliverMessage(e);
  }

  /**
   * The bus is back after an outage: what other instances stored meanwhile was not pushed here.
   * Each subscribed channel's newest message is pushed again; a peer that lacks an earlier one
   * sees the hole and catches up from its cursor (PROTOCOL.md §3.6), one that holds it ignores
   * it (by id).
   */
  async busReconnected(): Promise<void> {
    // Joins, leaves and channel changes of the outage were missed too: read them again.
    for (const id of [...this.cache.memberCache.keys()]) {
      const names = await this.d.store.members(id);
      this.cache.memberCache.set(id, new Set(names.map((u) => u.toLowerCase())));
    }
    for (const id of [...this.cache.channelCache.keys()]) {
      const c = await this.d.store.getChannel(id);
      if (c) this.cache.channelCache.set(id, c);
      else this.cache.channelCache.delete(id);
    }
    for (const channelId of [...this.fanout.subscribers.keys()]) {
      const last = await this.d.store.lastSeq(channelId);
      if (last === 0) continue;
      const [message] = await this.d.store.since(channelId, last - 1, 1);
      if (message && !this.posts.closed)
        this.deliverMessage({ kind: 'message', channelId, message });
    }
  }

  // ---- posts and forwards (channel-posts.ts) ------------------------------------------------

  /** Takes a post: checked after the connection's earlier posts, then stored by group commit. */
  queuePost(conn: Conn, reqId: number, b: OpReq<'post'>): void {
    this.posts.queuePost(conn, reqId, b);
  }

  /** Posts waiting for the next group commit. */
  get queuedPosts(): number {
    return this.posts.queuedPosts;
  }

  /** A host uploads its channel's messages; each is stored once and pushed to subscribers. */
  forward(conn: Conn, b: OpReq<'forward'>): Promise<OpRes<'forward'>> {
    return this.posts.forward(conn, b);
  }

  /** Stops taking posts (the server is closing): what was queued is stored and answered first. */
  close(): Promise<void> {
    return this.posts.close();
  }
}
