/**
 * The public REST API v1's own shapes (issue 17; docs/REST.md). Everything else a route takes or
 * answers is the wire protocol's own schema (server-link.ts, common.ts), so the REST API and the
 * peer ↔ server link cannot drift apart, and the OpenAPI document is generated from these.
 */
import { z } from 'zod';
import { Channel, PublicKey, StoredMessage, Username, Uuid } from './common.js';
import { TokenScope } from './token-ops.js';

/** Every error answer: the wire protocol's code (docs/PROTOCOL.md §7) and why. */
export const RestError = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      retryAfterMs: z.number().int().optional(),
    }),
  })
  .meta({ id: 'Error' });

export const ChannelIdParams = z.object({ channel_id: Uuid });
/** A user by name, or `@me` for the token's own account. */
export const UserIdParams = z.object({
  user_id: z.union([Username, z.literal('@me')]),
});

/** A user as a token may see it: itself, or someone sharing a channel with it. */
export const RestUser = z
  .object({ username: Username, bot: z.boolean(), owner: Username.optional() })
  .meta({ id: 'User' });

/** Who the token acts as, and what it may do. */
export const RestMe = RestUser.extend({
  token: z.object({
    id: z.string(),
    scopes: z.array(TokenScope),
    channels: z.array(Uuid).nullable(),
    expiresAt: z.number().int().nullable(),
  }),
});

export const RestChannels = z.object({ channels: z.array(Channel.meta({ id: 'Channel' })) });

export const DirectoryQuery = z.object({ after: z.string().min(1).max(600).optional() });
export const NewChannelBody = z.object({
  id: Uuid.optional(),
  name: z.string(),
  allowVisitors: z.boolean().default(false),
});

/**
 * A whole number in a query string: decimal digits only. Anything else (a sign, hex, an exponent,
 * a fraction, spaces, which a plain number coercion would take) stays a string, and is refused.
 */
const decimal = (v: unknown) => (typeof v === 'string' && /^[0-9]{1,16}$/.test(v) ? Number(v) : v);
const QueryInt = (min: number, max: number) =>
  z.preprocess(decimal, z.number().int().min(min).max(max));
/** QueryInt, `def` when absent. */
const QueryIntOr = (min: number, max: number, def: number) =>
  z.preprocess(decimal, z.number().int().min(min).max(max).default(def));

const Limit = QueryIntOr(1, 500, 50);
export const HistoryQuery = z.object({ limit: Limit, before: Uuid.optional() });
export const ItemsQuery = z.object({
  since: QueryIntOr(0, Number.MAX_SAFE_INTEGER, 0),
  limit: Limit,
});

export const History = z.object({
  messages: z.array(StoredMessage.meta({ id: 'StoredItem' })),
  related: z.array(StoredMessage),
  hasMore: z.boolean(),
});
export const Items = z.object({ messages: z.array(StoredMessage), lastSeq: z.number().int() });

export const KeyBody = z.object({ publicKey: PublicKey });
export const KeyCert = z.object({ cert: z.string(), exp: z.number().int(), bot: z.boolean() });

/** Opening the gateway: `resume` (a session id from `ready`) and `seq` (the last event seen). */
export const GatewayQuery = z.object({
  resume: z.string().max(64).optional(),
  seq: QueryInt(0, Number.MAX_SAFE_INTEGER).optional(),
});
