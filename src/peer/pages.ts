/**
 * A page of a channel as the local API shows it (`GET /api/channels/:id/messages`): from the
 * channel's host when it is reachable, else the server, else this peer's own copy; what a
 * replica sends is verified and stored first, and shown as this peer's copy has it then (with
 * every edit, delete and reaction it holds), its own undelivered messages included.
 */
import { HchatError } from '../protocol/errors.js';
import type { StoredMessage } from '../protocol/common.js';
import { compareMessages } from '../shared/hlc.js';
import type { LocalMessage } from '../store/peer-store.js';
import { LinkVia, type ApiMessage } from './api-shapes.js';
import { apiMessages } from './message-view.js';
import type { NodeContext } from './context.js';
import { TRANSIENT } from './delivery.js';
import type { Replication } from './replication.js';

/** Where a page came from. */
export type Source = 'host' | 'server' | 'local';

function isLinkVia(v: string | undefined): v is LinkVia {
  return LinkVia.safeParse(v).success;
}

/** True for a message (not a change to one). */
function isMessage(m: { kind?: string }): boolean {
  return (m.kind ?? 'message') === 'message';
}

export class ChannelPages {
  constructor(
    private readonly ctx: NodeContext,
    private readonly replication: Replication,
    /** The logged-in account's name. */
    private readonly account: () => string,
  ) {}

  /** A page from the host or the server, if one is reachable and the cursor is known there. */
  async remote(
    channelId: string,
    limit: number,
    before: string | undefined,
    beforeMsg: LocalMessage | undefined,
  ): Promise<
    { messages: ApiMessage[]; source: Source; link?: LinkVia; hasMore: boolean } | undefined
  > {
    const host = this.ctx.sources.linkFor(channelId);
    try {
      let page: { messages: StoredMessage[]; hasMore: boolean };
      let source: Source;
      let link: LinkVia | undefined;
      if (this.ctx.isHostedHere(channelId)) {
        const local = this.ctx.store.page(channelId, limit, beforeMsg);
        this.ctx.log.write('fetch', {
          from: 'local',
          channel: channelId,
          count: local.messages.length,
          before,
        });
        return {
          messages: apiMessages(this.ctx.store, local.messages, this.account(), this.ctx.verifier),
          source: 'host',
          hasMore: local.hasMore,
        };
      } else if (host && (beforeMsg === undefined || beforeMsg.hostSeq !== null)) {
        const answer = await host.request('history', { channelId, limit, before });
        // Only what we verified, of this channel, is shown (a host may alter or invent).
        const shown = this.replication.receiveFromHost(
          [...answer.messages, ...answer.related],
          host,
          'fetch',
          (id) => id === channelId,
        );
        page = { messages: shown.filter(isMessage), hasMore: answer.hasMore };
        this.ctx.log.write('fetch', {
          from: host.name,
          channel: channelId,
          count: page.messages.length,
          before,
        });
        source = 'host';
        link = isLinkVia(host.via) ? host.via : 'direct';
      } else if (this.ctx.authed && (beforeMsg === undefined || beforeMsg.seq !== null)) {
        const answer = await this.ctx.link.request('history', { channelId, limit, before });
        const shown = this.replication.receive(
          [...answer.messages, ...answer.related],
          'fetch',
          channelId,
        );
        page = { messages: shown.filter(isMessage), hasMore: answer.hasMore };
        this.ctx.log.write('fetch', {
          from: 'server',
          channel: channelId,
          count: page.messages.length,
          before,
        });
        source = 'server';
      } else {
        return undefined;
      }
      // Shown as this peer's copy has them now (verified, with every edit and reaction held),
      // each once: a page that repeats a message (a hostile server or host) shows it once.
      const seen = new Set<string>();
      const held = page.messages.flatMap((m) => {
        if (seen.has(m.id)) return [];
        seen.add(m.id);
        const local = this.ctx.store.getMessage(m.id);
        return local ? [local] : [];
      });
      let hasMore = page.hasMore;
      if (before === undefined) {
        // Our own undelivered messages are part of the channel as we see it, within the page:
        // the newest `limit` of everything, however long the outbox (a drain may hold thousands).
        const ids = new Set(held.map((m) => m.id));
        for (const m of this.ctx.store.undeliveredNewest(channelId, limit + 1))
          if (!ids.has(m.id)) held.push(m);
      }
      const messages = apiMessages(this.ctx.store, held, this.account(), this.ctx.verifier);
      if (before === undefined) {
        messages.sort(compareMessages);
        if (messages.length > limit) {
          messages.splice(0, messages.length - limit);
          hasMore = true;
        }
      }
      return { messages, source, ...(link ? { link } : {}), hasMore };
    } catch (err) {
      if (!(err instanceof HchatError) || !TRANSIENT.has(err.code)) throw err;
      return undefined;
    }
  }

  local(channelId: string, limit: number, beforeMsg: LocalMessage | undefined) {
    const page = this.ctx.store.page(channelId, limit, beforeMsg);
    this.ctx.log.write('fetch', {
      from: 'local',
      channel: channelId,
      count: page.messages.length,
      before: beforeMsg?.id,
    });
    return {
      messages: apiMessages(this.ctx.store, page.messages, this.account(), this.ctx.verifier),
      source: 'local' as const,
      hasMore: page.hasMore,
    };
  }
}
