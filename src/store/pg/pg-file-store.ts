/**
 * The server's file backups in PostgreSQL (`hchat server --store postgres://…`), shared by every
 * instance: the same answers as the one-process store (test/file-store-conformance.test.ts), and
 * the same rules across instances. A chunk's bytes are a row of `file_chunks`, written with
 * `ON CONFLICT DO NOTHING` once they match the manifest, so two instances storing the same chunk
 * at once both succeed and it is counted once. A user's puts are checked against the quota under
 * an advisory lock of that user; whatever changes which channels a file is in (the last proof,
 * a message naming it or deleted, a channel deleted) runs under an advisory lock of the file.
 */
import type pg from 'pg';
import { z } from 'zod';
import { Manifest } from '../../protocol/files.js';
import { chunkHash, chunkLength, fileId } from '../../shared/file-id.js';
import { withinQuota, type FileNamingItem, type ServerFileStore } from '../server-file-store.js';
import { openPool, transactionOn, type Transaction } from './pool.js';
import { Int } from './rows.js';

/** Connections per server instance for files (apart from the server store's). */
const POOL_SIZE = 4;
/** Manifests kept parsed per instance (an id names one manifest for ever: its hash). */
const MANIFEST_CACHE = 1000;
/** A file's last use is written at most this often (a read of every chunk is not a write each). */
const TOUCH_EVERY_MS = 60_000;

const Held = z.object({ held: Int, chunk_count: Int });
const Sum = z.object({ bytes: Int.nullable() });

/** The PostgreSQL file store; `open` it (migrations) before use. */
export class PostgresFileStore implements ServerFileStore {
  private readonly transaction: Transaction;
  private readonly manifests = new Map<string, Manifest>();

  private constructor(
    private readonly pool: pg.Pool,
    private readonly now: () => number,
  ) {
    this.transaction = transactionOn(pool);
  }

  /** Connects to `url` and applies pending migrations. */
  static async open(url: string, now: () => number = Date.now): Promise<PostgresFileStore> {
    return new PostgresFileStore(await openPool(url, POOL_SIZE, ' (files)'), now);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  async addManifest(
    manifest: Manifest,
    channelId: string,
    owner: string,
    quotaBytes: number,
  ): Promise<boolean> {
    const id = fileId(manifest);
    return this.transaction(async (c) => {
      // One user's puts one at a time, whichever instance takes them: the quota holds.
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`hchat file quota ${owner}`]);
      const known = (await c.query('SELECT 1 FROM files WHERE id = $1', [id])).rowCount! > 0;
      if (!known) {
        const used = await c.query('SELECT sum(size) AS bytes FROM files WHERE owner = $1', [
          owner,
        ]);
        if (!withinQuota(Sum.parse(used.rows[0]).bytes ?? 0, manifest.size, quotaBytes))
          return false;
      }
      await c.query(
        `INSERT INTO files (id, manifest, size, chunk_count, owner, last_used)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
        [id, JSON.stringify(manifest), manifest.size, manifest.chunks.length, owner, this.now()],
      );
      await c.query(
        `INSERT INTO file_puts (file_id, channel_id)
         SELECT $1, $2 WHERE NOT EXISTS
           (SELECT 1 FROM file_channels WHERE file_id = $1 AND channel_id = $2)
         ON CONFLICT DO NOTHING`,
        [id, channelId],
      );
      return true;
    });
  }

  async manifest(id: string): Promise<Manifest | undefined> {
    const r = await this.pool.query('SELECT manifest FROM files WHERE id = $1', [id]);
    return r.rows[0] === undefined
      ? undefined
      : this.parsed(id, z.string().parse(r.rows[0].manifest));
  }

  async complete(id: string): Promise<boolean> {
    const r = await this.pool.query('SELECT held, chunk_count FROM files WHERE id = $1', [id]);
    if (r.rows[0] === undefined) return false;
    const row = Held.parse(r.rows[0]);
    return row.held === row.chunk_count;
  }

  async isPut(id: string, channelId: string): Promise<boolean> {
    const r = await this.pool.query(
      `SELECT 1 FROM file_channels WHERE file_id = $1 AND channel_id = $2
       UNION ALL SELECT 1 FROM file_puts WHERE file_id = $1 AND channel_id = $2`,
      [id, channelId],
    );
    return r.rowCount! > 0;
  }

  async inChannel(id: string, channelId: string): Promise<boolean> {
    return inChannel(this.pool, id, channelId);
  }

  async proven(id: string, channelId: string): Promise<number[]> {
    const r = await this.pool.query(
      'SELECT idx FROM file_proofs WHERE file_id = $1 AND channel_id = $2 ORDER BY idx',
      [id, channelId],
    );
    return r.rows.map((row) => Int.parse(row.idx));
  }

  async putChunk(id: string, index: number, data: Buffer): Promise<boolean> {
    const m = await this.known(id);
    if (!m || index >= m.chunks.length) return false;
    if (data.length !== chunkLength(m, index) || chunkHash(data) !== m.chunks[index]) return false;
    // One statement: the chunk and what it adds to `held` go together, or neither when another
    // instance stored it first (or its file was removed meanwhile).
    await this.pool.query(
      `WITH stored AS (
         INSERT INTO file_chunks (file_id, idx, data)
         SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM files WHERE id = $1)
         ON CONFLICT DO NOTHING RETURNING 1)
       UPDATE files SET held = held + 1, held_bytes = held_bytes + $4
       WHERE id = $1 AND EXISTS (SELECT 1 FROM stored)`,
      [id, index, data, data.length],
    );
    return true;
  }

  async prove(id: string, channelId: string, index: number): Promise<boolean> {
    if (await this.inChannel(id, channelId)) return true;
    const m = await this.known(id);
    if (!m) return false;
    return this.transaction(async (c) => {
      await lockFiles(c, [id]);
      if (await inChannel(c, id, channelId)) return true;
      // The proof needs its file (a foreign key): gone meanwhile, nothing is proven.
      const r = await c.query(
        `INSERT INTO file_proofs (file_id, channel_id, idx)
         SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM files WHERE id = $1)
         ON CONFLICT DO NOTHING`,
        [id, channelId, index],
      );
      if (r.rowCount === 0 && !(await this.exists(c, id))) return false;
      const n = await c.query(
        'SELECT count(*) AS n FROM file_proofs WHERE file_id = $1 AND channel_id = $2',
        [id, channelId],
      );
      if (Int.parse(n.rows[0].n) < m.chunks.length) return false;
      await c.query('DELETE FROM file_proofs WHERE file_id = $1 AND channel_id = $2', [
        id,
        channelId,
      ]);
      await c.query('DELETE FROM file_puts WHERE file_id = $1 AND channel_id = $2', [
        id,
        channelId,
      ]);
      await c.query(
        'INSERT INTO file_channels (file_id, channel_id) VALUES ($1, $2) ON CONFLICT DO NOTHING',
        [id, channelId],
      );
      return true;
    });
  }

  async readChunk(id: string, index: number): Promise<Buffer | undefined> {
    const m = await this.known(id);
    if (!m) return undefined;
    const r = await this.pool.query(
      'SELECT data FROM file_chunks WHERE file_id = $1 AND idx = $2',
      [id, index],
    );
    const data = r.rows[0] === undefined ? undefined : z.instanceof(Buffer).parse(r.rows[0].data);
    return data !== undefined && chunkHash(data) === m.chunks[index] ? data : undefined;
  }

  async touch(id: string): Promise<void> {
    const now = this.now();
    await this.pool.query('UPDATE files SET last_used = $2 WHERE id = $1 AND last_used < $3', [
      id,
      now,
      now - TOUCH_EVERY_MS,
    ]);
  }

  async usage(owner: string): Promise<number> {
    const r = await this.pool.query('SELECT sum(size) AS bytes FROM files WHERE owner = $1', [
      owner,
    ]);
    return Sum.parse(r.rows[0]).bytes ?? 0;
  }

  async addHolder(id: string, channelId: string, username: string): Promise<void> {
    await this.pool.query(
      `INSERT INTO file_holders (file_id, channel_id, username, at)
       SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM files WHERE id = $1)
       ON CONFLICT (file_id, channel_id, username) DO UPDATE SET at = excluded.at`,
      [id, channelId, username, this.now()],
    );
  }

  async holders(id: string, channelId: string): Promise<string[]> {
    const r = await this.pool.query(
      `SELECT username FROM file_holders WHERE file_id = $1 AND channel_id = $2
       ORDER BY at DESC LIMIT 500`,
      [id, channelId],
    );
    return r.rows.map((row) => z.string().parse(row.username));
  }

  async itemStored(m: FileNamingItem, erased: boolean): Promise<string[]> {
    if ((m.kind ?? 'message') === 'message' && m.files && m.files.length > 0)
      await this.refMessage(
        m.id,
        m.channelId,
        m.files.map((f) => f.id),
      );
    return m.kind === 'delete' && m.target !== undefined && erased
      ? this.unrefMessage(m.target)
      : [];
  }

  /** A message of `channelId` names these files. */
  private async refMessage(messageId: string, channelId: string, ids: string[]): Promise<void> {
    await this.transaction(async (c) => {
      await lockFiles(c, ids);
      await c.query(
        `INSERT INTO file_messages (message_id, file_id, channel_id)
         SELECT $1, f, $3 FROM unnest($2::text[]) AS f ON CONFLICT DO NOTHING`,
        [messageId, ids, channelId],
      );
    });
  }

  /**
   * A message was deleted: a file no other message of its channel names leaves that channel,
   * and goes when no channel has it (nor waits for its upload to one). Answers the files removed.
   */
  private async unrefMessage(messageId: string): Promise<string[]> {
    return this.transaction(async (c) => {
      const refs = await c.query(
        'SELECT file_id, channel_id FROM file_messages WHERE message_id = $1',
        [messageId],
      );
      if (refs.rowCount === 0) return [];
      const named = refs.rows.map((r) => ({
        file: z.string().parse(r.file_id),
        channel: z.string().parse(r.channel_id),
      }));
      await lockFiles(
        c,
        named.map((r) => r.file),
      );
      await c.query('DELETE FROM file_messages WHERE message_id = $1', [messageId]);
      const gone: string[] = [];
      for (const r of named) {
        const still = await c.query(
          'SELECT 1 FROM file_messages WHERE file_id = $1 AND channel_id = $2 LIMIT 1',
          [r.file, r.channel],
        );
        if (still.rowCount! > 0) continue;
        await c.query('DELETE FROM file_channels WHERE file_id = $1 AND channel_id = $2', [
          r.file,
          r.channel,
        ]);
        if (await this.removeUnbound(c, r.file)) gone.push(r.file);
      }
      return gone;
    });
  }

  async dropChannel(channelId: string): Promise<void> {
    await this.transaction(async (c) => {
      const r = await c.query(
        `SELECT file_id FROM file_channels WHERE channel_id = $1
         UNION SELECT file_id FROM file_puts WHERE channel_id = $1`,
        [channelId],
      );
      const ids = r.rows.map((row) => z.string().parse(row.file_id));
      await lockFiles(c, ids);
      for (const table of [
        'file_channels',
        'file_puts',
        'file_proofs',
        'file_holders',
        'file_messages',
      ])
        await c.query(`DELETE FROM ${table} WHERE channel_id = $1`, [channelId]);
      for (const id of ids) await this.removeUnbound(c, id);
    });
  }

  /** Removes the file (its chunks with it) when no channel has it nor waits for it. */
  private async removeUnbound(c: pg.PoolClient, id: string): Promise<boolean> {
    const r = await c.query(
      `DELETE FROM files WHERE id = $1
         AND NOT EXISTS (SELECT 1 FROM file_channels WHERE file_id = $1)
         AND NOT EXISTS (SELECT 1 FROM file_puts WHERE file_id = $1)`,
      [id],
    );
    if (r.rowCount === 0) return false;
    this.manifests.delete(id);
    return true;
  }

  private async exists(c: pg.PoolClient, id: string): Promise<boolean> {
    return (await c.query('SELECT 1 FROM files WHERE id = $1', [id])).rowCount! > 0;
  }

  /** The manifest of a file held, parsed once per instance (read from the store when new). */
  private async known(id: string): Promise<Manifest | undefined> {
    return this.manifests.get(id) ?? this.manifest(id);
  }

  private parsed(id: string, text: string): Manifest {
    let m = this.manifests.get(id);
    if (!m) {
      m = Manifest.parse(JSON.parse(text));
      if (this.manifests.size >= MANIFEST_CACHE) this.manifests.clear();
      this.manifests.set(id, m);
    }
    return m;
  }
}

async function inChannel(
  q: pg.Pool | pg.PoolClient,
  id: string,
  channelId: string,
): Promise<boolean> {
  const r = await q.query('SELECT 1 FROM file_channels WHERE file_id = $1 AND channel_id = $2', [
    id,
    channelId,
  ]);
  return r.rowCount! > 0;
}

/** Takes the advisory locks of these files, in one order (no two transactions deadlock). */
async function lockFiles(c: pg.PoolClient, ids: readonly string[]): Promise<void> {
  for (const id of [...new Set(ids)].sort())
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`hchat file ${id}`]);
}
