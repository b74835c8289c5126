/**
 * The avatar store on PostgreSQL (`--store postgres://…`): every instance sees the avatar any of
 * them took. One upsert keeps the newer record whoever writes at once (`WHERE excluded.ts >`).
 */
import type pg from 'pg';
import { z } from 'zod';
import { AvatarType, type AvatarRecord } from '../../protocol/avatars.js';
import { avatarHash } from '../../shared/avatar-sig.js';
import type { AvatarInfo, AvatarStore } from '../avatar-store.js';
import { canonicalSig } from '../canonical-spelling.js';
import { openPool } from './pool.js';
import { Int } from './rows.js';

/** Connections per server instance for avatars. */
const POOL_SIZE = 2;

const AvatarRow = z.object({
  username: z.string(),
  type: AvatarType,
  data: z.instanceof(Buffer),
  hash: z.string(),
  ts: Int,
  sig: z.string(),
  cert: z.string(),
});

/** The PostgreSQL avatar store; `open` it (migrations) before use. */
export class PostgresAvatarStore implements AvatarStore {
  private constructor(private readonly pool: pg.Pool) {}

  /** Connects to `url` and applies pending migrations. */
  static async open(url: string): Promise<PostgresAvatarStore> {
    return new PostgresAvatarStore(await openPool(url, POOL_SIZE, ' (avatars)'));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  async put(a: AvatarRecord): Promise<AvatarInfo> {
    const data = Buffer.from(a.data, 'base64');
    await this.pool.query(
      `INSERT INTO avatars (username_lc, username, type, data, hash, ts, sig, cert)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (username_lc) DO UPDATE SET username = excluded.username, type = excluded.type,
         data = excluded.data, hash = excluded.hash, ts = excluded.ts, sig = excluded.sig,
         cert = excluded.cert
       WHERE excluded.ts > avatars.ts`,
      [a.username.toLowerCase(), a.username, a.type, data, avatarHash(data), a.ts, a.sig, a.cert],
    );
    return (await this.info(a.username))!;
  }

  async info(username: string): Promise<AvatarInfo | undefined> {
    const r = await this.row(username);
    return r && { username: r.username, hash: r.hash, ts: r.ts };
  }

  async get(username: string): Promise<AvatarRecord | undefined> {
    const r = await this.row(username);
    return (
      r && {
        username: r.username,
        type: r.type,
        data: r.data.toString('base64'),
        ts: r.ts,
        sig: canonicalSig(r.sig),
        cert: r.cert,
      }
    );
  }

  private async row(username: string) {
    const r = await this.pool.query('SELECT * FROM avatars WHERE username_lc = $1', [
      username.toLowerCase(),
    ]);
    return r.rows[0] === undefined ? undefined : AvatarRow.parse(r.rows[0]);
  }
}
