/**
 * The shared limits (limit-rows.ts) in the SQLite store. One process uses a `server.db`; each
 * counting method runs in one synchronous IMMEDIATE transaction (the write lock taken before the
 * read), so counting is atomic even with another connection on the same file.
 */
import crypto from 'node:crypto';
import type Database from 'better-sqlite3';
import {
  afterFailure,
  forgotten,
  toKnownPrefix,
  toLoginBudget,
  toRegistrationAt,
  type LimitSweep,
  type LoginBackoff,
  type LoginBudget,
  type LoginCharge,
  type RegistrationTicket,
} from './limit-rows.js';

/** The limit methods of SqliteServerStore, on its database. */
export class SqliteLimits {
  private readonly getBudget: Database.Statement<[string]>;
  private readonly putBudget: Database.Statement<[string, number, number, number]>;
  private readonly failTx: Database.Transaction<
    (charges: readonly LoginCharge[], now: number, o: LoginBackoff) => LoginBudget[]
  >;
  private readonly rememberTx: Database.Transaction<
    (account: string, prefix: string, now: number, keep: number) => void
  >;
  private readonly takeTx: Database.Transaction<
    (prefix: string, now: number, limit: number, windowMs: number) => RegistrationTicket
  >;

  constructor(private readonly db: Database.Database) {
    this.getBudget = db.prepare('SELECT * FROM login_budgets WHERE key = ?');
    this.putBudget = db.prepare(
      `INSERT INTO login_budgets (key, failures, locked_until, last_failure) VALUES (?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET failures = excluded.failures,
         locked_until = excluded.locked_until, last_failure = excluded.last_failure`,
    );
    this.failTx = db.transaction((charges: readonly LoginCharge[], now: number, o: LoginBackoff) =>
      charges.map(({ key, limit }) => {
        const row = this.getBudget.get(key);
        const b = afterFailure(
          row === undefined ? undefined : toLoginBudget(row)[1],
          limit,
          now,
          o,
        );
        this.putBudget.run(key, b.failures, b.lockedUntil, b.lastFailure);
        return b;
      }),
    );
    this.rememberTx = db.transaction(
      (account: string, prefix: string, now: number, keep: number) => {
        db.prepare(
          `INSERT INTO login_prefixes (account, prefix, last_at) VALUES (?, ?, ?)
         ON CONFLICT (account, prefix) DO UPDATE SET last_at = excluded.last_at`,
        ).run(account, prefix, now);
        db.prepare(
          `DELETE FROM login_prefixes WHERE account = ? AND prefix NOT IN
           (SELECT prefix FROM login_prefixes WHERE account = ? ORDER BY last_at DESC, prefix LIMIT ?)`,
        ).run(account, account, keep);
      },
    );
    this.takeTx = db.transaction((prefix: string, now: number, limit: number, windowMs: number) => {
      const times = db
        .prepare(
          'SELECT at FROM registration_attempts WHERE prefix = ? AND at > ? ORDER BY at LIMIT ?',
        )
        .all(prefix, now - windowMs, limit)
        .map(toRegistrationAt);
      if (times.length >= limit) return { retryAfterMs: times[0]! + windowMs - now };
      const id = crypto.randomUUID();
      db.prepare('INSERT INTO registration_attempts (id, prefix, at) VALUES (?, ?, ?)').run(
        id,
        prefix,
        now,
      );
      return { id };
    });
  }

  loginBudgets(
    keys: readonly string[],
    now: number,
    forgetAfterMs: number,
  ): Map<string, LoginBudget> {
    const out = new Map<string, LoginBudget>();
    for (const key of keys) {
      const row = this.getBudget.get(key);
      if (row === undefined) continue;
      const [, b] = toLoginBudget(row);
      if (!forgotten(b, now, forgetAfterMs)) out.set(key, b);
    }
    return out;
  }

  addLoginFailures(charges: readonly LoginCharge[], now: number, o: LoginBackoff): LoginBudget[] {
    return this.failTx.immediate(charges, now, o);
  }

  clearLoginBudget(key: string): void {
    this.db.prepare('DELETE FROM login_budgets WHERE key = ?').run(key);
  }

  knownLoginPrefixes(account: string): { prefix: string; lastAt: number }[] {
    return this.db
      .prepare('SELECT prefix, last_at FROM login_prefixes WHERE account = ? ORDER BY last_at DESC')
      .all(account)
      .map(toKnownPrefix);
  }

  rememberLoginPrefix(account: string, prefix: string, now: number, keep: number): void {
    this.rememberTx.immediate(account, prefix, now, keep);
  }

  takeRegistration(
    prefix: string,
    now: number,
    limit: number,
    windowMs: number,
  ): RegistrationTicket {
    return this.takeTx.immediate(prefix, now, limit, windowMs);
  }

  releaseRegistration(id: string): void {
    this.db.prepare('DELETE FROM registration_attempts WHERE id = ?').run(id);
  }

  sweepLimits(now: number, o: LimitSweep): number {
    const budgets = this.db
      .prepare(
        `DELETE FROM login_budgets WHERE key IN (SELECT key FROM login_budgets
           WHERE locked_until <= ? AND last_failure < ? LIMIT ?)`,
      )
      .run(now, now - o.forgetAfterMs, o.max).changes;
    const registrations = this.db
      .prepare(
        `DELETE FROM registration_attempts WHERE id IN (SELECT id FROM registration_attempts
           WHERE at <= ? LIMIT ?)`,
      )
      .run(now - o.registrationWindowMs, o.max).changes;
    return budgets + registrations;
  }
}
