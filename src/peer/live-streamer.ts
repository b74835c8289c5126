/**
 * The streamer's side of a peer's livestreams (SPEC §8): going live from a synthetic, RTP or
 * browser source, stopping, the stream operations viewers send over P2P (list, watch, unwatch,
 * stalled, stream_key), and who may watch, checked as strictly as a host checks readers.
 */
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { HchatError } from '../protocol/errors.js';
import { STREAM_OPS, type StreamInfo, type StreamSource } from '../protocol/stream-ops.js';
import { describeIssues } from '../protocol/rpc.js';
import { STREAM_LIMITS } from '../shared/limits.js';
import { Broadcast } from '../stream/broadcast.js';
import { RelayTree } from '../stream/relay-tree.js';
import { RtpIngest, SyntheticSource, type FrameSource } from '../stream/sources.js';
import { SRTP_SUITE, SrtpContext, encodeMasterKey, newMasterKey } from '../stream/srtp.js';
import type { MediaFrame } from '../stream/sender.js';
import { newSrtpCounters } from '../stream/hops.js';
import type { MemberConn } from './host-service.js';
import type { PeerIdentity } from './p2p.js';
import { ChildHops } from './live-keys.js';
import type { Live, LiveDeps } from './live-state.js';
import type { MediaPaths } from './live-paths.js';
import type { RelayTrees } from './live-trees.js';
import type { NewStream } from './api-live-shapes.js';

/** A stream operation a viewer sends over P2P. */
export type StreamOp = keyof typeof STREAM_OPS;
type Req<K extends StreamOp> = z.infer<(typeof STREAM_OPS)[K]['req']>;

/** `POST /api/channels/:id/streams` settings. */
export interface GoLive {
  source: StreamSource;
  fps: number;
  bitrateKbps: number;
  /** An `rtp` source takes SRTP under a key made here (answered once, as `srtp`). */
  srtp?: boolean;
}

const MEMBERS_TTL_MS = 10_000;

/** The streams this peer sends. */
export class Streamer {
  private readonly memberCache = new Map<string, { at: number; members: Set<string> }>();

  constructor(
    private readonly deps: LiveDeps,
    private readonly lives: Map<string, Live>,
    private readonly trees: RelayTrees,
    private readonly paths: MediaPaths,
  ) {}

  /** Streams this peer has live, for its tracker entry. */
  announced(): Array<{ streamId: string; channelId: string }> {
    return [...this.lives.values()].map((l) => ({
      streamId: l.info.streamId,
      channelId: l.info.channelId,
    }));
  }

  /** Goes live in a channel; a browser source then feeds frames through `frame()`. */
  async goLive(channelId: string, opts: GoLive): Promise<NewStream> {
    const me = this.deps.me();
    if (!me) throw new HchatError('E_AUTH_REQUIRED');
    if (me.role !== 'user') throw new HchatError('E_VISITOR_READ_ONLY', 'visitors cannot go live');
    const channel = this.deps.channel(channelId);
    if (!channel) throw new HchatError('E_NOT_MEMBER', 'join the channel before going live in it');
    if (this.lives.size >= 16) throw new HchatError('E_RATE_LIMITED', 'at most 16 live streams');
    if (opts.srtp && opts.source !== 'rtp')
      throw new HchatError('E_BAD_REQUEST', 'srtp is for an rtp source (its ingest port)');
    const streamId = randomUUID();
    let live: Live | undefined;
    const broadcast = new Broadcast(this.deps.socket, () => live?.source?.keyframe());
    const info: StreamInfo = {
      streamId,
      channelId,
      streamer: me.username,
      source: opts.source,
      startedAt: Date.now(),
      fps: opts.fps,
      bitrateKbps: opts.bitrateKbps,
      viewers: 0,
      videoSsrc: broadcast.video.ssrc,
      audioSsrc: broadcast.audio.ssrc,
    };
    const srtp = newSrtpCounters();
    live = {
      info,
      broadcast,
      tree: new RelayTree(this.deps.fanout),
      viewers: new Map(),
      told: new Map(),
      stalls: new Set(),
      lastStall: new Map(),
      exports: [],
      hops: new ChildHops(this.deps.socket, [info.videoSsrc, info.audioSsrc], srtp),
      srtp,
    };
    const send = (f: MediaFrame) => broadcast.send(f);
    let ingestPort: number | undefined;
    let ingestKey: string | undefined;
    if (opts.source === 'synthetic') {
      live.source = new SyntheticSource(opts, send);
    } else if (opts.source === 'rtp') {
      try {
        const key = opts.srtp ? newMasterKey() : undefined;
        ingestKey = key && encodeMasterKey(key);
        const ingest = await RtpIngest.open(
          this.deps.ingestHost,
          0,
          send,
          key && new SrtpContext(key),
        );
        live.source = ingest;
        ingestPort = ingest.port;
      } catch (err) {
        broadcast.stop();
        throw err;
      }
    }
    this.lives.set(streamId, live);
    this.deps.log.write('live', {
      stream: streamId,
      channel: channelId,
      source: opts.source,
      ingest: ingestPort,
      srtp: ingestKey !== undefined,
    });
    this.deps.events.emit('stream', { state: 'live', ...info, watching: false, mine: true });
    this.deps.announce();
    return {
      streamId,
      ingestPort,
      ...(ingestKey && { srtp: { suite: SRTP_SUITE, key: ingestKey } }),
    };
  }

  /** A frame from the browser source of one of our streams. */
  frame(streamId: string, f: MediaFrame): void {
    const live = this.lives.get(streamId);
    if (!live || live.info.source !== 'browser') throw new HchatError('E_STREAM_NOT_FOUND');
    live.broadcast.send(f);
  }

  /** Attaches the page that feeds a browser-source stream (one at a time). */
  attachSource(streamId: string, source: FrameSource): void {
    const live = this.lives.get(streamId);
    if (!live || live.info.source !== 'browser') throw new HchatError('E_STREAM_NOT_FOUND');
    if (live.source) throw new HchatError('E_FORBIDDEN', 'a page already feeds this stream');
    live.source = source;
  }

  /** Stops one of our streams: every viewer is told, the tracker entry no longer lists it. */
  async stop(streamId: string): Promise<void> {
    const live = this.lives.get(streamId);
    if (!live) throw new HchatError('E_STREAM_NOT_FOUND');
    this.lives.delete(streamId);
    clearTimeout(live.stallTimer);
    await live.source?.close();
    live.broadcast.stop();
    live.hops.clear();
    for (const v of live.viewers.values())
      v.conn.fs.send({ t: 'ev', ev: 'stream_ended', body: { streamId } });
    this.deps.log.write('live_end', {
      stream: streamId,
      frames: live.broadcast.framesSent,
      upload: live.broadcast.fanout.uploadBytes,
    });
    this.deps.events.emit('stream', { state: 'ended', ...live.info });
    this.deps.announce();
  }

  /** Handles a stream operation from an authenticated P2P connection. */
  async request(conn: MemberConn, op: StreamOp, raw: unknown): Promise<unknown> {
    const spec = STREAM_OPS[op];
    const parsed = (spec.req as z.ZodType).safeParse(raw ?? {});
    if (!parsed.success)
      throw new HchatError('E_BAD_REQUEST', `${op}: ${describeIssues(parsed.error)}`);
    switch (op) {
      case 'stream_list': {
        const streams: StreamInfo[] = [];
        for (const l of this.lives.values())
          if (await this.mayWatch(conn.who, l.info.channelId)) streams.push(this.trees.infoOf(l));
        return { streams };
      }
      case 'watch': {
        const b = parsed.data as Req<'watch'>;
        const live = this.lives.get(b.streamId);
        if (!live || !(await this.mayWatch(conn.who, live.info.channelId)))
          throw new HchatError('E_STREAM_NOT_FOUND');
        // The stream may have stopped, or the viewer gone, while rights were checked.
        if (this.lives.get(b.streamId) !== live || !conn.fs.isOpen)
          throw new HchatError('E_STREAM_NOT_FOUND');
        return this.trees.addViewer(
          live,
          conn,
          b.udpPort,
          b.hidden === true,
          b.p2pPort,
          b.candidates,
        );
      }
      case 'unwatch': {
        const b = parsed.data as Req<'unwatch'>;
        const live = this.lives.get(b.streamId);
        if (live) this.trees.removeViewer(live, conn.who.sessionId, conn);
        return {};
      }
      case 'stalled': {
        const b = parsed.data as Req<'stalled'>;
        const live = this.lives.get(b.streamId);
        const v = live?.viewers.get(conn.who.sessionId);
        if (!live || !v || v.conn !== conn) throw new HchatError('E_STREAM_NOT_FOUND');
        this.trees.limitStalls(live, v.id);
        this.deps.log.write('stream_stall', {
          stream: live.info.streamId,
          peer: conn.name,
          parent: this.trees.parentOf(live, v.id).username,
        });
        // A stalled relay starves its whole subtree, and all of it reports at once: collect the
        // reports briefly, then act only on reporters whose parent is not starving itself.
        live.stalls.add(v.id);
        live.stallTimer ??= setTimeout(
          () => this.trees.settleStalls(live),
          STREAM_LIMITS.stallSettleMs,
        );
        return { parent: this.trees.parentOf(live, v.id) };
      }
      case 'stream_key':
        return this.paths.grantKey(conn, (parsed.data as Req<'stream_key'>).streamId);
    }
  }

  /**
   * The channel's readers changed (it stopped allowing visitors, or a member left or was
   * removed): a viewer that may no longer watch it leaves its streams' trees, and gets no more
   * media (PROTOCOL.md §2.2, §5.2).
   */
  async keepWatchers(channelId: string): Promise<void> {
    this.memberCache.delete(channelId);
    for (const live of [...this.lives.values()]) {
      if (live.info.channelId !== channelId) continue;
      for (const v of [...live.viewers.values()])
        if (!(await this.mayWatch(v.conn.who, channelId)))
          this.trees.removeViewer(live, v.id, v.conn);
    }
  }

  /** A P2P connection closed: its viewers leave every tree. */
  detach(conn: MemberConn): void {
    for (const live of this.lives.values()) this.trees.removeViewer(live, conn.who.sessionId, conn);
  }

  /** The streamer checks rights itself, as strictly as a host: visitors only where allowed. */
  private async mayWatch(who: PeerIdentity, channelId: string): Promise<boolean> {
    const c = this.deps.channel(channelId);
    if (!c) return false;
    // Removed by the owner: not even a channel that allows visitors is watched by that account.
    if (who.role === 'user' && this.deps.removed(channelId, who.username)) return false;
    if (c.allowVisitors) return true;
    if (who.role !== 'user') return false;
    const name = who.username.toLowerCase();
    if (c.owner.toLowerCase() === name) return true;
    const hosted = this.deps.hostedMember(channelId, who.username);
    if (hosted !== undefined) return hosted;
    // The cached list is refreshed when old, or when a name is missing from it (a new member).
    let cached = this.memberCache.get(channelId);
    const age = cached ? Date.now() - cached.at : Infinity;
    if (age > MEMBERS_TTL_MS || (!cached!.members.has(name) && age > 1000)) {
      const members = await this.deps.members(channelId).catch(() => undefined);
      if (members) {
        cached = { at: Date.now(), members: new Set(members.map((m) => m.toLowerCase())) };
        this.memberCache.set(channelId, cached);
      }
    }
    return cached?.members.has(name) ?? false;
  }
}
