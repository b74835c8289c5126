/**
 * What server instances tell each other over the event bus (server/bus.ts), as zod schemas built
 * from the protocol's own shapes. In one process the events are made by our own code; on a
 * shared bus (NATS, server/bus-nats.ts) they arrive as bytes from the network and are input like
 * any other: each is parsed with `BusEvent` before a handler sees it.
 */
import { z } from 'zod';
import {
  SessionId,
  StoredMessage,
  TrackerEntry,
  Username,
  Uuid,
  VisitorName,
} from '../protocol/common.js';
import { DeviceId, MailEnvelope } from '../protocol/dm.js';
import { AvatarInfo } from '../protocol/avatars.js';
import { TypingEvent } from '../protocol/typing-ops.js';
import { PunchEvent, RelayEvent } from '../protocol/nat-ops.js';

/** A message was stored: the channel's subscribers hear of it (but `exceptSession`, its poster). */
export const MessageStoredEvent = z
  .object({
    kind: z.literal('message'),
    channelId: Uuid,
    message: StoredMessage,
    exceptSession: SessionId.optional(),
  })
  .refine((e) => e.message.channelId === e.channelId, 'message: of another channel');

/** A tracker entry appeared (no `before`), changed, or left (no `after`). */
export const TrackerChangedEvent = z
  .object({
    kind: z.literal('tracker'),
    before: TrackerEntry.optional(),
    after: TrackerEntry.optional(),
  })
  .refine((e) => e.before !== undefined || e.after !== undefined, 'tracker: names no entry');

/**
 * A user joined (or created) a channel. `exceptSession`: the session that did it, which knows;
 * the user's other sessions (its other devices) hear of it.
 */
export const MemberJoinedEvent = z.object({
  kind: z.literal('member_joined'),
  channelId: Uuid,
  username: Username,
  exceptSession: SessionId.optional(),
});

/**
 * A member left, or its owner removed it: it no longer reads the channel. `exceptSession`: the
 * session that left, as for `member_joined`.
 */
export const MemberLeftEvent = z.object({
  kind: z.literal('member_left'),
  channelId: Uuid,
  username: Username,
  exceptSession: SessionId.optional(),
});

/** The owner changed the channel (a `channel` item was stored): caches are stale. */
export const ChannelChangedEvent = z.object({
  kind: z.literal('channel_changed'),
  channelId: Uuid,
  deleted: z.boolean(),
  /** The channel's new setting, when the change set it (false: visitors and non-members go). */
  allowVisitors: z.boolean().optional(),
});

/** A member is typing (never stored; typing-service.ts). */
export const TypingBusEvent = TypingEvent.extend({ kind: z.literal('typing') });

/** A user set a new avatar (avatar-service.ts). */
export const AvatarChangedEvent = AvatarInfo.extend({ kind: z.literal('avatar') });

/** An envelope was left in a device's mailbox (dm-service.ts): its bound connections hear. */
export const DmStoredEvent = z.object({
  kind: z.literal('dm'),
  deviceId: DeviceId,
  envelope: MailEnvelope,
});

/** A user's block list changed (dm-service.ts): that user's connections, everywhere, hear it. */
export const DmBlocksEvent = z.object({
  kind: z.literal('dm_blocks'),
  username: Username,
  blocked: z.array(Username),
});

/**
 * A session was revoked: every instance forgets it, closes its own connections of it saying
 * `why` (sessions.ts), and tells its connections of the users who share one of `channelIds` with
 * it (`session_revoked`). `why`: it logged out (on another connection), a newer login of its
 * account retired it past the cap per account, or another visitor took its name while its
 * instance could not hold it; absent from an instance that does not say.
 */
export const SessionRevokedEvent = z.object({
  kind: z.literal('session_revoked'),
  sessionId: SessionId,
  username: z.union([Username, VisitorName]),
  revokedAt: z.number().int().nonnegative(),
  channelIds: z.array(Uuid).max(4000),
  why: z.enum(['logout', 'cap', 'name_taken']).optional(),
});

/** An API token was revoked: every instance ends its gateway sessions of it at once. */
export const TokenRevokedEvent = z.object({
  kind: z.literal('token_revoked'),
  tokenId: z.string().min(1).max(64),
  /** When it was revoked (what its keys signed after is refused); absent: when heard. */
  revokedAt: z.number().int().min(0).optional(),
});

/**
 * A NAT signal (`punch` or `relay`, docs/PROTOCOL.md §3.9, §3.10) for a session whose connection
 * is on another instance: that instance passes it on (punch-service.ts).
 */
export const NatSignalEvent = z.discriminatedUnion('ev', [
  z.object({
    kind: z.literal('nat_signal'),
    ev: z.literal('punch'),
    to: z.object({ username: z.union([Username, VisitorName]), sessionId: SessionId }),
    body: PunchEvent,
  }),
  z.object({
    kind: z.literal('nat_signal'),
    ev: z.literal('relay'),
    to: z.object({ username: z.union([Username, VisitorName]), sessionId: SessionId }),
    body: RelayEvent,
  }),
]);

/** An instance started, or its bus link came back: the others send it their entries. */
export const InstanceUpEvent = z.object({ kind: z.literal('instance_up') });

/** An instance is alive (every few seconds; tracker-replica.ts). */
export const InstanceAliveEvent = z.object({ kind: z.literal('instance_alive') });

/**
 * Part `part` of `parts` of an instance's snapshot of its own tracker entries; once a receiver
 * has every part, it retires the entries of that instance the snapshot does not hold.
 */
export const TrackerSyncEvent = z
  .object({
    kind: z.literal('tracker_sync'),
    snapshot: z.string().regex(/^[\w-]{1,32}$/),
    entries: z.array(TrackerEntry).max(5000),
    part: z.number().int().nonnegative(),
    parts: z.number().int().min(1).max(10_000),
  })
  .refine((e) => e.part < e.parts, 'tracker_sync: part past parts');

/** Everything instances tell each other. */
export const BusEvent = z.discriminatedUnion('kind', [
  SessionRevokedEvent,
  InstanceUpEvent,
  InstanceAliveEvent,
  TrackerSyncEvent,
  MessageStoredEvent,
  TrackerChangedEvent,
  MemberJoinedEvent,
  MemberLeftEvent,
  ChannelChangedEvent,
  TypingBusEvent,
  AvatarChangedEvent,
  DmStoredEvent,
  DmBlocksEvent,
  TokenRevokedEvent,
  NatSignalEvent,
]);
export type BusEvent = z.infer<typeof BusEvent>;
export type BusEventKind = BusEvent['kind'];
