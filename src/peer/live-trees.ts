/**
 * The relay trees of the streams a peer sends (SPEC §8): viewers added and removed, stalls
 * reported and settled, and every node told its parent and children when they change.
 */
import { HchatError } from '../protocol/errors.js';
import type { Candidate } from '../protocol/common.js';
import type { StreamChild, StreamInfo, StreamParent } from '../protocol/stream-ops.js';
import { STREAM_LIMITS } from '../shared/limits.js';
import { ROOT } from '../stream/relay-tree.js';
import type { MemberConn } from './host-service.js';
import type { Live, LiveDeps } from './live-state.js';
import type { MediaPaths } from './live-paths.js';
import { mediaAddress, mediaCandidates } from './media-address.js';

/** The relay trees of one peer's live streams. */
export class RelayTrees {
  constructor(
    private readonly deps: LiveDeps,
    private readonly lives: ReadonlyMap<string, Live>,
    private readonly paths: MediaPaths,
  ) {}

  /** `stalled` at most once per interval per viewer session: E_RATE_LIMITED otherwise. */
  limitStalls(live: Live, id: string): void {
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
  settleStalls(live: Live): void {
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

  addViewer(
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
    const at = mediaAddress({ ip: conn.ip, port: udpPort }, candidates, this.paths.publicIp());
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

  removeViewer(live: Live, id: string, conn?: MemberConn): void {
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
  syncTree(live: Live): void {
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
    const direct = childrenOf(ROOT).map((c) => this.paths.tunnelled(c));
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

  parentOf(live: Live, id: string): StreamParent {
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

  infoOf(live: Live): StreamInfo {
    return { ...live.info, viewers: live.viewers.size };
  }
}
