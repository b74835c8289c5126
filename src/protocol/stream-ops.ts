/**
 * Livestream control over the peer ↔ peer TCP link (SPEC §8; docs/PROTOCOL.md §5). A viewer
 * connects to the streamer's P2P endpoint (§4.1's handshake: no session token crosses it), lists the live streams it may
 * watch and asks to watch one, giving the UDP port where media should go; the streamer places it
 * in the relay tree and answers with the parent that will feed it. The streamer then tells relays
 * which children to feed and viewers when their parent changes. Media itself is SRTP over UDP
 * (stream/srtp.ts), peer to peer: never through the central server. Each parent → child hop has
 * its own keys, which the child asks its parent for (`stream_key`) over a P2P link between the
 * two: the streamer's link for a child of the streamer, a link to the relay otherwise.
 */
import { z } from 'zod';
import { Candidate, Ip, Port, Role, SessionId, Username, Uuid } from './common.js';
import { op } from './rpc.js';

const U32 = z.number().int().min(0).max(0xffffffff);

/** Where a stream comes from on the streamer's side. */
export const StreamSource = z.enum(['browser', 'rtp', 'synthetic']);

/** A live stream as the streamer describes it. */
export const StreamInfo = z.object({
  streamId: Uuid,
  channelId: Uuid,
  streamer: Username,
  source: StreamSource,
  startedAt: z.number().int(),
  fps: z.number().int().min(1).max(120),
  bitrateKbps: z.number().int().min(8).max(50_000),
  viewers: z.number().int().min(0),
  /** SSRCs of the two RTP streams: VP8 video (PT 96) and Opus audio (PT 111). */
  videoSsrc: U32,
  audioSsrc: U32,
});

/**
 * Candidates (§3.8) a viewer or parent gives for its media: its UDP ones (`host`, `srflx`) and
 * its TCP `srflx` (a NAT with no UDP `srflx` blocks UDP, §5.6); at most 4.
 */
export const MediaCandidates = z.array(Candidate).max(4);

/**
 * Who feeds a viewer: the streamer itself or a relaying viewer, with the P2P endpoint (`port`,
 * TCP) and session the viewer dials to ask it for the hop's keys.
 */
export const StreamParent = z.object({
  username: z.string().max(64),
  ip: Ip,
  udpPort: Port,
  port: Port,
  sessionId: SessionId,
  /** Whose certificate the parent's P2P endpoint must show (a visitor may relay). */
  role: Role,
  /** The parent's media candidates (§3.8, §5.6): where its media comes from across NATs. */
  candidates: MediaCandidates.optional(),
});

/** An SRTP master key and salt (16 + 14 bytes), base64 as in SDES `inline:` (RFC 4568). */
export const SrtpMasterKey = z
  .string()
  .length(40)
  .regex(/^[A-Za-z0-9+/]{40}$/);

/** A viewer a relay must feed. */
export const StreamChild = z.object({
  username: z.string().max(64),
  sessionId: SessionId,
  ip: Ip,
  udpPort: Port,
  /** The child's media candidates, as it gave them in `watch` (§5.6). */
  candidates: MediaCandidates.optional(),
});

/** Operations a viewer calls on a streamer. */
export const STREAM_OPS = {
  /** This peer's live streams that the caller may watch. */
  stream_list: op('session', z.object({}), z.object({ streams: z.array(StreamInfo).max(16) })),
  /** Join a stream's relay tree; media goes to the caller's address at `udpPort`. */
  watch: op(
    'session',
    z.object({
      streamId: Uuid,
      udpPort: Port,
      /**
       * The viewer is invisible: the streamer feeds it itself, as a leaf, and never names it to
       * another viewer (as a child to relay to, or as a parent).
       */
      hidden: z.boolean().optional(),
      /**
       * The viewer's P2P TCP port, where its own children will ask it for their keys. A viewer
       * that does not give it is never made a relay.
       */
      p2pPort: Port.optional(),
      /**
       * The viewer's UDP candidates (§3.8: its media port's host and server-reflexive
       * addresses), so that a parent behind another NAT sends to its public one (§5.6).
       */
      candidates: MediaCandidates.optional(),
    }),
    z.object({ stream: StreamInfo, parent: StreamParent }),
  ),
  /** Leave a stream's relay tree (the children it fed are placed elsewhere). */
  unwatch: op('session', z.object({ streamId: Uuid }), z.object({})),
  /** Media from the parent stopped: place the caller elsewhere. */
  stalled: op('session', z.object({ streamId: Uuid }), z.object({ parent: StreamParent })),
  /**
   * Asked of one's parent (streamer or relay): fresh SRTP keys for the hop from it to the caller,
   * which must be one of its current children in that stream (else E_FORBIDDEN). `down` keys
   * parent → child SRTP and SRTCP, `up` child → parent SRTCP (AES_CM_128_HMAC_SHA1_80). Each
   * call replaces the hop's keys.
   */
  stream_key: op(
    'session',
    z.object({ streamId: Uuid }),
    z.object({
      suite: z.literal('AES_CM_128_HMAC_SHA1_80'),
      down: SrtpMasterKey,
      up: SrtpMasterKey,
    }),
  ),
} as const;

/** Pushes from a streamer to its viewers. */
export const STREAM_EVENTS = {
  /** Your parent changed (a relay left or stalled). */
  stream_parent: z.object({ streamId: Uuid, parent: StreamParent }),
  /** The viewers you relay to, all of them (replaces the previous list). */
  stream_children: z.object({ streamId: Uuid, children: z.array(StreamChild).max(64) }),
  /** The stream stopped. */
  stream_ended: z.object({ streamId: Uuid }),
} as const;

export type StreamInfo = z.infer<typeof StreamInfo>;
export type StreamParent = z.infer<typeof StreamParent>;
export type StreamChild = z.infer<typeof StreamChild>;
export type StreamSource = z.infer<typeof StreamSource>;
