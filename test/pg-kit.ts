/**
 * PostgreSQL for tests: each caller gets a database of its own (a unique name) on the server
 * HCHAT_TEST_PG names (default: user postgres on 127.0.0.1:5432, trust auth), dropped after.
 */
import crypto from 'node:crypto';
import pg from 'pg';

/** The admin URL: a database to connect to for CREATE/DROP DATABASE. */
export const PG_ADMIN_URL =
  process.env.HCHAT_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A fresh database: its URL, and `drop` (closing what still connects to it). */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `hchat_test_${crypto.randomBytes(6).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}
