/**
 * How a peer takes in messages from the replicas it reads (SPEC §5): each is verified (signature
 * and certificate) before it is stored; messages of channels hosted here go into their primary
 * copy (numbered and pushed to members), the others into the cache; catch-up pages from the
 * server or the host by contiguous cursors.
 */
import { HchatError } from '../protocol/errors.js';
import type { StoredMessage } from '../protocol/common.js';
import type { HostLink } from './host-link.js';
import type { NodeContext } from './context.js';
import { itemRefusal } from '../shared/item-rules.js';

const SYNC_PAGE = 500;

/** Receive paths and catch-up of one node. */
export class Replication {
  private readonly catchingUp = new Set<string>();
  /**
   * Catch-ups asked for while one of the same channel ran (with the host link to use, for a
   * host's): run once more after it, never dropped. A gap noticed meanwhile may lie past what
   * the running one already fetched.
   */
  private readonly again = new Map<string, HostLink | undefined>();

  constructor(private readonly ctx: NodeContext) {}

  /**
   * Stores messages the server sent; hosted channels take them into their primary copy. Returns
   * the ones that passed every check (the only ones anybody may be shown). `channelId`, when
   * given, is the one channel the answer may hold (a page or a sync of it).
   */
  receive(
    received: readonly StoredMessage[],
    how: 'push' | 'fetch' | 'sync',
    channelId?: string,
  ): StoredMessage[] {
    const messages = this.authentic(received, 'server', (id) =>
      channelId === undefined ? this.ctx.isJoined(id) : id === channelId,
    );
    for (const m of messages) this.ctx.clock.observe(m);
    const plain: StoredMessage[] = [];
    this.ctx.store.batch(() => this.acceptHosted(messages, how, plain));
    if (plain.length === 0) return messages;
    const fresh = this.ctx.store.storeReceived(plain);
    if (how === 'push') {
      for (const m of plain)
        this.ctx.log.write('push', { from: 'server', channel: m.channelId, msg: m.id });
    }
    this.ctx.announce(fresh);
    for (const m of plain) this.ctx.resolveDelivery(m.id);
    return messages;
  }

  /**
   * Takes messages of channels hosted here into their primary copy (numbered, pushed to members);
   * the others go to `plain`.
   */
  acceptHosted(
    messages: readonly StoredMessage[],
    how: 'push' | 'fetch' | 'sync',
    plain: StoredMessage[],
  ): void {
    for (const m of messages) {
      if (!this.ctx.isHostedHere(m.channelId)) {
        plain.push(m);
        continue;
      }
      const r = this.ctx.store.hostAccept(m, 'delivered');
      if (r instanceof HchatError) {
        this.ctx.log.write('refused', {
          from: 'server',
          channel: m.channelId,
          msg: m.id,
          code: r.code,
        });
        continue;
      }
      if (how === 'push')
        this.ctx.log.write('push', { from: 'server', channel: m.channelId, msg: m.id });
      if (!r.duplicate) {
        this.ctx.hostService.publish(r.message);
        this.ctx.announce([m]);
      }
      this.ctx.resolveDelivery(m.id);
    }
  }

  /**
   * Stores messages a host sent (numbered by its host seq), if they are authentic and of a
   * channel that host serves us (`serves`); returns those. A host that numbers two messages
   * alike is refused for the second, never a crash.
   */
  receiveFromHost(
    received: readonly StoredMessage[],
    link: HostLink,
    how: 'push' | 'fetch' | 'sync',
    serves: (channelId: string) => boolean,
  ): StoredMessage[] {
    const checked = this.authentic(received, link.name, serves);
    for (const m of checked) this.ctx.clock.observe(m);
    const { fresh, conflicts } = this.ctx.store.storeFromHost(checked);
    for (const m of conflicts) {
      const why = `the host numbered another message ${m.seq} before`;
      this.refuse(m, link.name, new HchatError('E_MESSAGE_CONFLICT', why));
    }
    const messages = checked.filter((m) => !conflicts.includes(m));
    if (how === 'push') {
      for (const m of messages)
        this.ctx.log.write('push', { from: link.name, channel: m.channelId, msg: m.id });
    }
    this.ctx.announce(fresh);
    for (const m of messages) this.ctx.resolveDelivery(m.id);
    const last = messages[messages.length - 1];
    if (how === 'push' && last && this.ctx.store.hostCursor(last.channelId) < last.seq) {
      this.ctx.background(this.catchUpHost(link, last.channelId));
    }
    return messages;
  }

  /**
   * The messages of an expected channel whose time, id, certificate and signature hold
   * (shared/signing.ts); the others are logged, announced and dropped.
   */
  private authentic(
    messages: readonly StoredMessage[],
    from: string,
    expected: (channelId: string) => boolean,
  ): StoredMessage[] {
    const ok: StoredMessage[] = [];
    for (const m of messages) {
      let bad: HchatError | undefined;
      if (!expected(m.channelId))
        bad = new HchatError(
          'E_CHANNEL_NOT_FOUND',
          'a message of a channel this source does not serve us',
        );
      // Stored here already, identical: it was verified (or written) before.
      else if (!this.ctx.store.holds(m)) bad = this.ctx.verifier.check(m) ?? this.refusal(m);
      if (!bad) ok.push(m);
      else this.refuse(m, from, bad);
    }
    return ok;
  }

  /**
   * Why an authentic item may not change the message it names, when that message is here (one
   * whose message is not here yet is kept: it takes effect, or not, once the message arrives).
   */
  private refusal(m: StoredMessage): HchatError | undefined {
    const target = m.target === undefined ? undefined : this.ctx.store.getMessage(m.target);
    return itemRefusal(m, this.ctx.store.channelOwner(m.channelId), target, false);
  }

  private refuse(m: StoredMessage, from: string, bad: HchatError): void {
    this.ctx.log.write('refused', {
      from,
      channel: m.channelId,
      msg: m.id,
      code: bad.code,
      reason: bad.message,
    });
    this.ctx.events.emit('refused', {
      channelId: m.channelId,
      id: m.id,
      from,
      code: bad.code,
      reason: bad.message,
    });
  }

  /** Fetches everything after the channel's server cursor from the server. */
  async catchUp(channelId: string): Promise<void> {
    if (!this.ctx.authed) return;
    if (this.catchingUp.has(channelId)) {
      this.again.set(channelId, undefined);
      return;
    }
    this.catchingUp.add(channelId);
    try {
      let received = 0;
      let total = 0;
      for (;;) {
        const since = this.ctx.store.cursor(channelId);
        const res = await this.ctx.link.request('sync', { channelId, since, limit: SYNC_PAGE });
        if (this.ctx.closed) return;
        total = Math.max(total, res.lastSeq - since + received);
        this.receive(res.messages, 'sync', channelId);
        received += res.messages.length;
        if (received > 0) {
          this.ctx.log.write('sync', {
            from: 'server',
            channel: channelId,
            since,
            count: res.messages.length,
          });
          this.ctx.events.emit('sync', {
            channelId,
            source: 'server',
            received,
            total,
            done: this.ctx.store.cursor(channelId) >= res.lastSeq,
          });
        }
        // A page may be cut to fit our frame limit: go on while lastSeq is ahead and we advance.
        const cursor = this.ctx.store.cursor(channelId);
        if (res.messages.length === 0 || cursor >= res.lastSeq || cursor <= since) break;
      }
    } finally {
      this.catchingUp.delete(channelId);
      if (this.again.delete(channelId) && !this.ctx.closed)
        this.ctx.background(this.catchUp(channelId));
    }
  }

  /** Fetches everything after the channel's host cursor from its host. */
  async catchUpHost(link: HostLink, channelId: string): Promise<void> {
    const key = `host:${channelId}`;
    if (this.catchingUp.has(key)) {
      this.again.set(key, link);
      return;
    }
    this.catchingUp.add(key);
    try {
      let received = 0;
      for (;;) {
        const since = this.ctx.store.hostCursor(channelId);
        const res = await link.request('sync', { channelId, since, limit: SYNC_PAGE });
        if (this.ctx.closed) return;
        this.receiveFromHost(res.messages, link, 'sync', (id) => id === channelId);
        received += res.messages.length;
        this.ctx.log.write('sync', {
          from: link.name,
          channel: channelId,
          since,
          count: res.messages.length,
        });
        this.ctx.events.emit('sync', {
          channelId,
          source: 'host',
          received,
          total: res.lastSeq - since + received - res.messages.length,
          done: this.ctx.store.hostCursor(channelId) >= res.lastSeq,
        });
        const cursor = this.ctx.store.hostCursor(channelId);
        if (res.messages.length === 0 || cursor >= res.lastSeq || cursor <= since) break;
      }
    } finally {
      this.catchingUp.delete(key);
      const next = this.again.get(key);
      if (this.again.delete(key) && next && !this.ctx.closed)
        this.ctx.background(this.catchUpHost(next, channelId));
    }
  }
}
