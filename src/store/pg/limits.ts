/**
 * The shared limits (../limit-rows.ts) in PostgreSQL, where several server instances count at
 * once. A failure locks each budget's row (an upsert that returns it, keys in sorted order so
 * that two instances never wait on each other crosswise) before it moves it; a registration
 * takes a transaction-scoped advisory lock on its address prefix before it counts. So two
 * instances counting at once cannot both pass a limit.
 */
import crypto from 'node:crypto';
import type pg from 'pg';
import type { Transaction } from './pool.js';
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
} from '../limit-rows.js';

/** The advisory lock class of registration budgets (the key is the prefix's hashtext). */
const REGISTRATION_LOCK_CLASS = 0x68636872; // "hchr"

/** The limit methods of PostgresServerStore, on its pool. */
export class PgLimits {
  constructor(
    private readonly pool: pg.Pool,
    private readonly transaction: Transaction,
  ) {}

  async loginBudgets(
    keys: readonly string[],
    now: number,
    forgetAfterMs: number,
  ): Promise<Map<string, LoginBudget>> {
    const r = await this.pool.query('SELECT * FROM login_budgets WHERE key = ANY($1::text[])', [
      [...keys],
    ]);
    const out = new Map<string, LoginBudget>();
    for (const row of r.rows) {
      const [key, b] = toLoginBudget(row);
      if (!forgotten(b, now, forgetAfterMs)) out.set(key, b);
    }
    return out;
  }

  async addLoginFailures(
    charges: readonly LoginCharge[],
    now: number,
    o: LoginBackoff,
  ): Promise<LoginBudget[]> {
    const sorted = [...charges].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const after = new Map<string, LoginBudget>();
    await this.transaction(async (client) => {
      for (const { key, limit } of sorted) {
        // Inserts an empty budget or locks the existing row, returning it either way.
        const r = await client.query(
          `INSERT INTO login_budgets (key, failures, locked_until, last_failure)
           VALUES ($1, 0, 0, $2)
           ON CONFLICT (key) DO UPDATE SET key = excluded.key
           RETURNING *`,
          [key, now],
        );
        const [, old] = toLoginBudget(r.rows[0]);
        const b = afterFailure(old.failures === 0 ? undefined : old, limit, now, o);
        await client.query(
          'UPDATE login_budgets SET failures = $2, locked_until = $3, last_failure = $4 WHERE key = $1',
          [key, b.failures, b.lockedUntil, b.lastFailure],
        );
        after.set(key, b);
      }
    });
    return charges.map(({ key }) => after.get(key)!);
  }

  async clearLoginBudget(key: string): Promise<void> {
    await this.pool.query('DELETE FROM login_budgets WHERE key = $1', [key]);
  }

  async knownLoginPrefixes(account: string): Promise<{ prefix: string; lastAt: number }[]> {
    const r = await this.pool.query(
      'SELECT prefix, last_at FROM login_prefixes WHERE account = $1 ORDER BY last_at DESC',
      [account],
    );
    return r.rows.map(toKnownPrefix);
  }

  async rememberLoginPrefix(
    account: string,
    prefix: string,
    now: number,
    keep: number,
  ): Promise<void> {
    await this.transaction(async (client) => {
      await client.query(
        `INSERT INTO login_prefixes (account, prefix, last_at) VALUES ($1, $2, $3)
         ON CONFLICT (account, prefix) DO UPDATE SET last_at = GREATEST(login_prefixes.last_at, $3)`,
        [account, prefix, now],
      );
      await client.query(
        `DELETE FROM login_prefixes WHERE account = $1 AND prefix NOT IN
           (SELECT prefix FROM login_prefixes WHERE account = $1
            ORDER BY last_at DESC, prefix LIMIT $2)`,
        [account, keep],
      );
    });
  }

  async takeRegistration(
    prefix: string,
    now: number,
    limit: number,
    windowMs: number,
  ): Promise<RegistrationTicket> {
    return this.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [
        REGISTRATION_LOCK_CLASS,
        prefix,
      ]);
      const r = await client.query(
        'SELECT at FROM registration_attempts WHERE prefix = $1 AND at > $2 ORDER BY at LIMIT $3',
        [prefix, now - windowMs, limit],
      );
      const times = r.rows.map(toRegistrationAt);
      if (times.length >= limit) return { retryAfterMs: times[0]! + windowMs - now };
      const id = crypto.randomUUID();
      await client.query('INSERT INTO registration_attempts (id, prefix, at) VALUES ($1, $2, $3)', [
        id,
        prefix,
        now,
      ]);
      return { id };
    });
  }

  async releaseRegistration(id: string): Promise<void> {
    await this.pool.query('DELETE FROM registration_attempts WHERE id = $1', [id]);
  }

  async sweepLimits(now: number, o: LimitSweep): Promise<number> {
    const budgets = await this.pool.query(
      `DELETE FROM login_budgets WHERE key IN (SELECT key FROM login_budgets
         WHERE locked_until <= $1 AND last_failure < $2 LIMIT $3)`,
      [now, now - o.forgetAfterMs, o.max],
    );
    const registrations = await this.pool.query(
      `DELETE FROM registration_attempts WHERE id IN (SELECT id FROM registration_attempts
         WHERE at <= $1 LIMIT $2)`,
      [now - o.registrationWindowMs, o.max],
    );
    return (budgets.rowCount ?? 0) + (registrations.rowCount ?? 0);
  }
}
