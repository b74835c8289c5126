/**
 * How a row of either API token store (api-token-store.ts) becomes a record. Rows are input like
 * any other and are parsed here once for SQLite and PostgreSQL: times as numbers or the driver's
 * BIGINT strings, scopes and channels already decoded from their column (JSON text in SQLite,
 * `text[]` in PostgreSQL).
 */
import { z } from 'zod';
import type { ApiTokenRecord, BotRecord } from './api-token-store.js';
import { Int } from './pg/rows.js';

const TokenRow = z.object({
  id: z.string(),
  account: z.string(),
  owner: z.string(),
  name: z.string(),
  secret_hash: z.string(),
  scopes: z.array(z.enum(['read', 'write'])).min(1),
  channels: z.array(z.string()).nullable(),
  created_at: Int,
  expires_at: Int.nullable(),
  revoked_at: Int.nullable(),
});

const BotRow = z.object({ username: z.string(), owner: z.string(), created_at: Int });

/** A tokens row (scopes and channels decoded) as an ApiTokenRecord. */
export function toApiToken(row: unknown): ApiTokenRecord {
  const r = TokenRow.parse(row);
  return {
    id: r.id,
    account: r.account,
    owner: r.owner,
    name: r.name,
    secretHash: r.secret_hash,
    scopes: r.scopes,
    channels: r.channels,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
  };
}

/** A bots row as a BotRecord. */
export function toBot(row: unknown): BotRecord {
  const r = BotRow.parse(row);
  return { username: r.username, owner: r.owner, createdAt: r.created_at };
}
