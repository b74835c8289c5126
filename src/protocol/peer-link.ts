/**
 * The peer ↔ peer link (P2P, TCP), same framing as the server link (frame.ts). This version has
 * the opening handshake (`peer_connect`, SPEC §2 step 4): the connecting peer proves who it is with
 * the session token the central server signed, and the accepting peer checks the signature with
 * the server's public key, without asking the server. Channel traffic over this link comes with
 * channel hosting (docs/PROTOCOL.md §4).
 */
import { z } from 'zod';
import { Role, SessionId } from './common.js';

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
});
