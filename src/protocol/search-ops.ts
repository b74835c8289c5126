/**
 * Full-text search at the server (issue 13 item 6; docs/PROTOCOL.md §3.3 `search`): over the
 * server's backup of the channels the session may read, for a peer that does not hold a
 * channel's history (a visitor, a catch-up not finished). The query's words are prefix terms,
 * all required (shared/search-text.ts); the answer carries the matching messages as signed and
 * the items that name them, so the peer folds what each shows by the same rules as its own copy.
 */
import { z } from 'zod';
import { StoredMessage, Uuid } from './common.js';
import { op } from './rpc.js';
import { SEARCH_LIMITS } from '../shared/limits.js';

/** The search request, as the server and the local API take it. */
export const SearchQuery = z
  .string()
  .max(SEARCH_LIMITS.maxQueryChars, `query: at most ${SEARCH_LIMITS.maxQueryChars} characters`);

export const SEARCH_OPS = {
  /**
   * The newest `limit` messages (older than message `before` when given) whose shown text has
   * every word of `query`, in `channelIds` (default: every channel the session is a member of, or
   * for a visitor those it views). A channel the session may not read is refused as `history`
   * refuses it. `hasMore`: older matches remain (ask again with the last one's id as `before`).
   */
  search: op(
    'session',
    z.object({
      query: SearchQuery,
      channelIds: z.array(Uuid).max(SEARCH_LIMITS.maxChannels).optional(),
      limit: z
        .number()
        .int()
        .min(1)
        .max(SEARCH_LIMITS.maxResults)
        .default(SEARCH_LIMITS.defaultResults),
      before: Uuid.optional(),
    }),
    z.object({
      messages: z.array(StoredMessage),
      related: z.array(StoredMessage).default([]),
      hasMore: z.boolean(),
    }),
  ),
} as const;
