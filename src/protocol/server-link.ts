/**
 * The peer ↔ central server link: envelope, operations and events. Both ends import this module;
 * docs/PROTOCOL.md §3 describes the same thing in prose.
 *
 * Frames (see frame.ts) carry one JSON object each, distinguished by `t`:
 *   hello  {t, v, role:"peer"|"server", ...}      first frame in each direction
 *   req    {t, id, op, body}                      peer → server request
 *   res    {t, id, body} | {t, id, error}         answer to the request with the same id
 *   ev     {t, ev, body}                          server → peer push
 *   ping / pong {t}                               heartbeats (any frame counts as liveness)
 *   error  {t, code, message}                     fatal: the sender closes the connection after it
 */
import { z } from 'zod';
import {
  Channel,
  ChannelName,
  Ip,
  NewMessage,
  Password,
  Port,
  Role,
  SessionId,
  StoredMessage,
  TrackerEntry,
  Username,
  Uuid,
  VisitorName,
  PROTOCOL_VERSION,
} from './common.js';

export const WireError = z.object({ code: z.string().max(64), message: z.string().max(1000) });

export const ClientHello = z.object({
  t: z.literal('hello'),
  v: z.number().int(),
  role: z.literal('peer'),
  agent: z.string().max(100).optional(),
});
export const ServerHello = z.object({
  t: z.literal('hello'),
  v: z.literal(PROTOCOL_VERSION),
  role: z.literal('server'),
  /** Interval at which the peer must send a frame (ping if idle). */
  heartbeatMs: z.number().int().positive(),
  /** The server closes a connection silent for this long. */
  timeoutMs: z.number().int().positive(),
  maxFrame: z.number().int().positive(),
  /** Ed25519 public key (SPKI, base64) that signs session tokens. */
  publicKey: z.string(),
});

export const Request = z.object({
  t: z.literal('req'),
  id: z.number().int().min(0).max(0xffffffff),
  op: z.string().max(64),
  body: z.unknown(),
});
export const Response = z.object({
  t: z.literal('res'),
  id: z.number().int(),
  body: z.unknown().optional(),
  error: WireError.optional(),
});
export const Event = z.object({ t: z.literal('ev'), ev: z.string(), body: z.unknown() });
export const Fatal = z.object({ t: z.literal('error'), code: z.string(), message: z.string() });

const Empty = z.object({}).strict();
const Session = z.object({
  username: z.string(),
  role: Role,
  sessionId: SessionId,
});
const SessionWithToken = Session.extend({ token: z.string() });
const Limit = z.number().int().min(1).max(500);

/** Who may call an operation: anyone, any logged-in session, or registered users only. */
export type Access = 'anyone' | 'session' | 'user';

function op<Req extends z.ZodType, Res extends z.ZodType>(access: Access, req: Req, res: Res) {
  return { access, req, res };
}

/** Every operation: its access rule, request body schema and response body schema. */
export const OPS = {
  register: op(
    'anyone',
    z.object({ username: Username, password: Password }),
    z.object({ username: Username }),
  ),
  login: op('anyone', z.object({ username: Username, password: Password }), SessionWithToken),
  visitor: op('anyone', z.object({ name: VisitorName }), SessionWithToken),
  resume: op('anyone', z.object({ token: z.string().max(2000) }), Session),
  logout: op('session', Empty, Empty),
  submit_info: op(
    'session',
    z.object({
      ip: Ip,
      port: Port,
      udpPort: Port,
      status: z.enum(['online', 'invisible']),
    }),
    z.object({ entry: TrackerEntry }),
  ),
  set_status: op(
    'session',
    z.object({ status: z.enum(['online', 'invisible']) }),
    z.object({ status: z.enum(['online', 'invisible']) }),
  ),
  get_list: op('session', Empty, z.object({ peers: z.array(TrackerEntry) })),
  channel_create: op(
    'user',
    z.object({ id: Uuid, name: ChannelName, allowVisitors: z.boolean() }),
    Channel,
  ),
  directory: op('session', Empty, z.object({ channels: z.array(Channel) })),
  my_channels: op('session', Empty, z.object({ channels: z.array(Channel) })),
  channel_join: op('session', z.object({ channelId: Uuid }), Channel),
  history: op(
    'session',
    z.object({ channelId: Uuid, limit: Limit, before: Uuid.optional() }),
    z.object({ messages: z.array(StoredMessage), hasMore: z.boolean() }),
  ),
  sync: op(
    'session',
    z.object({ channelId: Uuid, since: z.number().int().min(0), limit: Limit }),
    z.object({ messages: z.array(StoredMessage), lastSeq: z.number().int().min(0) }),
  ),
  post: op(
    'user',
    z.object({ message: NewMessage }),
    z.object({ id: Uuid, seq: z.number().int(), duplicate: z.boolean() }),
  ),
} as const;

export type OpName = keyof typeof OPS;
export type OpReq<K extends OpName> = z.infer<(typeof OPS)[K]['req']>;
export type OpRes<K extends OpName> = z.infer<(typeof OPS)[K]['res']>;

/** True when `name` is an operation of this link. */
export function isOpName(name: string): name is OpName {
  return Object.hasOwn(OPS, name);
}

/** Every server → peer event and its body. */
export const EVENTS = {
  /** A new message in a channel the session is a member of (or views, for visitors). */
  message: z.object({ channelId: Uuid, message: StoredMessage }),
  /** A peer session became visible in the tracker list (logged in, or left invisible). */
  peer_joined: z.object({ entry: TrackerEntry }),
  /** A peer session left the visible list (logout, disconnect, timeout, or went invisible). */
  peer_left: z.object({ entry: TrackerEntry }),
} as const;

export type EventName = keyof typeof EVENTS;
export type EventBody<K extends EventName> = z.infer<(typeof EVENTS)[K]>;

/** Formats a zod failure as one line naming the fields that were wrong. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
}
