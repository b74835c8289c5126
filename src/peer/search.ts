/**
 * Full-text search for the local API (`GET /api/search`, README "Search"): over this peer's own
 * copy of the account's channels (the store's FTS5 index, store/search-index.ts), and over the
 * server's backup (`search` op, protocol/search-ops.ts) for the channels whose history this peer
 * does not hold: a channel it has not joined (a channel that allows visitors, searched by id),
 * or one whose catch-up from the server has not finished (the last `sync` event said `done:
 * false`). Server results are folded by the same rules (shared/item-rules.ts) and not stored.
 */
import type { StoredMessage } from '../protocol/common.js';
import { HchatError } from '../protocol/errors.js';
import { ftsMatch, searchWords, snippet } from '../shared/search-text.js';
import type { LocalChannel, LocalMessage, PeerStore } from '../store/peer-store.js';
import type { ApiMessage, ApiSearch } from './api-shapes.js';
import { apiMessages, type CertReader, type ViewSource } from './message-view.js';
import type { EventHub } from './event-hub.js';
import type { ServerLink } from './server-link.js';

/** What search needs from its node. */
export interface SearchNode extends CertReader {
  readonly store: PeerStore;
  readonly link: ServerLink;
  readonly events: EventHub;
  /** The logged-in account (throws when none). */
  readonly accountName: string;
  /** The channels the logged-in account reads here (local-reads.ts). */
  readableChannels(): LocalChannel[];
  /** `connected` when the session is live on the server. */
  readonly connection: 'connected' | 'connecting' | 'offline';
  /** Why an item from a replica may not be shown (signature, certificate, rules), or undefined. */
  refusal(m: StoredMessage): HchatError | undefined;
}

/** A search request. */
export interface SearchRequest {
  q: string;
  channelId?: string;
  limit: number;
  before?: string;
}

const newestFirst = (a: ApiMessage, b: ApiMessage) =>
  a.ts !== b.ts ? b.ts - a.ts : a.lc !== b.lc ? b.lc - a.lc : a.id < b.id ? 1 : -1;

/** Search over this peer's copy and, where it lacks history, the server's. */
export class PeerSearch {
  /** Channels whose catch-up from the server has not finished. */
  private readonly behind = new Set<string>();

  constructor(private readonly node: SearchNode) {
    node.events.listen((e) => {
      if (e.event !== 'sync') return;
      const d = e.data as { channelId?: string; source?: string; done?: boolean };
      if (d.source !== 'server' || d.channelId === undefined || d.done === undefined) return;
      if (d.done) this.behind.delete(d.channelId);
      else this.behind.add(d.channelId);
    });
  }

  async search(r: SearchRequest): Promise<ApiSearch> {
    const account = this.node.accountName;
    const words = searchWords(r.q);
    const match = ftsMatch(words);
    if (match === undefined) return { results: [], source: 'local', hasMore: false };
    // Only what this account reads: the copy may hold other accounts' channels, and a visitor's
    // channel that stopped allowing visitors (local-reads.ts).
    const readable = this.node.readableChannels();
    const held = readable.map((c) => c.id);
    const scope = r.channelId === undefined ? held : [r.channelId];
    const local = scope.filter((id) => held.includes(id));
    const remote = scope.filter((id) => !held.includes(id) || this.behind.has(id));
    const online = this.node.connection === 'connected';
    if (remote.length > 0 && !online && local.length === 0) throw new HchatError('E_OFFLINE');

    const found: ApiMessage[] = [];
    let hasMore = false;
    if (local.length > 0) {
      const hits = this.node.store.search(match, local, r.limit + 1, r.before);
      hasMore = hits.length > r.limit;
      found.push(
        ...apiMessages(
          this.node.store,
          hits.slice(0, r.limit).map((h) => h.message),
          account,
          this.node,
        ),
      );
    }
    let asked = false;
    if (remote.length > 0 && online) {
      const res = await this.node.link.request('search', {
        query: r.q,
        channelIds: remote,
        limit: r.limit,
        before: r.before,
      });
      asked = true;
      hasMore ||= res.hasMore;
      // The server is trusted for accounts, not for content: only what verifies is shown, of
      // the channels asked about (as everything else a replica sends).
      const asked_ = new Set(remote);
      const ok = (m: StoredMessage) =>
        asked_.has(m.channelId) && this.node.refusal(m) === undefined;
      const messages = res.messages.filter((m) => (m.kind ?? 'message') === 'message' && ok(m));
      const related = res.related.filter(ok);
      // Each message once: one found here already, or repeated in the answer, is not listed again.
      const ids = new Set(found.map((m) => m.id));
      const fresh = messages.filter((m) => !ids.has(m.id) && !!ids.add(m.id)).map(asLocal);
      found.push(...apiMessages(this.answerView(messages, related), fresh, account, this.node));
    }
    found.sort(newestFirst);
    if (found.length > r.limit) hasMore = true;
    const results = found
      .slice(0, r.limit)
      .filter((m) => !m.deleted)
      .map((message) => ({
        channelId: message.channelId,
        channelName: readable.find((c) => c.id === message.channelId)?.name ?? '',
        message,
        snippet: snippet(message.text, words),
      }));
    const source = !asked ? 'local' : local.length > 0 ? 'both' : 'server';
    return { results, source, hasMore };
  }

  /** What a server answer shows: its messages and related items, over this peer's store. */
  private answerView(messages: StoredMessage[], related: StoredMessage[]): ViewSource {
    const store = this.node.store;
    const byId = new Map(messages.map((m) => [m.id, asLocal(m)]));
    return {
      getMessage: (id) => byId.get(id) ?? store.getMessage(id),
      related: (ids) => {
        const want = new Set(ids);
        return related.filter((i) => want.has(i.target ?? '')).map(asLocal);
      },
      channelOwner: (id) => store.channelOwner(id),
    };
  }
}

function asLocal(m: StoredMessage): LocalMessage {
  return { ...m, state: 'delivered', hostSeq: null, error: null };
}
