/**
 * The limits several server instances share through their store (docs/SECURITY.md "Several
 * server instances"): login throttle budgets, the address prefixes each account logged in from,
 * and the registrations of each address prefix. The rule that moves a budget on a failure lives
 * here once, so that both stores apply it alike inside their transaction; rows read back are
 * parsed like any other input.
 */
import { z } from 'zod';

/** A login throttle budget as stored: failures counted, the lock, the last failure's time. */
export interface LoginBudget {
  failures: number;
  lockedUntil: number;
  lastFailure: number;
}

/** One budget to charge with a failure, and the failures after which it locks. */
export interface LoginCharge {
  key: string;
  limit: number;
}

/** How failures past a limit lock, and when an idle budget is forgotten (LOGIN_LIMITS). */
export interface LoginBackoff {
  backoffBaseMs: number;
  backoffMaxMs: number;
  forgetAfterMs: number;
}

/** What `sweepLimits` deletes: rows past these ages, at most `max` of each kind per call. */
export interface LimitSweep {
  forgetAfterMs: number;
  registrationWindowMs: number;
  max: number;
}

/** The answer of `takeRegistration`: the reservation's id, or how long until one is free. */
export type RegistrationTicket = { id: string } | { retryAfterMs: number };

/** True when a budget holds nothing a fresh one would not: unlocked and idle long enough. */
export function forgotten(b: LoginBudget, now: number, forgetAfterMs: number): boolean {
  return b.lockedUntil <= now && now - b.lastFailure > forgetAfterMs;
}

/**
 * The budget after one more failure at `now`: a forgotten (or absent) one starts again at 1;
 * from `limit` failures on it locks for backoffBaseMs, doubled by each further failure, at most
 * backoffMaxMs (a lock never shortens).
 */
export function afterFailure(
  b: LoginBudget | undefined,
  limit: number,
  now: number,
  o: LoginBackoff,
): LoginBudget {
  const fresh = !b || forgotten(b, now, o.forgetAfterMs);
  const failures = fresh ? 1 : b.failures + 1;
  let lockedUntil = fresh ? 0 : b.lockedUntil;
  if (failures >= limit) {
    const lock = o.backoffBaseMs * 2 ** Math.min(30, failures - limit);
    lockedUntil = Math.max(lockedUntil, now + Math.min(o.backoffMaxMs, lock));
  }
  return { failures, lockedUntil, lastFailure: now };
}

/** An integer column: a number, or PostgreSQL's BIGINT as a decimal string; a safe integer. */
const Int = z.union([z.number(), z.string().regex(/^-?\d{1,16}$/)]).transform((v, ctx) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) ctx.addIssue({ code: 'custom', message: 'not a safe integer' });
  return n;
});

const LoginBudgetRow = z.object({
  key: z.string(),
  failures: Int.pipe(z.number().int().nonnegative()),
  locked_until: Int,
  last_failure: Int,
});

/** A `login_budgets` row as its key and budget (throws on a row that does not fit). */
export function toLoginBudget(row: unknown): [string, LoginBudget] {
  const r = LoginBudgetRow.parse(row);
  return [
    r.key,
    { failures: r.failures, lockedUntil: r.locked_until, lastFailure: r.last_failure },
  ];
}

const KnownPrefixRow = z.object({ prefix: z.string(), last_at: Int });

/** A `login_prefixes` row: the prefix and when a login from it was last recorded. */
export function toKnownPrefix(row: unknown): { prefix: string; lastAt: number } {
  const r = KnownPrefixRow.parse(row);
  return { prefix: r.prefix, lastAt: r.last_at };
}

const RegistrationRow = z.object({ at: Int });

/** A `registration_attempts` row's time. */
export function toRegistrationAt(row: unknown): number {
  return RegistrationRow.parse(row).at;
}
