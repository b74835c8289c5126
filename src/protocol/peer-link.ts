/**
 * The peer ↔ peer link (P2P, TCP), same framing as the server link (frame.ts). This version has
 * the opening handshake (`peer_connect`, SPEC §2 step 4): the connecting peer proves who it is with
 * the session token the central server signed, and the accepting peer checks the signature with
 * the server's public key, without asking the server. After it, the envelope of rpc.ts carries
 * channel traffic: a member reads, posts and subscribes to the channels this host hosts
 * (docs/PROTOCOL.md §4), and viewers control livestreams (stream-ops.ts, §5). On this link a
 * message's `seq` is the host's sequence number.
 */
import { z } from 'zod';
import { Role, SessionId, StoredMessage, Uuid } from './common.js';
import { CHANNEL_OPS } from './channel-ops.js';
import { STREAM_EVENTS, STREAM_OPS } from './stream-ops.js';

/** First frame of the connecting peer. */
export const PeerHello = z.object({
  t: z.literal('hello'),
  v: z.number().int(),
  role: z.literal('peer'),
  token: z.string().min(1).max(2000),
});

/** Answer of the accepting peer once the token holds. */
export const PeerHelloAck = z.object({
  t: z.literal('hello'),
  v: z.number().int(),
  role: z.literal('host'),
  username: z.string(),
  sessionId: SessionId,
  userRole: Role,
  heartbeatMs: z.number().int().positive(),
  timeoutMs: z.number().int().positive(),
});

/** Operations a member (or visitor) calls on a host, and a viewer on a streamer. */
export const P2P_OPS = { ...CHANNEL_OPS, ...STREAM_OPS } as const;

/** Pushes from a host to its subscribers, and from a streamer to its viewers. */
export const P2P_EVENTS = {
  message: z.object({ channelId: Uuid, message: StoredMessage }),
  ...STREAM_EVENTS,
} as const;
