/**
 * Consent to receive media (RFC 7675's idea, over RTCP APP): a sending node (streamer or relay)
 * sends media to a child's address only while that address answers its checks. A check carries a
 * fresh random nonce and goes to the address itself; the answer must come back from it with the
 * same nonce, so a forged source address cannot grant consent, and an address that never asked
 * for media (a third party named by a hostile streamer) gets only the small, rate-limited
 * checks. Pure logic: time is a parameter; the caller sends the checks.
 */
import { randomBytes } from 'node:crypto';
import { STREAM_LIMITS } from '../shared/limits.js';
import type { Remote } from './media-socket.js';

/** A check to send now. */
export interface ConsentCheck {
  to: Remote;
  nonce: Buffer;
}

interface State {
  to: Remote;
  /** Nonces of checks not answered yet (answers may be in flight while a retry goes out). */
  nonces: Buffer[];
  /** When the last valid answer came; undefined before the first. */
  grantedAt?: number;
  nextAt: number;
  /** The last check is unanswered: the next comes after `retryMs` (doubling), not a full period. */
  pending: boolean;
  retryMs: number;
}

/** Nonces kept per address: the last few checks, whose answers may still arrive. */
const NONCES_KEPT = 4;

const key = (r: Remote) => `${r.ip}:${r.port}`;

export class Consent {
  private readonly states = new Map<string, State>();
  /** Checks sent, answers that granted or refreshed consent, answers refused. */
  readonly stats = { checks: 0, answers: 0, refused: 0 };

  constructor(private readonly limits = STREAM_LIMITS) {}

  /** The addresses to keep consent with (a node's children); others are forgotten. */
  setAddresses(addrs: readonly Remote[], now: number): void {
    const keep = new Set(addrs.map(key));
    for (const k of this.states.keys()) if (!keep.has(k)) this.states.delete(k);
    for (const a of addrs)
      if (!this.states.has(key(a)))
        this.states.set(key(a), {
          to: { ip: a.ip, port: a.port },
          nonces: [],
          nextAt: now,
          pending: true,
          retryMs: this.limits.consentFirstRetryMs,
        });
  }

  /**
   * Checks this address again now, from the first retry delay: the checks sent before went
   * nowhere (its hop had no key yet), and backing off from them would only delay the stream.
   */
  retryNow(to: Remote, now: number): void {
    const s = this.states.get(key(to));
    if (!s || !s.pending) return;
    s.nextAt = now;
    s.retryMs = this.limits.consentFirstRetryMs;
  }

  /** Whether media may go to this address now. */
  fresh(to: Remote, now: number): boolean {
    const s = this.states.get(key(to));
    return s?.grantedAt !== undefined && now - s.grantedAt < this.limits.consentExpiryMs;
  }

  /** The checks due now, each with a new nonce. */
  due(now: number): ConsentCheck[] {
    const out: ConsentCheck[] = [];
    for (const s of this.states.values()) {
      if (s.nextAt > now) continue;
      const nonce = randomBytes(this.limits.consentNonceBytes);
      s.nonces.push(nonce);
      if (s.nonces.length > NONCES_KEPT) s.nonces.shift();
      if (s.pending) {
        s.nextAt = now + s.retryMs;
        s.retryMs = Math.min(s.retryMs * 2, this.limits.consentCheckMs);
      } else {
        s.nextAt = now + this.limits.consentCheckMs;
      }
      s.pending = true;
      this.stats.checks++;
      out.push({ to: s.to, nonce });
    }
    return out;
  }

  /**
   * An answer from `from` with this nonce: `granted` when it gives consent that was not fresh,
   * `refreshed` when it renews it, `refused` when no check to that address had that nonce.
   */
  answer(from: Remote, nonce: Uint8Array, now: number): 'granted' | 'refreshed' | 'refused' {
    const s = this.states.get(key(from));
    if (!s || !s.nonces.some((n) => n.length === nonce.length && n.equals(nonce))) {
      this.stats.refused++;
      return 'refused';
    }
    const was = this.fresh(from, now);
    s.nonces = [];
    s.grantedAt = now;
    s.pending = false;
    s.retryMs = this.limits.consentFirstRetryMs;
    s.nextAt = now + this.limits.consentCheckMs;
    this.stats.answers++;
    return was ? 'refreshed' : 'granted';
  }
}
