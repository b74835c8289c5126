/**
 * Visitor names present now, in PostgreSQL (table `visitor_names`, one row per look-alike key):
 * the uniqueness of the key is what makes two instances unable to admit look-alike visitors at
 * once. A claim upserts its keys in sorted order in one transaction (two claims never wait on each
 * other crosswise); a key held by another session, unexpired, leaves its row untouched, and the
 * claim rolls back.
 */
import type pg from 'pg';
import type { VisitorNameHeld, VisitorNameLease } from '../server-store.js';
import type { Transaction } from './pool.js';

/** Thrown inside the claim's transaction to roll it back. */
class Taken extends Error {}

/** The visitor-name methods of PostgresServerStore, on its pool. */
export class PgVisitorNames {
  constructor(
    private readonly pool: pg.Pool,
    private readonly transaction: Transaction,
  ) {}

  async claim(lease: VisitorNameLease, now: number): Promise<boolean> {
    const keys = [...new Set(lease.keys)].sort();
    try {
      await this.transaction(async (client) => {
        // An account's name (registered through any instance) is never a visitor's either.
        const account = await client.query(
          'SELECT 1 FROM user_name_keys WHERE key = ANY($1::text[]) LIMIT 1',
          [keys],
        );
        if (account.rowCount) throw new Taken();
        for (const key of keys) {
          const r = await client.query(
            `INSERT INTO visitor_names (key, session_id, instance, expires_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (key) DO UPDATE SET session_id = EXCLUDED.session_id,
               instance = EXCLUDED.instance, expires_at = EXCLUDED.expires_at
             WHERE visitor_names.session_id = EXCLUDED.session_id
               OR visitor_names.expires_at <= $5
             RETURNING key`,
            [key, lease.sessionId, lease.instance, lease.expiresAt, now],
          );
          if (r.rowCount === 0) throw new Taken();
        }
      });
      return true;
    } catch (err) {
      if (err instanceof Taken) return false;
      throw err;
    }
  }

  async renew(
    instance: string,
    leases: readonly VisitorNameHeld[],
    now: number,
    expiresAt: number,
  ): Promise<string[]> {
    let short: string[] = [];
    if (leases.length > 0) {
      // One statement: the rows extended, counted per session against the keys it should hold;
      // only the sessions short of keys come back (none, unless a lease ran out or moved).
      const r = await this.pool.query(
        `WITH want AS (SELECT * FROM unnest($3::text[], $4::int[]) AS w(session_id, n)),
         renewed AS (
           UPDATE visitor_names v SET expires_at = $1 FROM want
           WHERE v.instance = $2 AND v.session_id = want.session_id
           RETURNING v.session_id),
         held AS (SELECT session_id, count(*) AS c FROM renewed GROUP BY session_id)
         SELECT want.session_id FROM want LEFT JOIN held USING (session_id)
         WHERE coalesce(held.c, 0) < want.n`,
        [
          expiresAt,
          instance,
          leases.map((l) => l.sessionId),
          leases.map((l) => new Set(l.keys).size),
        ],
      );
      short = r.rows.map((row: { session_id: string }) => row.session_id);
    }
    await this.pool.query('DELETE FROM visitor_names WHERE expires_at <= $1', [now]);
    return short;
  }

  async holder(sessionId: string, now: number): Promise<string | undefined> {
    const r = await this.pool.query(
      'SELECT instance FROM visitor_names WHERE session_id = $1 AND expires_at > $2 LIMIT 1',
      [sessionId, now],
    );
    return (r.rows[0] as { instance: string } | undefined)?.instance;
  }

  async unheld(now: number, max: number): Promise<string[]> {
    const r = await this.pool.query(
      `SELECT s.session_id FROM sessions s
       WHERE s.role = 'visitor' AND NOT s.revoked
         AND NOT EXISTS (SELECT 1 FROM visitor_names v
                         WHERE v.session_id = s.session_id AND v.expires_at > $1)
       LIMIT $2`,
      [now, max],
    );
    return r.rows.map((row: { session_id: string }) => row.session_id);
  }

  async release(sessionId: string, instance: string): Promise<void> {
    await this.pool.query('DELETE FROM visitor_names WHERE session_id = $1 AND instance = $2', [
      sessionId,
      instance,
    ]);
  }
}
