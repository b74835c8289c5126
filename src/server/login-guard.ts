/**
 * Login throttling that an attacker cannot turn into a lockout of someone else.
 *
 * Three budgets, each with exponential backoff once spent (Synapse's `rc_login` has the same
 * three: per address, per account, per failed attempt):
 * - per (account, address prefix): a guesser at one account from one place;
 * - per address prefix, across accounts: one place guessing at many accounts;
 * - per account, counted and applied ONLY for address prefixes that never logged in as that
 *   account: a distributed guesser. A user logging in from a prefix they logged in from before is
 *   never locked out by strangers.
 *
 * An attempt is counted BEFORE the password hash runs: `begin` reserves a failure in every budget
 * (so 60 pipelined guesses cannot all be evaluated before the first failure is recorded), and
 * `succeed` / `fail` settle it. At most `inFlightPerKey` checks run at once per budget.
 */
import { HchatError } from '../protocol/errors.js';
import { LOGIN_LIMITS, withDefaults } from '../shared/limits.js';

/** Settings of a LoginGuard (LOGIN_LIMITS by default). */
export type LoginGuardLimits = { -readonly [K in keyof typeof LOGIN_LIMITS]: number };

interface Budget {
  failures: number;
  inFlight: number;
  lockedUntil: number;
  lastFailure: number;
}

/** A reserved attempt: settle it with `succeed` or `fail`, exactly once. */
export interface LoginAttempt {
  readonly account: string;
  readonly prefix: string;
  /** The keys charged (the account-wide one only for unknown prefixes). */
  readonly keys: readonly { key: string; limit: number }[];
  settled: boolean;
}

/** The throttle of `login`. */
export class LoginGuard {
  private readonly limits: LoginGuardLimits;
  private readonly budgets = new Map<string, Budget>();
  /** Per account (lower case): the address prefixes it logged in from, most recent last. */
  private readonly known = new Map<string, string[]>();

  constructor(limits: Partial<LoginGuardLimits> = {}) {
    this.limits = withDefaults<LoginGuardLimits>(LOGIN_LIMITS, limits);
  }

  /**
   * Reserves one attempt of `account` from `prefix`, or throws E_RATE_LIMITED (with
   * `retryAfterMs`) when a budget is locked or has as many checks running as it may.
   */
  begin(account: string, prefix: string, now = Date.now()): LoginAttempt {
    const acct = account.toLowerCase();
    const l = this.limits;
    const keys = [
      { key: `pair|${acct}|${prefix}`, limit: l.failuresPerAccountAddress },
      { key: `addr|${prefix}`, limit: l.failuresPerAddress },
    ];
    if (!this.isKnown(acct, prefix))
      keys.push({ key: `acct|${acct}`, limit: l.failuresPerAccountUnknownAddresses });
    let wait = 0;
    for (const { key, limit } of keys) {
      const b = this.current(key, now);
      if (!b) continue;
      if (b.lockedUntil > now) wait = Math.max(wait, b.lockedUntil - now);
      // Past the limit, one probe at a time (each failure doubles the lock); below it, the checks
      // in flight count as failures already, so no more run than the budget has left.
      else if (
        b.inFlight > 0 &&
        (b.failures + b.inFlight >= limit || b.inFlight >= l.inFlightPerKey)
      )
        wait = Math.max(wait, 1000);
    }
    if (wait > 0) {
      const s = Math.ceil(wait / 1000);
      throw new HchatError('E_RATE_LIMITED', `too many login attempts; try again in ${s} s`, {
        retryAfterMs: wait,
      });
    }
    for (const { key } of keys) this.budget(key, now).inFlight++;
    return { account: acct, prefix, keys, settled: false };
  }

  /** The password was right: the attempt is not a failure; the prefix becomes a known one. */
  succeed(a: LoginAttempt): void {
    if (a.settled) return;
    a.settled = true;
    for (const { key } of a.keys) {
      const b = this.budgets.get(key);
      if (b) b.inFlight = Math.max(0, b.inFlight - 1);
    }
    this.budgets.delete(`pair|${a.account}|${a.prefix}`);
    this.remember(a.account, a.prefix);
  }

  /** The password was wrong (or the user unknown): one failure in each budget charged. */
  fail(a: LoginAttempt, now = Date.now()): void {
    if (a.settled) return;
    a.settled = true;
    for (const { key, limit } of a.keys) {
      const b = this.budget(key, now);
      b.inFlight = Math.max(0, b.inFlight - 1);
      b.failures++;
      b.lastFailure = now;
      if (b.failures >= limit) {
        const lock = this.limits.backoffBaseMs * 2 ** Math.min(30, b.failures - limit);
        b.lockedUntil = now + Math.min(this.limits.backoffMaxMs, lock);
      }
    }
  }

  /** The check could not run (server busy, shutdown): the attempt counts for nothing. */
  cancel(a: LoginAttempt): void {
    if (a.settled) return;
    a.settled = true;
    for (const { key } of a.keys) {
      const b = this.budgets.get(key);
      if (b) b.inFlight = Math.max(0, b.inFlight - 1);
    }
  }

  /** True when `account` logged in from `prefix` before (since this process started). */
  isKnown(account: string, prefix: string): boolean {
    return this.known.get(account.toLowerCase())?.includes(prefix) ?? false;
  }

  /** Budgets tracked (tests, health). */
  get size(): number {
    return this.budgets.size;
  }

  private remember(acct: string, prefix: string): void {
    const list = this.known.get(acct) ?? [];
    this.known.delete(acct); // re-inserted last: the map's order is least recently used first
    const i = list.indexOf(prefix);
    if (i >= 0) list.splice(i, 1);
    list.push(prefix);
    if (list.length > this.limits.knownPrefixesPerAccount) list.shift();
    this.known.set(acct, list);
    if (this.known.size > this.limits.knownAccounts)
      this.known.delete(this.known.keys().next().value!);
  }

  /** The budget of `key`, or undefined when it has none (or it was forgotten). */
  private current(key: string, now: number): Budget | undefined {
    const b = this.budgets.get(key);
    if (
      b &&
      b.inFlight === 0 &&
      b.lockedUntil <= now &&
      now - b.lastFailure > this.limits.forgetAfterMs
    ) {
      this.budgets.delete(key);
      return undefined;
    }
    return b;
  }

  private budget(key: string, now: number): Budget {
    let b = this.current(key, now);
    if (!b) {
      b = { failures: 0, inFlight: 0, lockedUntil: 0, lastFailure: now };
      this.budgets.set(key, b);
      if (this.budgets.size > this.limits.maxTrackedKeys) this.sweep(now);
    }
    return b;
  }

  /** Drops forgotten budgets; if still too many, the oldest unlocked ones. */
  private sweep(now: number): void {
    for (const key of this.budgets.keys()) this.current(key, now);
    for (const [key, b] of this.budgets) {
      if (this.budgets.size <= this.limits.maxTrackedKeys * 0.9) break;
      if (b.inFlight === 0 && b.lockedUntil <= now) this.budgets.delete(key);
    }
  }
}
