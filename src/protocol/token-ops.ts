/**
 * Bots and API tokens on the peer ↔ server link (issue 17; docs/PROTOCOL.md §3.3, docs/REST.md):
 * a user makes bot accounts and tokens for the public REST API here, from its own session, never
 * through the REST API itself (a token cannot mint tokens). A token is shown once, in the answer
 * of `token_create`; the server keeps only its secret's hash.
 */
import { z } from 'zod';
import { PRINTABLE, Username, Uuid } from './common.js';
import { op } from './rpc.js';
import { API_LIMITS } from '../shared/limits.js';

/**
 * A token's name: 1–64 printable characters (§2.1), checked before the surrounding spaces are
 * trimmed, so that a line or paragraph separator at either end is refused, not dropped.
 */
const TokenName = z
  .string()
  .regex(PRINTABLE, 'name: printable characters only')
  .trim()
  .min(1, 'name: 1-64 printable characters')
  .max(64, 'name: 1-64 printable characters');

export const TokenScope = z.enum(['read', 'write']);

/** A token as its owner sees it (never its secret). */
export const TokenInfo = z.object({
  id: z.string(),
  account: Username,
  name: z.string(),
  scopes: z.array(TokenScope),
  channels: z.array(Uuid).nullable(),
  createdAt: z.number().int(),
  expiresAt: z.number().int().nullable(),
  revokedAt: z.number().int().nullable(),
});

export const BotInfo = z.object({
  username: Username,
  owner: Username,
  createdAt: z.number().int(),
});

export const TOKEN_OPS = {
  /** A bot account owned by the caller: a user without a password, reached by tokens only. */
  bot_create: op('user', z.object({ username: Username }), BotInfo),
  /** The caller's bots, oldest first. */
  bots: op('user', z.object({}), z.object({ bots: z.array(BotInfo) })),
  /**
   * A token acting as the caller (`account` absent or the caller) or as one of its bots, with
   * `scopes`, limited to `channels` when given, expiring after `expiresInDays` when given.
   * `token` is the only time its secret is shown.
   */
  token_create: op(
    'user',
    z.object({
      name: TokenName,
      account: Username.optional(),
      scopes: z.array(TokenScope).min(1).max(2),
      channels: z.array(Uuid).min(1).max(API_LIMITS.maxTokenChannels).optional(),
      expiresInDays: z.number().int().min(1).max(API_LIMITS.maxTokenDays).optional(),
    }),
    TokenInfo.extend({ token: z.string() }),
  ),
  /** The caller's tokens (its own and its bots'), newest first, revoked ones too. */
  tokens: op('user', z.object({}), z.object({ tokens: z.array(TokenInfo) })),
  /** Revokes one of the caller's tokens, on every instance at once. `E_NOT_FOUND` otherwise. */
  token_revoke: op('user', z.object({ id: z.string().max(64) }), z.object({})),
} as const;

export type TokenScope = z.infer<typeof TokenScope>;
export type TokenInfo = z.infer<typeof TokenInfo>;
export type BotInfo = z.infer<typeof BotInfo>;
/** What `token_create` (and the local API's `POST /api/tokens`) takes. */
export type NewToken = z.infer<typeof TOKEN_OPS.token_create.req>;
/** A token just made: its record and, this once, its secret. */
export type MadeToken = z.infer<typeof TOKEN_OPS.token_create.res>;
