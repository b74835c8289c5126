/**
 * The server's channels (SPEC §4–§5): create, directory, join, history, sync, subscriptions,
 * posts (group-committed: one transaction per event-loop turn, answered after commit), forwards
 * from hosts, and the fan-out of stored messages to subscribed connections, encoded once.
 * The store answers asynchronously: channels and members are cached (`channel`, `members`
 * load them; presence and typing read the cache), a user's check-then-act steps (count, then
 * create or join) run one at a time per user, and a connection's posts are prepared in the order
 * they came, so that they are stored, answered and pushed in that order.
 */
import {
  compactPush,
  fullPush,
  type CompactPush,
  type Pushed,
  type RefRegistry,
} from '../shared/compact-refs.js';
import { HchatError } from '../protocol/errors.js';
import { encodeFrame } from '../protocol/frame.js';
import type { Channel, StoredMessage } from '../protocol/common.js';
import type { OpReq, OpRes } from '../protocol/server-link.js';
import type { ConnectionLog } from '../shared/connlog.js';
import { BAD_SIGNATURE, type MessageVerifier, type SignatureCheck } from '../shared/signing.js';
import { REMOVED_REASON, tombstoneOrder, tombstoneRefusal } from '../shared/item-rules.js';
import type { VerifyPool } from './verify-pool.js';
import type { Revocations } from './revocations.js';
import type { RateLimiter } from '../shared/rate-limit.js';
import { storageError } from '../store/sqlite.js';
import { fitHistory, fitPage, listPage, pageBudget } from '../protocol/page-budget.js';
import type { InsertResult, MessageInsert, ServerStore } from '../store/server-store.js';
import { KeyedQueue } from '../shared/keyed-queue.js';
import type { BusEvent, EventBus } from './bus.js';
import type { Conn, Session } from './conn.js';

const NO_CONNS: ReadonlySet<Conn> = new Set();
const NO_MEMBERS: ReadonlySet<string> = new Set();
/** Channels kept in the cache at most (the oldest found goes first). */
const CHANNEL_CACHE_MAX = 10_000;

interface PendingPost {
  conn: Conn;
  reqId: number;
  insert: MessageInsert;
  /** False for the delete that came with a tombstone (`deletedBy`): the tombstone answers. */
  answers: boolean;
}

/** A channel's messages waiting for the end of the turn: their frames, ids and posters. */
interface OutgoingMessages {
  messages: StoredMessage[];
  ids: string[];
  /** The session each message is not pushed to (its poster's), if any. */
  excepts: (string | undefined)[];
}

/** Message counters, for `GET /stats` and the offload tests. */
export interface MessageCounts {
  posted: number;
  forwarded: number;
  duplicates: number;
  pushed: number;
}

/** The channel service's hooks into the server's metrics and operational log. */
export interface ChannelOps {
  /** A batch of messages was stored in `seconds`. */
  batchStored(seconds: number): void;
  /** Something failed that no catalogued error explains (a bug, a broken store). */
  internalError(what: string, err: unknown): void;
}

/** What the channel service needs from its server. */
export interface ChannelDeps {
  /** This instance's numbering of certificates and channels for compact links (§3.11). */
  refs: RefRegistry;
  store: ServerStore;
  bus: EventBus;
  log: ConnectionLog;
  /** An item was stored (`erased`: a delete that took its message away): files follow. */
  itemStored?(m: StoredMessage, erased: boolean): void;
  verifier: MessageVerifier;
  /** Which sessions were revoked: a message signed after its session's end is refused. */
  revocations: Revocations;
  /** Threads that check posts' signatures off the event loop (absent: checked inline). */
  verifyPool?: VerifyPool;
  counts: MessageCounts;
  ops?: ChannelOps;
  /** Channels one user may own. */
  channelsPerAccount: number;
  /** Channels one user may join. */
  membershipsPerAccount: number;
  /** Channels in one `directory` page at most. */
  pageChannels: number;
  /** Posts per user (RATE_LIMITS). */
  postLimiter: RateLimiter;
  /** Connections of a user on this instance (lower-case name). */
  connsOf(username: string): Iterable<Conn>;
  /** Answers a request with an error (and logs it). */
  answerError(conn: Conn, id: number, op: string, err: unknown): void;
  /** A channel stopped allowing visitors (presence: no visitor views it any more). */
  closedToVisitors?(channelId: string): void;
  /**
   * Bots and their owners (REST.md): the owner of `username` if it is a bot, and the bots a
   * user owns. A member removed from a channel takes its bots along (PROTOCOL.md §2.2).
   */
  bots?: {
    ownerOf(username: string): Promise<string | undefined>;
    of(owner: string): Promise<string[]>;
  };
}

/** Channels, messages and their fan-out on one server instance. */
export class ChannelService {
  private readonly memberCache = new Map<string, Set<string>>();
  /** Channels whose members are being read from the store, and the joins and leaves meanwhile. */
  private readonly membersReading = new Map<string, { reads: number; changes: number }>();
  /** Channels found are kept until their owner changes them (channel_changed). */
  private readonly channelCache = new Map<string, Channel>();
  private readonly subscribers = new Map<string, Set<Conn>>();
  private posts: PendingPost[] = [];
  /** The batch being stored, if any: one at a time, so that answers and pushes keep order. */
  private flushing: Promise<void> | undefined;
  /** Per connection: its posts being prepared (lookups before they join a batch), in order. */
  private readonly preparing = new WeakMap<Conn, Promise<void>>();
  /** Count-then-act steps of one user (create, join) run one at a time. */
  private readonly perUser = new KeyedQueue();
  /** Messages stored this turn, per channel, not yet pushed (see deliverMessage). */
  private readonly outgoing = new Map<string, OutgoingMessages>();
  private outgoingScheduled = false;
  private closed = false;

  constructor(private readonly d: ChannelDeps) {}

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
    this.memberCache.set(channel.id, new Set([channel.owner.toLowerCase()]));
    this.addSubscription(conn, channel.id);
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

  /** The channel with this id, from the cache or the store. */
  async channel(id: string): Promise<Channel | undefined> {
    const cached = this.channelCache.get(id);
    if (cached) return cached;
    const c = await this.d.store.getChannel(id);
    if (c && !this.channelCache.has(id)) {
      if (this.channelCache.size >= CHANNEL_CACHE_MAX)
        this.channelCache.delete(this.channelCache.keys().next().value!);
      this.channelCache.set(id, c);
    }
    return this.channelCache.get(id) ?? c;
  }

  /** The channel if it is cached (it was read for a request or a push): presence's view. */
  cachedChannel(id: string): Channel | undefined {
    return this.channelCache.get(id);
  }

  /**
   * One page of the directory, in (createdAt, id) order after the cursor `after` (as `next`
   * gave it), cut to the receiver's frame; `next` when more remain.
   */
  async directory(conn: Conn, after: string | undefined): Promise<OpRes<'directory'>> {
    const s = conn.session!;
    const page = await this.d.store.listChannels({
      after: after === undefined ? undefined : parseCursor(after),
      limit: this.d.pageChannels + 1,
      visitorsOnly: s.role === 'visitor',
    });
    const slice = page.slice(0, this.d.pageChannels);
    const p = listPage(slice, conn.fs.peerMaxFrame, cursorOf, page.length > slice.length);
    return { channels: p.items, ...(p.next === undefined ? {} : { next: p.next }) };
  }

  /** A user's memberships (a visitor's: its views on this connection), all of them. */
  async channelsOfSession(conn: Conn): Promise<Channel[]> {
    const s = conn.session!;
    if (s.role === 'user') return this.d.store.channelsOf(s.username);
    const all = await Promise.all([...conn.subs].map((id) => this.channel(id)));
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
    const c = await this.channel(channelId);
    if (!c || (s.role === 'visitor' && !c.allowVisitors))
      throw new HchatError('E_CHANNEL_NOT_FOUND');
    if (s.role === 'user' && !(await this.members(c.id)).has(s.username.toLowerCase())) {
      // A removed account is never a member: only a non-member's read looks it up.
      if (await this.isRemoved(c.id, s.username)) throw REMOVED();
      if (!c.allowVisitors) throw new HchatError('E_NOT_MEMBER');
    }
    return c;
  }

  join(conn: Conn, channelId: string): Promise<Channel> {
    const user = conn.session!.username;
    return this.perUser.run(user.toLowerCase(), () => this.joinNow(conn, channelId));
  }

  private async joinNow(conn: Conn, channelId: string): Promise<Channel> {
    const s = conn.session!;
    const c = await this.channel(channelId);
    if (!c || (s.role === 'visitor' && !c.allowVisitors))
      throw new HchatError('E_CHANNEL_NOT_FOUND');
    if (s.role === 'user' && !(await this.members(c.id)).has(s.username.toLowerCase())) {
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
    this.addSubscription(conn, c.id);
    this.d.log.write('join', { peer: conn.name, channel: c.id, role: s.role });
    return c;
  }

  /**
   * Whether the owner removed `username` from the channel, or the user who owns it, a bot
   * (PROTOCOL.md §2.2: a removed member's bots leave with it, and none of its bots joins again).
   */
  private async isRemoved(channelId: string, username: string): Promise<boolean> {
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
  private async removeBotsOf(channelId: string, owner: string): Promise<void> {
    const bots = (await this.d.bots?.of(owner)) ?? [];
    if (bots.length === 0) return;
    // Not loaded here: which were members is not known any more (the store has them out).
    const members = this.memberCache.get(channelId);
    for (const bot of bots) {
      if (members && !members.has(bot.toLowerCase())) continue;
      await this.d.store.removeMember(channelId, bot);
      this.d.bus.publish({ kind: 'member_left', channelId, username: bot });
      this.d.log.write('leave', { user: bot, channel: channelId, reason: 'owner_removed' });
    }
  }

  /** A member leaves a channel: no more pushes, no more reads unless it joins again. */
  async leave(conn: Conn, channelId: string): Promise<void> {
    const s = conn.session!;
    const c = await this.channel(channelId);
    if (!c || !(await this.members(c.id)).has(s.username.toLowerCase()))
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
    const reading = this.membersReading.get(e.channelId);
    if (reading) reading.changes++;
    this.memberCache.get(e.channelId)?.delete(e.username.toLowerCase());
    const subs = this.subscribers.get(e.channelId);
    // What was queued for the channel before the leave was heard still reaches the member (the
    // removal item itself: the bus brings events in the order they were stored); nothing after
    // it does, even an item heard in the same turn (one read from NATS holds several events, and
    // a push waited for the turn's end: a post made 0–3 ms after a removal on another instance
    // reached the removed member's gateway in a loaded test run).
    const queued = this.outgoing.get(e.channelId);
    if (queued) {
      this.outgoing.delete(e.channelId);
      this.push(e.channelId, queued);
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
    this.channelCache.delete(e.channelId);
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
    this.memberCache.delete(e.channelId);
    // After this turn's pushes (the deletion itself reaches every subscriber).
    process.nextTick(() => {
      for (const c of this.subscribers.get(e.channelId) ?? []) c.subs.delete(e.channelId);
      this.subscribers.delete(e.channelId);
    });
  }

  /**
   * The channel no longer allows visitors: a subscription of a visitor, or of a user who is not a
   * member, ends; so does a visitor's view of it (presence). Members come from the cache when it
   * holds them (the same turn), else from the store.
   */
  private async membersOnly(channelId: string): Promise<void> {
    const drop = (c: Conn) => {
      this.subscribers.get(channelId)?.delete(c);
      c.subs.delete(channelId);
    };
    // Visitors at once (no member list needed), users once the members are known.
    for (const c of [...(this.subscribers.get(channelId) ?? [])])
      if (c.session?.role !== 'user') drop(c);
    this.d.closedToVisitors?.(channelId);
    if (!this.subscribers.get(channelId)?.size) return;
    const members = await this.members(channelId);
    for (const c of [...(this.subscribers.get(channelId) ?? [])]) {
      const s = c.session;
      if (s?.role !== 'user' || !members.has(s.username.toLowerCase())) drop(c);
    }
  }

  /**
   * The deletes among these results that took their message away (it is a tombstone now), read
   * before the results are answered and pushed, in one turn.
   */
  private async erasures(results: readonly (InsertResult | HchatError)[]): Promise<Set<string>> {
    const out = new Set<string>();
    if (!this.d.itemStored) return out;
    for (const r of results) {
      if (r instanceof HchatError || r.duplicate) continue;
      const m = r.stored;
      if (m.kind !== 'delete' || m.target === undefined) continue;
      if ((await this.d.store.getItem(m.target))?.digest !== undefined) out.add(m.id);
    }
    return out;
  }

  /** After an item is stored: a channel item changes the directory (store applied it). */
  private stored(m: StoredMessage, erased: ReadonlySet<string>): void {
    this.d.itemStored?.(m, erased.has(m.id));
    if (m.kind !== 'channel' || !m.change) return;
    this.d.bus.publish({
      kind: 'channel_changed',
      channelId: m.channelId,
      deleted: m.change.deleted === true,
      ...(m.change.allowVisitors === undefined ? {} : { allowVisitors: m.change.allowVisitors }),
    });
    if (m.change.remove) {
      this.d.bus.publish({
        kind: 'member_left',
        channelId: m.channelId,
        username: m.change.remove,
      });
      this.removeBotsOf(m.channelId, m.change.remove).catch((err: unknown) =>
        this.d.ops?.internalError('removing the bots of a removed member failed', err),
      );
    }
  }

  /**
   * The users (lower-case) of a channel, owner included: cached, kept up to date by the bus's
   * member_joined and member_left.
   */
  async members(channelId: string): Promise<ReadonlySet<string>> {
    const cached = this.memberCache.get(channelId);
    if (cached) return cached;
    let reading = this.membersReading.get(channelId);
    if (!reading) this.membersReading.set(channelId, (reading = { reads: 0, changes: 0 }));
    reading.reads++;
    try {
      let names: string[];
      // A join or leave heard during the read may be missing from what it read (the bus event
      // found no set to change): read again, a few times at most.
      for (let tries = 0; ; tries++) {
        const changes = reading.changes;
        names = await this.d.store.members(channelId);
        if (reading.changes === changes || tries === 2) break;
      }
      // A set another read made meanwhile, kept up to date since, wins.
      let set = this.memberCache.get(channelId);
      if (!set) this.memberCache.set(channelId, (set = new Set(names.map((u) => u.toLowerCase()))));
      return set;
    } finally {
      if (--reading.reads === 0) this.membersReading.delete(channelId);
    }
  }

  /** The cached members of a channel (empty when not loaded): presence and typing's view. */
  cachedMembers(channelId: string): ReadonlySet<string> {
    return this.memberCache.get(channelId) ?? NO_MEMBERS;
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
    this.d.log.write('fetch', {
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
    this.d.log.write('sync', {
      peer: conn.name,
      channel: b.channelId,
      since: b.since,
      count: messages.length,
    });
    return { messages, lastSeq };
  }

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

  private addSubscription(conn: Conn, channelId: string): void {
    conn.subs.add(channelId);
    let set = this.subscribers.get(channelId);
    if (!set) this.subscribers.set(channelId, (set = new Set()));
    set.add(conn);
  }

  /** Connections of this instance subscribed to a channel's pushes. */
  subscribersOf(channelId: string): ReadonlySet<Conn> {
    return this.subscribers.get(channelId) ?? NO_CONNS;
  }

  setSubscriptions(conn: Conn, channelIds: readonly string[]): void {
    for (const id of conn.subs) {
      const set = this.subscribers.get(id);
      set?.delete(conn);
      if (set?.size === 0) this.subscribers.delete(id);
    }
    conn.subs.clear();
    for (const id of channelIds) this.addSubscription(conn, id);
  }

  /** A host uploads its channel's messages; each is stored once and pushed to subscribers. */
  async forward(conn: Conn, b: OpReq<'forward'>): Promise<OpRes<'forward'>> {
    const s = conn.session!;
    // What the checks read is loaded first; they then run in one turn.
    for (const id of new Set(b.messages.map((m) => m.channelId))) {
      if (await this.channel(id)) await this.members(id);
    }
    for (const m of b.messages) await this.d.revocations.load(m.cert);
    const authors = new Map<string, string>();
    for (const a of new Set(b.messages.map((m) => m.author)))
      authors.set(a, (await this.d.store.getUser(a))?.username ?? a);
    // One outcome per position (two entries may share an id: a genuine message and a forgery);
    // undefined until the accepted ones are stored.
    const outcome: (HchatError | InsertResult | undefined)[] = b.messages.map((m) =>
      this.refuseForward(s, m),
    );
    const positions = outcome.flatMap((o, i) => (o === undefined ? [i] : []));
    const stored = await this.storeBatch(
      positions.map((i) => {
        const { author, ...message } = b.messages[i]!;
        // Stored as the account spells it, never as the host does.
        return { message, author: authors.get(author)! };
      }),
    );
    const erased = await this.erasures(stored);
    positions.forEach((i, k) => (outcome[i] = stored[k]));
    const results: OpRes<'forward'>['results'] = [];
    b.messages.forEach((m, i) => {
      const r = outcome[i]!;
      if (r instanceof HchatError) {
        results.push({ id: m.id, error: r.toWire() });
        const line = { peer: conn.name, op: 'forward', msg: m.id, code: r.code };
        this.d.log.refusal(conn.session!.username, line);
        return;
      }
      results.push({ id: m.id, seq: r.seq, duplicate: r.duplicate });
      if (r.duplicate) this.d.counts.duplicates++;
      else this.d.counts.forwarded++;
      this.d.log.write('forward', {
        peer: conn.name,
        channel: m.channelId,
        msg: m.id,
        seq: r.seq,
        dup: r.duplicate || undefined,
      });
      if (!r.duplicate) {
        this.d.bus.publish({
          kind: 'message',
          channelId: m.channelId,
          message: r.stored,
          exceptSession: s.sessionId,
        });
        this.stored(r.stored, erased);
      }
    });
    return { results };
  }

  /** Inserts a batch; a full disk is E_STORAGE_FULL for the whole request. */
  private async storeBatch(
    batch: readonly MessageInsert[],
  ): Promise<(InsertResult | HchatError)[]> {
    try {
      return await this.timedInsert(batch);
    } catch (err) {
      throw storageError(err) ?? err;
    }
  }

  /** Why a forwarded message is refused, or undefined when it may be stored. */
  private refuseForward(
    s: Session,
    m: OpReq<'forward'>['messages'][number],
  ): HchatError | undefined {
    const c = this.cachedChannel(m.channelId);
    if (!c) return new HchatError('E_CHANNEL_NOT_FOUND');
    if (c.owner !== s.username) {
      return new HchatError('E_FORBIDDEN', "only the channel's host may forward its messages");
    }
    if (!this.cachedMembers(c.id).has(m.author.toLowerCase())) {
      return new HchatError('E_NOT_MEMBER', `${m.author} is not a member`);
    }
    const bad = this.d.verifier.check(m) ?? this.d.revocations.signedAfter('message', m);
    if (bad) return bad;
    // Every message that enters counts against its author's post budget, whichever way it came:
    // forwarding one's own channel is no way around the post limit (checked after the signature,
    // so nobody can spend another user's budget with forgeries).
    const wait = this.d.postLimiter.take(m.author.toLowerCase());
    return wait > 0 ? HchatError.rateLimited(`too many messages by ${m.author}`, wait) : undefined;
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

  // ---- posts: group commit, then fan-out ----------------------------------------------------

  /**
   * Takes a post: what its checks read is loaded (after the connection's earlier posts), then it
   * is checked and joins the turn's batch, or is refused.
   */
  queuePost(conn: Conn, reqId: number, b: OpReq<'post'>): void {
    const prev = this.preparing.get(conn) ?? Promise.resolve();
    const next = prev
      .then(async () => {
        const edited = await this.loadForPost(b);
        await this.refuseRemoved(conn, b.message.channelId);
        if (!this.closed) this.checkPost(conn, reqId, b, edited);
      })
      .catch((err: unknown) => this.d.answerError(conn, reqId, 'post', err));
    this.preparing.set(conn, next);
  }

  /** Loads what checkPost reads: the channel, its members, revocations, a tombstone's target. */
  private async loadForPost(b: OpReq<'post'>): Promise<StoredMessage | undefined> {
    if (!(await this.channel(b.message.channelId))) return undefined;
    await this.members(b.message.channelId);
    await this.d.revocations.load(b.message.cert);
    if (!b.deletedBy) return undefined;
    await this.d.revocations.load(b.deletedBy.cert);
    const target = b.message.target;
    return target === undefined ? undefined : this.d.store.getItem(target);
  }

  /**
   * A post by an account its owner removed from the channel is refused saying so (not the plain
   * E_NOT_MEMBER "join the channel first"): it was written before the removal reached its peer
   * (offline), and its author learns why it failed. Only a non-member's post looks it up.
   */
  private async refuseRemoved(conn: Conn, channelId: string): Promise<void> {
    const s = conn.session;
    if (s?.role !== 'user' || !this.cachedChannel(channelId)) return;
    if (this.cachedMembers(channelId).has(s.username.toLowerCase())) return;
    if (await this.isRemoved(channelId, s.username))
      throw new HchatError('E_NOT_MEMBER', REMOVED_REASON);
  }

  private checkPost(
    conn: Conn,
    reqId: number,
    b: OpReq<'post'>,
    edited: StoredMessage | undefined,
  ): void {
    const s = conn.session;
    if (!s) throw new HchatError('E_AUTH_REQUIRED'); // logged out meanwhile
    const c = this.cachedChannel(b.message.channelId);
    if (!c) throw new HchatError('E_CHANNEL_NOT_FOUND');
    const members = this.cachedMembers(c.id);
    if (!members.has(s.username.toLowerCase())) throw new HchatError('E_NOT_MEMBER');
    const wait = this.d.postLimiter.take(s.username.toLowerCase());
    if (wait > 0) throw HchatError.rateLimited('too many posts', wait);
    // The store refuses it if the session was logged out meanwhile on any instance.
    const insert = { message: b.message, author: s.username, session: s.sessionId };
    const inserts: MessageInsert[] = [insert];
    if (b.deletedBy) {
      // A tombstone comes with the delete that erased it; both are stored, in the order
      // their rules need (the message before what names it).
      const { author, ...del } = b.deletedBy;
      if (!members.has(author.toLowerCase()))
        throw new HchatError('E_NOT_MEMBER', `deletedBy: ${author} is not a member`);
      const tomb = { ...b.message, author: s.username };
      const refused = tombstoneRefusal(tomb, b.deletedBy, c.owner, edited);
      if (refused) throw refused;
      inserts.push({ message: del, author, session: s.sessionId });
      if (tombstoneOrder(tomb, b.deletedBy)[0] !== tomb) inserts.reverse();
    }
    for (const i of inserts) {
      const revoked = this.d.revocations.signedAfter('message', i.message);
      if (revoked) throw revoked;
    }
    const enqueue = () =>
      inserts.forEach((i) => this.enqueuePost({ conn, reqId, insert: i, answers: i === insert }));
    const pool = this.d.verifyPool;
    if (!pool) {
      for (const i of inserts) {
        const bad = this.d.verifier.check({ ...i.message, author: i.author });
        if (bad) throw bad;
      }
      return enqueue();
    }
    const checks = inserts.map((i) => this.d.verifier.prepare({ ...i.message, author: i.author }));
    for (const check of checks) if (check instanceof HchatError) throw check;
    void Promise.all(checks.map((check) => pool.verify(check as SignatureCheck))).then((oks) => {
      if (this.closed) return; // the client never got an answer: its outbox sends it again
      if (oks.includes(false)) return this.d.answerError(conn, reqId, 'post', BAD_SIGNATURE());
      enqueue();
    });
  }

  /** Posts waiting for the next group commit. */
  get queuedPosts(): number {
    return this.posts.length;
  }

  /** The store's insert, timed for the metrics (store batch seconds). */
  private async timedInsert(
    batch: readonly MessageInsert[],
  ): Promise<(InsertResult | HchatError)[]> {
    const inserts = await this.withLeavers(batch);
    const t0 = performance.now();
    const results = await this.d.store.insertMessages(inserts);
    this.d.ops?.batchStored((performance.now() - t0) / 1000);
    return results;
  }

  /**
   * A channel item that removes a member names the member's bots as its `leavers`: they leave the
   * channel in the transaction that stores the removal (PROTOCOL.md §2.2, a removed member's bots
   * leave with it), so no crash between the two leaves them members.
   */
  private async withLeavers(batch: readonly MessageInsert[]): Promise<readonly MessageInsert[]> {
    const bots = this.d.bots;
    const removed = (i: MessageInsert) =>
      i.message.kind === 'channel' ? i.message.change?.remove : undefined;
    if (!bots || !batch.some((i) => removed(i) !== undefined)) return batch;
    return Promise.all(
      batch.map(async (i) => {
        const gone = removed(i);
        return gone === undefined ? i : { ...i, leavers: await bots.of(gone) };
      }),
    );
  }

  /** Stops taking posts (the server is closing): what was queued is stored and answered first. */
  async close(): Promise<void> {
    await this.flushing;
    await this.flushPosts();
    this.closed = true;
  }

  private enqueuePost(p: PendingPost): void {
    this.posts.push(p);
    if (this.posts.length === 1 && !this.flushing) setImmediate(() => void this.flushPosts());
  }

  /** Stores the queued posts as one batch; posts queued meanwhile make the next batch. */
  private flushPosts(): Promise<void> {
    if (this.flushing || this.posts.length === 0 || this.closed) return Promise.resolve();
    const batch = this.posts;
    this.posts = [];
    this.flushing = this.storePosts(batch).finally(() => {
      this.flushing = undefined;
      if (this.posts.length > 0) setImmediate(() => void this.flushPosts());
    });
    return this.flushing;
  }

  private async storePosts(batch: PendingPost[]): Promise<void> {
    let results: (InsertResult | HchatError)[];
    let erased: Set<string>;
    try {
      results = await this.timedInsert(batch.map((p) => p.insert));
      erased = await this.erasures(results);
    } catch (err) {
      // A storage error (a full disk) fails this batch's posts, never the server: each poster
      // hears why, its outbox tries again later, and nothing stored before is touched.
      const e = storageError(err);
      if (!e) this.d.ops?.internalError('storing a batch of posts failed', err);
      for (const p of batch) this.d.answerError(p.conn, p.reqId, 'post', e ?? err);
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const { conn, reqId, insert, answers } = batch[i]!;
      const r = results[i]!;
      if (r instanceof HchatError) {
        if (answers) this.d.answerError(conn, reqId, 'post', r);
        continue;
      }
      if (!r.duplicate) this.d.counts.posted++;
      else if (answers) this.d.counts.duplicates++;
      if (answers) {
        conn.fs.send({
          t: 'res',
          id: reqId,
          body: { id: insert.message.id, seq: r.seq, duplicate: r.duplicate },
        });
      }
      this.d.log.write('post', {
        peer: conn.name,
        channel: insert.message.channelId,
        msg: insert.message.id,
        seq: r.seq,
        dup: r.duplicate || undefined,
      });
      if (!r.duplicate) {
        this.d.bus.publish({
          kind: 'message',
          channelId: insert.message.channelId,
          message: r.stored,
          exceptSession: conn.session?.sessionId,
        });
        this.stored(r.stored, erased);
      }
    }
  }

  // ---- delivery of bus events to this instance's connections --------------------------------

  /**
   * Pushes a stored message to every subscribed connection. The messages of one event-loop turn
   * are gathered per channel and sent at the end of it (process.nextTick) as one buffer, encoded
   * once and written alike to every recipient: one write per connection per turn, however many
   * messages the turn stored.
   */
  /**
   * The bus is back after an outage: what other instances stored meanwhile was not pushed here.
   * Each subscribed channel's newest message is pushed again; a peer that lacks an earlier one
   * sees the hole and catches up from its cursor (PROTOCOL.md §3.6), one that holds it ignores
   * it (by id).
   */
  async busReconnected(): Promise<void> {
    // Joins, leaves and channel changes of the outage were missed too: read them again.
    for (const id of [...this.memberCache.keys()]) {
      const names = await this.d.store.members(id);
      this.memberCache.set(id, new Set(names.map((u) => u.toLowerCase())));
    }
    for (const id of [...this.channelCache.keys()]) {
      const c = await this.d.store.getChannel(id);
      if (c) this.channelCache.set(id, c);
      else this.channelCache.delete(id);
    }
    for (const channelId of [...this.subscribers.keys()]) {
      const last = await this.d.store.lastSeq(channelId);
      if (last === 0) continue;
      const [message] = await this.d.store.since(channelId, last - 1, 1);
      if (message && !this.closed) this.deliverMessage({ kind: 'message', channelId, message });
    }
  }

  deliverMessage(e: Extract<BusEvent, { kind: 'message' }>): void {
    let out = this.outgoing.get(e.channelId);
    if (!out) this.outgoing.set(e.channelId, (out = { messages: [], ids: [], excepts: [] }));
    out.messages.push(e.message);
    out.ids.push(e.message.id);
    out.excepts.push(e.exceptSession);
    if (!this.outgoingScheduled) {
      this.outgoingScheduled = true;
      process.nextTick(() => this.flushOutgoing());
    }
  }

  private flushOutgoing(): void {
    this.outgoingScheduled = false;
    for (const [channelId, out] of this.outgoing) this.push(channelId, out);
    this.outgoing.clear();
  }

  private push(channelId: string, out: OutgoingMessages): void {
    const subs = this.subscribers.get(channelId);
    // A session that posted one of these messages does not get that one back.
    const excepted = new Map<string, number>();
    for (const id of out.excepts) if (id !== undefined) excepted.set(id, 0);
    if (subs && subs.size > 0) {
      // Each form is encoded once, when a link that takes it is here: compact links (§3.11, every
      // peer's) get `m` frames, the others (older clients, the API's gateway) the full `message`.
      let full: Pushed | undefined;
      let compact: CompactPush | undefined;
      // When one session posted them all, its connections get nothing (nor is a form encoded or
      // a `ref` sent for them).
      const first = out.excepts[0];
      const onlyFrom = first !== undefined && out.excepts.every((e) => e === first) ? first : '';
      for (const c of subs) {
        const sid = c.session?.sessionId;
        const conns = sid === undefined ? undefined : excepted.get(sid);
        if (conns !== undefined) excepted.set(sid!, conns + 1);
        if (sid === onlyFrom) continue;
        let frames: Pushed;
        if (c.refs) {
          frames = compact ??= compactPush(this.d.refs, out.messages);
          c.refs.prepare(compact.batch);
        } else frames = full ??= fullPush(channelId, out.messages);
        if (conns === undefined) {
          c.fs.sendEncoded(frames.all);
          continue;
        }
        for (let i = 0; i < out.messages.length; i++)
          if (out.excepts[i] !== sid) c.fs.sendEncoded(frames.frames[i]!);
      }
    }
    for (let i = 0; i < out.ids.length; i++) {
      const except = out.excepts[i];
      const n = (subs?.size ?? 0) - (except === undefined ? 0 : excepted.get(except)!);
      this.d.counts.pushed += n;
      this.d.log.write('push', {
        to: 'members',
        channel: channelId,
        msg: out.ids[i],
        recipients: n,
      });
    }
  }

  /**
   * A user joined a channel: the member cache learns it, and the owner's host and the user's
   * other devices are told.
   */
  memberJoined(e: Extract<BusEvent, { kind: 'member_joined' }>): void {
    const reading = this.membersReading.get(e.channelId);
    if (reading) reading.changes++;
    this.memberCache.get(e.channelId)?.add(e.username.toLowerCase());
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
    const cached = this.cachedChannel(channelId);
    if (cached) return send(cached.owner);
    this.channel(channelId).then(
      (c) => send(c?.owner),
      (err: unknown) => console.error('hchat server: reading a channel failed:', err),
    );
  }
}

const REMOVED = () => new HchatError('E_FORBIDDEN', REMOVED_REASON);

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
