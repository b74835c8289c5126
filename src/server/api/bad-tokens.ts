/**
 * The throttle of failed bearer tokens per address group (docs/SECURITY.md "The REST API v1 and
 * its tokens"). Every bearer check reads the store (one answer for every bad token, after the same
 * work: token-service.ts), so a flood of bad tokens is a flood of store reads. Each address group
 * (ADDRESS_LIMITS: an IPv4 /24, an IPv6 /64) has a budget of failures, `badTokenBurst` at once
 * and one more each `badTokenEveryMs`; while it is spent, the group's requests are refused
 * before the check, so they cost no read. Nothing tells a good token from a bad one without that
 * read: a good token from a throttled group waits too, as a right password does at a locked login
 * group (login-guard.ts).
 *
 * Failures are charged after their check, so checks that ran at once all count, past the budget
 * too: the group's wait grows by `badTokenEveryMs` for each, up to `badTokenMaxWaitMs`. Requests
 * sent all at once therefore buy no more reads over time than requests sent one by one.
 *
 * Held in this instance's memory, never in the store: what it bounds is this instance's reads of
 * the store, and a count in the store would cost a store round trip on every attempt. (Login
 * budgets are in the store because there the guesses are the danger and must be counted once
 * for the deployment; a token is 256 random bits, so a guess is hopeless and only the cost of a
 * flood matters.) With N instances a group makes at most N budgets of reads.
 */
import { HchatError } from '../../protocol/errors.js';
import { API_LIMITS } from '../../shared/limits.js';

/** Settings of a BadTokenThrottle (API_LIMITS by default). */
export interface BadTokenLimits {
  badTokenBurst: number;
  badTokenEveryMs: number;
  badTokenMaxWaitMs: number;
  badTokenGroups: number;
}

/** What the throttle has seen, for the metrics (`hchat_api_token_reads_total` and the next). */
export interface BadTokenCounts {
  /** Checks that read the store and found a live token. */
  valid: number;
  /** Checks that read the store and refused the token. */
  invalid: number;
  /** Requests refused before any check (no store read). */
  throttled: number;
}

/** The failed-token budgets of the address groups, at one server instance. */
export class BadTokenThrottle {
  readonly counts: BadTokenCounts = { valid: 0, invalid: 0, throttled: 0 };
  private readonly limits: BadTokenLimits;
  /** Failures a group may still make now (negative: owed), as of `at`; full ones are dropped. */
  private readonly groups = new Map<string, { credit: number; at: number }>();

  constructor(
    /** The address group of an address (the server's, as logins use: account-service.ts). */
    private readonly prefixOf: (ip: string) => string,
    limits: Partial<BadTokenLimits> = {},
    private readonly clock: () => number = Date.now,
  ) {
    this.limits = {
      badTokenBurst: limits.badTokenBurst ?? API_LIMITS.badTokenBurst,
      badTokenEveryMs: limits.badTokenEveryMs ?? API_LIMITS.badTokenEveryMs,
      badTokenMaxWaitMs: limits.badTokenMaxWaitMs ?? API_LIMITS.badTokenMaxWaitMs,
      badTokenGroups: limits.badTokenGroups ?? API_LIMITS.badTokenGroups,
    };
  }

  /**
   * Runs `check` (a bearer check that reads the store) for a request from `ip`, unless the
   * address group's budget is spent: then throws `E_TOO_MANY_BAD_TOKENS` with the wait, without
   * running it. A check that throws `E_TOKEN_INVALID` is charged to the group.
   */
  async guard<T>(ip: string, check: () => Promise<T>): Promise<T> {
    const group = this.prefixOf(ip);
    const wait = this.wait(group, this.clock());
    if (wait > 0) {
      this.counts.throttled++;
      const s = Math.ceil(wait / 1000);
      throw new HchatError(
        'E_TOO_MANY_BAD_TOKENS',
        `too many failed token attempts from this address; try again in ${s} s`,
        { retryAfterMs: wait },
      );
    }
    let value: T;
    try {
      value = await check();
    } catch (err) {
      if (err instanceof HchatError && err.code === 'E_TOKEN_INVALID') {
        this.counts.invalid++;
        this.failed(group, this.clock());
      }
      throw err;
    }
    this.counts.valid++;
    return value;
  }

  /** Address groups with failures remembered (tests). */
  get size(): number {
    return this.groups.size;
  }

  /** Milliseconds until `group` may be checked again; 0 when it may now. */
  private wait(group: string, now: number): number {
    const credit = this.credit(group, now);
    return credit >= 1 ? 0 : Math.ceil((1 - credit) * this.limits.badTokenEveryMs);
  }

  /** One failure of `group`, charged even past its budget (down to the longest wait). */
  private failed(group: string, now: number): void {
    const l = this.limits;
    const floor = 1 - l.badTokenMaxWaitMs / l.badTokenEveryMs;
    const credit = Math.max(floor, this.credit(group, now) - 1);
    // Moved to the end: the map's order is then that of the last failure, oldest first.
    this.groups.delete(group);
    if (this.groups.size >= l.badTokenGroups) this.forget(now);
    this.groups.set(group, { credit, at: now });
  }

  /** What `group` may spend now. */
  private credit(group: string, now: number): number {
    const g = this.groups.get(group);
    const burst = this.limits.badTokenBurst;
    if (!g) return burst;
    return Math.min(burst, g.credit + Math.max(0, now - g.at) / this.limits.badTokenEveryMs);
  }

  /**
   * Makes room: groups whose budget is whole again go, then the oldest, down to 99% of the
   * maximum, so that a full map is swept once per hundredth of it, not at every failure.
   */
  private forget(now: number): void {
    for (const group of this.groups.keys())
      if (this.credit(group, now) >= this.limits.badTokenBurst) this.groups.delete(group);
    const keep = Math.floor(this.limits.badTokenGroups * 0.99);
    for (const group of this.groups.keys()) {
      if (this.groups.size <= keep) break;
      this.groups.delete(group);
    }
  }
}
