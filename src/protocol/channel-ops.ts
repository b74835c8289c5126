/**
 * The channel operations both replicas that serve a channel answer the same way: the server
 * (peer ↔ server link) and the channel's host (peer ↔ peer link). Each link numbers messages by
 * its own `seq` (the server's, or the host's).
 */
import { z } from 'zod';
import { DeletedBy, NewMessage, StoredMessage, Uuid } from './common.js';
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
   * change: PROTOCOL.md §2.2); idempotent by id. A tombstone (an item its author's own replica
   * erased before it was delivered) comes only with `deletedBy`, the signed delete that erased
   * it: the text of a message deleted before it was sent never leaves its author's device.
   */
  post: op(
    'user',
    z
      .object({ message: NewMessage, deletedBy: DeletedBy.optional() })
      .refine(
        (b) => b.message.digest === undefined || b.deletedBy !== undefined,
        'message: digest: a tombstone is posted only with the delete that erased it (deletedBy)',
      )
      .refine(
        (b) => b.deletedBy === undefined || b.message.digest !== undefined,
        'deletedBy: only a tombstone comes with the delete that erased it',
      ),
    z.object({ id: Uuid, seq: z.number().int(), duplicate: z.boolean() }),
  ),
  /** Pushes of `message` events for these channels go to this connection (replaces the set). */
  subscribe: op(
    'session',
    z.object({ channelIds: z.array(Uuid).max(1000) }),
    z.object({ channelIds: z.array(Uuid) }),
  ),
} as const;
