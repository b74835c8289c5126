/**
 * What the local API's livestream routes answer (README "Livestream API"), as zod schemas that
 * the routes declare (api-doc.ts) and the code builds its answers to (live.ts).
 */
import { z } from 'zod';
import { StreamInfo } from '../protocol/stream-ops.js';
import { SrtpCounters } from '../stream/hops.js';
import { SRTP_SUITE } from '../stream/srtp.js';
import { ViewerStats } from '../stream/viewing.js';
import { named } from './api-doc.js';

/** A live stream this user may watch: its own, or one in a channel of its. */
export const Stream = named(
  'Stream',
  StreamInfo.extend({ watching: z.boolean(), mine: z.boolean() }),
);
export type Stream = z.infer<typeof Stream>;

/** A stream just started: where an `rtp` source sends its media, and the SRTP key for it. */
export const NewStream = named(
  'NewStream',
  z.object({
    streamId: z.string(),
    ingestPort: z.number().int().optional(),
    srtp: z.object({ suite: z.literal(SRTP_SUITE), key: z.string() }).optional(),
  }),
);
export type NewStream = z.infer<typeof NewStream>;

/** Watching a stream: who feeds this peer. */
export const Watching = named('Watching', z.object({ streamId: z.string(), parent: z.string() }));

/** What the streamer's peer reports of its stream. */
export const StreamerStats = named(
  'StreamerStats',
  SrtpCounters.extend({
    role: z.literal('streamer'),
    uploadBytes: z.number().int(),
    streamBytes: z.number().int(),
    viewers: z.number().int(),
    /** The viewers the streamer feeds itself. */
    children: z.array(z.string()),
    framesSent: z.number().int(),
    retransmits: z.number().int(),
    retransmitsRefused: z.number().int(),
    /** How deep the relay tree is. */
    depth: z.number().int(),
    srtpUnkeyed: z.number().int(),
    /** An `rtp` source: what its ingest port took. */
    ingest: z.record(z.string(), z.number()).optional(),
  }),
);

/** What a viewer's peer reports of a stream it watches. */
export const WatcherStats = named(
  'ViewerStats',
  ViewerStats.extend(SrtpCounters.shape).extend({
    role: z.literal('viewer'),
    srtpUnkeyed: z.number().int(),
  }),
);

export const StreamStats = z.union([StreamerStats, WatcherStats]);
export type StreamStats = z.infer<typeof StreamStats>;

/** An export to a local tool: the SDP that describes it. */
export const Forwarded = z.object({ sdp: z.string() });
