/**
 * Which server store a `--store` value names: none is SQLite in the data folder (one process),
 * a postgres:// or postgresql:// URL is PostgreSQL (several server instances may share it).
 */
import path from 'node:path';
import type { ServerStore } from './server-store.js';
import { SqliteServerStore } from './sqlite-server-store.js';

/** Opens (and migrates) the store `url` names; SQLite in `dataDir` when undefined. */
export async function openServerStore(
  url: string | undefined,
  dataDir: string,
): Promise<ServerStore> {
  if (url === undefined) return new SqliteServerStore(path.join(dataDir, 'server.db'));
  throw new Error(`--store: expected a postgres:// or postgresql:// URL`);
}
