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
 * The budgets and the prefixes each account logged in from are kept in the server store, so every
 * server instance of a deployment counts the same failures (docs/SECURITY.md "Several server
 * instances"); the store counts a failure atomically (limit-rows.ts `afterFailure`). A successful
 * login writes only what changed: the pair's budget if it had failures, the prefix if it is new
 * (or its record older than `knownRefreshMs`).
 *
 * An attempt is counted BEFORE the password hash runs: `begin` reserves it in this instance's
 * memory in every budget (so 60 pipelined guesses cannot all be evaluated before the first
 * failure is recorded), and `succeed` / `fail` settle it. At most `inFlightPerKey` checks run at
 * once per budget and instance; up to `queuedPerKey` more wait their turn (honest users behind one
 * address logging in at the same moment are let in one after another, not refused), the rest are
 * refused.
 */
import { HchatError } from '../protocol/errors.js';
import { LOGIN_LIMITS, withDefaults } from '../shared/limits.js';
import type { LoginBudget, ServerStore } from '../store/server-store.js';

/** Settings of a LoginGuard (LOGIN_LIMITS by default). */
export type LoginGuardLimits = { -readonly [K in keyof typeof LOGIN_LIMITS]: number };

/** What this instance holds of a budget while attempts on it are in progress here. */
interface Local {
  /** Attempts reserved here and not settled. */
  inFlight: number;
  /** `begin`s reading the store. */
  reading: number;
  /** `begin`s waiting for a check in progress here to end (woken by `release`). */
  waiters: (() => void)[];
  /** The newest budget a failure here wrote, and the tick it was written at. */
  written?: { budget: LoginBudget; tick: number };
}

/** A reserved attempt: settle it with `succeed` or `fail`, exactly once. */
export interface LoginAttempt {
  readonly account: string;
  readonly prefix: string;
  /** The keys charged (the account-wide one only for unknown prefixes). */
  readonly keys: readonly { key: string; limit: number }[];
  /** The pair's budget had failures when the attempt began (a success clears it). */
  readonly pairFailed: boolean;
  /** The prefix needs recording on success (unknown, or its record is old). */
  readonly rememberPrefix: boolean;
  settled: boolean;
}

/** The throttle of `login`. */
export class LoginGuard {
  private readonly limits: LoginGuardLimits;
  private readonly local = new Map<string, Local>();
  /** Counts events, so that a `begin` knows which writes here its store read may have missed. */
  private tick = 0;

  constructor(
    private readonly store: ServerStore,
    limits: Partial<LoginGuardLimits> = {},
  ) {
    this.limits = withDefaults<LoginGuardLimits>(LOGIN_LIMITS, limits);
  }

  /**
   * Reserves one attempt of `account` from `prefix`, or throws E_RATE_LIMITED (with
   * `retryAfterMs`) when a budget is locked or has as many checks running as it may.
   */
  async begin(account: string, prefix: string, now = Date.now()): Promise<LoginAttempt> {
    const acct = account.toLowerCase();
    const l = this.limits;
    const pair = `pair|${acct}|${prefix}`;
    const all = [
      { key: pair, limit: l.failuresPerAccountAddress },
      { key: `addr|${prefix}`, limit: l.failuresPerAddress },
      { key: `acct|${acct}`, limit: l.failuresPerAccountUnknownAddresses },
    ];
    const started = ++this.tick;
    for (const { key } of all) this.entry(key).reading++;
    let budgets: Map<string, LoginBudget>;
    let known: { prefix: string; lastAt: number } | undefined;
    try {
      const [b, prefixes] = await Promise.all([
        this.store.loginBudgets(
          all.map((k) => k.key),
          now,
          l.forgetAfterMs,
        ),
        this.store.knownLoginPrefixes(acct),
      ]);
      budgets = b;
      known = prefixes.find((p) => p.prefix === prefix);
    } finally {
      for (const { key } of all) this.release(key, 'reading');
    }
    // From here to the reservation, one turn: nothing else here runs in between.
    const keys = known ? all.slice(0, 2) : all;
    let wait = 0;
    let busy: string | undefined;
    for (const { key, limit } of keys) {
      const local = this.local.get(key);
      const since = local?.written && local.written.tick > started ? local.written : undefined;
      const b = newest(budgets.get(key), since);
      const inFlight = local?.inFlight ?? 0;
      if (b && b.lockedUntil > now) wait = Math.max(wait, b.lockedUntil - now);
      // Past the limit, one probe at a time (each failure doubles the lock); below it, the checks
      // in flight count as failures already, so no more run than the budget has left.
      else if (
        inFlight > 0 &&
        ((b?.failures ?? 0) + inFlight >= limit || inFlight >= l.inFlightPerKey)
      )
        busy ??= key;
    }
    if (wait === 0 && busy !== undefined && this.local.get(busy)!.waiters.length < l.queuedPerKey) {
      // Its turn comes when a check in progress here ends: then everything is read again.
      await new Promise<void>((resolve) => this.local.get(busy)!.waiters.push(resolve));
      return this.begin(account, prefix, Date.now());
    }
    if (busy !== undefined) wait = Math.max(wait, 1000);
    if (wait > 0) {
      const s = Math.ceil(wait / 1000);
      throw new HchatError('E_RATE_LIMITED', `too many login attempts; try again in ${s} s`, {
        retryAfterMs: wait,
      });
    }
    for (const { key } of keys) this.entry(key).inFlight++;
    return {
      account: acct,
      prefix,
      keys,
      pairFailed: budgets.has(pair),
      rememberPrefix: !known || now - known.lastAt > l.knownRefreshMs,
      settled: false,
    };
  }

  /** The password was right: the attempt is not a failure; the prefix becomes a known one. */
  async succeed(a: LoginAttempt, now = Date.now()): Promise<void> {
    if (a.settled) return;
    a.settled = true;
    try {
      await Promise.all([
        a.pairFailed && this.store.clearLoginBudget(`pair|${a.account}|${a.prefix}`),
        a.rememberPrefix &&
          this.store.rememberLoginPrefix(
            a.account,
            a.prefix,
            now,
            this.limits.knownPrefixesPerAccount,
          ),
      ]);
    } finally {
      for (const { key } of a.keys) this.release(key, 'inFlight');
    }
  }

  /** The password was wrong (or the user unknown): one failure in each budget charged. */
  async fail(a: LoginAttempt, now = Date.now()): Promise<void> {
    if (a.settled) return;
    a.settled = true;
    try {
      const after = await this.store.addLoginFailures(a.keys, now, this.limits);
      // Kept until no `begin` that read before this write is left to decide.
      a.keys.forEach(({ key }, i) => {
        const local = this.local.get(key);
        if (local) local.written = { budget: after[i]!, tick: ++this.tick };
      });
    } finally {
      // Released after the write: a check here never misses a failure in progress here.
      for (const { key } of a.keys) this.release(key, 'inFlight');
    }
  }

  /** The check could not run (server busy, shutdown): the attempt counts for nothing. */
  cancel(a: LoginAttempt): void {
    if (a.settled) return;
    a.settled = true;
    for (const { key } of a.keys) this.release(key, 'inFlight');
  }

  /** Budgets with attempts in progress at this instance (tests, health). */
  get size(): number {
    return this.local.size;
  }

  private entry(key: string): Local {
    let e = this.local.get(key);
    if (!e) this.local.set(key, (e = { inFlight: 0, reading: 0, waiters: [] }));
    return e;
  }

  private release(key: string, what: 'inFlight' | 'reading'): void {
    const e = this.local.get(key);
    if (!e) return;
    e[what] = Math.max(0, e[what] - 1);
    // Every waiter looks again (one that cannot go yet waits for the next check to end: there is
    // one in progress then, or it is refused), so none is left waiting with nothing in progress.
    const waiters = what === 'inFlight' ? e.waiters.splice(0) : [];
    if (e.inFlight === 0 && e.reading === 0 && e.waiters.length === 0) this.local.delete(key);
    for (const wake of waiters) wake();
  }
}

/** The later of a budget read from the store and one written here after that read began. */
function newest(
  read: LoginBudget | undefined,
  written: { budget: LoginBudget } | undefined,
): LoginBudget | undefined {
  if (!written) return read;
  if (!read) return written.budget;
  return {
    failures: Math.max(read.failures, written.budget.failures),
    lockedUntil: Math.max(read.lockedUntil, written.budget.lockedUntil),
    lastFailure: Math.max(read.lastFailure, written.budget.lastFailure),
  };
}
