/**
 * Bots and API tokens (issue 17; docs/REST.md): the `bot_*` and `token_*` operations of a user's
 * session, a REST call's bearer token checked against the stored hash, and key certificates for
 * the keys bots sign their messages with. Every refusal of a bearer token (malformed, unknown,
 * wrong secret, revoked, expired) is the same `E_TOKEN_INVALID` after the same work: one store
 * read and one hash comparison, so neither wording nor timing tells which it was. Secrets are
 * never logged: the connection log names a token by its id.
 */
import { checkSigningKey } from '../shared/ed25519.js';
import crypto from 'node:crypto';
import { HchatError } from '../protocol/errors.js';
import type { OpReq, OpRes } from '../protocol/server-link.js';
import type { ConnectionLog } from '../shared/connlog.js';
import { API_LIMITS } from '../shared/limits.js';
import type { CertClaims } from '../shared/tokens.js';
import type { ApiTokenRecord, ApiTokenStore, BotRecord } from '../store/api-token-store.js';
import type { ServerStore } from '../store/server-store.js';
import type { AccountService } from './account-service.js';
import type { TokenSigner } from './accounts.js';
import type { Session } from './conn.js';
import type { EventBus } from './bus.js';

/** A token's id: `tok_` + 22 base64url characters (a session id is 22 characters in all). */
const TOKEN_ID = 'tok_[A-Za-z0-9_-]{22}';
/** A token string: its id, a dot, 43 base64url characters (its secret). */
const TOKEN_RE = new RegExp(`^(${TOKEN_ID})\\.([A-Za-z0-9_-]{43})$`);
const TOKEN_ID_RE = new RegExp(`^${TOKEN_ID}$`);

/** True for a token's id (what a key certificate made through POST /keys names as its `sid`). */
export function isTokenId(id: string): boolean {
  return TOKEN_ID_RE.test(id);
}
/** Compared against when the token is unknown, so that path hashes and compares too. */
const NO_HASH = Buffer.alloc(32);

function sha256(s: string): Buffer {
  return crypto.createHash('sha256').update(s).digest();
}

/** What the token service needs from its server. */
export interface TokenServiceDeps {
  store: ServerStore;
  tokens: ApiTokenStore;
  accounts: AccountService;
  signer: TokenSigner;
  log: ConnectionLog;
  /** Tells every instance (and this one) of a revocation: their gateway sessions end at once. */
  bus: Pick<EventBus, 'publish'>;
}

/** The public view of a stored token. */
function info(t: ApiTokenRecord): OpRes<'tokens'>['tokens'][number] {
  return {
    id: t.id,
    account: t.account,
    name: t.name,
    scopes: t.scopes,
    channels: t.channels,
    createdAt: t.createdAt,
    expiresAt: t.expiresAt,
    revokedAt: t.revokedAt,
  };
}

/** Bots, tokens and bearer checks. */
export class TokenService {
  constructor(private readonly d: TokenServiceDeps) {}

  async botCreate(s: Session, b: OpReq<'bot_create'>, now = Date.now()): Promise<BotRecord> {
    const owner = await this.d.store.getUser(s.username);
    if (!owner) throw new HchatError('E_AUTH_REQUIRED');
    if ((await this.d.tokens.getBot(s.username)) !== undefined)
      throw new HchatError('E_FORBIDDEN', 'a bot cannot own bots');
    if ((await this.d.tokens.botsOf(s.username)).length >= API_LIMITS.maxBotsPerOwner)
      throw new HchatError('E_FORBIDDEN', `at most ${API_LIMITS.maxBotsPerOwner} bots per user`);
    await this.d.accounts.createBot(b.username);
    const bot = { username: b.username, owner: owner.username, createdAt: now };
    // Two instances racing past the count above: the store's cap decides; the account made
    // here then stays without a bot record (a name taken, nothing reachable: no password).
    if (!(await this.d.tokens.addBot(bot, API_LIMITS.maxBotsPerOwner)))
      throw new HchatError('E_FORBIDDEN', `at most ${API_LIMITS.maxBotsPerOwner} bots per user`);
    this.d.log.write('bot_create', { owner: owner.username, bot: b.username });
    return bot;
  }

  async bots(s: Session): Promise<OpRes<'bots'>> {
    return { bots: await this.d.tokens.botsOf(s.username) };
  }

  async tokenCreate(
    s: Session,
    b: OpReq<'token_create'>,
    now = Date.now(),
  ): Promise<OpRes<'token_create'>> {
    let account = s.username;
    if (b.account !== undefined && b.account.toLowerCase() !== s.username.toLowerCase()) {
      const bot = await this.d.tokens.getBot(b.account);
      if (!bot || bot.owner.toLowerCase() !== s.username.toLowerCase())
        throw new HchatError('E_NOT_FOUND', `you have no bot named ${b.account}`);
      account = bot.username;
    }
    const id = `tok_${crypto.randomBytes(16).toString('base64url')}`;
    const secret = crypto.randomBytes(32).toString('base64url');
    const record: ApiTokenRecord = {
      id,
      account,
      owner: s.username,
      name: b.name,
      secretHash: sha256(secret).toString('base64url'),
      scopes: [...new Set(b.scopes)].sort(),
      channels: b.channels ? [...new Set(b.channels)].sort() : null,
      createdAt: now,
      expiresAt: b.expiresInDays ? now + b.expiresInDays * 86_400_000 : null,
      revokedAt: null,
    };
    if (!(await this.d.tokens.addToken(record, API_LIMITS.maxTokensPerOwner, now)))
      throw new HchatError(
        'E_FORBIDDEN',
        `at most ${API_LIMITS.maxTokensPerOwner} live tokens per user: revoke one first`,
      );
    this.d.log.write('token_create', { owner: s.username, account, token: id });
    return { ...info(record), token: `${id}.${secret}` };
  }

  async tokens(s: Session): Promise<OpRes<'tokens'>> {
    return { tokens: (await this.d.tokens.tokensOf(s.username)).map(info) };
  }

  async tokenRevoke(s: Session, b: OpReq<'token_revoke'>, now = Date.now()): Promise<object> {
    if (!(await this.d.tokens.revokeToken(b.id, s.username, now)))
      throw new HchatError('E_NOT_FOUND', 'no such live token of yours');
    this.d.log.write('token_revoke', { owner: s.username, token: b.id });
    this.d.bus.publish({ kind: 'token_revoked', tokenId: b.id, revokedAt: now });
    return {};
  }

  /**
   * The live token an `Authorization` header carries (`Bearer <token>`), or `E_TOKEN_INVALID`,
   * the same for every way it can fail.
   */
  async authenticate(header: string | undefined, now = Date.now()): Promise<ApiTokenRecord> {
    const m = /^Bearer (\S+)$/.exec(header ?? '');
    const parts = m ? TOKEN_RE.exec(m[1]!) : null;
    const id = parts ? parts[1]! : 'tok_0000000000000000000000';
    const record = await this.d.tokens.getToken(id);
    const want = record ? Buffer.from(record.secretHash, 'base64url') : NO_HASH;
    const got = sha256(parts ? parts[2]! : '');
    const same = want.length === got.length && crypto.timingSafeEqual(want, got);
    const live =
      record !== undefined &&
      record.revokedAt === null &&
      (record.expiresAt === null || record.expiresAt > now);
    if (!parts || !same || !live) throw new HchatError('E_TOKEN_INVALID');
    return record;
  }

  /**
   * A key certificate for `publicKey`, acting as the token's account (PROTOCOL.md §2.1), marked
   * `bot` for a bot; valid 30 days and never past the token's expiry.
   */
  async certify(token: ApiTokenRecord, publicKey: string, now = Date.now()): Promise<string> {
    checkSigningKey(publicKey);
    const bot = (await this.d.tokens.getBot(token.account)) !== undefined;
    const exp = Math.min(now + API_LIMITS.certMs, token.expiresAt ?? Infinity);
    const claims: CertClaims = {
      typ: 'key',
      sid: token.id,
      u: token.account,
      r: 'user',
      pk: publicKey,
      iat: now,
      exp,
      ...(bot ? { bot: true as const } : {}),
    };
    return this.d.signer.sign(claims);
  }
}
