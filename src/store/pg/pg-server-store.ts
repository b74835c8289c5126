/**
 * The server store on PostgreSQL (`hchat server --store postgres://…`), for one or several
 * server instances sharing one database. Same behaviour as SqliteServerStore, which
 * test/store-conformance.test.ts checks; a batch of items is one transaction (insert-batch.ts).
 */
import type pg from 'pg';
import { HchatError } from '../../protocol/errors.js';
import type { Channel, Role, StoredMessage } from '../../protocol/common.js';
import { foldWord } from '../../shared/search-text.js';
import { lookAlikeKeys } from '../../shared/look-alike.js';
import {
  channelCapError,
  deletedChannelIdError,
  lookAlikeTaken,
  type ChannelCaps,
  type ChannelPage,
  type HistoryPage,
  type InsertResult,
  type MessageInsert,
  type ServerStore,
  type SessionRecord,
  type UserRecord,
  type VisitorNameHeld,
  type VisitorNameLease,
} from '../server-store.js';
import { openPool, transactionOn, type Transaction } from './pool.js';
import { PgLimits } from './limits.js';
import { PgVisitorNames } from './visitor-names.js';
import type {
  LimitSweep,
  LoginBackoff,
  LoginBudget,
  LoginCharge,
  RegistrationTicket,
} from '../limit-rows.js';
import { historyPage } from './history-page.js';
import { insertBatch } from './insert-batch.js';
import { StoredMeanwhile } from './insert-rows.js';
import { itemById, relatedTo } from './items.js';
import { PG_MESSAGE_COLS, toChannel, toInt, toMessage, toSession } from './rows.js';

/** PostgreSQL's code for a unique index refusing a row. */
const UNIQUE_VIOLATION = '23505';
/** Connections per server instance. */
const POOL_SIZE = 10;

/** The PostgreSQL store; `open` it (migrations) before use. */
export class PostgresServerStore implements ServerStore {
  private readonly limits: PgLimits;
  private readonly visitorNames: PgVisitorNames;

  private readonly transaction: Transaction;

  private constructor(private readonly pool: pg.Pool) {
    this.transaction = transactionOn(pool);
    this.limits = new PgLimits(pool, this.transaction);
    this.visitorNames = new PgVisitorNames(pool, this.transaction);
  }

  /** Connects to `url` and applies pending migrations. */
  static async open(url: string): Promise<PostgresServerStore> {
    return new PostgresServerStore(await openPool(url, POOL_SIZE, ''));
  }

  async createUser(user: UserRecord): Promise<void> {
    await this.transaction(async (client) => {
      try {
        await client.query(
          'INSERT INTO users (username, pass_hash, created_at) VALUES ($1, $2, $3)',
          [user.username, user.passHash, Date.now()],
        );
      } catch (err) {
        if (isUniqueViolation(err)) throw new HchatError('E_USERNAME_TAKEN');
        throw err;
      }
      try {
        // The unique key refuses a look-alike of any account, registered at once or before.
        await client.query(
          'INSERT INTO user_name_keys (key, username) SELECT unnest($1::text[]), $2',
          [lookAlikeKeys(user.username), user.username],
        );
      } catch (err) {
        if (isUniqueViolation(err)) throw lookAlikeTaken();
        throw err;
      }
    });
  }

  async getUser(username: string): Promise<UserRecord | undefined> {
    const r = await this.pool.query<{ username: string; pass_hash: string }>(
      'SELECT username, pass_hash FROM users WHERE lower(username) = lower($1)',
      [username],
    );
    const row = r.rows[0];
    return row && { username: String(row.username), passHash: String(row.pass_hash) };
  }

  async usernames(): Promise<string[]> {
    const r = await this.pool.query<{ username: string }>('SELECT username FROM users');
    return r.rows.map((row) => String(row.username));
  }

  async createSession(s: Omit<SessionRecord, 'revoked'>): Promise<void> {
    await this.pool.query(
      'INSERT INTO sessions (session_id, username, role, created_at, public_key) VALUES ($1, $2, $3, $4, $5)',
      [s.sessionId, s.username, s.role, s.createdAt, s.publicKey],
    );
  }

  async getSession(sessionId: string): Promise<SessionRecord | undefined> {
    const r = await this.pool.query('SELECT * FROM sessions WHERE session_id = $1', [sessionId]);
    return r.rows[0] === undefined ? undefined : toSession(r.rows[0]);
  }

  async revokeSession(sessionId: string): Promise<void> {
    await this.pool.query(
      'UPDATE sessions SET revoked = true, revoked_at = $1 WHERE session_id = $2 AND NOT revoked',
      [Date.now(), sessionId],
    );
  }

  async liveSessions(username: string, role: Role): Promise<SessionRecord[]> {
    const r = await this.pool.query(
      `SELECT * FROM sessions WHERE username = $1 AND role = $2 AND NOT revoked
       ORDER BY created_at, session_id`,
      [username, role],
    );
    return r.rows.map(toSession);
  }

  async ownedChannels(username: string): Promise<number> {
    return this.count('SELECT count(*) AS n FROM channels WHERE lower(owner) = lower($1)', [
      username,
    ]);
  }

  async memberships(username: string): Promise<number> {
    return this.count('SELECT count(*) AS n FROM members WHERE lower(username) = lower($1)', [
      username,
    ]);
  }

  async createChannel(c: Channel, caps?: ChannelCaps): Promise<void> {
    await this.transaction(async (client) => {
      if (caps) {
        await lockChannelCaps(client, c.owner);
        const owned = await countOn(
          client,
          'SELECT count(*) AS n FROM channels WHERE lower(owner) = lower($1)',
          c.owner,
        );
        if (owned >= caps.owned) throw channelCapError('own', caps.owned);
        // Past the memberships cap an account may not own one more either (as it may not join).
        if ((await countMemberships(client, c.owner)) >= caps.memberships)
          throw channelCapError('own', caps.owned);
      }
      try {
        await client.query(
          'INSERT INTO channels (id, name, owner, allow_visitors, created_at) VALUES ($1, $2, $3, $4, $5)',
          [c.id, c.name, c.owner, c.allowVisitors, c.createdAt],
        );
      } catch (err) {
        if (isUniqueViolation(err)) throw new HchatError('E_CHANNEL_EXISTS');
        throw err;
      }
      // Read after the insert: one that waited for a deletion of this id to commit sees it here
      // (a deleted channel's id is never used again, PROTOCOL.md §2.2).
      const deleted = await client.query('SELECT 1 FROM deleted_channels WHERE id = $1', [c.id]);
      if (deleted.rows.length > 0) throw deletedChannelIdError();
      await client.query(
        `INSERT INTO members (channel_id, username, joined_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING`,
        [c.id, c.owner, c.createdAt],
      );
    });
  }

  async getChannel(id: string): Promise<Channel | undefined> {
    const r = await this.pool.query('SELECT * FROM channels WHERE id = $1', [id]);
    return r.rows[0] === undefined ? undefined : toChannel(r.rows[0]);
  }

  async listChannels(o: ChannelPage): Promise<Channel[]> {
    const r = await this.pool.query(
      `SELECT * FROM channels c WHERE (created_at, id) > ($1, $2) AND (allow_visitors OR NOT $3)
         AND NOT EXISTS (SELECT 1 FROM removed r WHERE r.channel_id = c.id
                           AND lower(r.username) = ANY($5::text[]))
       ORDER BY created_at, id LIMIT $4`,
      [
        o.after?.createdAt ?? Number.MIN_SAFE_INTEGER,
        o.after?.id ?? '',
        o.visitorsOnly,
        o.limit,
        (o.removedOf ?? []).map((u) => u.toLowerCase()),
      ],
    );
    return r.rows.map(toChannel);
  }

  async channelsOf(username: string): Promise<Channel[]> {
    const r = await this.pool.query(
      `SELECT c.* FROM channels c JOIN members m ON m.channel_id = c.id
       WHERE lower(m.username) = lower($1) ORDER BY c.created_at, c.id`,
      [username],
    );
    return r.rows.map(toChannel);
  }

  async addMember(channelId: string, username: string, maxMemberships?: number): Promise<void> {
    const insert = (client: pg.PoolClient | pg.Pool) =>
      client.query(
        `INSERT INTO members (channel_id, username, joined_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING`,
        [channelId, username, Date.now()],
      );
    if (maxMemberships === undefined) {
      await insert(this.pool);
      return;
    }
    await this.transaction(async (client) => {
      await lockChannelCaps(client, username);
      const member = await client.query(
        'SELECT 1 FROM members WHERE channel_id = $1 AND lower(username) = lower($2)',
        [channelId, username],
      );
      if (member.rows.length > 0) return;
      if ((await countMemberships(client, username)) >= maxMemberships)
        throw channelCapError('join', maxMemberships);
      await insert(client);
    });
  }

  async isMember(channelId: string, username: string): Promise<boolean> {
    return this.exists(
      'SELECT 1 FROM members WHERE channel_id = $1 AND lower(username) = lower($2)',
      [channelId, username],
    );
  }

  async members(channelId: string): Promise<string[]> {
    const r = await this.pool.query<{ username: string }>(
      'SELECT username FROM members WHERE channel_id = $1',
      [channelId],
    );
    return r.rows.map((row) => String(row.username));
  }

  async insertMessages(batch: readonly MessageInsert[]): Promise<(InsertResult | HchatError)[]> {
    if (batch.length === 0) return [];
    try {
      return await this.transaction((client) => insertBatch(client, batch, Date.now()));
    } catch (err) {
      if (!(err instanceof StoredMeanwhile)) throw err;
      // Rolled back: decided again item by item, which answers that id as other items are.
      return this.transaction((client) => insertBatch(client, batch, Date.now(), false));
    }
  }

  async history(channelId: string, limit: number, before?: string): Promise<HistoryPage> {
    return historyPage(this.pool, channelId, limit, before);
  }

  async since(channelId: string, since: number, limit: number): Promise<StoredMessage[]> {
    const r = await this.pool.query(
      `SELECT ${PG_MESSAGE_COLS} FROM messages WHERE channel_id = $1 AND seq > $2
       ORDER BY seq LIMIT $3`,
      [channelId, since, limit],
    );
    return r.rows.map(toMessage);
  }

  async lastSeq(channelId: string): Promise<number> {
    const r = await this.pool.query('SELECT last_seq FROM channels WHERE id = $1', [channelId]);
    return r.rows[0] === undefined ? 0 : toInt(r.rows[0].last_seq);
  }

  async getItem(id: string): Promise<StoredMessage | undefined> {
    return itemById(this.pool, id);
  }

  async related(ids: readonly string[]): Promise<StoredMessage[]> {
    return relatedTo(this.pool, ids);
  }

  async isRemoved(channelId: string, username: string): Promise<boolean> {
    return this.exists(
      'SELECT 1 FROM removed WHERE channel_id = $1 AND lower(username) = lower($2)',
      [channelId, username],
    );
  }

  async removeMember(channelId: string, username: string): Promise<void> {
    await this.pool.query(
      'DELETE FROM members WHERE channel_id = $1 AND lower(username) = lower($2)',
      [channelId, username],
    );
  }

  /**
   * Each word a prefix term (`'word':*`), all required, over the folded words of what messages
   * show; newest arrival first. Words are runs of letters and digits (search-text.ts), so none
   * carries tsquery syntax.
   */
  async search(
    words: readonly string[],
    channelIds: readonly string[],
    limit: number,
    before?: string,
  ): Promise<StoredMessage[]> {
    const folded = words.map(foldWord).filter((w) => w !== '');
    if (folded.length === 0 || channelIds.length === 0) return [];
    let beforeArrival = Number.MAX_SAFE_INTEGER;
    if (before !== undefined) {
      // Only a message of a searched channel (search-index.ts says why).
      const r = await this.pool.query(
        `SELECT arrival FROM messages WHERE id = $1 AND channel_id = ANY($2::text[]) AND kind = 'message'`,
        [before, channelIds],
      );
      if (r.rows[0] === undefined) return [];
      beforeArrival = toInt(r.rows[0].arrival);
    }
    const r = await this.pool.query(
      `SELECT ${PG_MESSAGE_COLS} FROM messages
       WHERE words @@ (SELECT string_agg(quote_literal(w) || ':*', ' & ')::tsquery
                       FROM unnest($1::text[]) AS w)
       AND channel_id = ANY($2::text[]) AND kind = 'message' AND arrival < $3
       ORDER BY arrival DESC LIMIT $4`,
      [folded, channelIds, beforeArrival, limit],
    );
    return r.rows.map(toMessage);
  }

  loginBudgets(keys: readonly string[], now: number, forgetAfterMs: number) {
    return this.limits.loginBudgets(keys, now, forgetAfterMs);
  }

  addLoginFailures(
    charges: readonly LoginCharge[],
    now: number,
    o: LoginBackoff,
  ): Promise<LoginBudget[]> {
    return this.limits.addLoginFailures(charges, now, o);
  }

  clearLoginBudget(key: string): Promise<void> {
    return this.limits.clearLoginBudget(key);
  }

  knownLoginPrefixes(account: string) {
    return this.limits.knownLoginPrefixes(account);
  }

  rememberLoginPrefix(account: string, prefix: string, now: number, keep: number) {
    return this.limits.rememberLoginPrefix(account, prefix, now, keep);
  }

  takeRegistration(
    prefix: string,
    now: number,
    limit: number,
    windowMs: number,
  ): Promise<RegistrationTicket> {
    return this.limits.takeRegistration(prefix, now, limit, windowMs);
  }

  releaseRegistration(id: string): Promise<void> {
    return this.limits.releaseRegistration(id);
  }

  sweepLimits(now: number, o: LimitSweep): Promise<number> {
    return this.limits.sweepLimits(now, o);
  }

  claimVisitorName(lease: VisitorNameLease, now: number): Promise<boolean> {
    return this.visitorNames.claim(lease, now);
  }

  renewVisitorNames(
    instance: string,
    leases: readonly VisitorNameHeld[],
    now: number,
    expiresAt: number,
  ): Promise<string[]> {
    return this.visitorNames.renew(instance, leases, now, expiresAt);
  }

  releaseVisitorName(sessionId: string, instance: string): Promise<void> {
    return this.visitorNames.release(sessionId, instance);
  }

  visitorNameHolder(sessionId: string, now: number): Promise<string | undefined> {
    return this.visitorNames.holder(sessionId, now);
  }

  unheldVisitorSessions(now: number, max: number): Promise<string[]> {
    return this.visitorNames.unheld(now, max);
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async count(sql: string, params: unknown[]): Promise<number> {
    const r = await this.pool.query(sql, params);
    return toInt(r.rows[0]?.n ?? 0);
  }

  private async exists(sql: string, params: unknown[]): Promise<boolean> {
    return (await this.pool.query(sql, params)).rows.length > 0;
  }
}

/**
 * Takes the transaction's lock of `username`'s channel caps: whoever counts its channels or
 * memberships to add one holds it until commit, so that instances adding at once count in turn.
 */
async function lockChannelCaps(client: pg.PoolClient, username: string): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [
    `hchat channels ${username.toLowerCase()}`,
  ]);
}

async function countOn(client: pg.PoolClient, sql: string, username: string): Promise<number> {
  const r = await client.query(sql, [username]);
  return toInt(r.rows[0]?.n ?? 0);
}

function countMemberships(client: pg.PoolClient, username: string): Promise<number> {
  return countOn(
    client,
    'SELECT count(*) AS n FROM members WHERE lower(username) = lower($1)',
    username,
  );
}

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === UNIQUE_VIOLATION;
}
