/**
 * Opening an SQLite database the way every process here wants it: WAL, NORMAL sync (durable
 * against a killed process; a power cut may lose the last commits, see docs/ARCHITECTURE.md),
 * foreign keys on, and the schema migrated forward by numbered steps kept in `user_version`.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { HchatError } from '../protocol/errors.js';

/**
 * The catalogue error for a storage failure the other end should hear about (a full disk:
 * E_STORAGE_FULL, retried later), or undefined for anything else (a bug: E_INTERNAL).
 */
export function storageError(err: unknown): HchatError | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_WRITE')
    return new HchatError('E_STORAGE_FULL', 'the disk is full; the message was not stored', {
      retryAfterMs: 5000,
    });
  return undefined;
}

/** Opens (creating if needed) the database at `file` and applies pending migrations. */
export function openDatabase(file: string, migrations: readonly string[]): Database.Database {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const db = new Database(file);
  try {
    fs.chmodSync(file, 0o600);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > migrations.length) {
      throw new Error(
        `${file}: schema version ${current} is newer than this program knows (${migrations.length}); ` +
          'use a newer hchat',
      );
    }
    for (let v = current; v < migrations.length; v++) {
      db.transaction(() => {
        db.exec(migrations[v]!);
        db.pragma(`user_version = ${v + 1}`);
      })();
    }
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}
