/**
 * NAT traversal on the peer ↔ server link (issue 18; docs/PROTOCOL.md §3.8, §3.9): `reflect`
 * tells a connection where the server sees it come from; `punch` asks the server to tell another
 * session "connect to me now, at this port", which that session answers the same way, so that
 * both dial each other at once through their NATs (TCP simultaneous open); `relay` has the
 * server carry the link's bytes where no punch can work.
 */
import { z } from 'zod';
import { base64urlBytes } from './base64url.js';
import { Ip, Port, Role, SessionId, Uuid } from './common.js';
import { op } from './rpc.js';

/** A punch's id: chosen by the session that starts it, repeated by the answer. */
export const PunchId = z.string().regex(/^[A-Za-z0-9_-]{8,32}$/, 'expected a punch id');

/** A relay token: 32 random bytes in base64url, one per side of a relayed link. */
export const RelayToken = base64urlBytes(32, 'expected a relay token');

/** What a relayed connection carries: a P2P link (§3.10), or a livestream hop's media (§5.6). */
export const RelayKind = z.enum(['p2p', 'media']);
export type RelayKind = z.infer<typeof RelayKind>;

/** The session a punch or relay names. */
const SessionRef = z.object({ username: z.string().min(1).max(64), sessionId: SessionId });
/** The session a punch or relay comes from. */
const From = z.object({ username: z.string().min(1).max(64), role: Role, sessionId: SessionId });

/** The operations. */
export const NAT_OPS = {
  /**
   * Where this connection comes from as the server sees it (the peer's TCP server-reflexive
   * address), and the server's STUN port for the UDP one.
   */
  reflect: op('anyone', z.object({}), z.object({ ip: Ip, port: Port, udpPort: Port.optional() })),
  /**
   * Tells session `to` (an entry the caller sees online, or one that punched the caller in the
   * last 10 s) to connect now to the caller's public address at `port`.
   */
  punch: op('session', z.object({ to: SessionRef, port: Port, id: PunchId }), z.object({})),
  /**
   * Asks the server to relay a P2P link to session `to` (an entry the caller sees online): the
   * answer's token is the caller's, the `relay` event's the other side's; both connect to the
   * server's relay `port` (§3.10).
   */
  relay: op(
    'session',
    z.object({
      to: SessionRef,
      id: PunchId,
      /** `media`: a tunnel for a livestream hop's SRTP (§5.6), counted apart; `p2p` by default. */
      kind: RelayKind.optional(),
      /** The stream a media tunnel is for (the viewer's parent checks it is its child there). */
      streamId: Uuid.optional(),
    }),
    z.object({ port: Port, token: RelayToken }),
  ),
} as const;

/** `punch` push: `from` asks this session to connect to `ip`:`port` now (its public address). */
export const PunchEvent = z.object({
  from: From,
  ip: Ip,
  port: Port,
  id: PunchId,
});
export type PunchEvent = z.infer<typeof PunchEvent>;

/** `relay` push: `from` asks this session to meet it at the server's relay `port` with `token`. */
export const RelayEvent = z.object({
  from: From,
  port: Port,
  token: RelayToken,
  id: PunchId,
  kind: RelayKind.optional(),
  streamId: Uuid.optional(),
  /** The relay's address when it is another instance's than this session's server (§3.7). */
  ip: Ip.optional(),
});
export type RelayEvent = z.infer<typeof RelayEvent>;

/** The pushes. */
export const NAT_EVENTS = { punch: PunchEvent, relay: RelayEvent } as const;
