/**
 * What the parts of a peer's livestream service (live.ts) share: what they need from their node,
 * and the state of each stream this peer sends (its relay tree and viewers) or watches.
 */
import type net from 'node:net';
import type { Candidate, Channel, TrackerEntry } from '../protocol/common.js';
import type { StreamChild, StreamInfo, StreamParent } from '../protocol/stream-ops.js';
import type { ConnectionLog } from '../shared/connlog.js';
import type { Broadcast } from '../stream/broadcast.js';
import type { Viewing } from '../stream/viewing.js';
import type { RelayTree } from '../stream/relay-tree.js';
import type { FrameSource } from '../stream/sources.js';
import type { RtpExport } from '../stream/export.js';
import type { MediaSocket, Remote } from '../stream/media-socket.js';
import type { Hop, SrtpCounters } from '../stream/hops.js';
import type { HostLink } from './host-link.js';
import type { EventHub } from './event-hub.js';
import type { MemberConn } from './host-service.js';
import type { PeerIdentity } from './p2p.js';
import type { ChildHops } from './live-keys.js';

/** What the service needs from its node. */
export interface LiveDeps {
  log: ConnectionLog;
  events: EventHub;
  socket: MediaSocket;
  /** Address ingest ports bind to. */
  ingestHost: string;
  /** Direct children per node of the relay tree (SPEC §8 k). */
  fanout: number;
  /** The logged-in identity, if any. */
  me(): PeerIdentity | undefined;
  /** A P2P link to a peer, with this session's credentials; undefined while logged out. */
  dial(entry: TrackerEntry): HostLink | undefined;
  /** Where other peers reach this one (`port`: P2P TCP). */
  advertised(): { ip: string; port: number; udpPort: number };
  /** A channel this user has joined or hosts. */
  channel(id: string): Channel | undefined;
  /** Whether a user is a member, when this peer hosts the channel (its own list); else undefined. */
  hostedMember(channelId: string, username: string): boolean | undefined;
  /**
   * Whether the owner removed a user from the channel (never a reader again), by the owner's
   * signed channel items this peer holds: hosted here or only joined.
   */
  removed(channelId: string, username: string): boolean;
  /** The channel's members as the server has them. */
  members(channelId: string): Promise<string[]>;
  /** The tracker list as last heard. */
  entries(): TrackerEntry[];
  /** The set of live streams changed: announce it. */
  announce(): void;
  /** True while this user is invisible: it watches as a hidden viewer. */
  hidden(): boolean;
  /** This peer's candidates as it announces them (§3.8): host and server-reflexive. */
  candidates(): Candidate[];
  /** A media tunnel to our parent in a stream through the server's relay (§5.6). */
  mediaRelay(
    parent: { username: string; sessionId: string },
    streamId: string,
    name: string,
  ): Promise<net.Socket>;
}

/** A viewer of a stream this peer is sending: a node of its relay tree. */
export interface Viewer {
  id: string;
  conn: MemberConn;
  username: string;
  ip: string;
  udpPort: number;
  /** Its P2P TCP port, where its children ask it for keys; undefined: never a relay. */
  p2pPort?: number;
  /** Its UDP candidates, as it gave them in `watch` (passed on to its parent, §5.6). */
  candidates?: Candidate[];
}

/** A stream this peer is sending. */
export interface Live {
  info: StreamInfo;
  broadcast: Broadcast;
  source?: FrameSource;
  tree: RelayTree;
  viewers: Map<string, Viewer>;
  /** What each viewer was last told: its parent and its children. */
  told: Map<string, { parent: string; children: string }>;
  /** Viewers that reported their parent silent, waiting to be settled together. */
  stalls: Set<string>;
  /** When each viewer session last reported a stall (for the rate limit). */
  lastStall: Map<string, number>;
  stallTimer?: NodeJS.Timeout;
  exports: RtpExport[];
  /** SRTP keys of the hops to the streamer's direct children. */
  hops: ChildHops;
  srtp: SrtpCounters;
}

/** A stream this peer is watching. */
export interface Watch {
  info: StreamInfo;
  link: HostLink;
  viewing: Viewing;
  exports: RtpExport[];
  /** The parent as last named, and the hop keyed from it. */
  parent: StreamParent;
  upHop?: Hop;
  /** Bumped at each new parent: a key fetch for an older one is dropped. */
  keyGen: number;
  /** The children this peer relays to (as last named), and their hops' keys. */
  children: StreamChild[];
  hops: ChildHops;
  srtp: SrtpCounters;
  /** The media tunnel to the parent, when the hop goes through the server's relay (§5.6). */
  tunnel?: Remote;
  /** The parent session whose UDP hop stayed silent across NATs: tunnelled from then on. */
  udpFailed?: string;
}
