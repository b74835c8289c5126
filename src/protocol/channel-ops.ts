/**
 * The channel operations both replicas that serve a channel answer the same way: the server
 * (peer ↔ server link) and the channel's host (peer ↔ peer link). Each link numbers messages by
 * its own `seq` (the server's, or the host's).
 */
import { z } from 'zod';
import { NewMessage, StoredMessage, Uuid } from './common.js';
import { op } from './rpc.js';

const Limit = z.number().int().min(1).max(500);

export const CHANNEL_OPS = {
  /**
   * The newest `limit` messages before `before` (or the newest), in channel order, and the
   * items that name them (edits, deletes, reactions: `related`, as many as fit the frame).
   */
  history: op(
    'session',
    z.object({ channelId: Uuid, limit: Limit, before: Uuid.optional() }),
    z.object({
      messages: z.array(StoredMessage),
      hasMore: z.boolean(),
      related: z.array(StoredMessage).default([]),
    }),
  ),
  /** Messages numbered after `since`, in that order, and the highest number so far. */
  sync: op(
    'session',
    z.object({ channelId: Uuid, since: z.number().int().min(0), limit: Limit }),
    z.object({ messages: z.array(StoredMessage), lastSeq: z.number().int().min(0) }),
  ),
  /**
   * A signed item by the session's user (a message, or an edit, delete, reaction or channel
   * change: PROTOCOL.md §2.2); idempotent by id.
   */
  post: op(
    'user',
    z.object({
      message: NewMessage.refine(
        (m) => m.digest === undefined,
        'digest: a tombstone is never posted (only replicas pass them on)',
      ),
    }),
    z.object({ id: Uuid, seq: z.number().int(), duplicate: z.boolean() }),
  ),
  /** Pushes of `message` events for these channels go to this connection (replaces the set). */
  subscribe: op(
    'session',
    z.object({ channelIds: z.array(Uuid).max(1000) }),
    z.object({ channelIds: z.array(Uuid) }),
  ),
} as const;
