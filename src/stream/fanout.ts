/**
 * What every sending node of a stream does, streamer and relay alike: keep the recent datagrams
 * of each SSRC, send each new one once to every child that consents, and answer children's NACKs
 * from what it kept, within each child's retransmit budget. A relay that lost a packet lost it
 * for its whole subtree too, so a packet it receives for the first time (a repair included) goes
 * to every child.
 *
 * Children are named over TCP (by the streamer's tree, or by the streamer to a relay), but media
 * goes to an address only while it answers consent checks (consent.ts): naming a third party's
 * address makes this node send it the checks, never the stream.
 */
import type { MediaSocket, Remote } from './media-socket.js';
import { RetransmitBuffer } from './sender.js';
import { Consent } from './consent.js';
import { RetransmitBudget } from './retransmit-budget.js';
import { CONSENT_ANSWER, CONSENT_CHECK, encodeApp, type RtcpPacket } from './rtcp.js';
import { STREAM_LIMITS } from '../shared/limits.js';

/** A child as its feeder knows it. */
export interface Child extends Remote {
  username: string;
}

/** How often due consent checks are looked for. */
const CONSENT_TICK_MS = 25;

const key = (r: Remote) => `${r.ip}:${r.port}`;

export class Fanout {
  private readonly rtx = new Map<number, RetransmitBuffer>();
  private readonly ssrcIndex = new Map<number, number>();
  private readonly consent = new Consent();
  private readonly budgets = new Map<string, RetransmitBudget>();
  private readonly timer: NodeJS.Timeout;
  private kids: Child[] = [];
  /** Bytes this node sent for the stream (media and repairs). */
  uploadBytes = 0;
  /** Datagrams sent again on a child's NACK. */
  retransmits = 0;
  /** NACKed packets not sent again: asked again within a round trip, or over the budget. */
  retransmitsRefused = 0;
  /** RTCP from addresses that are not our consenting children: ignored. */
  foreign = 0;

  /**
   * @param consentSsrc the SSRC consent checks carry (the stream's video SSRC), so that the
   *   child's socket routes them to its viewing of this stream.
   * @param consented a child answered its first check (or again after consent expired): it
   *   needs a keyframe.
   */
  constructor(
    private readonly socket: MediaSocket,
    ssrcs: readonly number[],
    private readonly consentSsrc = ssrcs[0]!,
    private readonly consented: (c: Child) => void = () => undefined,
  ) {
    ssrcs.forEach((s, i) => {
      this.rtx.set(s >>> 0, new RetransmitBuffer());
      this.ssrcIndex.set(s >>> 0, i);
    });
    this.timer = setInterval(() => this.checkConsent(Date.now()), CONSENT_TICK_MS);
    this.timer.unref();
  }

  get children(): readonly Child[] {
    return this.kids;
  }

  /** The children to feed (at most `maxChildren`); new addresses are checked for consent. */
  setChildren(children: Child[]): void {
    this.kids = children.slice(0, STREAM_LIMITS.maxChildren);
    const now = Date.now();
    this.consent.setAddresses(this.kids, now);
    const keep = new Set(this.kids.map(key));
    for (const k of this.budgets.keys()) if (!keep.has(k)) this.budgets.delete(k);
    for (const c of this.kids)
      if (!this.budgets.has(key(c))) this.budgets.set(key(c), new RetransmitBudget());
    this.checkConsent(now);
  }

  /** The hop to this child was just keyed: check its consent now rather than at the backoff. */
  recheck(to: Remote): void {
    const now = Date.now();
    this.consent.retryNow(to, now);
    this.checkConsent(now);
  }

  /** The child at this address, if it is one. */
  child(from: Remote): Child | undefined {
    return this.kids.find((c) => c.port === from.port && c.ip === from.ip);
  }

  /** The child at this address, if it is one and its consent is fresh. */
  consenting(from: Remote): Child | undefined {
    const c = this.child(from);
    return c && this.consent.fresh(c, Date.now()) ? c : undefined;
  }

  /** Keeps a datagram and sends it to every consenting child; false when it was already kept. */
  relay(ssrc: number, datagram: Buffer): boolean {
    const buf = this.rtx.get(ssrc);
    if (!buf || !buf.put(datagram.readUInt16BE(2), datagram)) return false;
    const now = Date.now();
    for (const c of this.kids) {
      if (!this.consent.fresh(c, now)) continue;
      this.uploadBytes += this.socket.send(datagram, c);
      this.budgets.get(key(c))?.earn(datagram.length);
    }
    return true;
  }

  /**
   * Answers a NACK from a consenting child with whatever of it is still kept, once per packet
   * per round trip and within the child's budget; returns the seqs not kept.
   */
  answer(ssrc: number, seqs: readonly number[], from: Remote): number[] {
    const buf = this.rtx.get(ssrc);
    const budget = this.budgets.get(key(from));
    if (!buf || !budget || !this.consenting(from)) {
      this.foreign++;
      return [];
    }
    const now = Date.now();
    const base = this.ssrcIndex.get(ssrc)! * 0x10000;
    const missing: number[] = [];
    for (const s of seqs) {
      const d = buf.get(s);
      if (!d) {
        missing.push(s);
        continue;
      }
      if (budget.take(base + s, d.length, now) !== 'ok') {
        this.retransmitsRefused++;
        continue;
      }
      this.retransmits++;
      this.uploadBytes += this.socket.send(d, from);
    }
    return missing;
  }

  /** An APP packet for this stream: a child's consent answer, possibly. */
  app(p: Extract<RtcpPacket, { type: 'app' }>, from: Remote): void {
    if (p.name !== CONSENT_ANSWER) return;
    const c = this.child(from);
    if (!c) {
      this.foreign++;
      return;
    }
    if (this.consent.answer(from, p.data, Date.now()) === 'granted') this.consented(c);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private checkConsent(now: number): void {
    for (const check of this.consent.due(now))
      this.socket.send(encodeApp(this.consentSsrc, CONSENT_CHECK, check.nonce), check.to);
  }
}
