/**
 * The API token store of a single server process (no `--store`), in `<dir>/tokens.db`: the
 * synchronous SQLite driver inside, each method's answer a settled promise (api-token-store.ts
 * says what each does). Usernames are ASCII and compare through NOCASE columns; scopes and
 * channels are JSON text. A cap's count and the insert it admits run in one transaction.
 */
import path from 'node:path';
import type Database from 'better-sqlite3';
import type { ApiTokenRecord, ApiTokenStore, BotRecord } from './api-token-store.js';
import { toApiToken, toBot } from './api-token-rows.js';
import { openDatabase } from './sqlite.js';

const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE bots (
    username TEXT PRIMARY KEY COLLATE NOCASE,
    owner TEXT NOT NULL COLLATE NOCASE,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX bots_owner ON bots (owner, created_at);
  -- Only the SHA-256 of a token's secret is kept (secret_hash).
  CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL COLLATE NOCASE,
    owner TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    channels TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
  );
  CREATE INDEX tokens_owner ON tokens (owner, created_at);
  CREATE INDEX tokens_account ON tokens (account);
  `,
];

interface TokenRow {
  id: string;
  account: string;
  owner: string;
  name: string;
  secret_hash: string;
  scopes: string;
  channels: string | null;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

interface BotRow {
  username: string;
  owner: string;
  created_at: number;
}

/** The API token store on SQLite, in the data folder. */
export class SqliteApiTokenStore implements ApiTokenStore {
  private readonly db: Database.Database;
  private readonly q;
  private readonly addBotTx;
  private readonly addTokenTx;

  constructor(dir: string) {
    this.db = openDatabase(path.join(dir, 'tokens.db'), MIGRATIONS);
    const db = this.db;
    this.q = {
      bot: db.prepare<[string], BotRow>('SELECT * FROM bots WHERE username = ?'),
      botsOf: db.prepare<[string], BotRow>(
        'SELECT * FROM bots WHERE owner = ? ORDER BY created_at, username',
      ),
      countBots: db.prepare<[string], { n: number }>(
        'SELECT count(*) AS n FROM bots WHERE owner = ?',
      ),
      insertBot: db.prepare('INSERT INTO bots (username, owner, created_at) VALUES (?, ?, ?)'),
      token: db.prepare<[string], TokenRow>('SELECT * FROM tokens WHERE id = ?'),
      tokensOf: db.prepare<[string], TokenRow>(
        'SELECT * FROM tokens WHERE owner = ? ORDER BY created_at DESC, id DESC',
      ),
      // Live at `now`: not revoked, and without an expiry or expiring after `now`.
      countLive: db.prepare<[string, number], { n: number }>(
        `SELECT count(*) AS n FROM tokens WHERE owner = ? AND revoked_at IS NULL
           AND (expires_at IS NULL OR expires_at > ?)`,
      ),
      insertToken: db.prepare(
        `INSERT INTO tokens (id, account, owner, name, secret_hash, scopes, channels, created_at,
           expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      revoke: db.prepare(
        'UPDATE tokens SET revoked_at = ? WHERE id = ? AND owner = ? AND revoked_at IS NULL',
      ),
      revokeOf: db.prepare(
        'UPDATE tokens SET revoked_at = ? WHERE account = ? AND revoked_at IS NULL',
      ),
    };
    this.addBotTx = db.transaction((bot: BotRecord, maxPerOwner: number): boolean => {
      if (this.q.countBots.get(bot.owner)!.n >= maxPerOwner) return false;
      this.q.insertBot.run(bot.username, bot.owner, bot.createdAt);
      return true;
    });
    this.addTokenTx = db.transaction(
      (t: ApiTokenRecord, maxPerOwner: number, now: number): boolean => {
        if (this.q.countLive.get(t.owner, now)!.n >= maxPerOwner) return false;
        this.q.insertToken.run(
          t.id,
          t.account,
          t.owner,
          t.name,
          t.secretHash,
          JSON.stringify(t.scopes),
          t.channels === null ? null : JSON.stringify(t.channels),
          t.createdAt,
          t.expiresAt,
          t.revokedAt,
        );
        return true;
      },
    );
  }

  async close(): Promise<void> {
    this.db.close();
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async addBot(bot: BotRecord, maxPerOwner: number): Promise<boolean> {
    return this.addBotTx(bot, maxPerOwner);
  }

  async getBot(username: string): Promise<BotRecord | undefined> {
    const r = this.q.bot.get(username);
    return r && toBot(r);
  }

  async botsOf(owner: string): Promise<BotRecord[]> {
    return this.q.botsOf.all(owner).map(toBot);
  }

  async addToken(t: ApiTokenRecord, maxPerOwner: number, now: number): Promise<boolean> {
    return this.addTokenTx(t, maxPerOwner, now);
  }

  async getToken(id: string): Promise<ApiTokenRecord | undefined> {
    const r = this.q.token.get(id);
    return r && fromRow(r);
  }

  async tokensOf(owner: string): Promise<ApiTokenRecord[]> {
    return this.q.tokensOf.all(owner).map(fromRow);
  }

  async revokeToken(id: string, owner: string, now: number): Promise<boolean> {
    return this.q.revoke.run(now, id, owner).changes === 1;
  }

  async revokeTokensOf(account: string, now: number): Promise<number> {
    return this.q.revokeOf.run(now, account).changes;
  }
}

/** A row with its JSON columns decoded, validated. */
function fromRow(r: TokenRow): ApiTokenRecord {
  return toApiToken({
    ...r,
    scopes: JSON.parse(r.scopes) as unknown,
    channels: r.channels === null ? null : (JSON.parse(r.channels) as unknown),
  });
}
