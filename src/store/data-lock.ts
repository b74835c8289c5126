/**
 * One process per data folder. A peer or a server holds `<data>/lock.db` in SQLite's exclusive
 * locking mode for as long as it runs: an operating-system lock, so a killed process leaves none
 * behind and a restart never meets a stale one. A second process started on the same folder
 * (two peers would share one session, outbox and database, each undoing the other) is refused
 * at start, naming the folder.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { untrustedFolder } from './folder-trust.js';
import { ownFile } from './sqlite.js';

export class DataLock {
  private constructor(private readonly db: Database.Database) {}

  /**
   * Makes the folder `dir` if it is not there and takes its lock for a `what` process; throws,
   * naming the folder and what is wrong, when it is a file, cannot be written, belongs to
   * another user or may be written by others, or another process holds it.
   */
  static take(dir: string, what: 'peer' | 'server'): DataLock {
    let db: Database.Database;
    try {
      if (fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory() === false)
        throw new Error(`--data ${dir} is a file, not a folder: give a folder (made if missing)`);
      // A peer's folder is no server's, nor the other way round: the other's files would be
      // read as damaged, or written over (a server's schema in a peer's dms.db).
      const other = what === 'server' ? 'peer' : 'server';
      if (fs.existsSync(path.join(dir, `${other}.db`)))
        throw new Error(
          `--data ${dir} is an hchat ${other}'s data folder (it holds ${other}.db): ` +
            `give this ${what} a folder of its own`,
        );
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      DataLock.checkOwn(dir);
      // 0600 (and so its journal): a neighbour who could open it could hold a lock on it and
      // keep this process from ever starting.
      ownFile(path.join(dir, 'lock.db'));
      db = new Database(path.join(dir, 'lock.db'), { timeout: 0 });
    } catch (err) {
      const said = (err as Error).message;
      if (said.startsWith('--data')) throw err;
      throw new Error(`--data ${dir}: cannot make or write this folder (${said})`);
    }
    try {
      db.pragma('locking_mode = EXCLUSIVE');
      // A write is what takes the exclusive lock; it is held until the connection closes.
      db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER)');
      db.exec('BEGIN EXCLUSIVE');
      db.exec('DELETE FROM holder');
      db.prepare('INSERT INTO holder (pid) VALUES (?)').run(process.pid);
      db.exec('COMMIT');
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY'))
        throw new Error(
          `--data ${dir} is in use by another running hchat process: one process per data folder ` +
            '(stop that one, or give this one another --data)',
        );
      // lock.db holds nothing but the lock: name it, and say that it may simply go.
      throw new Error(
        `${path.join(dir, 'lock.db')}: cannot take the folder's lock (${(err as Error).message}); ` +
          'it holds nothing but the lock: delete it and start again',
      );
    }
    return new DataLock(db);
  }

  /**
   * Throws, naming the folder, unless it (where a symlink leads) and the folders above it are
   * this process's user's own (folder-trust.ts): another local user who made the folder first,
   * who may write it, or who may rename it away, could plant the API token, a symlink or a
   * database of their choosing, or replace a key, as SSH refuses a loose `~/.ssh` and PostgreSQL
   * a loose data directory. Checked before anything in the folder is read or written.
   */
  private static checkOwn(dir: string): void {
    const uid = process.geteuid?.();
    if (uid === undefined) return;
    const wrong = untrustedFolder(dir, uid);
    if (wrong) throw new Error(wrong);
  }

  /** Lets the folder go (at close). */
  release(): void {
    this.db.close();
  }
}
