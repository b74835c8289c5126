/**
 * Bot accounts and API tokens of the public REST API (issue 17; docs/REST.md). A token is shown
 * once, when it is made; the store keeps only the SHA-256 of its secret. A token acts as one
 * account (its owner's own, or a bot the owner made) with scopes (`read`, `write`) and, if it
 * names channels, only within them. Revocation is a stored mark every instance reads on every
 * request, so it holds at once everywhere. Two implementations answer alike
 * (test/api-token-store-conformance.test.ts): SQLite in the data folder for one process
 * (sqlite-api-token-store.ts), PostgreSQL for several instances (pg/pg-api-token-store.ts).
 */

/** What a token may do. */
export type TokenScope = 'read' | 'write';

/** A token as stored: never its secret, only the secret's hash. */
export interface ApiTokenRecord {
  /** Public id (`tok_` + 22 base64url characters), the first half of the token string. */
  id: string;
  /** The account the token acts as: its owner, or one of the owner's bots (spelled as stored). */
  account: string;
  /** The user who made it and may list and revoke it. */
  owner: string;
  /** A label its owner chose (1–64 printable characters). */
  name: string;
  /** SHA-256 of the secret, base64url without padding (43 characters). */
  secretHash: string;
  /** At least one; sorted, without repeats. */
  scopes: TokenScope[];
  /** The channels it may touch; `null`: every channel its account may. */
  channels: string[] | null;
  createdAt: number;
  /** ms since the epoch, or `null` for a token that does not expire. */
  expiresAt: number | null;
  /** When it was revoked, or `null`. */
  revokedAt: number | null;
}

/** A bot account: a user account without a password, made and owned by a user. */
export interface BotRecord {
  username: string;
  owner: string;
  createdAt: number;
}

/** Bot accounts and API tokens at the server. Usernames compare without regard to case. */
export interface ApiTokenStore {
  close(): Promise<void>;
  ping(): Promise<void>;

  /**
   * Records a bot (its user account already exists in the server store). `false` when the
   * owner already has `maxPerOwner` bots (nothing is stored then).
   */
  addBot(bot: BotRecord, maxPerOwner: number): Promise<boolean>;
  /** The bot of that name, if it is one. */
  getBot(username: string): Promise<BotRecord | undefined>;
  /** An owner's bots, oldest first. */
  botsOf(owner: string): Promise<BotRecord[]>;

  /**
   * Stores a new token. `false` when its owner already has `maxPerOwner` tokens not revoked and
   * not expired at `now` (nothing is stored then).
   */
  addToken(t: ApiTokenRecord, maxPerOwner: number, now: number): Promise<boolean>;
  /** The token of that id, revoked and expired ones included. */
  getToken(id: string): Promise<ApiTokenRecord | undefined>;
  /** The tokens an owner made (for itself and for its bots), newest first, revoked ones too. */
  tokensOf(owner: string): Promise<ApiTokenRecord[]>;
  /**
   * Revokes a token of `owner` at `now`: `true` if it was theirs and not revoked before, `false`
   * otherwise (unknown, someone else's, or revoked already; nothing changes then).
   */
  revokeToken(id: string, owner: string, now: number): Promise<boolean>;
  /** Revokes every token acting as `account` (a bot being removed); how many were revoked. */
  revokeTokensOf(account: string, now: number): Promise<number>;
}
