/**
 * The server's avatars (docs/PROTOCOL.md §9.5): each user's newest signed avatar. A record older
 * than the one held is ignored (sets may arrive out of order from several sessions, or several
 * instances). `AvatarStore` is the seam: SQLite in `<dir>/avatars.db` for one process (here),
 * PostgreSQL for several instances (pg/pg-avatar-store.ts), picked from `--store`.
 */
import path from 'node:path';
import type Database from 'better-sqlite3';
import type { AvatarRecord } from '../protocol/avatars.js';
import { avatarHash } from '../shared/avatar-sig.js';
import { canonicalSig } from './canonical-spelling.js';
import { openDatabase } from './sqlite.js';

const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE avatars (
    username_lc TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    type TEXT NOT NULL,
    data BLOB NOT NULL,
    hash TEXT NOT NULL,
    ts INTEGER NOT NULL,
    sig TEXT NOT NULL,
    cert TEXT NOT NULL
  ) WITHOUT ROWID;
  `,
];

interface AvatarRow {
  username: string;
  type: AvatarRecord['type'];
  data: Buffer;
  hash: string;
  ts: number;
  sig: string;
  cert: string;
}

/** What a held avatar is known by: its user, its picture's hash and its time. */
export interface AvatarInfo {
  username: string;
  hash: string;
  ts: number;
}

/** Each user's newest signed avatar. */
export interface AvatarStore {
  close(): Promise<void>;
  /** Keeps the record when it is newer than the one held; answers what is held now. */
  put(a: AvatarRecord): Promise<AvatarInfo>;
  info(username: string): Promise<AvatarInfo | undefined>;
  get(username: string): Promise<AvatarRecord | undefined>;
}

/** The avatar store on SQLite, in the data folder. */
export class SqliteAvatarStore implements AvatarStore {
  private readonly db: Database.Database;
  private readonly q;

  constructor(dir: string) {
    this.db = openDatabase(path.join(dir, 'avatars.db'), MIGRATIONS);
    this.q = {
      put: this.db.prepare(
        `INSERT INTO avatars (username_lc, username, type, data, hash, ts, sig, cert)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (username_lc) DO UPDATE SET username = excluded.username, type = excluded.type,
           data = excluded.data, hash = excluded.hash, ts = excluded.ts, sig = excluded.sig,
           cert = excluded.cert
         WHERE excluded.ts > avatars.ts`,
      ),
      get: this.db.prepare<[string], AvatarRow>('SELECT * FROM avatars WHERE username_lc = ?'),
    };
  }

  async close(): Promise<void> {
    this.db.close();
  }

  async put(a: AvatarRecord): Promise<AvatarInfo> {
    const data = Buffer.from(a.data, 'base64');
    const hash = avatarHash(data);
    this.q.put.run(a.username.toLowerCase(), a.username, a.type, data, hash, a.ts, a.sig, a.cert);
    const r = this.q.get.get(a.username.toLowerCase())!;
    return { username: r.username, hash: r.hash, ts: r.ts };
  }

  async info(username: string): Promise<AvatarInfo | undefined> {
    const r = this.q.get.get(username.toLowerCase());
    return r && { username: r.username, hash: r.hash, ts: r.ts };
  }

  async get(username: string): Promise<AvatarRecord | undefined> {
    const r = this.q.get.get(username.toLowerCase());
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
}
