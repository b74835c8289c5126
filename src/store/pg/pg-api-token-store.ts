/**
 * The API token store on PostgreSQL (`hchat server --store postgres://…`), for several server
 * instances sharing one database: the same answers as SqliteApiTokenStore
 * (test/api-token-store-conformance.test.ts). An owner's bots and tokens are added under an
 * advisory lock of that owner, so two instances adding at once never pass a cap; a revocation is
 * one UPDATE, seen by every instance's next read. Usernames compare through lower() indexes.
 */
import type pg from 'pg';
import type { ApiTokenRecord, ApiTokenStore, BotRecord } from '../api-token-store.js';
import { toApiToken, toBot } from '../api-token-rows.js';
import { openPool, transactionOn, type Transaction } from './pool.js';
import { toInt } from './rows.js';

/** Connections per server instance for API tokens (apart from the server store's). */
const POOL_SIZE = 2;

const lc = (s: string) => s.toLowerCase();

/** The PostgreSQL API token store; `open` it (migrations) before use. */
export class PostgresApiTokenStore implements ApiTokenStore {
  private readonly transaction: Transaction;

  private constructor(private readonly pool: pg.Pool) {
    this.transaction = transactionOn(pool);
  }

  /** Connects to `url` and applies pending migrations. */
  static async open(url: string): Promise<PostgresApiTokenStore> {
    return new PostgresApiTokenStore(await openPool(url, POOL_SIZE, ' (API tokens)'));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async addBot(bot: BotRecord, maxPerOwner: number): Promise<boolean> {
    return this.transaction(async (c) => {
      await lockOwner(c, 'bots', bot.owner);
      const n = await c.query('SELECT count(*) AS n FROM api_bots WHERE lower(owner) = $1', [
        lc(bot.owner),
      ]);
      if (toInt(n.rows[0]?.n ?? 0) >= maxPerOwner) return false;
      await c.query('INSERT INTO api_bots (username, owner, created_at) VALUES ($1, $2, $3)', [
        bot.username,
        bot.owner,
        bot.createdAt,
      ]);
      return true;
    });
  }

  async getBot(username: string): Promise<BotRecord | undefined> {
    const r = await this.pool.query('SELECT * FROM api_bots WHERE lower(username) = $1', [
      lc(username),
    ]);
    return r.rows[0] === undefined ? undefined : toBot(r.rows[0]);
  }

  async botsOf(owner: string): Promise<BotRecord[]> {
    const r = await this.pool.query(
      `SELECT * FROM api_bots WHERE lower(owner) = $1
       ORDER BY created_at, lower(username) COLLATE "C"`,
      [lc(owner)],
    );
    return r.rows.map(toBot);
  }

  async addToken(t: ApiTokenRecord, maxPerOwner: number, now: number): Promise<boolean> {
    return this.transaction(async (c) => {
      await lockOwner(c, 'tokens', t.owner);
      // Live at `now`: not revoked, and without an expiry or expiring after `now`.
      const n = await c.query(
        `SELECT count(*) AS n FROM api_tokens WHERE lower(owner) = $1 AND revoked_at IS NULL
           AND (expires_at IS NULL OR expires_at > $2)`,
        [lc(t.owner), now],
      );
      if (toInt(n.rows[0]?.n ?? 0) >= maxPerOwner) return false;
      await c.query(
        `INSERT INTO api_tokens (id, account, owner, name, secret_hash, scopes, channels,
           created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [
          t.id,
          t.account,
          t.owner,
          t.name,
          t.secretHash,
          t.scopes,
          t.channels,
          t.createdAt,
          t.expiresAt,
          t.revokedAt,
        ],
      );
      return true;
    });
  }

  async getToken(id: string): Promise<ApiTokenRecord | undefined> {
    const r = await this.pool.query('SELECT * FROM api_tokens WHERE id = $1', [id]);
    return r.rows[0] === undefined ? undefined : toApiToken(r.rows[0]);
  }

  async tokensOf(owner: string): Promise<ApiTokenRecord[]> {
    const r = await this.pool.query(
      'SELECT * FROM api_tokens WHERE lower(owner) = $1 ORDER BY created_at DESC, id DESC',
      [lc(owner)],
    );
    return r.rows.map(toApiToken);
  }

  async revokeToken(id: string, owner: string, now: number): Promise<boolean> {
    const r = await this.pool.query(
      `UPDATE api_tokens SET revoked_at = $1
       WHERE id = $2 AND lower(owner) = $3 AND revoked_at IS NULL`,
      [now, id, lc(owner)],
    );
    return r.rowCount === 1;
  }

  async revokeTokensOf(account: string, now: number): Promise<number> {
    const r = await this.pool.query(
      'UPDATE api_tokens SET revoked_at = $1 WHERE lower(account) = $2 AND revoked_at IS NULL',
      [now, lc(account)],
    );
    return r.rowCount ?? 0;
  }
}

/** Serializes the transactions that add to one owner's bots or tokens (their caps). */
async function lockOwner(c: pg.PoolClient, what: 'bots' | 'tokens', owner: string): Promise<void> {
  await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`hchat api ${what} ${lc(owner)}`]);
}
