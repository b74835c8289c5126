/**
 * Livestreams on a peer (SPEC §8): the control plane over the P2P TCP link and the local API,
 * around the media engines of stream/. As a streamer it keeps each live stream's relay tree and
 * tells relays whom to feed; as a viewer it connects to the streamer, receives from the parent
 * the streamer named, and relays to the children it is given. The live streams a peer has are
 * announced in its tracker entry (`live`), so viewers know whom to ask; everything else (rights,
 * the tree, media) is between peers. Media never reaches the central server. Every hop of the
 * tree is SRTP under its own keys, which the child fetches from its parent (live-keys.ts).
 */
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { HchatError } from '../protocol/errors.js';
import type { Candidate, Channel, TrackerEntry } from '../protocol/common.js';
import {
  STREAM_OPS,
  type StreamChild,
  type StreamInfo,
  type StreamParent,
  type StreamSource,
} from '../protocol/stream-ops.js';
import { describeIssues } from '../protocol/rpc.js';
import { STREAM_LIMITS } from '../shared/limits.js';
import type { ConnectionLog } from '../shared/connlog.js';
import type net from 'node:net';
import type { MediaSocket, Remote } from '../stream/media-socket.js';
import { Broadcast } from '../stream/broadcast.js';
import { Viewing } from '../stream/viewing.js';
import { ROOT, RelayTree } from '../stream/relay-tree.js';
import { RtpIngest, SyntheticSource, type FrameSource } from '../stream/sources.js';
import { RtpExport, exportSdp } from '../stream/export.js';
import { SRTP_SUITE, SrtpContext, encodeMasterKey, newMasterKey } from '../stream/srtp.js';
import type { MediaFrame } from '../stream/sender.js';
import type { HostLink } from './host-link.js';
import type { EventHub } from './event-hub.js';
import type { MemberConn } from './host-service.js';
import type { PeerIdentity } from './p2p.js';
import { ChildHops, fetchHop } from './live-keys.js';
import {
  acrossNats,
  mediaAddress,
  mediaCandidates,
  needsTunnel,
  publicIp,
} from './media-address.js';
import type { NewStream, Stream, StreamStats } from './api-live-shapes.js';
import { newSrtpCounters, type Hop, type SrtpCounters } from '../stream/hops.js';

type StreamOp = keyof typeof STREAM_OPS;
type Req<K extends StreamOp> = z.infer<(typeof STREAM_OPS)[K]['req']>;

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

/** `POST /api/channels/:id/streams` settings. */
export interface GoLive {
  source: StreamSource;
  fps: number;
  bitrateKbps: number;
  /** An `rtp` source takes SRTP under a key made here (answered once, as `srtp`). */
  srtp?: boolean;
}

interface Viewer {
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
interface Live {
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
interface Watch {
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

const MEMBERS_TTL_MS = 10_000;

export class LiveService {
  private readonly lives = new Map<string, Live>();
  private readonly watches = new Map<string, Watch>();
  private readonly memberCache = new Map<string, { at: number; members: Set<string> }>();
  /** Media tunnels children opened to us through the relay (§5.6), by child session. */
  private readonly childTunnels = new Map<string, Remote>();

  constructor(private readonly deps: LiveDeps) {}

  /** Streams this peer has live, for its tracker entry. */
  announced(): Array<{ streamId: string; channelId: string }> {
    return [...this.lives.values()].map((l) => ({
      streamId: l.info.streamId,
      channelId: l.info.channelId,
    }));
  }

  // ---- streamer ------------------------------------------------------------------------------

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
          if (await this.mayWatch(conn.who, l.info.channelId)) streams.push(this.infoOf(l));
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
        return this.addViewer(live, conn, b.udpPort, b.hidden === true, b.p2pPort, b.candidates);
      }
      case 'unwatch': {
        const b = parsed.data as Req<'unwatch'>;
        const live = this.lives.get(b.streamId);
        if (live) this.removeViewer(live, conn.who.sessionId, conn);
        return {};
      }
      case 'stalled': {
        const b = parsed.data as Req<'stalled'>;
        const live = this.lives.get(b.streamId);
        const v = live?.viewers.get(conn.who.sessionId);
        if (!live || !v || v.conn !== conn) throw new HchatError('E_STREAM_NOT_FOUND');
        this.limitStalls(live, v.id);
        this.deps.log.write('stream_stall', {
          stream: live.info.streamId,
          peer: conn.name,
          parent: this.parentOf(live, v.id).username,
        });
        // A stalled relay starves its whole subtree, and all of it reports at once: collect the
        // reports briefly, then act only on reporters whose parent is not starving itself.
        live.stalls.add(v.id);
        live.stallTimer ??= setTimeout(() => this.settleStalls(live), STREAM_LIMITS.stallSettleMs);
        return { parent: this.parentOf(live, v.id) };
      }
      case 'stream_key':
        return this.grantKey(conn, (parsed.data as Req<'stream_key'>).streamId);
    }
  }

  /**
   * Keys for the hop from us to the caller, who must be our child in that stream: a direct
   * child of ours as the streamer (on its own watch link), or one the streamer named to us as a
   * relay. The session is the one the caller's handshake proved.
   */
  private grantKey(conn: MemberConn, streamId: string): unknown {
    const sid = conn.who.sessionId;
    const live = this.lives.get(streamId);
    const w = this.watches.get(streamId);
    let granted;
    if (live) {
      const v = live.viewers.get(sid);
      if (v && v.conn === conn && live.tree.parentOf(sid) === ROOT) {
        const at = this.childAt(sid, { ip: v.ip, port: v.udpPort });
        granted = live.hops.grant(sid, at);
        live.broadcast.fanout.recheck(at);
      }
    } else if (w) {
      const c = w.children.find((k) => k.sessionId === sid);
      if (c) {
        const at = this.childAt(sid, { ip: c.ip, port: c.udpPort });
        granted = w.hops.grant(sid, at);
        w.viewing.fanout.recheck(at);
      }
    } else {
      throw new HchatError('E_STREAM_NOT_FOUND');
    }
    if (!granted)
      throw new HchatError('E_FORBIDDEN', 'keys of a hop go only to a child of this peer');
    this.deps.log.write('stream_key', { stream: streamId, peer: conn.name });
    return granted;
  }

  /** `stalled` at most once per interval per viewer session: E_RATE_LIMITED otherwise. */
  private limitStalls(live: Live, id: string): void {
    const now = Date.now();
    const every = STREAM_LIMITS.stallReportIntervalMs;
    const last = live.lastStall.get(id);
    if (last !== undefined && now - last < every)
      throw new HchatError(
        'E_RATE_LIMITED',
        `stalled at most once per ${every} ms; retry in ${every - (now - last)} ms`,
      );
    for (const [k, at] of live.lastStall) if (now - at >= every) live.lastStall.delete(k);
    live.lastStall.set(id, now);
  }

  /**
   * A report moves the reporter alone; its parent is blamed (leaf-only, all its children moved)
   * only when at least `stallMinReporters` distinct children, and a majority of them, reported
   * it in the same settle window, so that one viewer cannot demote honest relays.
   */
  private settleStalls(live: Live): void {
    live.stallTimer = undefined;
    const reporters = live.stalls;
    live.stalls = new Set();
    if (!this.lives.has(live.info.streamId)) return;
    const byParent = new Map<string, string[]>();
    for (const id of reporters) {
      const parent = live.tree.parentOf(id);
      if (parent === undefined || parent === ROOT || reporters.has(parent)) continue;
      byParent.set(parent, [...(byParent.get(parent) ?? []), id]);
    }
    for (const [parent, ids] of byParent) {
      const children = live.tree.childrenOf(parent).length;
      const needed = Math.max(STREAM_LIMITS.stallMinReporters, Math.floor(children / 2) + 1);
      if (ids.length >= needed) {
        live.tree.stalled(ids[0]!);
        this.deps.log.write('relay_stalled', {
          stream: live.info.streamId,
          peer: live.viewers.get(parent)?.conn.name,
          reporters: ids.length,
        });
      } else {
        for (const id of ids) live.tree.move(id);
      }
    }
    this.syncTree(live);
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
        if (!(await this.mayWatch(v.conn.who, channelId))) this.removeViewer(live, v.id, v.conn);
    }
  }

  /** A P2P connection closed: its viewers leave every tree. */
  detach(conn: MemberConn): void {
    for (const live of this.lives.values()) this.removeViewer(live, conn.who.sessionId, conn);
  }

  private addViewer(
    live: Live,
    conn: MemberConn,
    udpPort: number,
    hidden: boolean,
    p2pPort: number | undefined,
    candidates: Candidate[] | undefined,
  ): unknown {
    const id = conn.who.sessionId;
    this.removeViewer(live, id);
    // An invisible viewer is fed by the streamer itself and never named to anyone else. So is a
    // viewer that gave no P2P port: its children could not ask it for their keys.
    const leaf = hidden || p2pPort === undefined;
    // Where its datagrams will come from as we see them: its public address when it is behind
    // another NAT (§5.6), else the address its link came from.
    const at = mediaAddress({ ip: conn.ip, port: udpPort }, candidates, this.publicIp());
    live.viewers.set(id, {
      id,
      conn,
      username: conn.who.username,
      ip: at.ip,
      udpPort: at.port,
      p2pPort: leaf ? undefined : p2pPort,
      ...(candidates?.length ? { candidates: mediaCandidates(candidates) } : {}),
    });
    const parent = leaf ? live.tree.addHidden(id) : live.tree.add(id);
    this.deps.log.write('watch', {
      stream: live.info.streamId,
      peer: conn.name,
      udp: `${conn.ip}:${udpPort}`,
      parent: parent === ROOT ? 'streamer' : live.viewers.get(parent)?.username,
      depth: live.tree.depthOf(id),
    });
    live.told.set(id, { parent, children: '' });
    this.syncTree(live);
    live.broadcast.requestKeyframe();
    return { stream: this.infoOf(live), parent: this.parentOf(live, id) };
  }

  private removeViewer(live: Live, id: string, conn?: MemberConn): void {
    const v = live.viewers.get(id);
    if (!v || (conn && v.conn !== conn)) return;
    live.viewers.delete(id);
    live.told.delete(id);
    const moves = live.tree.remove(id);
    this.deps.log.write('unwatch', {
      stream: live.info.streamId,
      peer: v.conn.name,
      moved: moves.length,
    });
    this.syncTree(live);
  }

  /** Tells every node of the tree what changed for it: its parent, its children. */
  private syncTree(live: Live): void {
    const childrenOf = (id: string): StreamChild[] =>
      live.tree.childrenOf(id).map((c) => {
        const v = live.viewers.get(c)!;
        return {
          username: v.username,
          sessionId: v.id,
          ip: v.ip,
          udpPort: v.udpPort,
          ...(v.candidates ? { candidates: v.candidates } : {}),
        };
      });
    const direct = childrenOf(ROOT).map((c) => this.tunnelled(c));
    live.broadcast.fanout.setChildren(
      direct.map((c) => ({ username: c.username, ip: c.ip, port: c.udpPort })),
    );
    live.hops.keep(direct.map((c) => ({ sessionId: c.sessionId, ip: c.ip, port: c.udpPort })));
    const streamId = live.info.streamId;
    for (const v of live.viewers.values()) {
      const told = live.told.get(v.id) ?? { parent: '', children: '' };
      const parent = live.tree.parentOf(v.id)!;
      if (told.parent !== parent) {
        v.conn.fs.send({
          t: 'ev',
          ev: 'stream_parent',
          body: { streamId, parent: this.parentOf(live, v.id) },
        });
      }
      const kids = childrenOf(v.id);
      const key = kids.map((k) => `${k.sessionId}@${k.ip}:${k.udpPort}`).join();
      if (told.children !== key) {
        v.conn.fs.send({ t: 'ev', ev: 'stream_children', body: { streamId, children: kids } });
      }
      live.told.set(v.id, { parent, children: key });
    }
  }

  private parentOf(live: Live, id: string): StreamParent {
    const p = live.tree.parentOf(id);
    if (p === undefined || p === ROOT) {
      const a = this.deps.advertised();
      const sessionId = this.deps.me()?.sessionId ?? '';
      const candidates = mediaCandidates(this.deps.candidates());
      return {
        username: live.info.streamer,
        ip: a.ip,
        udpPort: a.udpPort,
        port: a.port,
        sessionId,
        role: 'user',
        ...(candidates.length ? { candidates } : {}),
      };
    }
    // Only viewers that gave their P2P port are ever placed under (RelayTree: not leaves).
    const v = live.viewers.get(p)!;
    return {
      username: v.username,
      ip: v.ip,
      udpPort: v.udpPort,
      port: v.p2pPort!,
      sessionId: v.id,
      role: v.conn.who.role,
      ...(v.candidates ? { candidates: v.candidates } : {}),
    };
  }

  private infoOf(live: Live): StreamInfo {
    return { ...live.info, viewers: live.viewers.size };
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

  // ---- viewer --------------------------------------------------------------------------------

  /** Live streams this user may watch: ours, and those of peers in our channels. */
  async list(): Promise<Stream[]> {
    const out: Stream[] = [];
    for (const l of this.lives.values())
      out.push({ ...this.infoOf(l), watching: false, mine: true });
    const me = this.deps.me();
    const streamers = this.deps
      .entries()
      .filter(
        (e) =>
          e.sessionId !== me?.sessionId &&
          e.live.some((l) => this.deps.channel(l.channelId) !== undefined),
      );
    const asked = await Promise.all(streamers.map((e) => this.askStreamer(e)));
    streamers.forEach((e, i) => {
      for (const s of asked[i]!) {
        // The streamer's answer is its own word: a stream counts only where its tracker entry
        // (kept by the server to channels it belongs to) announces it, and it is the stream of
        // the user the link proved, whatever the answer names (PROTOCOL.md §5.1).
        const announced = e.live.some(
          (l) => l.streamId === s.streamId && l.channelId === s.channelId,
        );
        if (!announced || !this.deps.channel(s.channelId)) continue;
        out.push({
          ...s,
          streamer: e.username,
          watching: this.watches.has(s.streamId),
          mine: false,
        });
      }
    });
    return out;
  }

  /**
   * A tracker entry changed: announces streams that went live or ended in channels of ours as
   * `stream` events (the details come from the streamer, on `GET /api/streams`).
   */
  trackerChanged(before: TrackerEntry | undefined, after: TrackerEntry | undefined): void {
    const was = new Set(before?.live.map((l) => l.streamId));
    const is = new Set(after?.live.map((l) => l.streamId));
    const streamer = (after ?? before)?.username;
    for (const l of after?.live ?? [])
      if (!was.has(l.streamId) && this.deps.channel(l.channelId))
        this.deps.events.emit('stream', { state: 'live', ...l, streamer, mine: false });
    for (const l of before?.live ?? [])
      if (!is.has(l.streamId) && this.deps.channel(l.channelId))
        this.deps.events.emit('stream', { state: 'ended', ...l, streamer, mine: false });
  }

  /**
   * Starts watching: joins the stream's relay tree at its streamer, `streamer` when given. A
   * stream id is the streamer's word: another user may announce the same one (PROTOCOL.md §5.1),
   * so when several users' entries announce it the streamer must be named, and only that user's
   * entry is dialled.
   */
  async watch(streamId: string, streamer?: string): Promise<{ streamId: string; parent: string }> {
    const have = this.watches.get(streamId);
    if (have) {
      if (streamer !== undefined && have.info.streamer.toLowerCase() !== streamer.toLowerCase())
        throw new HchatError(
          'E_BAD_REQUEST',
          `this peer watches stream ${streamId} of ${have.info.streamer}: stop watching it first`,
        );
      return { streamId, parent: have.viewing.parent.username };
    }
    if (this.lives.has(streamId))
      throw new HchatError('E_BAD_REQUEST', 'this peer is the streamer of that stream');
    const announcing = this.deps
      .entries()
      .filter(
        (e) =>
          e.live.some((l) => l.streamId === streamId) &&
          (streamer === undefined || e.username.toLowerCase() === streamer.toLowerCase()),
      );
    const users = [...new Set(announcing.map((e) => e.username))];
    if (users.length > 1)
      throw new HchatError(
        'E_BAD_REQUEST',
        `several users announce stream ${streamId} (${users.join(', ')}): name the streamer, ` +
          '{"streamer": "<username>"}',
      );
    const entry = announcing[0];
    const link = entry && this.deps.dial(entry);
    if (!link) throw new HchatError('E_STREAM_NOT_FOUND');
    await link.start();
    let answer;
    try {
      const hidden = this.deps.hidden();
      answer = await link.request(
        'watch',
        {
          streamId,
          udpPort: this.deps.socket.port,
          hidden,
          // An invisible peer's P2P port is closed: it cannot relay.
          p2pPort: hidden ? undefined : this.deps.advertised().port,
          candidates: mediaCandidates(this.deps.candidates()),
        },
        5000,
      );
    } catch (err) {
      link.stop();
      throw err;
    }
    // The stream is the one asked for, of the user whose entry announced it (PROTOCOL.md §5.1).
    const stream = { ...answer.stream, streamId, streamer: entry.username };
    const parent = this.reachParent(answer.parent);
    const viewing = new Viewing(this.deps.socket, {
      videoSsrc: stream.videoSsrc,
      audioSsrc: stream.audioSsrc,
      parent: { username: parent.username, ip: parent.ip, port: parent.udpPort },
      stalled: () => {
        // Across NATs a silent hop may be a firewall that lets no UDP through (to anyone but
        // the server): the same parent through a media tunnel first, then the streamer.
        if (this.tryTunnel(streamId, w)) return;
        link
          .request('stalled', { streamId })
          .then(({ parent: p }) => this.newParent(streamId, w, this.reachParent(p)))
          .catch(() => undefined);
      },
    });
    const srtp = newSrtpCounters();
    const ssrcs = [stream.videoSsrc, stream.audioSsrc];
    const w: Watch = {
      info: stream,
      link,
      viewing,
      exports: [],
      parent,
      keyGen: 0,
      children: [],
      hops: new ChildHops(this.deps.socket, ssrcs, srtp),
      srtp,
    };
    this.watches.set(streamId, w);
    this.rekey(streamId, w);
    link.on('event', (name: string, body: any) => {
      if (body?.streamId !== streamId) return;
      if (name === 'stream_parent') {
        const p = this.reachParent(body.parent as StreamParent);
        this.newParent(streamId, w, p);
        this.deps.log.write('stream_parent', {
          stream: streamId,
          parent: p.username,
          udp: `${p.ip}:${p.udpPort}`,
        });
      } else if (name === 'stream_children') {
        w.children = (body.children as StreamChild[]).map((c) => this.reachChild(c));
        this.feedChildren(w);
        this.deps.log.write('relay', { stream: streamId, children: w.children.length });
      } else if (name === 'stream_ended') {
        this.endWatch(streamId, 'ended');
      }
    });
    link.on('down', () => this.endWatch(streamId, 'streamer_gone'));
    this.deps.log.write('watching', {
      stream: streamId,
      from: link.name,
      parent: `${parent.username}@${parent.ip}:${parent.udpPort}`,
    });
    this.deps.events.emit('stream', { state: 'watching', ...stream, watching: true, mine: false });
    return { streamId, parent: parent.username };
  }

  /**
   * A stall on a UDP hop between two different NATs: tunnel the same parent (once per parent)
   * rather than report it. False when that is not the case, or was tried already.
   */
  private tryTunnel(streamId: string, w: Watch): boolean {
    const p = w.parent;
    if (w.tunnel || w.udpFailed === p.sessionId) return false;
    if (!acrossNats(this.deps.candidates(), p.candidates)) return false;
    w.udpFailed = p.sessionId;
    this.deps.log.write('media_udp_silent', { stream: streamId, parent: p.username });
    this.rekey(streamId, w);
    return true;
  }

  /** This peer's public address, when it is behind a NAT (§3.8). */
  private publicIp(): string | undefined {
    return publicIp(this.deps.candidates());
  }

  /** A parent with the UDP address its media will come from as we see it (§5.6). */
  private reachParent(p: StreamParent): StreamParent {
    const at = mediaAddress({ ip: p.ip, port: p.udpPort }, p.candidates, this.publicIp());
    return { ...p, ip: at.ip, udpPort: at.port };
  }

  /** A child with the UDP address its datagrams will come from as we see them (§5.6). */
  private reachChild(c: StreamChild): StreamChild {
    const at = mediaAddress({ ip: c.ip, port: c.udpPort }, c.candidates, this.publicIp());
    return { ...c, ip: at.ip, udpPort: at.port };
  }

  /** Where a child's media goes: through the tunnel it opened to us, if any, else `at`. */
  private childAt(sessionId: string, at: Remote): Remote {
    return this.childTunnels.get(sessionId) ?? at;
  }

  /** A child as we feed it: its address replaced by its tunnel's when it opened one. */
  private tunnelled(c: StreamChild): StreamChild {
    const t = this.childTunnels.get(c.sessionId);
    return t ? { ...c, ip: t.ip, udpPort: t.port } : c;
  }

  /** A relay's children, at the addresses we feed them at, to its fan-out and hop keys. */
  private feedChildren(w: Watch): void {
    const kids = w.children.map((c) => this.tunnelled(c));
    w.hops.keep(kids.map((c) => ({ sessionId: c.sessionId, ip: c.ip, port: c.udpPort })));
    w.viewing.fanout.setChildren(
      kids.map((c) => ({ username: c.username, ip: c.ip, port: c.udpPort })),
    );
  }

  /**
   * A media tunnel a child opened to us through the server's relay (§5.6): taken when that
   * session is our child in that stream (as the streamer, or as its relay), else closed. Its
   * hop is keyed by the tunnel from the child's next `stream_key` on.
   */
  acceptTunnel(from: { sessionId: string }, streamId: string, socket: net.Socket): void {
    const sid = from.sessionId;
    const live = this.lives.get(streamId);
    const w = this.watches.get(streamId);
    const ours = live
      ? live.viewers.has(sid) && live.tree.parentOf(sid) === ROOT
      : w?.children.some((c) => c.sessionId === sid);
    if (!ours) return void socket.destroy();
    const old = this.childTunnels.get(sid);
    const remote = this.deps.socket.tunnel(socket, () => {
      if (this.childTunnels.get(sid) !== remote) return;
      this.childTunnels.delete(sid);
      // Back to the child's own address; the tree or its next stream_key sets it right.
      if (live && this.lives.get(streamId) === live) this.syncTree(live);
      if (w && this.watches.get(streamId) === w) this.feedChildren(w);
    });
    this.childTunnels.set(sid, remote);
    if (old) this.deps.socket.closeTunnel(old);
    if (live) this.syncTree(live);
    else if (w) this.feedChildren(w);
    this.deps.log.write('media_tunnel', { stream: streamId, peer: sid, side: 'parent' });
  }

  /** The streamer named another parent: media is taken from it once its hop is keyed. */
  private newParent(streamId: string, w: Watch, p: StreamParent): void {
    if (this.watches.get(streamId) !== w) return;
    w.parent = p;
    w.viewing.setParent({ username: p.username, ip: p.ip, port: p.udpPort });
    this.rekey(streamId, w);
  }

  /** Fetches the keys of the hop from the current parent (a newer parent cancels it). */
  private rekey(streamId: string, w: Watch): void {
    const gen = ++w.keyGen;
    const current = () => this.watches.get(streamId) === w && w.keyGen === gen;
    if (w.tunnel) {
      this.deps.socket.closeTunnel(w.tunnel);
      w.tunnel = undefined;
    }
    void this.reachable(streamId, w, current).then(
      (parent) => parent && this.fetchKeys(streamId, w, parent, current),
    );
  }

  /**
   * The parent as media will reach it: itself, or (when UDP cannot cross the NATs between us,
   * §5.6) a media tunnel to it through the server's relay; undefined when that failed or went
   * stale (the stall logic then asks the streamer for another parent).
   */
  private async reachable(
    streamId: string,
    w: Watch,
    current: () => boolean,
  ): Promise<StreamParent | undefined> {
    const parent = w.parent;
    const own = this.deps.candidates();
    if (w.udpFailed !== parent.sessionId && !needsTunnel(own, parent.candidates)) return parent;
    const name = `${parent.username}@${parent.ip}:${parent.udpPort}`;
    let socket: net.Socket;
    try {
      socket = await this.deps.mediaRelay(parent, streamId, name);
    } catch {
      return undefined; // logged by the relay dial
    }
    if (!current()) return void socket.destroy();
    const remote = this.deps.socket.tunnel(socket, () => {
      if (w.tunnel === remote && current())
        this.deps.log.write('media_tunnel_closed', { stream: streamId });
    });
    w.tunnel = remote;
    const tunnelled = { ...parent, ip: remote.ip, udpPort: remote.port };
    w.viewing.setParent({ username: parent.username, ip: remote.ip, port: remote.port });
    this.deps.log.write('media_tunnel', {
      stream: streamId,
      peer: parent.username,
      side: 'child',
      udp: `${remote.ip}:${remote.port}`,
    });
    return tunnelled;
  }

  private fetchKeys(
    streamId: string,
    w: Watch,
    parent: StreamParent,
    current: () => boolean,
  ): void {
    void fetchHop(
      {
        socket: this.deps.socket,
        log: this.deps.log,
        streamId,
        ssrcs: [w.info.videoSsrc, w.info.audioSsrc],
        counters: w.srtp,
        streamerLink: w.link,
        // A relay behind a NAT is reached as its tracker entry says (punched or relayed, §3.9,
        // §3.10); the entry made of its StreamParent only when we cannot see its own.
        dial: (e) =>
          this.deps.dial(this.deps.entries().find((x) => x.sessionId === e.sessionId) ?? e),
        current,
      },
      parent,
    ).then((hop) => {
      if (!hop || !current()) return;
      this.deps.socket.hops.add(hop); // replaces the hop from the previous parent
      w.upHop = hop;
      w.viewing.requestKeyframe();
    });
  }

  /** Stops watching. */
  async unwatch(streamId: string): Promise<void> {
    const w = this.watches.get(streamId);
    if (!w) throw new HchatError('E_STREAM_NOT_FOUND', 'not watching that stream');
    await w.link.request('unwatch', { streamId }, 3000).catch(() => undefined);
    this.endWatch(streamId, 'unwatched');
  }

  private endWatch(streamId: string, reason: string): void {
    const w = this.watches.get(streamId);
    if (!w) return;
    this.watches.delete(streamId);
    const s = w.viewing.stats();
    w.viewing.stop();
    w.hops.clear();
    if (w.upHop) this.deps.socket.hops.remove(w.upHop);
    if (w.tunnel) this.deps.socket.closeTunnel(w.tunnel);
    w.link.removeAllListeners();
    w.link.stop();
    this.deps.log.write('watch_end', {
      stream: streamId,
      reason,
      frames: s.framesComplete,
      dropped: s.framesDropped,
      recovered: s.packetsRecovered,
    });
    this.deps.events.emit('stream', { state: 'ended', ...w.info, reason });
  }

  /** The viewing engine of a watched stream (for the browser sink). */
  viewing(streamId: string): Viewing | undefined {
    return this.watches.get(streamId)?.viewing;
  }

  // ---- both ----------------------------------------------------------------------------------

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
    for (const id of [...this.watches.keys()]) this.endWatch(id, 'closed');
    for (const id of [...this.lives.keys()]) await this.stop(id);
    for (const l of this.streamerLinks.values()) l.stop();
    this.streamerLinks.clear();
  }

  private readonly streamerLinks = new Map<string, HostLink>();

  /** Asks a streamer for its streams (one link per streamer, kept for later questions). */
  private async askStreamer(e: TrackerEntry): Promise<StreamInfo[]> {
    const key = `${e.sessionId}@${e.ip}:${e.port}`;
    let link = this.streamerLinks.get(key);
    if (!link || !link.connected) {
      link?.stop();
      link = this.deps.dial(e);
      if (!link) return [];
      this.streamerLinks.set(key, link);
      link.on('down', () => {
        if (this.streamerLinks.get(key) === link) this.streamerLinks.delete(key);
      });
      await link.start();
    }
    try {
      return (await link.request('stream_list', {}, 3000)).streams;
    } catch {
      return [];
    }
  }
}
