/**
 * The host's side of the P2P link (channel hosting, SPEC §5): members and visitors read, post to
 * and subscribe to the channels whose primary copy lives on this peer. The host checks every
 * right itself, as strictly as the server: visitors only read channels that allow them and never
 * write; users read and post only where they are members.
 */
import { COMPACT_OPS } from '../protocol/compact.js';
import {
  LinkRefs,
  RefRegistry,
  compactPage,
  compactPush,
  fullPush,
  type CompactPush,
  type Page,
  type Pushed,
} from '../shared/compact-refs.js';
import type { z } from 'zod';
import { HchatError } from '../protocol/errors.js';
import { helloSentTwice } from '../protocol/hello-version.js';
import type { Channel, StoredMessage } from '../protocol/common.js';
import { encodeFrame } from '../protocol/frame.js';
import { Request, describeIssues } from '../protocol/rpc.js';
import { P2P_OPS } from '../protocol/peer-link.js';
import { fitHistory, fitPage, pageBudget } from '../protocol/page-budget.js';
import { CHANNEL_OPS } from '../protocol/channel-ops.js';
import type { FramedSocket } from '../shared/framed-socket.js';
import type { ConnectionLog, Reader } from '../shared/connlog.js';
import { hostNumbered, type PeerStore } from '../store/peer-store.js';
import type { PeerIdentity } from './p2p.js';
import type { Signed } from '../shared/signing.js';
import { STREAM_OPS } from '../protocol/stream-ops.js';
import type { LiveService } from './live.js';
import type { RateLimiter } from '../shared/rate-limit.js';
import { P2P_FILE_OPS } from '../protocol/files.js';
import type { FileOp, FileSeeder } from './file-seeder.js';
import {
  REMOVED_REASON,
  itemRefusal,
  tombstoneOrder,
  tombstoneRefusal,
} from '../shared/item-rules.js';
import { TYPING_OPS, type TypingEvent } from '../protocol/typing-ops.js';

type ChannelOp = keyof typeof CHANNEL_OPS;
type Req<K extends ChannelOp> = z.infer<(typeof CHANNEL_OPS)[K]['req']>;

/** What the service needs from its node. */
export interface HostServiceDeps {
  store: PeerStore;
  log: ConnectionLog;
  /** The hosted channel's description, if this peer hosts it. */
  channel(id: string): Channel | undefined;
  /** Why a message's signature or certificate does not hold, or undefined when it does. */
  verify(m: Signed): HchatError | undefined;
  /** Called after a member's post was accepted into the primary copy. */
  accepted(message: StoredMessage, from: string): void;
  /** Livestream control (stream ops), answered by the streamer's LiveService. */
  streams(): LiveService;
  /** The files this peer serves (file ops, docs/PROTOCOL.md §9.3). */
  files(): FileSeeder;
  /** Direct messages handed over by a sender's device (`dm_deliver`, §10.6). */
  dms(): { deliver(who: PeerIdentity, body: unknown, linkName: string): Promise<unknown> };
  /** Posts per member (RATE_LIMITS), as the server counts them. */
  postLimiter: RateLimiter;
  /** A member (checked: a user, a member of the hosted channel) says it is typing there. */
  typing(who: PeerIdentity, channelId: string): void;
}

/** One member connection on the host. */
export interface MemberConn {
  fs: FramedSocket;
  who: PeerIdentity;
  /** When the certificate it proved expires (ms since the epoch): the link closes then. */
  certExp: number;
  /** The other end's IP address, as this socket sees it. */
  ip: string;
  name: string;
  subs: Set<string>;
  /** Set when the member asked for compact pushes and pages in its hello (§3.11, §4.2). */
  refs?: LinkRefs;
}

/** Whom a read on a member's link is answered to (ConnectionLog `read`). */
export function readerOf(conn: MemberConn): Reader {
  return { role: conn.who.role, username: conn.who.username, ip: conn.ip };
}

/** Serves hosted channels to connected members. */
export class HostService {
  private readonly subscribers = new Map<string, Set<MemberConn>>();
  /** This peer's numbering of certificates and channels for its compact member links. */
  private readonly refs = new RefRegistry();

  constructor(private readonly deps: HostServiceDeps) {}

  /** Handles one frame from an authenticated member connection. */
  frame(conn: MemberConn, f: Record<string, unknown>): void {
    if (f.t === 'ping') return conn.fs.send({ t: 'pong' });
    if (f.t === 'pong') return;
    if (f.t === 'hello') throw helloSentTwice();
    if (f.t !== 'req')
      throw new HchatError(
        'E_UNKNOWN_TYPE',
        `unknown frame type ${JSON.stringify(f.t)?.slice(0, 40)}`,
      );
    const req = Request.safeParse(f);
    if (!req.success) throw new HchatError('E_BAD_FRAME', `req: ${describeIssues(req.error)}`);
    const { id, op, body } = req.data;
    // Forward compatible (PROTOCOL.md §1): an unknown operation is refused, the link stays.
    if (!Object.hasOwn(P2P_OPS, op)) {
      const e = new HchatError('E_UNKNOWN_TYPE', `unknown operation "${op}"`);
      return conn.fs.send({ t: 'res', id, error: e.toWire() });
    }
    const delegated = Object.hasOwn(STREAM_OPS, op)
      ? this.deps.streams().request(conn, op as keyof typeof STREAM_OPS, body)
      : Object.hasOwn(P2P_FILE_OPS, op)
        ? this.fileRequest(conn, op as FileOp, body)
        : op === 'dm_deliver'
          ? this.deps.dms().deliver(conn.who, body, conn.name)
          : undefined;
    if (delegated) {
      delegated.then(
        (result) => conn.fs.answer(id, result),
        (err: unknown) => {
          // A bug or a storage failure answers E_INTERNAL: a rejection nobody handles would end
          // the process.
          if (!(err instanceof HchatError)) console.error(`hchat peer: ${op} failed:`, err);
          const e = err instanceof HchatError ? err : new HchatError('E_INTERNAL');
          this.deps.log.refusal(conn.who.username, { peer: conn.name, op, code: e.code });
          conn.fs.send({ t: 'res', id, error: e.toWire() });
        },
      );
      return;
    }
    try {
      const result =
        op === 'typing' ? this.typing(conn, body) : this.run(conn, op as ChannelOp, body);
      // A page to a compact link (§3.11): its items compact, after the `ref` frames it lacks.
      if (conn.refs && COMPACT_OPS.has(op))
        conn.fs.answer(id, compactPage(this.refs, conn.refs, result as Page));
      else conn.fs.answer(id, result);
    } catch (err) {
      if (!(err instanceof HchatError)) throw err;
      this.deps.log.refusal(conn.who.username, { peer: conn.name, op, code: err.code });
      conn.fs.send({ t: 'res', id, error: err.toWire() });
    }
  }

  /**
   * A file op: for a channel hosted here the host also applies its own read rule, after the
   * grant (a member removed since its grant was made reads nothing here).
   */
  private fileRequest(conn: MemberConn, op: FileOp, body: unknown): Promise<unknown> {
    return this.deps.files().request(conn, op, body, (channelId) => {
      if (this.deps.channel(channelId)) this.readable(conn, channelId);
    });
  }

  /** Forgets a closed connection. */
  detach(conn: MemberConn): void {
    for (const id of conn.subs) this.subscribers.get(id)?.delete(conn);
    conn.subs.clear();
    this.deps.streams().detach(conn);
  }

  /** Pushes a message newly in the primary copy to its subscribers (encoded once). */
  publish(message: StoredMessage, except?: MemberConn): void {
    const subs = this.subscribers.get(message.channelId);
    if (!subs || subs.size === 0) return this.channelChanged(message);
    // Each form is encoded once, when a link that takes it is here: compact links (§3.11) get an
    // `m` frame, the others the full `message` event.
    let full: Pushed | undefined;
    let compact: CompactPush | undefined;
    let n = 0;
    for (const c of subs) {
      if (c === except) continue;
      if (c.refs) {
        compact ??= compactPush(this.refs, [message]);
        c.refs.prepare(compact.batch);
        c.fs.sendEncoded(compact.all);
      } else c.fs.sendEncoded((full ??= fullPush(message.channelId, [message])).all);
      n++;
    }
    this.deps.log.write('push', {
      to: 'members',
      channel: message.channelId,
      msg: message.id,
      recipients: n,
    });
    this.channelChanged(message);
  }

  /**
   * After a `channel` item reached the subscribers (the removed member and the visitors
   * included), whoever may no longer read gets no more: whichever way it came here (made on this
   * peer, posted by the owner's other peer over P2P, pushed or synced from the server).
   */
  private channelChanged(m: StoredMessage): void {
    if (m.kind !== 'channel' || !m.change) return;
    if (m.change.deleted) return this.channelDeleted(m.channelId);
    if (m.change.remove) this.memberLeft(m.channelId, m.change.remove);
    if (m.change.allowVisitors === false) this.keepReaders(m.channelId);
  }

  /**
   * Pushes a typing state to the channel's subscribers, except the typist's own connections
   * (encoded once; not logged: PROTOCOL.md §6).
   */
  pushTyping(e: TypingEvent): void {
    const subs = this.subscribers.get(e.channelId);
    if (!subs || subs.size === 0) return;
    const frame = encodeFrame({ t: 'ev', ev: 'typing', body: e });
    const typist = e.username.toLowerCase();
    for (const c of subs) if (c.who.username.toLowerCase() !== typist) c.fs.sendEncoded(frame);
  }

  /** `typing` (PROTOCOL.md §4.2): rights as for a post; the rest is the node's (peer/typing.ts). */
  private typing(conn: MemberConn, raw: unknown): Record<string, never> {
    const parsed = TYPING_OPS.typing.req.safeParse(raw ?? {});
    if (!parsed.success)
      throw new HchatError('E_BAD_REQUEST', `typing: ${describeIssues(parsed.error)}`);
    if (conn.who.role !== 'user')
      throw new HchatError('E_VISITOR_READ_ONLY', 'visitors cannot type');
    this.writable(conn, parsed.data.channelId);
    this.deps.typing(conn.who, parsed.data.channelId);
    return {};
  }

  private run(conn: MemberConn, op: ChannelOp, raw: unknown): unknown {
    const spec = CHANNEL_OPS[op];
    const parsed = (spec.req as z.ZodType).safeParse(raw ?? {});
    if (!parsed.success)
      throw new HchatError('E_BAD_REQUEST', `${op}: ${describeIssues(parsed.error)}`);
    if (spec.access === 'user' && conn.who.role !== 'user') {
      throw new HchatError('E_VISITOR_READ_ONLY', `visitors cannot ${op}`);
    }
    switch (op) {
      case 'subscribe':
        return this.subscribe(conn, parsed.data as Req<'subscribe'>);
      case 'sync': {
        const b = parsed.data as Req<'sync'>;
        this.readable(conn, b.channelId);
        const all = this.deps.store.hostSince(b.channelId, b.since, b.limit);
        // Cut to the member's frame limit; lastSeq tells it that more remains.
        const messages = fitPage(all, pageBudget(conn.fs.peerMaxFrame), 'start').items;
        this.deps.log.read(readerOf(conn), 'sync', {
          peer: conn.name,
          channel: b.channelId,
          since: b.since,
          count: messages.length,
        });
        return { messages, lastSeq: this.deps.store.lastHostSeq(b.channelId) };
      }
      case 'history': {
        const b = parsed.data as Req<'history'>;
        this.readable(conn, b.channelId);
        const before = b.before === undefined ? undefined : this.deps.store.getMessage(b.before);
        // PROTOCOL.md §4.2 as §3.3: `before` names a message of this channel, no other item.
        const isMessage = before && (before.kind ?? 'message') === 'message';
        if (b.before !== undefined && (!isMessage || before.channelId !== b.channelId)) {
          throw new HchatError('E_NOT_FOUND', 'no such message');
        }
        const page = this.deps.store.page(b.channelId, b.limit, before);
        const fit = fitHistory(
          page.messages.map(hostNumbered),
          (kept) =>
            this.deps.store
              .related(kept.map((m) => m.id))
              .filter((m) => m.hostSeq !== null)
              .map(hostNumbered),
          pageBudget(conn.fs.peerMaxFrame),
        );
        this.deps.log.read(readerOf(conn), 'fetch', {
          peer: conn.name,
          channel: b.channelId,
          count: fit.messages.length,
          before: b.before,
        });
        return { messages: fit.messages, related: fit.related, hasMore: page.hasMore || fit.cut };
      }
      case 'post': {
        const { message, deletedBy } = parsed.data as Req<'post'>;
        this.writable(conn, message.channelId);
        const wait = this.deps.postLimiter.take(conn.who.username.toLowerCase());
        if (wait > 0) throw HchatError.rateLimited('too many posts', wait);
        // Checked exactly as the server checks it; the author is the link's proven user.
        const authored = { ...message, author: conn.who.username };
        const bad = this.deps.verify(authored) ?? this.refusal(authored);
        if (bad) throw bad;
        let items = [authored];
        if (deletedBy) {
          // A tombstone comes with the delete that erased it: both are stored, in rule order.
          const refused = this.deps.verify(deletedBy) ?? this.tombstoneRefusal(authored, deletedBy);
          if (refused) throw refused;
          items = tombstoneOrder(authored, deletedBy);
        }
        let answer: { id: string; seq: number; duplicate: boolean } | undefined;
        for (const item of items) {
          const r = this.deps.store.hostAccept(item, 'delivered');
          if (r instanceof HchatError) throw r;
          this.deps.log.write('post', {
            peer: conn.name,
            channel: item.channelId,
            msg: item.id,
            seq: r.hostSeq,
            dup: r.duplicate || undefined,
          });
          if (!r.duplicate) {
            this.publish(r.message, conn);
            this.deps.accepted(r.message, conn.name);
          }
          if (item === authored) answer = { id: item.id, seq: r.hostSeq, duplicate: r.duplicate };
        }
        return answer!;
      }
    }
  }

  /** Why a tombstone may not come in with this delete (shared/item-rules.ts). */
  private tombstoneRefusal(
    tomb: Omit<StoredMessage, 'seq'>,
    deletedBy: Omit<StoredMessage, 'seq'>,
  ): HchatError | undefined {
    const c = this.deps.channel(tomb.channelId);
    if (!c || !this.isMember(c, deletedBy.author))
      return new HchatError('E_NOT_MEMBER', `deletedBy: ${deletedBy.author} is not a member`);
    const edited = tomb.target === undefined ? undefined : this.deps.store.getMessage(tomb.target);
    return tombstoneRefusal(tomb, deletedBy, c.owner, edited);
  }

  /** Why an authentic item may not change what it names here (shared/item-rules.ts). */
  private refusal(m: Omit<StoredMessage, 'seq'>): HchatError | undefined {
    const c = this.deps.channel(m.channelId);
    const target = m.target === undefined ? undefined : this.deps.store.getMessage(m.target);
    return itemRefusal(m, c?.owner ?? '', target, true);
  }

  /** A member left or was removed: its connections get no more of this channel. */
  memberLeft(channelId: string, username: string): void {
    const subs = this.subscribers.get(channelId);
    for (const c of subs ?? []) {
      if (c.who.username.toLowerCase() !== username.toLowerCase()) continue;
      subs!.delete(c);
      c.subs.delete(channelId);
    }
    this.keepWatchers(channelId);
  }

  /**
   * The channel changed (a `channel` item): a link that may no longer read it (a visitor's, or a
   * non-member's, once it stops allowing visitors) gets no more of it (PROTOCOL.md §2.2).
   */
  private keepReaders(channelId: string): void {
    const subs = this.subscribers.get(channelId);
    for (const c of [...(subs ?? [])]) {
      try {
        this.readable(c, channelId);
      } catch {
        subs!.delete(c);
        c.subs.delete(channelId);
      }
    }
    this.keepWatchers(channelId);
  }

  /** Viewers of the channel's streams that may no longer watch them leave (live.ts). */
  private keepWatchers(channelId: string): void {
    this.deps
      .streams()
      .keepWatchers(channelId)
      .catch((err: unknown) => console.error('hchat peer: ending viewers failed:', err));
  }

  /** The channel was deleted: nobody gets more of it. */
  channelDeleted(channelId: string): void {
    for (const c of this.subscribers.get(channelId) ?? []) c.subs.delete(channelId);
    this.subscribers.delete(channelId);
  }

  private subscribe(conn: MemberConn, b: Req<'subscribe'>): { channelIds: string[] } {
    for (const id of conn.subs) this.subscribers.get(id)?.delete(conn);
    conn.subs.clear();
    const ok: string[] = [];
    for (const id of b.channelIds) {
      try {
        this.readable(conn, id);
      } catch {
        continue;
      }
      ok.push(id);
      conn.subs.add(id);
      let set = this.subscribers.get(id);
      if (!set) this.subscribers.set(id, (set = new Set()));
      set.add(conn);
    }
    this.deps.log.write('subscribe', { peer: conn.name, count: ok.length });
    return { channelIds: ok };
  }

  /** The channel, if this connection may read it here; visitors never learn of other channels. */
  private readable(conn: MemberConn, channelId: string): Channel {
    const c = this.deps.channel(channelId);
    if (!c || (conn.who.role === 'visitor' && !c.allowVisitors))
      throw new HchatError('E_CHANNEL_NOT_FOUND');
    if (conn.who.role === 'user' && !this.isMember(c, conn.who.username)) {
      // Removed by the owner (never a member again): not even a channel that allows visitors
      // is read by that account. Only a non-member's read looks it up.
      if (this.deps.store.isRemoved(c.id, conn.who.username))
        throw new HchatError('E_FORBIDDEN', REMOVED_REASON);
      if (!c.allowVisitors) throw new HchatError('E_NOT_MEMBER');
    }
    return c;
  }

  private writable(conn: MemberConn, channelId: string): void {
    // Not a member (a removed one included): E_NOT_MEMBER, as the server answers a post.
    const c = this.deps.channel(channelId);
    if (c && !this.isMember(c, conn.who.username))
      throw new HchatError(
        'E_NOT_MEMBER',
        this.deps.store.isRemoved(c.id, conn.who.username) ? REMOVED_REASON : undefined,
      );
    this.readable(conn, channelId);
  }

  private isMember(c: Channel, username: string): boolean {
    return (
      c.owner.toLowerCase() === username.toLowerCase() || this.deps.store.isMember(c.id, username)
    );
  }
}
