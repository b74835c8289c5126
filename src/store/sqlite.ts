/**
 * Opening an SQLite database the way every process here wants it: WAL, NORMAL sync (durable
 * against a killed process; a power cut may lose the last commits, see docs/ARCHITECTURE.md),
 * foreign keys on, and the schema migrated forward by numbered steps kept in `user_version`.
 * A damaged file stops the process at start with a message naming it, instead of answering
 * `E_INTERNAL` to every request later.
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
  // SQLite's codes, and PostgreSQL's disk_full (53100) for the server store on PostgreSQL.
  if (code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_WRITE' || code === '53100')
    return new HchatError('E_STORAGE_FULL', 'the disk is full; the message was not stored', {
      retryAfterMs: 5000,
    });
  return undefined;
}
import { STORE_LIMITS } from '../shared/limits.js';

/**
 * Makes `file` its owner's alone (0600) before SQLite opens it: created so when missing, whatever
 * the umask, and set so when it was not (SQLite creates a database 0644 less the umask, and its
 * journal, WAL and shared-memory files with the database's own mode). Set before the open, not
 * after: a neighbour who opened a readable file in between would keep reading it.
 */
export function ownFile(file: string): void {
  fs.closeSync(fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600));
  fs.chmodSync(file, 0o600);
}

/** SQLite's codes for a file that is not a database or whose pages are damaged. */
const DAMAGED = new Set(['SQLITE_NOTADB', 'SQLITE_CORRUPT', 'SQLITE_CORRUPT_VTAB']);

/** A migration: SQL, or SQL and then a `fill` that only JavaScript can compute (one transaction). */
export type Migration = string | { sql: string; fill: (db: Database.Database) => void };

/** Opens (creating if needed) the database at `file` and applies pending migrations. */
export function openDatabase(file: string, migrations: readonly Migration[]): Database.Database {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  ownFile(file);
  let db: Database.Database;
  try {
    db = new Database(file);
  } catch (err) {
    throw damaged(file, err);
  }
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    checkIntact(db, file);
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > migrations.length) {
      throw new Error(
        `${file}: schema version ${current} is newer than this program knows (${migrations.length}); ` +
          'use a newer hchat',
      );
    }
    for (let v = current; v < migrations.length; v++) {
      db.transaction(() => {
        const step = migrations[v]!;
        db.exec(typeof step === 'string' ? step : step.sql);
        if (typeof step !== 'string') step.fill(db);
        db.pragma(`user_version = ${v + 1}`);
      })();
    }
  } catch (err) {
    db.close();
    throw damaged(file, err);
  }
  return db;
}

/**
 * Refuses a damaged file: the schema is always read (a cut or foreign file fails there), and a
 * file up to `STORE_LIMITS.quickCheckMaxBytes` gets SQLite's `quick_check` of every page.
 */
function checkIntact(db: Database.Database, file: string): void {
  db.prepare('SELECT count(*) FROM sqlite_master').get();
  if (fs.statSync(file).size > STORE_LIMITS.quickCheckMaxBytes) return;
  const rows = db.pragma('quick_check(5)') as Array<{ quick_check: string }>;
  if (rows.length !== 1 || rows[0]!.quick_check !== 'ok') {
    const what = rows.map((r) => r.quick_check.replace(/\s+/g, ' ')).join('; ');
    throw Object.assign(new Error(`database disk image is malformed (${what.slice(0, 300)})`), {
      code: 'SQLITE_CORRUPT',
    });
  }
}

/** The error to stop with: a damaged file is named, with what to do about it. */
function damaged(file: string, err: unknown): unknown {
  const e = err as { code?: string; message?: string };
  if (typeof e?.code !== 'string' || !DAMAGED.has(e.code)) return err;
  return new Error(
    `${file}: the database is damaged (${e.message}); restore it from a backup, or move it ` +
      'away to start with an empty one',
    { cause: err },
  );
}
