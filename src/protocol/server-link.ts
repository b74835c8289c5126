/**
 * The peer ↔ central server link: envelope, operations and events. Both ends import this module;
 * docs/PROTOCOL.md §3 describes the same thing in prose.
 *
 * After the hello frames, the envelope of rpc.ts: requests from the peer, answers and pushes from
 * the server.
 */
export { Request, Response, Event, Fatal, WireError, describeIssues } from './rpc.js';
import { WireError } from './rpc.js';
import { z } from 'zod';
import { op } from './rpc.js';
import { TOKEN_OPS } from './token-ops.js';
import { CHANNEL_OPS } from './channel-ops.js';
import { TYPING_EVENTS, TYPING_OPS } from './typing-ops.js';
import { NAT_EVENTS, NAT_OPS } from './nat-ops.js';
import { SEARCH_OPS } from './search-ops.js';
import { FILE_OPS } from './files.js';
import { AVATAR_EVENTS, AVATAR_OPS } from './avatars.js';
import { DM_EVENTS, DM_OPS } from './dm.js';
import { NAT_LIMITS } from '../shared/limits.js';
import { COMPACT_VERSION } from './compact.js';
import { base64Bytes } from './base64.js';
import { base64urlBytes } from './base64url.js';
import {
  Candidate,
  Channel,
  ChannelName,
  Ip,
  LiveStream,
  checkedItem,
  ItemFields,
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
  PublicKey,
} from './common.js';

/**
 * What a host shows of a session's P2P hello when it asks about it (`session_check`): that
 * session's nonce and dial signature, and the TLS channel binding of that connection (PROTOCOL.md
 * §4.1).
 */
export const DialProof = z.object({
  nonce: base64urlBytes(32, 'expected the dialling peer nonce (32 bytes, base64url)'),
  binding: base64urlBytes(32, 'expected the channel binding (32 bytes, base64url)'),
  sig: base64urlBytes(64, 'expected an Ed25519 signature, base64url'),
});
export type DialProof = z.infer<typeof DialProof>;

export const ClientHello = z.object({
  t: z.literal('hello'),
  v: z.number().int(),
  role: z.literal('peer'),
  agent: z.string().max(100).optional(),
  /** Largest frame this peer accepts (default 1 MiB): answers are cut to fit it. */
  maxFrame: z
    .number()
    .int()
    .min(64 * 1024)
    .max(64 * 1024 * 1024)
    .optional(),
  /** Asks for compact pushes and pages (PROTOCOL.md §3.11): the highest version it speaks. */
  compact: z.number().int().min(1).optional(),
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
  /** Ed25519 public key (SPKI, canonical base64) that signs session tokens. */
  publicKey: base64Bytes(1024),
  /** Present when the peer asked: the compact version this link now speaks (§3.11). */
  compact: z.literal(COMPACT_VERSION).optional(),
});

// Forward compatible (PROTOCOL.md §1): unknown members of any body are ignored.
const Empty = z.object({});
/** An opaque paging cursor: the `next` of the previous page. */
const Cursor = z.string().min(1).max(600);
/** A message with its author, as a host forwards it. */
const AuthoredMessage = checkedItem(ItemFields.extend({ author: Username }));
const ForwardResult = z.union([
  z.object({ id: Uuid, seq: z.number().int(), duplicate: z.boolean() }),
  z.object({ id: z.string(), error: WireError }),
]);
const Session = z.object({
  username: z.string(),
  role: Role,
  sessionId: SessionId,
});
const SessionWithToken = Session.extend({ token: z.string(), cert: z.string() });

/** Every operation: its access rule, request body schema and response body schema. */
export const OPS = {
  ...CHANNEL_OPS,
  ...TYPING_OPS,
  ...NAT_OPS,
  ...SEARCH_OPS,
  ...FILE_OPS,
  ...AVATAR_OPS,
  ...DM_OPS,
  ...TOKEN_OPS,
  register: op(
    'anyone',
    z.object({ username: Username, password: Password }),
    z.object({ username: Username }),
  ),
  login: op(
    'anyone',
    z.object({ username: Username, password: Password, publicKey: PublicKey }),
    SessionWithToken,
  ),
  visitor: op('anyone', z.object({ name: VisitorName, publicKey: PublicKey }), SessionWithToken),
  /** Re-attaches a saved session; the answer carries a renewed certificate of its key. */
  resume: op(
    'anyone',
    z.object({ token: z.string().max(2000) }),
    Session.extend({ cert: z.string() }),
  ),
  logout: op('session', Empty, Empty),
  /**
   * Whether a session that is dialling the asker is still live (not revoked, known to the
   * server): a host asks before it accepts a P2P handshake from a session it has not heard of
   * since it came online, so a logout it missed while away or stopped is not accepted. `proof` is
   * the dial's signature from the session's hello; without one that verifies, the answer is
   * that of an unknown session (PROTOCOL.md §3.3, §4.1).
   */
  session_check: op(
    'session',
    z.object({ sessionId: SessionId, proof: DialProof }),
    z.object({ live: z.boolean() }),
  ),
  submit_info: op(
    'session',
    z.object({
      ip: Ip,
      port: Port,
      udpPort: Port,
      status: z.enum(['online', 'invisible']),
      hosts: z.array(Uuid).max(1000).default([]),
      live: z.array(LiveStream).max(16).default([]),
      candidates: z.array(Candidate).max(NAT_LIMITS.candidatesPerEntry).optional(),
    }),
    z.object({ entry: TrackerEntry }),
  ),
  set_status: op(
    'session',
    z.object({ status: z.enum(['online', 'invisible']) }),
    z.object({ status: z.enum(['online', 'invisible']) }),
  ),
  /**
   * The tracker entries this session may see (PROTOCOL.md §3.3), a page at a time: `next` is the
   * cursor to send as `after` for the following page; no `next` on the last one.
   */
  get_list: op(
    'session',
    z.object({ after: Cursor.optional() }),
    z.object({ peers: z.array(TrackerEntry), next: Cursor.optional() }),
  ),
  channel_create: op(
    'user',
    z.object({ id: Uuid, name: ChannelName, allowVisitors: z.boolean() }),
    Channel,
  ),
  /** Channels in (createdAt, id) order, a page at a time (`next` as for get_list). */
  directory: op(
    'session',
    z.object({ after: Cursor.optional() }),
    z.object({ channels: z.array(Channel), next: Cursor.optional() }),
  ),
  my_channels: op(
    'session',
    z.object({ after: Cursor.optional() }),
    z.object({ channels: z.array(Channel), next: Cursor.optional() }),
  ),
  channel_join: op('session', z.object({ channelId: Uuid }), Channel),
  /** Leaves a channel (members; its owner deletes it instead). */
  channel_leave: op('user', z.object({ channelId: Uuid }), z.object({})),
  /** A host uploads messages of its channels: each once, in its order; idempotent by id. */
  forward: op(
    'user',
    z.object({ messages: z.array(AuthoredMessage).min(1).max(500) }),
    z.object({ results: z.array(ForwardResult) }),
  ),
  /** A channel's members: for its host (who checks members itself) and for member lists. */
  members: op(
    'session',
    z.object({ channelId: Uuid, after: Username.optional() }),
    z.object({ members: z.array(Username), next: Username.optional() }),
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
  ...AVATAR_EVENTS,
  ...DM_EVENTS,
  /** A new message in a channel the session is a member of (or views, for visitors). */
  message: z.object({ channelId: Uuid, message: StoredMessage }),
  /**
   * A tracker entry became visible to this session, or what it may see of it changed (PROTOCOL.md
   * §3.5): to its user's co-members and to visitors viewing a channel it hosts or streams.
   */
  peer_joined: z.object({ entry: TrackerEntry }),
  /** An entry this session saw left its view (logout, disconnect, timeout, invisible, …). */
  peer_left: z.object({ entry: TrackerEntry }),
  /** To the channel owner's sessions: a user joined one of their channels. */
  member_joined: z.object({ channelId: Uuid, username: Username }),
  /** To a channel's host: a member left or was removed. */
  member_left: z.object({ channelId: Uuid, username: Username }),
  /**
   * To the sessions of users who share a channel with the session's user: that session was
   * revoked (logout); P2P links that it opened are closed, and new ones refused.
   */
  session_revoked: z.object({ sessionId: SessionId }),
  /**
   * This server instance is shutting down (SIGTERM): the peer should connect to another instance
   * of the deployment now and resume its session there; the instance closes the connections
   * still open when its drain time is up.
   */
  draining: z.object({}),
  /** A member of a channel this connection is subscribed to is typing (typing-ops.ts). */
  ...TYPING_EVENTS,
  ...NAT_EVENTS,
} as const;

export type EventName = keyof typeof EVENTS;
export type EventBody<K extends EventName> = z.infer<(typeof EVENTS)[K]>;
