/**
 * Which of this instance's connections are subscribed to which channel, and the fan-out of
 * stored messages to them: the messages of one turn are pushed per channel at its
 * end, each form encoded once.
 */
import {
  compactPush,
  fullPush,
  type CompactPush,
  type Pushed,
  type RefRegistry,
} from '../shared/compact-refs.js';
import type { StoredMessage } from '../protocol/common.js';
import type { ConnectionLog } from '../shared/connlog.js';
import type { BusEvent } from './bus.js';
import type { MessageCounts } from './channel-deps.js';
import type { Conn } from './conn.js';

const NO_CONNS: ReadonlySet<Conn> = new Set();

/** A channel's messages waiting for the end of the turn: their frames, ids and posters. */
interface OutgoingMessages {
  messages: StoredMessage[];
  ids: string[];
  /** The session each message is not pushed to (its poster's), if any. */
  excepts: (string | undefined)[];
}

/** What the fan-out needs from its server. */
export interface FanoutDeps {
  readonly refs: RefRegistry;
  readonly log: ConnectionLog;
  readonly counts: MessageCounts;
}

/** Channel subscriptions and pushes on one server instance. */
export class ChannelFanout {
  /** Connections subscribed to each channel's pushes. */
  readonly subscribers = new Map<string, Set<Conn>>();
  /** Messages stored this turn, per channel, not yet pushed (see deliverMessage). */
  readonly outgoing = new Map<string, OutgoingMessages>();
  private outgoingScheduled = false;

  constructor(private readonly d: FanoutDeps) {}

  addSubscription(conn: Conn, channelId: string): void {
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

  /**
   * Pushes a stored message to every subscribed connection. The messages of one event-loop turn
   * are gathered per channel and sent at the end of it (process.nextTick) as one buffer, encoded
   * once and written alike to every recipient: one write per connection per turn, however many
   * messages the turn stored.
   */
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

  push(channelId: string, out: OutgoingMessages): void {
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
}
