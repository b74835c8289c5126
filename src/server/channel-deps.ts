/**
 * What the server's channel service needs from its server, and the counters and hooks it reports
 * to (channel-service.ts and the parts it is made of).
 */
import type { RefRegistry } from '../shared/compact-refs.js';
import type { StoredMessage } from '../protocol/common.js';
import type { ConnectionLog } from '../shared/connlog.js';
import type { MessageVerifier } from '../shared/signing.js';
import type { VerifyPool } from './verify-pool.js';
import type { Revocations } from './revocations.js';
import type { RateLimiter } from '../shared/rate-limit.js';
import type { ServerStore } from '../store/server-store.js';
import type { EventBus } from './bus.js';
import type { Conn } from './conn.js';

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
