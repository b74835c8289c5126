/**
 * Which server store a `--store` value names: none is SQLite in the data folder (one process),
 * a postgres:// or postgresql:// URL is PostgreSQL (several server instances may share it). The
 * PostgreSQL stores are loaded only then: a server on SQLite never loads `pg`.
 */
import path from 'node:path';
import type { ServerStore } from './server-store.js';
import { SqliteServerStore } from './sqlite-server-store.js';
import type { DmStore } from './dm-store.js';
import { SqliteDmStore } from './sqlite-dm-store.js';
import { SqliteAvatarStore, type AvatarStore } from './avatar-store.js';
import { FileStore } from './file-store.js';
import { SqliteServerFileStore, type ServerFileStore } from './server-file-store.js';
import type { ApiTokenStore } from './api-token-store.js';
import { SqliteApiTokenStore } from './sqlite-api-token-store.js';

/** Opens (and migrates) the store `url` names; SQLite in `dataDir` when undefined. */
export async function openServerStore(
  url: string | undefined,
  dataDir: string,
): Promise<ServerStore> {
  if (url === undefined) return new SqliteServerStore(path.join(dataDir, 'server.db'));
  if (isPostgresUrl(url))
    return (await import('./pg/pg-server-store.js')).PostgresServerStore.open(url);
  throw new Error('--store: expected a postgres:// or postgresql:// URL');
}

/** True for the URLs that select PostgreSQL. */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

/** Opens the DM store beside the server store `url` names: PostgreSQL, or `dms.db` in `dataDir`. */
export async function openDmStore(url: string | undefined, dataDir: string): Promise<DmStore> {
  if (url === undefined) return new SqliteDmStore(dataDir);
  if (isPostgresUrl(url)) return (await import('./pg/pg-dm-store.js')).PostgresDmStore.open(url);
  throw new Error('--store: expected a postgres:// or postgresql:// URL');
}

/**
 * Opens the bots and API tokens beside the server store `url` names: PostgreSQL, or `tokens.db`
 * in `dataDir`.
 */
export async function openApiTokenStore(
  url: string | undefined,
  dataDir: string,
): Promise<ApiTokenStore> {
  if (url === undefined) return new SqliteApiTokenStore(dataDir);
  if (isPostgresUrl(url))
    return (await import('./pg/pg-api-token-store.js')).PostgresApiTokenStore.open(url);
  throw new Error('--store: expected a postgres:// or postgresql:// URL');
}

/** Opens the avatar store beside the server store `url` names. */
export async function openAvatarStore(
  url: string | undefined,
  dataDir: string,
): Promise<AvatarStore> {
  if (url === undefined) return new SqliteAvatarStore(dataDir);
  if (isPostgresUrl(url))
    return (await import('./pg/pg-avatar-store.js')).PostgresAvatarStore.open(url);
  throw new Error('--store: expected a postgres:// or postgresql:// URL');
}

/** Opens the server's file backups beside the server store `url` names (`files/` in `dataDir`). */
export async function openFileStore(
  url: string | undefined,
  dataDir: string,
): Promise<ServerFileStore> {
  if (url === undefined)
    return new SqliteServerFileStore(new FileStore(path.join(dataDir, 'files')));
  if (isPostgresUrl(url))
    return (await import('./pg/pg-file-store.js')).PostgresFileStore.open(url);
  throw new Error('--store: expected a postgres:// or postgresql:// URL');
}
