/**
 * The peer ↔ peer link (P2P, TCP), same framing as the server link (frame.ts). This version has
 * the opening handshake (`peer_connect`, SPEC §2 step 4): each side presents the key certificate
 * the central server signed and signs the handshake transcript with the certified key
 * (shared/handshake.ts), so each proves who it is without showing a secret and without asking
 * the server. After it, the envelope of rpc.ts carries
 * channel traffic: a member reads, posts and subscribes to the channels this host hosts
 * (docs/PROTOCOL.md §4), and viewers control livestreams (stream-ops.ts, §5). On this link a
 * message's `seq` is the host's sequence number.
 */
import { z } from 'zod';
import { base64urlBytes } from './base64url.js';
import { StoredMessage, Uuid } from './common.js';
import { CHANNEL_OPS } from './channel-ops.js';
import { COMPACT_VERSION } from './compact.js';
import { P2P_FILE_OPS } from './files.js';
import { P2P_DM_OPS } from './dm.js';
import { STREAM_EVENTS, STREAM_OPS } from './stream-ops.js';
import { TYPING_EVENTS, TYPING_OPS } from './typing-ops.js';

const Nonce = base64urlBytes(32, 'expected 32 random bytes, base64url');
const Sig = base64urlBytes(64, 'expected an Ed25519 signature, base64url');
const Cert = z.string().min(1).max(2000);
const MaxFrame = z
  .number()
  .int()
  .min(64 * 1024)
  .max(64 * 1024 * 1024);

/**
 * First frame of the connecting peer: its key certificate, a fresh nonce, and its signature of
 * the dial (shared/handshake.ts `dialTranscript`), which the host shows the server.
 */
export const PeerHello = z.object({
  t: z.literal('hello'),
  v: z.number().int(),
  role: z.literal('peer'),
  cert: Cert,
  nonce: Nonce,
  dial: Sig,
  /** Largest frame this side accepts (default 1 MiB). */
  maxFrame: MaxFrame.optional(),
  /** Asks for compact pushes and pages (PROTOCOL.md §3.11, §4.2). */
  compact: z.number().int().min(1).optional(),
});

/** Answer of the accepting peer: its certificate, its nonce, and its transcript signature. */
export const PeerHelloAck = z.object({
  t: z.literal('hello'),
  v: z.number().int(),
  role: z.literal('host'),
  cert: Cert,
  nonce: Nonce,
  sig: Sig,
  heartbeatMs: z.number().int().positive(),
  timeoutMs: z.number().int().positive(),
  maxFrame: MaxFrame.optional(),
  /** Present when the connecting peer asked: this link is compact (§3.11). */
  compact: z.literal(COMPACT_VERSION).optional(),
});

/** Third frame, from the connecting peer: its transcript signature. */
export const PeerAuth = z.object({ t: z.literal('auth'), sig: Sig });

/** Operations a member (or visitor) calls on a host, and a viewer on a streamer. */
export const P2P_OPS = {
  ...CHANNEL_OPS,
  ...TYPING_OPS,
  ...STREAM_OPS,
  ...P2P_FILE_OPS,
  ...P2P_DM_OPS,
} as const;

/** Pushes from a host to its subscribers, and from a streamer to its viewers. */
export const P2P_EVENTS = {
  message: z.object({ channelId: Uuid, message: StoredMessage }),
  ...TYPING_EVENTS,
  ...STREAM_EVENTS,
} as const;
