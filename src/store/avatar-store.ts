/**
 * The server's avatars (docs/PROTOCOL.md §9.5): each user's newest signed avatar, in
 * `<dir>/avatars.db`. A record older than the one held is ignored (sets may arrive out of order
 * from several sessions).
 */
import path from 'node:path';
import type Database from 'better-sqlite3';
import type { AvatarRecord } from '../protocol/avatars.js';
import { avatarHash } from '../shared/avatar-sig.js';
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

export interface AvatarInfo {
  username: string;
  hash: string;
  ts: number;
}

export class AvatarStore {
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

  close(): void {
    this.db.close();
  }

  /** Keeps the record when it is newer than the one held; answers what is held now. */
  put(a: AvatarRecord): AvatarInfo {
    const data = Buffer.from(a.data, 'base64');
    const hash = avatarHash(data);
    this.q.put.run(a.username.toLowerCase(), a.username, a.type, data, hash, a.ts, a.sig, a.cert);
    return this.info(a.username)!;
  }

  info(username: string): AvatarInfo | undefined {
    const r = this.q.get.get(username.toLowerCase());
    return r && { username: r.username, hash: r.hash, ts: r.ts };
  }

  get(username: string): AvatarRecord | undefined {
    const r = this.q.get.get(username.toLowerCase());
    return (
      r && {
        username: r.username,
        type: r.type,
        data: r.data.toString('base64'),
        ts: r.ts,
        sig: r.sig,
        cert: r.cert,
      }
    );
  }
}
