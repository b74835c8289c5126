/**
 * What one child may get again on its NACKs: each packet at most once per `nackDedupMs` (a
 * NACK repeated within a round trip asks for what is already on its way), and no more bytes than
 * its budget, a token bucket that fills by `retransmitBudgetRatio` of every media byte the child
 * is sent, up to `retransmitBurstBytes`. A viewer that NACKs everything, over and over, gets at
 * most that fraction of the stream on top of it. Pure logic: time is a parameter.
 */
import { STREAM_LIMITS } from '../shared/limits.js';

export class RetransmitBudget {
  private credit = 0;
  /** Packet key → when it was last sent again, oldest first. */
  private readonly sentAt = new Map<number, number>();

  constructor(private readonly limits = STREAM_LIMITS) {}

  /** The child was sent `bytes` of new media: it earns credit for repairs. */
  earn(bytes: number): void {
    this.credit = Math.min(
      this.limits.retransmitBurstBytes,
      this.credit + bytes * this.limits.retransmitBudgetRatio,
    );
  }

  /** Whether packet `key` of `bytes` may be sent again now; takes the credit when it may. */
  take(key: number, bytes: number, now: number): 'ok' | 'duplicate' | 'over_budget' {
    for (const [k, at] of this.sentAt) {
      if (now - at < this.limits.nackDedupMs) break;
      this.sentAt.delete(k);
    }
    if (this.sentAt.has(key)) return 'duplicate';
    if (bytes > this.credit) return 'over_budget';
    this.credit -= bytes;
    this.sentAt.set(key, now);
    return 'ok';
  }
}
