/**
 * The media paths of a peer's streams (SPEC §8, §5.6): the addresses parents and children are
 * reached at across NATs, the media tunnels through the server's relay (ours to a parent, and
 * the ones children open to us), and the SRTP keys of each hop (live-keys.ts): granted to our
 * children, fetched from our parent whenever the streamer names another.
 */
import type net from 'node:net';
import { HchatError } from '../protocol/errors.js';
import type { StreamChild, StreamParent } from '../protocol/stream-ops.js';
import type { Remote } from '../stream/media-socket.js';
import { ROOT } from '../stream/relay-tree.js';
import type { MemberConn } from './host-service.js';
import { fetchHop } from './live-keys.js';
import type { Live, LiveDeps, Watch } from './live-state.js';
import { acrossNats, mediaAddress, needsTunnel, publicIp } from './media-address.js';

/** The media paths to and from this peer in its streams, sent and watched. */
export class MediaPaths {
  /** Media tunnels children opened to us through the relay (§5.6), by child session. */
  private readonly childTunnels = new Map<string, Remote>();

  constructor(
    private readonly deps: LiveDeps,
    private readonly lives: ReadonlyMap<string, Live>,
    private readonly watches: ReadonlyMap<string, Watch>,
    /** Tells a stream's relay tree of a child's new address (live-trees.ts). */
    private readonly trees: { syncTree(live: Live): void },
  ) {}

  /**
   * Keys for the hop from us to the caller, who must be our child in that stream: a direct
   * child of ours as the streamer (on its own watch link), or one the streamer named to us as a
   * relay. The session is the one the caller's handshake proved.
   */
  grantKey(conn: MemberConn, streamId: string): unknown {
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

  /**
   * A stall on a UDP hop between two different NATs: tunnel the same parent (once per parent)
   * rather than report it. False when that is not the case, or was tried already.
   */
  tryTunnel(streamId: string, w: Watch): boolean {
    const p = w.parent;
    if (w.tunnel || w.udpFailed === p.sessionId) return false;
    if (!acrossNats(this.deps.candidates(), p.candidates)) return false;
    w.udpFailed = p.sessionId;
    this.deps.log.write('media_udp_silent', { stream: streamId, parent: p.username });
    this.rekey(streamId, w);
    return true;
  }

  /** This peer's public address, when it is behind a NAT (§3.8). */
  publicIp(): string | undefined {
    return publicIp(this.deps.candidates());
  }

  /** A parent with the UDP address its media will come from as we see it (§5.6). */
  reachParent(p: StreamParent): StreamParent {
    const at = mediaAddress({ ip: p.ip, port: p.udpPort }, p.candidates, this.publicIp());
    return { ...p, ip: at.ip, udpPort: at.port };
  }

  /** A child with the UDP address its datagrams will come from as we see them (§5.6). */
  reachChild(c: StreamChild): StreamChild {
    const at = mediaAddress({ ip: c.ip, port: c.udpPort }, c.candidates, this.publicIp());
    return { ...c, ip: at.ip, udpPort: at.port };
  }

  /** Where a child's media goes: through the tunnel it opened to us, if any, else `at`. */
  childAt(sessionId: string, at: Remote): Remote {
    return this.childTunnels.get(sessionId) ?? at;
  }

  /** A child as we feed it: its address replaced by its tunnel's when it opened one. */
  tunnelled(c: StreamChild): StreamChild {
    const t = this.childTunnels.get(c.sessionId);
    return t ? { ...c, ip: t.ip, udpPort: t.port } : c;
  }

  /** A relay's children, at the addresses we feed them at, to its fan-out and hop keys. */
  feedChildren(w: Watch): void {
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
      if (live && this.lives.get(streamId) === live) this.trees.syncTree(live);
      if (w && this.watches.get(streamId) === w) this.feedChildren(w);
    });
    this.childTunnels.set(sid, remote);
    if (old) this.deps.socket.closeTunnel(old);
    if (live) this.trees.syncTree(live);
    else if (w) this.feedChildren(w);
    this.deps.log.write('media_tunnel', { stream: streamId, peer: sid, side: 'parent' });
  }

  /** The streamer named another parent: media is taken from it once its hop is keyed. */
  newParent(streamId: string, w: Watch, p: StreamParent): void {
    if (this.watches.get(streamId) !== w) return;
    w.parent = p;
    w.viewing.setParent({ username: p.username, ip: p.ip, port: p.udpPort });
    this.rekey(streamId, w);
  }

  /** Fetches the keys of the hop from the current parent (a newer parent cancels it). */
  rekey(streamId: string, w: Watch): void {
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
}
