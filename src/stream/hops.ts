/**
 * The SRTP keys of every media hop a peer takes part in (docs/PROTOCOL.md §5.4). A hop is one
 * parent → child edge of one stream's relay tree, keyed over that pair's P2P link with two
 * master keys: `down` (parent → child SRTP and SRTCP) and `up` (child → parent SRTCP). The media
 * socket looks hops up here for every datagram, in and out:
 *
 *   out        by (remote address, stream SSRC): media and consent checks to a child, feedback
 *              and consent answers to the parent
 *   in, SRTP   by SSRC alone: the upstream hop of that stream. The source address is not trusted
 *              to pick a key (it can be forged), the tag decides
 *   in, SRTCP  the downstream hops at the source address (children are known by address; one
 *              per stream fed to it), then the upstream hop of the clear sender SSRC
 *
 * Pure bookkeeping, no socket. Refusals are counted on the stream's SrtpCounters, which every
 * hop of that stream shares, so that stats survive re-keying and re-parenting.
 */
import { z } from 'zod';
import { SrtpContext, encodeMasterKey, newMasterKey, decodeMasterKey } from './srtp.js';
import type { Remote } from './media-socket.js';

/** SRTP refusals of one stream on this peer (viewer and streamer stats). */
export const SrtpCounters = z.object({
  /** Packets whose tag did not verify: altered, or under no key or another key. */
  srtpAuthFailures: z.number().int(),
  /** Authentic packets seen before, or too far behind the replay window. */
  srtpReplays: z.number().int(),
  /** Datagrams too short for SRTP/SRTCP, or authentic but not RTP/RTCP. */
  srtpMalformed: z.number().int(),
});
export type SrtpCounters = z.infer<typeof SrtpCounters>;

export function newSrtpCounters(): SrtpCounters {
  return { srtpAuthFailures: 0, srtpReplays: 0, srtpMalformed: 0 };
}

/** The two master keys of a hop, as `stream_key` carries them (base64 of key ‖ salt). */
export interface HopKeys {
  down: string;
  up: string;
}

/** Fresh keys for a hop: the parent makes them each time a child asks. */
export function newHopKeys(): HopKeys {
  return { down: encodeMasterKey(newMasterKey()), up: encodeMasterKey(newMasterKey()) };
}

/** One side of a hop. */
export interface Hop {
  /** `downstream`: we feed `remote`; `upstream`: `remote` feeds us. */
  side: 'upstream' | 'downstream';
  remote: Remote;
  /** The stream's SSRCs (video, audio). */
  ssrcs: readonly number[];
  send: SrtpContext;
  recv: SrtpContext;
  counters: SrtpCounters;
}

/** Our side of a hop from its keys. Throws RangeError on keys of the wrong size. */
export function makeHop(
  side: Hop['side'],
  remote: Remote,
  ssrcs: readonly number[],
  keys: HopKeys,
  counters: SrtpCounters,
): Hop {
  const down = new SrtpContext(decodeMasterKey(keys.down));
  const up = new SrtpContext(decodeMasterKey(keys.up));
  return {
    side,
    remote: { ip: remote.ip, port: remote.port },
    ssrcs: ssrcs.map((s) => s >>> 0),
    send: side === 'downstream' ? down : up,
    recv: side === 'downstream' ? up : down,
    counters,
  };
}

const addr = (r: Remote) => `${r.ip}:${r.port}`;

export class HopTable {
  private readonly out = new Map<string, Hop>();
  private readonly downAt = new Map<string, Set<Hop>>();
  private readonly upOf = new Map<number, Hop>();

  /** Installs a hop, replacing any hop for the same remote and stream (and, upstream, stream). */
  add(hop: Hop): void {
    for (const s of hop.ssrcs) {
      const old = this.out.get(`${addr(hop.remote)}/${s}`);
      if (old) this.remove(old);
      if (hop.side === 'upstream') {
        const up = this.upOf.get(s);
        if (up) this.remove(up);
      }
    }
    for (const s of hop.ssrcs) {
      this.out.set(`${addr(hop.remote)}/${s}`, hop);
      if (hop.side === 'upstream') this.upOf.set(s, hop);
    }
    if (hop.side === 'downstream') {
      const k = addr(hop.remote);
      this.downAt.set(k, (this.downAt.get(k) ?? new Set()).add(hop));
    }
  }

  /** Removes a hop (no-op when it was replaced already). */
  remove(hop: Hop): void {
    for (const s of hop.ssrcs) {
      const k = `${addr(hop.remote)}/${s}`;
      if (this.out.get(k) === hop) this.out.delete(k);
      if (this.upOf.get(s) === hop) this.upOf.delete(s);
    }
    const set = this.downAt.get(addr(hop.remote));
    if (set?.delete(hop) && set.size === 0) this.downAt.delete(addr(hop.remote));
  }

  /** The hop that protects what we send to `to` for the stream of `ssrc`. */
  outbound(to: Remote, ssrc: number): Hop | undefined {
    return this.out.get(`${addr(to)}/${ssrc >>> 0}`);
  }

  /** The hop whose key an SRTP packet of this SSRC must verify under. */
  inboundRtp(ssrc: number): Hop | undefined {
    return this.upOf.get(ssrc >>> 0);
  }

  /** The hops an SRTCP packet from `from` with this clear sender SSRC may be under. */
  inboundRtcp(from: Remote, ssrc: number): Hop[] {
    const out = [...(this.downAt.get(addr(from)) ?? [])];
    const up = this.upOf.get(ssrc >>> 0);
    if (up) out.push(up);
    return out;
  }

  get size(): number {
    return new Set(this.out.values()).size;
  }
}
