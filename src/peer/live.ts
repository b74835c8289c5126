/**
 * Livestreams on a peer (SPEC §8): the control plane over the P2P TCP link and the local API,
 * around the media engines of stream/. As a streamer it keeps each live stream's relay tree and
 * tells relays whom to feed; as a viewer it connects to the streamer, receives from the parent
 * the streamer named, and relays to the children it is given. The live streams a peer has are
 * announced in its tracker entry (`live`), so viewers know whom to ask; everything else (rights,
 * the tree, media) is between peers. Media never reaches the central server. Every hop of the
 * tree is SRTP under its own keys, which the child fetches from its parent (live-keys.ts).
 */
import type net from 'node:net';
import { HchatError } from '../protocol/errors.js';
import type { TrackerEntry } from '../protocol/common.js';
import { ROOT } from '../stream/relay-tree.js';
import { RtpIngest, type FrameSource } from '../stream/sources.js';
import { RtpExport, exportSdp } from '../stream/export.js';
import type { MediaFrame } from '../stream/sender.js';
import type { Viewing } from '../stream/viewing.js';
import type { MemberConn } from './host-service.js';
import { MediaPaths } from './live-paths.js';
import type { Live, LiveDeps, Watch } from './live-state.js';
import { Streamer, type GoLive, type StreamOp } from './live-streamer.js';
import { RelayTrees } from './live-trees.js';
import { Watches } from './live-watches.js';
import type { NewStream, Stream, StreamStats } from './api-live-shapes.js';

export type { LiveDeps } from './live-state.js';
export type { GoLive } from './live-streamer.js';

/**
 * The livestreams of one peer: the one face its node, host service and local API see. The
 * streamer's side is live-streamer.ts, the relay trees live-trees.ts, the viewer's side
 * live-watches.ts, the media paths and hop keys live-paths.ts; stats and exports to local tools,
 * which serve both sides, are here.
 */
export class LiveService {
  private readonly lives = new Map<string, Live>();
  private readonly watches = new Map<string, Watch>();
  private readonly paths: MediaPaths;
  private readonly trees: RelayTrees;
  private readonly streamer: Streamer;
  private readonly watching: Watches;

  constructor(private readonly deps: LiveDeps) {
    this.paths = new MediaPaths(deps, this.lives, this.watches, {
      syncTree: (live) => this.trees.syncTree(live),
    });
    this.trees = new RelayTrees(deps, this.lives, this.paths);
    this.streamer = new Streamer(deps, this.lives, this.trees, this.paths);
    this.watching = new Watches(deps, this.lives, this.watches, this.trees, this.paths);
  }

  // ---- streamer (live-streamer.ts) -----------------------------------------------------------

  /** Streams this peer has live, for its tracker entry. */
  announced(): Array<{ streamId: string; channelId: string }> {
    return this.streamer.announced();
  }

  /** Goes live in a channel; a browser source then feeds frames through `frame()`. */
  goLive(channelId: string, opts: GoLive): Promise<NewStream> {
    return this.streamer.goLive(channelId, opts);
  }

  /** A frame from the browser source of one of our streams. */
  frame(streamId: string, f: MediaFrame): void {
    this.streamer.frame(streamId, f);
  }

  /** Attaches the page that feeds a browser-source stream (one at a time). */
  attachSource(streamId: string, source: FrameSource): void {
    this.streamer.attachSource(streamId, source);
  }

  /** Stops one of our streams: every viewer is told, the tracker entry no longer lists it. */
  stop(streamId: string): Promise<void> {
    return this.streamer.stop(streamId);
  }

  /** Handles a stream operation from an authenticated P2P connection. */
  request(conn: MemberConn, op: StreamOp, raw: unknown): Promise<unknown> {
    return this.streamer.request(conn, op, raw);
  }

  /** The channel's readers changed: a viewer that may no longer watch it leaves its trees. */
  keepWatchers(channelId: string): Promise<void> {
    return this.streamer.keepWatchers(channelId);
  }

  /** A P2P connection closed: its viewers leave every tree. */
  detach(conn: MemberConn): void {
    this.streamer.detach(conn);
  }

  // ---- viewer (live-watches.ts) --------------------------------------------------------------

  /** Live streams this user may watch: ours, and those of peers in our channels. */
  list(): Promise<Stream[]> {
    return this.watching.list();
  }

  /** A tracker entry changed: streams that went live or ended become `stream` events. */
  trackerChanged(before: TrackerEntry | undefined, after: TrackerEntry | undefined): void {
    this.watching.trackerChanged(before, after);
  }

  /** Starts watching: joins the stream's relay tree at its streamer, `streamer` when given. */
  watch(streamId: string, streamer?: string): Promise<{ streamId: string; parent: string }> {
    return this.watching.watch(streamId, streamer);
  }

  /** Stops watching. */
  unwatch(streamId: string): Promise<void> {
    return this.watching.unwatch(streamId);
  }

  /** The viewing engine of a watched stream (for the browser sink). */
  viewing(streamId: string): Viewing | undefined {
    return this.watching.viewing(streamId);
  }

  // ---- both ----------------------------------------------------------------------------------

  /** A media tunnel a child opened to us through the server's relay (live-paths.ts). */
  acceptTunnel(from: { sessionId: string }, streamId: string, socket: net.Socket): void {
    this.paths.acceptTunnel(from, streamId, socket);
  }

  /** Stats of a stream: as its streamer, or as a viewer. */
  stats(streamId: string): StreamStats {
    const live = this.lives.get(streamId);
    if (live) {
      return {
        role: 'streamer',
        uploadBytes: live.broadcast.fanout.uploadBytes,
        streamBytes: live.broadcast.bytesProduced,
        viewers: live.viewers.size,
        children: live.tree.childrenOf(ROOT).map((id) => live.viewers.get(id)!.username),
        framesSent: live.broadcast.framesSent,
        retransmits: live.broadcast.fanout.retransmits,
        retransmitsRefused: live.broadcast.fanout.retransmitsRefused,
        depth: Math.max(0, ...[...live.viewers.keys()].map((id) => live.tree.depthOf(id))),
        ...live.srtp,
        srtpUnkeyed: this.deps.socket.stats.srtpUnkeyed,
        ...(live.source instanceof RtpIngest && { ingest: { ...live.source.stats } }),
      };
    }
    const w = this.watches.get(streamId);
    if (!w) throw new HchatError('E_STREAM_NOT_FOUND');
    return {
      role: 'viewer',
      ...w.viewing.stats(),
      ...w.srtp,
      srtpUnkeyed: this.deps.socket.stats.srtpUnkeyed,
    };
  }

  /** Sends a stream as RTP (or SRTP) to a local tool; answers with the SDP that describes it. */
  forward(streamId: string, ip: string, port: number, srtp = false): { sdp: string } {
    const exp = new RtpExport(this.deps.socket, ip, port, srtp);
    const live = this.lives.get(streamId);
    const w = this.watches.get(streamId);
    if (live) {
      live.exports.push(exp);
      live.broadcast.sinks.add((kind, packets) => exp.send(kind, packets));
      live.broadcast.requestKeyframe();
    } else if (w) {
      w.exports.push(exp);
      w.viewing.sinks.add((kind, f) => exp.send(kind, f.packets));
      w.viewing.requestKeyframe();
    } else {
      throw new HchatError('E_STREAM_NOT_FOUND', 'watch the stream before forwarding it');
    }
    this.deps.log.write('forward', { stream: streamId, to: `${ip}:${port}`, srtp });
    return { sdp: exp.sdp(streamId) };
  }

  /** The SDP for a local sink at `port`, or for the latest export of the stream. */
  sdp(streamId: string, port?: number): string {
    const exps = this.lives.get(streamId)?.exports ?? this.watches.get(streamId)?.exports;
    if (!exps) throw new HchatError('E_STREAM_NOT_FOUND');
    if (port !== undefined) return exportSdp(streamId, '127.0.0.1', port);
    const last = exps[exps.length - 1];
    if (!last)
      throw new HchatError(
        'E_NOT_FOUND',
        'forward the stream first (POST …/forward), or give ?port=',
      );
    return last.sdp(streamId);
  }

  /** Stops everything (logout, offline, close). */
  async closeAll(): Promise<void> {
    for (const id of [...this.watches.keys()]) this.watching.endWatch(id, 'closed');
    for (const id of [...this.lives.keys()]) await this.stop(id);
    for (const l of this.watching.streamerLinks.values()) l.stop();
    this.watching.streamerLinks.clear();
  }
}
