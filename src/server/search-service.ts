/**
 * Full-text search at the server (docs/PROTOCOL.md §3.3 `search`): over the backup of the
 * channels the session may read, by the same rule as `history` (ChannelService.readable):
 * members read their channels, anyone reads a channel that allows visitors. Without
 * `channelIds`, a user's channels are the ones they are a member of, a visitor's the ones its
 * connection views. Rate-limited per user (SEARCH_LIMITS); the answer fits the peer's frame.
 */
import { HchatError } from '../protocol/errors.js';
import type { Channel } from '../protocol/common.js';
import type { OpReq, OpRes } from '../protocol/server-link.js';
import { fitHistoryAsync, pageBudget } from '../protocol/page-budget.js';
import { searchWords } from '../shared/search-text.js';
import { SEARCH_LIMITS } from '../shared/limits.js';
import { RateLimiter } from '../shared/rate-limit.js';
import type { ConnectionLog } from '../shared/connlog.js';
import type { ServerStore } from '../store/server-store.js';
import type { Conn, Session } from './conn.js';

/** What search needs from its server. */
export interface SearchDeps {
  store: ServerStore;
  log: ConnectionLog;
  /** The channel if the session may read it; throws the refusal `history` gives otherwise. */
  readable(s: Session, channelId: string): Promise<Channel>;
  /** The channels a connection's session is in (ChannelService.channelsOfSession). */
  myChannels(conn: Conn): Promise<Channel[]>;
}

/** Search on one server instance. */
export class SearchService {
  private readonly limiter = new RateLimiter(SEARCH_LIMITS.perSecond, SEARCH_LIMITS.burst);

  constructor(private readonly d: SearchDeps) {}

  async search(conn: Conn, b: OpReq<'search'>): Promise<OpRes<'search'>> {
    const s = conn.session!;
    const wait = this.limiter.take(s.username.toLowerCase());
    if (wait > 0) throw HchatError.rateLimited('too many searches', wait);
    const ids =
      b.channelIds === undefined
        ? (await this.d.myChannels(conn)).map((c) => c.id)
        : [...new Set(b.channelIds)];
    const readable: string[] = [];
    for (const id of ids) {
      if (b.channelIds !== undefined) {
        await this.d.readable(s, id); // throws
        readable.push(id);
        continue;
      }
      try {
        await this.d.readable(s, id);
        readable.push(id);
      } catch (err) {
        if (!(err instanceof HchatError)) throw err;
      }
    }
    const words = searchWords(b.query);
    if (words.length === 0 || readable.length === 0)
      return { messages: [], related: [], hasMore: false };
    const found = await this.d.store.search(words, readable, b.limit + 1, b.before);
    const more = found.length > b.limit;
    // Newest first on the wire; fitHistory keeps from the end, so it gets them oldest first.
    const page = await fitHistoryAsync(
      found.slice(0, b.limit).reverse(),
      (kept) => this.d.store.related(kept.map((m) => m.id)),
      pageBudget(conn.fs.peerMaxFrame),
    );
    this.d.log.read(conn.reader, 'search', {
      peer: conn.name,
      channels: readable.length,
      count: page.messages.length,
    });
    return {
      messages: page.messages.reverse(),
      related: page.related,
      hasMore: more || page.cut,
    };
  }
}
