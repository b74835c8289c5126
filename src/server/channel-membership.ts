/**
 * Who is in the server's channels (PROTOCOL.md §2.2): create and join (a user's
 * count-then-act steps one at a time), leave, removals by the owner (a removed member's bots
 * leave with it), and the bus's member and channel changes applied to the caches and the
 * subscriptions of this instance, and told to the owner's and the user's connections.
 */
import { HchatError } from '../protocol/errors.js';
import { REMOVED_REASON } from '../shared/item-rules.js';
import { encodeFrame } from '../protocol/frame.js';
import type { Channel } from '../protocol/common.js';
import type { OpReq } from '../protocol/server-link.js';
import { KeyedQueue } from '../shared/keyed-queue.js';
import type { BusEvent } from './bus.js';
import type { ChannelCache } from './channel-cache.js';
import type { ChannelDeps } from './channel-deps.js';
import type { ChannelFanout } from './channel-fanout.js';
import type { Conn } from './conn.js';

/** Joins, leaves and removals in the channels of one server instance. */
export class ChannelMembership {
  /** Count-then-act steps of one user (create, join) run one at a time. */
  private readonly perUser = new KeyedQueue();

  constructor(
    private readonly d: ChannelDeps,
    private readonly cache: ChannelCache,
    private readonly fanout: ChannelFanout,
  ) {}

  createChannel(conn: Conn, b: OpReq<'channel_create'>): Promise<Channel> {
    const user = conn.session!.username;
    return this.perUser.run(user.toLowerCase(), () => this.create(conn, b));
  }

  private async create(conn: Conn, b: OpReq<'channel_create'>): Promise<Channel> {
    const channel: Channel = {
      id: b.id,
      name: b.name,
      owner: conn.session!.username,
      allowVisitors: b.allowVisitors,
      createdAt: Date.now(),
    };
    // The store counts the caps with the insert, under a lock of the owner (every instance).
    await this.d.store.createChannel(channel, {
      owned: this.d.channelsPerAccount,
      memberships: this.d.membershipsPerAccount,
    });
    this.cache.memberCache.set(channel.id, new Set([channel.owner.toLowerCase()]));
    this.fanout.addSubscription(conn, channel.id);
    // The owner's other devices list it too (they read it from this one, its host).
    this.d.bus.publish({
      kind: 'member_joined',
      channelId: channel.id,
      username: channel.owner,
      exceptSession: conn.session!.sessionId,
    });
    this.d.log.write('channel_create', { peer: conn.name, channel: channel.id });
    return channel;
  }

  join(conn: Conn, channelId: string): Promise<Channel> {
    const user = conn.session!.username;
    return this.perUser.run(user.toLowerCase(), () => this.joinNow(conn, channelId));
  }

  private async joinNow(conn: Conn, channelId: string): Promise<Channel> {
    const s = conn.session!;
    const c = await this.cache.channel(channelId);
    if (!c || (s.role === 'visitor' && !c.allowVisitors))
      throw new HchatError('E_CHANNEL_NOT_FOUND');
    if (s.role === 'user' && !(await this.cache.members(c.id)).has(s.username.toLowerCase())) {
      if (await this.isRemoved(c.id, s.username)) throw REMOVED();
      // E_FORBIDDEN past the cap, counted by the store with the insert (every instance).
      await this.d.store.addMember(c.id, s.username, this.d.membershipsPerAccount);
      // A bot whose owner was removed meanwhile (on any instance): the removal's sweep of its
      // owner's bots may have run before this insert, so it is undone here.
      const owner = await this.d.bots?.ownerOf(s.username);
      if (owner !== undefined && (await this.d.store.isRemoved(c.id, owner))) {
        await this.d.store.removeMember(c.id, s.username);
        throw REMOVED();
      }
      this.d.bus.publish({
        kind: 'member_joined',
        channelId: c.id,
        username: s.username,
        exceptSession: s.sessionId,
      });
    }
    // The joining connection gets pushes until it says otherwise (subscribe).
    this.fanout.addSubscription(conn, c.id);
    this.d.log.write('join', { peer: conn.name, channel: c.id, role: s.role });
    return c;
  }

  /**
   * Whether the owner removed `username` from the channel, or the user who owns it, a bot
   * (PROTOCOL.md §2.2: a removed member's bots leave with it, and none of its bots joins again).
   */
  async isRemoved(channelId: string, username: string): Promise<boolean> {
    if (await this.d.store.isRemoved(channelId, username)) return true;
    const owner = await this.d.bots?.ownerOf(username);
    return owner !== undefined && (await this.d.store.isRemoved(channelId, owner));
  }

  /**
   * The owner removed `owner` from the channel: the bots it owns that are members leave too. The
   * removal's own transaction took them out of the store (`leavers`, `withLeavers`), so a crash
   * after it cannot leave them members; here every instance's cache is told, and a bot made
   * since, which joined before the removal was stored, is taken out too.
   */
  async removeBotsOf(channelId: string, owner: string): Promise<void> {
    const bots = this.cachedAsMembers(channelId, (await this.d.bots?.of(owner)) ?? []);
    for (const bot of bots) await this.d.store.removeMember(channelId, bot);
    this.told(channelId, bots);
  }

  /**
   * Bots that left with their removed owner, out of the store already (the removal's `leavers`):
   * every instance's cache is told at once, in the same turn as the owner's removal.
   */
  botsLeft(channelId: string, bots: readonly string[]): void {
    this.told(channelId, this.cachedAsMembers(channelId, bots));
  }

  /**
   * Those of `bots` this instance holds as members; all of them when it holds no list (not
   * loaded here: which were members is not known any more, the store has them out).
   */
  private cachedAsMembers(channelId: string, bots: readonly string[]): readonly string[] {
    const members = this.cache.memberCache.get(channelId);
    return members ? bots.filter((b) => members.has(b.toLowerCase())) : bots;
  }

  /** Every instance's cache, and the log, learn that the bots left with their owner. */
  private told(channelId: string, bots: readonly string[]): void {
    for (const bot of bots) {
      this.d.bus.publish({ kind: 'member_left', channelId, username: bot });
      this.d.log.write('leave', { user: bot, channel: channelId, reason: 'owner_removed' });
    }
  }

  /** A member leaves a channel: no more pushes, no more reads unless it joins again. */
  async leave(conn: Conn, channelId: string): Promise<void> {
    const s = conn.session!;
    const c = await this.cache.channel(channelId);
    if (!c || !(await this.cache.members(c.id)).has(s.username.toLowerCase()))
      throw new HchatError('E_NOT_MEMBER');
    if (c.owner.toLowerCase() === s.username.toLowerCase())
      throw new HchatError('E_FORBIDDEN', 'the owner cannot leave its channel: delete it instead');
    await this.d.store.removeMember(c.id, s.username);
    this.d.bus.publish({
      kind: 'member_left',
      channelId: c.id,
      username: s.username,
      exceptSession: s.sessionId,
    });
    this.d.log.write('leave', { peer: conn.name, channel: c.id });
  }

  /**
   * A member left or was removed: the caches forget it, its connections stop getting pushes,
   * and the owner's host is told (it checks members itself).
   */
  memberLeft(e: Extract<BusEvent, { kind: 'member_left' }>): void {
    const reading = this.cache.membersReading.get(e.channelId);
    if (reading) reading.changes++;
    this.cache.memberCache.get(e.channelId)?.delete(e.username.toLowerCase());
    const subs = this.fanout.subscribers.get(e.channelId);
    // What was queued for the channel before the leave was heard still reaches the member (the
    // removal item itself: the bus brings events in the order they were stored); nothing after
    // it does, even an item heard in the same turn (one read from NATS holds several events, and
    // a push waited for the turn's end: a post made 0–3 ms after a removal on another instance
    // reached the removed member's gateway in a loaded test run).
    const queued = this.fanout.outgoing.get(e.channelId);
    if (queued) {
      this.fanout.outgoing.delete(e.channelId);
      this.fanout.push(e.channelId, queued);
    }
    const name = e.username.toLowerCase();
    const gone = (c: Conn) =>
      c.session?.role === 'user' && c.session.username.toLowerCase() === name;
    // Every subscriber of its user: its sessions, and connections no session list holds (the
    // REST gateway's, whose subscription a re-subscribe read before the removal may renew).
    for (const c of [...(subs ?? []), ...this.d.connsOf(name)]) {
      if (!gone(c)) continue;
      subs?.delete(c);
      c.subs.delete(e.channelId);
    }
    this.tellOwnerAndUser(e, 'member_left');
  }

  /**
   * The owner changed the channel: cached settings are read again (a removal comes as its own
   * member_left); a deleted channel's members are forgotten.
   */
  channelChanged(e: Extract<BusEvent, { kind: 'channel_changed' }>): void {
    this.cache.channelCache.delete(e.channelId);
    if (e.allowVisitors === false && !e.deleted) {
      // After this turn's pushes (the change itself reaches every subscriber), only members
      // read it: visitors' and non-members' subscriptions end (PROTOCOL.md §2.2).
      process.nextTick(() => {
        this.membersOnly(e.channelId).catch((err: unknown) =>
          this.d.ops?.internalError('ending the subscriptions of non-members failed', err),
        );
      });
    }
    if (!e.deleted) return;
    this.cache.memberCache.delete(e.channelId);
    // After this turn's pushes (the deletion itself reaches every subscriber).
    process.nextTick(() => {
      for (const c of this.fanout.subscribers.get(e.channelId) ?? []) c.subs.delete(e.channelId);
      this.fanout.subscribers.delete(e.channelId);
    });
  }

  /**
   * The channel no longer allows visitors: a subscription of a visitor, or of a user who is not a
   * member, ends; so does a visitor's view of it (presence). Members come from the cache when it
   * holds them (the same turn), else from the store.
   */
  private async membersOnly(channelId: string): Promise<void> {
    const drop = (c: Conn) => {
      this.fanout.subscribers.get(channelId)?.delete(c);
      c.subs.delete(channelId);
    };
    // Visitors at once (no member list needed), users once the members are known.
    for (const c of [...(this.fanout.subscribers.get(channelId) ?? [])])
      if (c.session?.role !== 'user') drop(c);
    this.d.closedToVisitors?.(channelId);
    if (!this.fanout.subscribers.get(channelId)?.size) return;
    const members = await this.cache.members(channelId);
    for (const c of [...(this.fanout.subscribers.get(channelId) ?? [])]) {
      const s = c.session;
      if (s?.role !== 'user' || !members.has(s.username.toLowerCase())) drop(c);
    }
  }

  /**
   * A user joined a channel: the member cache learns it, and the owner's host and the user's
   * other devices are told.
   */
  memberJoined(e: Extract<BusEvent, { kind: 'member_joined' }>): void {
    const reading = this.cache.membersReading.get(e.channelId);
    if (reading) reading.changes++;
    this.cache.memberCache.get(e.channelId)?.add(e.username.toLowerCase());
    this.tellOwnerAndUser(e, 'member_joined');
  }

  /**
   * Every connection of the channel's owner (its host checks members itself) and of the user who
   * joined or left (its other devices list the channel, or drop it), but the session that did it.
   */
  private tellOwnerAndUser(
    e: { channelId: string; username: string; exceptSession?: string | undefined },
    ev: 'member_joined' | 'member_left',
  ): void {
    const { channelId, username } = e;
    const send = (owner: string | undefined) => {
      const to = new Set<Conn>();
      for (const name of owner ? [owner, username] : [username])
        for (const c of this.d.connsOf(name.toLowerCase()))
          if (c.session?.role === 'user' && c.session.sessionId !== e.exceptSession) to.add(c);
      if (to.size === 0) return;
      const frame = encodeFrame({ t: 'ev', ev, body: { channelId, username } });
      for (const c of to) c.fs.sendEncoded(frame);
    };
    const cached = this.cache.cachedChannel(channelId);
    if (cached) return send(cached.owner);
    this.cache.channel(channelId).then(
      (c) => send(c?.owner),
      (err: unknown) => console.error('hchat server: reading a channel failed:', err),
    );
  }
}

/** The refusal of a removed account (or of a bot of one), for joins and reads alike. */
export const REMOVED = () => new HchatError('E_FORBIDDEN', REMOVED_REASON);
