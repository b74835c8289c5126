/**
 * Messages entering the server: posts, checked in the order each connection
 * sent them and stored by group commit (one transaction per event-loop turn, answered after
 * commit), and hosts' forwards of their channels' messages; each new item is published on the
 * bus, and a channel item's changes follow.
 */
import { HchatError } from '../protocol/errors.js';
import type { StoredMessage } from '../protocol/common.js';
import type { OpReq, OpRes } from '../protocol/server-link.js';
import { BAD_SIGNATURE, type SignatureCheck } from '../shared/signing.js';
import { REMOVED_REASON, tombstoneOrder, tombstoneRefusal } from '../shared/item-rules.js';
import { storageError } from '../store/sqlite.js';
import type { InsertResult, MessageInsert } from '../store/server-store.js';
import type { ChannelCache } from './channel-cache.js';
import type { ChannelDeps } from './channel-deps.js';
import type { Conn, Session } from './conn.js';

interface PendingPost {
  conn: Conn;
  reqId: number;
  insert: MessageInsert;
  /** False for the delete that came with a tombstone (`deletedBy`): the tombstone answers. */
  answers: boolean;
}

/** Posts and forwards on one server instance. */
export class ChannelPosts {
  private posts: PendingPost[] = [];
  /** The batch being stored, if any: one at a time, so that answers and pushes keep order. */
  private flushing: Promise<void> | undefined;
  /** The bots each removal just stored took out with it (`withLeavers`), until `stored` tells. */
  private readonly leaversOf = new Map<string, readonly string[]>();
  /** Per connection: its posts being prepared (lookups before they join a batch), in order. */
  private readonly preparing = new WeakMap<Conn, Promise<void>>();
  /** True once closed: no more posts are taken. */
  closed = false;

  constructor(
    private readonly d: ChannelDeps,
    private readonly cache: ChannelCache,
    /** Takes a removed member's bots out too, and tells who was removed (channel-membership.ts). */
    private readonly membership: {
      removeBotsOf(channelId: string, owner: string): Promise<void>;
      botsLeft(channelId: string, bots: readonly string[]): void;
      isRemoved(channelId: string, username: string): Promise<boolean>;
    },
  ) {}

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

  /**
   * A post by an account its owner removed from the channel is refused saying so (not the plain
   * E_NOT_MEMBER "join the channel first"): it was written before the removal reached its peer
   * (offline), and its author learns why it failed. Only a non-member's post looks it up.
   */
  private async refuseRemoved(conn: Conn, channelId: string): Promise<void> {
    const s = conn.session;
    if (s?.role !== 'user' || !this.cache.cachedChannel(channelId)) return;
    if (this.cache.cachedMembers(channelId).has(s.username.toLowerCase())) return;
    if (await this.membership.isRemoved(channelId, s.username))
      throw new HchatError('E_NOT_MEMBER', REMOVED_REASON);
  }

  /** Loads what checkPost reads: the channel, its members, revocations, a tombstone's target. */
  private async loadForPost(b: OpReq<'post'>): Promise<StoredMessage | undefined> {
    if (!(await this.cache.channel(b.message.channelId))) return undefined;
    await this.cache.members(b.message.channelId);
    await this.d.revocations.load(b.message.cert);
    if (!b.deletedBy) return undefined;
    await this.d.revocations.load(b.deletedBy.cert);
    const target = b.message.target;
    return target === undefined ? undefined : this.d.store.getItem(target);
  }

  private checkPost(
    conn: Conn,
    reqId: number,
    b: OpReq<'post'>,
    edited: StoredMessage | undefined,
  ): void {
    const s = conn.session;
    if (!s) throw new HchatError('E_AUTH_REQUIRED'); // logged out meanwhile
    const c = this.cache.cachedChannel(b.message.channelId);
    if (!c) throw new HchatError('E_CHANNEL_NOT_FOUND');
    const members = this.cache.cachedMembers(c.id);
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
    inserts.forEach((i, k) => {
      const r = results[k];
      if (i.leavers?.length && r && !(r instanceof HchatError) && !r.duplicate)
        this.leaversOf.set(i.message.id, i.leavers);
    });
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

  /** A host uploads its channel's messages; each is stored once and pushed to subscribers. */
  async forward(conn: Conn, b: OpReq<'forward'>): Promise<OpRes<'forward'>> {
    const s = conn.session!;
    // What the checks read is loaded first; they then run in one turn.
    for (const id of new Set(b.messages.map((m) => m.channelId))) {
      if (await this.cache.channel(id)) await this.cache.members(id);
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
    const c = this.cache.cachedChannel(m.channelId);
    if (!c) return new HchatError('E_CHANNEL_NOT_FOUND');
    if (c.owner !== s.username) {
      return new HchatError('E_FORBIDDEN', "only the channel's host may forward its messages");
    }
    if (!this.cache.cachedMembers(c.id).has(m.author.toLowerCase())) {
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
      // The bots that left in the same transaction leave every cache in the same turn as their
      // owner: a bot read between the two would still be served.
      this.membership.botsLeft(m.channelId, this.leaversOf.get(m.id) ?? []);
      this.leaversOf.delete(m.id);
      this.membership
        .removeBotsOf(m.channelId, m.change.remove)
        .catch((err: unknown) =>
          this.d.ops?.internalError('removing the bots of a removed member failed', err),
        );
    }
  }
}
