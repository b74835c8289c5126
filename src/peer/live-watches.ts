/**
 * The viewer's side of a peer's livestreams (SPEC §8): the streams it may watch (asked of their
 * streamers, counted only where their tracker entries announce them), watching one (joining its
 * relay tree at the streamer, following the parent and children it names), and stopping.
 */
import { HchatError } from '../protocol/errors.js';
import type { StreamChild, StreamInfo, StreamParent } from '../protocol/stream-ops.js';
import type { TrackerEntry } from '../protocol/common.js';
import { Viewing } from '../stream/viewing.js';
import { newSrtpCounters } from '../stream/hops.js';
import type { HostLink } from './host-link.js';
import { ChildHops } from './live-keys.js';
import type { Live, LiveDeps, Watch } from './live-state.js';
import type { MediaPaths } from './live-paths.js';
import type { RelayTrees } from './live-trees.js';
import { mediaCandidates } from './media-address.js';
import type { Stream } from './api-live-shapes.js';

/** The streams this peer watches. */
export class Watches {
  constructor(
    private readonly deps: LiveDeps,
    private readonly lives: ReadonlyMap<string, Live>,
    private readonly watches: Map<string, Watch>,
    private readonly trees: RelayTrees,
    private readonly paths: MediaPaths,
  ) {}

  /** Live streams this user may watch: ours, and those of peers in our channels. */
  async list(): Promise<Stream[]> {
    const out: Stream[] = [];
    for (const l of this.lives.values())
      out.push({ ...this.trees.infoOf(l), watching: false, mine: true });
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
    const parent = this.paths.reachParent(answer.parent);
    const viewing = new Viewing(this.deps.socket, {
      videoSsrc: stream.videoSsrc,
      audioSsrc: stream.audioSsrc,
      parent: { username: parent.username, ip: parent.ip, port: parent.udpPort },
      stalled: () => {
        // Across NATs a silent hop may be a firewall that lets no UDP through (to anyone but
        // the server): the same parent through a media tunnel first, then the streamer.
        if (this.paths.tryTunnel(streamId, w)) return;
        link
          .request('stalled', { streamId })
          .then(({ parent: p }) => this.paths.newParent(streamId, w, this.paths.reachParent(p)))
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
    this.paths.rekey(streamId, w);
    link.on('event', (name: string, body: any) => {
      if (body?.streamId !== streamId) return;
      if (name === 'stream_parent') {
        const p = this.paths.reachParent(body.parent as StreamParent);
        this.paths.newParent(streamId, w, p);
        this.deps.log.write('stream_parent', {
          stream: streamId,
          parent: p.username,
          udp: `${p.ip}:${p.udpPort}`,
        });
      } else if (name === 'stream_children') {
        w.children = (body.children as StreamChild[]).map((c) => this.paths.reachChild(c));
        this.paths.feedChildren(w);
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

  /** Stops watching. */
  async unwatch(streamId: string): Promise<void> {
    const w = this.watches.get(streamId);
    if (!w) throw new HchatError('E_STREAM_NOT_FOUND', 'not watching that stream');
    await w.link.request('unwatch', { streamId }, 3000).catch(() => undefined);
    this.endWatch(streamId, 'unwatched');
  }

  endWatch(streamId: string, reason: string): void {
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

  readonly streamerLinks = new Map<string, HostLink>();

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
