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
import { apiMessageOf } from './api-shapes.js';

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

  /** Stores messages the server sent; hosted channels take them into their primary copy. */
  receive(received: readonly StoredMessage[], how: 'push' | 'fetch' | 'sync'): void {
    const messages = this.authentic(received, 'server');
    for (const m of messages) this.ctx.clock.observe(m);
    const plain: StoredMessage[] = [];
    this.ctx.store.batch(() => this.acceptHosted(messages, how, plain));
    if (plain.length === 0) return;
    const fresh = this.ctx.store.storeReceived(plain, 'server');
    if (how === 'push') {
      for (const m of plain)
        this.ctx.log.write('push', { from: 'server', channel: m.channelId, msg: m.id });
    }
    for (const m of fresh) {
      this.ctx.events.emit('message', {
        channelId: m.channelId,
        message: { ...apiMessageOf(m), state: 'delivered' },
      });
    }
    for (const m of plain) this.ctx.resolveDelivery(m.id);
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
        this.ctx.events.emit('message', {
          channelId: m.channelId,
          message: { ...apiMessageOf(m), state: 'delivered' },
        });
      }
      this.ctx.resolveDelivery(m.id);
    }
  }

  /** Stores messages a host sent (numbered by its host seq). */
  receiveFromHost(
    received: readonly StoredMessage[],
    link: HostLink,
    how: 'push' | 'fetch' | 'sync',
  ): void {
    const messages = this.authentic(received, link.name);
    for (const m of messages) this.ctx.clock.observe(m);
    const fresh = this.ctx.store.storeReceived(messages, 'host');
    if (how === 'push') {
      for (const m of messages)
        this.ctx.log.write('push', { from: link.name, channel: m.channelId, msg: m.id });
    }
    for (const m of fresh) {
      this.ctx.events.emit('message', {
        channelId: m.channelId,
        message: { ...apiMessageOf(m), state: 'delivered' },
      });
    }
    for (const m of messages) this.ctx.resolveDelivery(m.id);
    const last = messages[messages.length - 1];
    if (how === 'push' && last && this.ctx.store.hostCursor(last.channelId) < last.seq) {
      this.ctx.background(this.catchUpHost(link, last.channelId));
    }
  }

  /** The messages whose signature and certificate verify; the others are logged and dropped. */
  private authentic(messages: readonly StoredMessage[], from: string): StoredMessage[] {
    const ok: StoredMessage[] = [];
    for (const m of messages) {
      // Stored here already, identical: it was verified (or written) before.
      const bad = this.ctx.store.holds(m) ? undefined : this.ctx.verifier.check(m);
      if (!bad) ok.push(m);
      else {
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
          reason: bad.message,
        });
      }
    }
    return ok;
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
        this.receive(res.messages, 'sync');
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
            done: res.messages.length < SYNC_PAGE,
          });
        }
        if (res.messages.length < SYNC_PAGE || this.ctx.store.cursor(channelId) <= since) break;
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
        this.receiveFromHost(res.messages, link, 'sync');
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
          done: res.messages.length < SYNC_PAGE,
        });
        if (res.messages.length < SYNC_PAGE || this.ctx.store.hostCursor(channelId) <= since) break;
      }
    } finally {
      this.catchingUp.delete(key);
      const next = this.again.get(key);
      if (this.again.delete(key) && next && !this.ctx.closed)
        this.ctx.background(this.catchUpHost(next, channelId));
    }
  }
}
