/**
 * SRTP keying of the media hops of a peer's streams (docs/PROTOCOL.md §5.4), both ends: as a
 * parent (streamer or relay) it makes fresh keys for a child that asks over a P2P link whose
 * handshake proved the child's session, and forgets a hop once the child is no longer its child;
 * as a child it asks its current parent for keys over a P2P link to that parent (the streamer's
 * link, or a new link to the relay, whose certificate must name the relay's user and session).
 * Key material travels only inside those links: never to the server, never in the connection log.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { HchatError } from '../protocol/errors.js';
import type { TrackerEntry } from '../protocol/common.js';
import type { StreamParent } from '../protocol/stream-ops.js';
import type { ConnectionLog } from '../shared/connlog.js';
import type { MediaSocket, Remote } from '../stream/media-socket.js';
import { SRTP_SUITE } from '../stream/srtp.js';
import { makeHop, newHopKeys, type Hop, type SrtpCounters } from '../stream/hops.js';
import type { HostLink } from './host-link.js';

/** Attempts at a relay that does not know us as its child yet (its news may lag ours). */
const KEY_ATTEMPTS = 5;
const KEY_RETRY_MS = 150;

/** The hops a parent keeps for one stream: by child session. */
export class ChildHops {
  private readonly hops = new Map<string, Hop>();

  constructor(
    private readonly socket: MediaSocket,
    private readonly ssrcs: readonly number[],
    private readonly counters: SrtpCounters,
  ) {}

  /** Fresh keys for the child session at `remote`; they replace the hop's previous keys. */
  grant(sessionId: string, remote: Remote) {
    const keys = newHopKeys();
    const hop = makeHop('downstream', remote, this.ssrcs, keys, this.counters);
    const old = this.hops.get(sessionId);
    if (old) this.socket.hops.remove(old);
    this.hops.set(sessionId, hop);
    this.socket.hops.add(hop);
    return { suite: SRTP_SUITE, ...keys } as const;
  }

  /** Forgets the hops of sessions that are no longer children at the same address. */
  keep(children: ReadonlyArray<{ sessionId: string; ip: string; port: number }>): void {
    const now = new Map(children.map((c) => [c.sessionId, `${c.ip}:${c.port}`]));
    for (const [sid, hop] of this.hops)
      if (now.get(sid) !== `${hop.remote.ip}:${hop.remote.port}`) {
        this.socket.hops.remove(hop);
        this.hops.delete(sid);
      }
  }

  clear(): void {
    this.keep([]);
  }
}

/** What a child needs to key its hop from its parent. */
export interface KeyFetch {
  socket: MediaSocket;
  log: ConnectionLog;
  streamId: string;
  ssrcs: readonly number[];
  counters: SrtpCounters;
  /** The link to the streamer (for a child of the streamer). */
  streamerLink: HostLink;
  /** A new P2P link to a relay, from the entry made of its StreamParent. */
  dial(entry: TrackerEntry): HostLink | undefined;
  /** False once this fetch is stale (another parent since, or the watch ended). */
  current(): boolean;
}

/**
 * Asks `parent` for the hop's keys and returns our side of the hop, or undefined when the
 * parent could not be asked or the fetch went stale (the stall report then finds another).
 */
export async function fetchHop(f: KeyFetch, parent: StreamParent): Promise<Hop | undefined> {
  const fromStreamer = parent.sessionId === f.streamerLink.entry.sessionId;
  const link = fromStreamer
    ? f.streamerLink
    : f.dial({
        username: parent.username,
        role: parent.role,
        ip: parent.ip,
        port: parent.port,
        udpPort: parent.udpPort,
        sessionId: parent.sessionId,
        status: 'online',
        hosts: [],
        live: [],
      });
  if (!link) return undefined;
  try {
    if (!fromStreamer) await link.start();
    for (let attempt = 1; ; attempt++) {
      try {
        const keys = await link.request('stream_key', { streamId: f.streamId }, 3000);
        if (!f.current()) return undefined;
        f.log.write('stream_keyed', { stream: f.streamId, parent: parent.username });
        return makeHop(
          'upstream',
          { ip: parent.ip, port: parent.udpPort },
          f.ssrcs,
          keys,
          f.counters,
        );
      } catch (err) {
        if (!(err instanceof HchatError)) throw err;
        if (err.code !== 'E_FORBIDDEN' || attempt >= KEY_ATTEMPTS || !f.current()) throw err;
        await sleep(KEY_RETRY_MS * attempt);
      }
    }
  } catch (err) {
    if (!(err instanceof HchatError)) throw err;
    f.log.write('stream_key_failed', {
      stream: f.streamId,
      parent: parent.username,
      code: err.code,
    });
    return undefined;
  } finally {
    if (!fromStreamer) link.stop();
  }
}
