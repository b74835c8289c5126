/**
 * What every PostgreSQL store of the server does with its pool: open it with the migrations
 * applied, and run work in one transaction.
 */
import pg from 'pg';
import { migrate } from './migrations.js';

/** Work done on one client inside a transaction. */
export type Transaction = <T>(work: (client: pg.PoolClient) => Promise<T>) => Promise<T>;

/**
 * A pool on `url` of at most `max` connections, with pending migrations applied (closed again
 * if they fail). `what` names the store in the message of an idle client's error.
 */
export async function openPool(url: string, max: number, what: string): Promise<pg.Pool> {
  const pool = new pg.Pool({ connectionString: url, max });
  // An idle client losing its connection must not end the process; the next query reconnects.
  pool.on('error', (err) => console.error(`hchat server: PostgreSQL${what}:`, err.message));
  try {
    await migrate(pool);
  } catch (err) {
    await pool.end();
    throw err;
  }
  return pool;
}

/** Runs `work` in one transaction on a client of `pool` (rolled back if it throws). */
export function transactionOn(pool: pg.Pool): Transaction {
  return async (work) => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const out = await work(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  };
}
