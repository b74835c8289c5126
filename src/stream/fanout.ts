/**
 * What every sending node of a stream does, streamer and relay alike: keep the recent datagrams
 * of each SSRC, send each new one once to every child, and answer children's NACKs from what it
 * kept. A relay that lost a packet lost it for its whole subtree too, so a packet it receives
 * for the first time (a repair included) goes to every child.
 */
import type { MediaSocket, Remote } from './media-socket.js';
import { RetransmitBuffer } from './sender.js';

/** A child as its feeder knows it. */
export interface Child extends Remote {
  username: string;
}

export class Fanout {
  private readonly rtx = new Map<number, RetransmitBuffer>();
  private kids: Child[] = [];
  /** Bytes this node sent for the stream (media and repairs). */
  uploadBytes = 0;
  /** Datagrams sent again on a child's NACK. */
  retransmits = 0;
  /** RTCP from addresses that are not our children: ignored. */
  foreign = 0;

  constructor(
    private readonly socket: MediaSocket,
    ssrcs: readonly number[],
  ) {
    for (const s of ssrcs) this.rtx.set(s >>> 0, new RetransmitBuffer());
  }

  get children(): readonly Child[] {
    return this.kids;
  }

  setChildren(children: Child[]): void {
    this.kids = children;
  }

  /** The child at this address, if it is one. */
  child(from: Remote): Child | undefined {
    return this.kids.find((c) => c.port === from.port && c.ip === from.ip);
  }

  /** Keeps a datagram and sends it to every child; false when it was already kept. */
  relay(ssrc: number, datagram: Buffer): boolean {
    const buf = this.rtx.get(ssrc);
    if (!buf || !buf.put(datagram.readUInt16BE(2), datagram)) return false;
    for (const c of this.kids) this.uploadBytes += this.socket.send(datagram, c);
    return true;
  }

  /** Answers a NACK from a child with whatever of it is still kept; returns the seqs not kept. */
  answer(ssrc: number, seqs: readonly number[], from: Remote): number[] {
    const buf = this.rtx.get(ssrc);
    if (!buf || !this.child(from)) {
      this.foreign++;
      return [];
    }
    const missing: number[] = [];
    for (const s of seqs) {
      const d = buf.get(s);
      if (!d) {
        missing.push(s);
        continue;
      }
      this.retransmits++;
      this.uploadBytes += this.socket.send(d, from);
    }
    return missing;
  }
}
