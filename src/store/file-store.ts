/**
 * Files on disk (issue 14; docs/PROTOCOL.md §9), for the server and for peers alike: each file's
 * manifest and the chunks held of it, one file per chunk under `<dir>/<fileId>/`, written whole
 * (temporary name, then rename) so that a crash leaves either the chunk or nothing. What is held
 * is in `<dir>/files.db`: manifests, the channels a file belongs to, which chunks are here, who
 * put it (quotas), whether it is pinned (never evicted), when it was last used (LRU), and who
 * holds it whole (the server's answer to `file_sources`).
 *
 * A chunk is stored only when its SHA-256 is the manifest's: nothing unverified is ever kept.
 */
import fs from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import type { Manifest } from '../protocol/files.js';
import { chunkHash, chunkLength, fileId } from '../shared/file-id.js';
import { openDatabase } from './sqlite.js';

const MIGRATIONS: readonly string[] = [
  `
      CREATE TABLE files (
        id TEXT PRIMARY KEY,
        manifest TEXT NOT NULL,
        size INTEGER NOT NULL,
        chunk_count INTEGER NOT NULL,
        held INTEGER NOT NULL DEFAULT 0,
        held_bytes INTEGER NOT NULL DEFAULT 0,
        owner TEXT,
        pinned INTEGER NOT NULL DEFAULT 0,
        backed_up INTEGER NOT NULL DEFAULT 0,
        last_used INTEGER NOT NULL
      );
      CREATE INDEX files_owner ON files(owner) WHERE owner IS NOT NULL;
      CREATE TABLE file_channels (
        file_id TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
        channel_id TEXT NOT NULL,
        PRIMARY KEY (file_id, channel_id)
      ) WITHOUT ROWID;
      CREATE INDEX file_channels_channel ON file_channels(channel_id);
      CREATE TABLE file_chunks (
        file_id TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        PRIMARY KEY (file_id, idx)
      ) WITHOUT ROWID;
      CREATE TABLE file_holders (
        file_id TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
        channel_id TEXT NOT NULL,
        username TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (file_id, channel_id, username)
      ) WITHOUT ROWID;
  `,
  // Which messages name a file: a file whose every message in a channel was deleted leaves it.
  `
  CREATE TABLE file_messages (
    message_id TEXT NOT NULL,
    file_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    PRIMARY KEY (message_id, file_id)
  ) WITHOUT ROWID;
  CREATE INDEX file_messages_file ON file_messages(file_id, channel_id);
  `,
  // The server's proof that a channel's uploader has the bytes: a file joins a channel only
  // when every chunk was uploaded for it (knowing a manifest opens nothing).
  `
  CREATE TABLE file_puts (
    file_id TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    channel_id TEXT NOT NULL,
    PRIMARY KEY (file_id, channel_id)
  ) WITHOUT ROWID;
  CREATE TABLE file_proofs (
    file_id TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    channel_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    PRIMARY KEY (file_id, channel_id, idx)
  ) WITHOUT ROWID;
  `,
];

interface FileRow {
  id: string;
  manifest: string;
  size: number;
  chunk_count: number;
  held: number;
  held_bytes: number;
  owner: string | null;
  pinned: number;
  backed_up: number;
  last_used: number;
}

/** What this store holds of a file. */
export interface FileState {
  manifest: Manifest;
  /** Chunks held. */
  held: number;
  /** Bytes held. */
  heldBytes: number;
  complete: boolean;
  pinned: boolean;
  /** For a file put here by its author: the server holds it whole (or refused it for good). */
  backedUp: boolean;
  /** Who put it here (its author on a peer; the user it counts against at the server). */
  owner?: string;
}

/** The manifests and chunks one process holds. */
export class FileStore {
  private readonly db: Database.Database;
  private readonly q;
  /** Manifests already parsed, by file id. */
  private readonly manifests = new Map<string, Manifest>();

  constructor(
    private readonly dir: string,
    private readonly now: () => number = Date.now,
  ) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.db = openDatabase(path.join(dir, 'files.db'), MIGRATIONS);
    this.q = {
      get: this.db.prepare<[string], FileRow>('SELECT * FROM files WHERE id = ?'),
      insert: this.db.prepare(
        'INSERT OR IGNORE INTO files (id, manifest, size, chunk_count, owner, pinned, last_used) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      pin: this.db.prepare('UPDATE files SET pinned = 1 WHERE id = ?'),
      bind: this.db.prepare(
        'INSERT OR IGNORE INTO file_channels (file_id, channel_id) VALUES (?, ?)',
      ),
      inChannel: this.db.prepare<[string, string], { n: number }>(
        'SELECT 1 AS n FROM file_channels WHERE file_id = ? AND channel_id = ?',
      ),
      channels: this.db.prepare<[string], { channel_id: string }>(
        'SELECT channel_id FROM file_channels WHERE file_id = ?',
      ),
      addChunk: this.db.prepare('INSERT OR IGNORE INTO file_chunks (file_id, idx) VALUES (?, ?)'),
      held: this.db.prepare(
        'UPDATE files SET held = held + 1, held_bytes = held_bytes + ? WHERE id = ?',
      ),
      chunks: this.db.prepare<[string], { idx: number }>(
        'SELECT idx FROM file_chunks WHERE file_id = ? ORDER BY idx',
      ),
      hasChunk: this.db.prepare<[string, number], { n: number }>(
        'SELECT 1 AS n FROM file_chunks WHERE file_id = ? AND idx = ?',
      ),
      touch: this.db.prepare('UPDATE files SET last_used = ? WHERE id = ?'),
      usage: this.db.prepare<[string], { bytes: number | null }>(
        'SELECT SUM(size) AS bytes FROM files WHERE owner = ?',
      ),
      cached: this.db.prepare<[], { bytes: number | null }>(
        'SELECT SUM(held_bytes) AS bytes FROM files WHERE pinned = 0',
      ),
      lru: this.db.prepare<[], { id: string; held_bytes: number }>(
        'SELECT id, held_bytes FROM files WHERE pinned = 0 AND held_bytes > 0 ORDER BY last_used LIMIT 64',
      ),
      remove: this.db.prepare('DELETE FROM files WHERE id = ?'),
      backedUp: this.db.prepare('UPDATE files SET backed_up = ? WHERE id = ?'),
      needsBackup: this.db.prepare(
        'UPDATE files SET owner = COALESCE(owner, ?), backed_up = 0 WHERE id = ?',
      ),
      notBackedUp: this.db.prepare<[string], { id: string }>(
        'SELECT id FROM files WHERE owner = ? AND backed_up = 0 ORDER BY last_used',
      ),
      addHolder: this.db.prepare(
        'INSERT INTO file_holders (file_id, channel_id, username, at) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET at = excluded.at',
      ),
      holders: this.db.prepare<[string, string], { username: string }>(
        'SELECT username FROM file_holders WHERE file_id = ? AND channel_id = ? ORDER BY at DESC LIMIT 500',
      ),
      ofChannel: this.db.prepare<[string, string], { file_id: string }>(
        'SELECT file_id FROM file_channels WHERE channel_id = ? UNION SELECT file_id FROM file_puts WHERE channel_id = ?',
      ),
      dropChannel: [
        'file_channels',
        'file_puts',
        'file_proofs',
        'file_holders',
        'file_messages',
      ].map((table) => this.db.prepare(`DELETE FROM ${table} WHERE channel_id = ?`)),
      prove: this.db.prepare(
        'INSERT OR IGNORE INTO file_proofs (file_id, channel_id, idx) VALUES (?, ?, ?)',
      ),
      proofs: this.db.prepare<[string, string], { idx: number }>(
        'SELECT idx FROM file_proofs WHERE file_id = ? AND channel_id = ? ORDER BY idx',
      ),
      dropProofs: this.db.prepare('DELETE FROM file_proofs WHERE file_id = ? AND channel_id = ?'),
      putFor: this.db.prepare(
        'INSERT OR IGNORE INTO file_puts (file_id, channel_id) VALUES (?, ?)',
      ),
      isPut: this.db.prepare<[string, string], { n: number }>(
        'SELECT 1 AS n FROM file_puts WHERE file_id = ? AND channel_id = ?',
      ),
      dropPut: this.db.prepare('DELETE FROM file_puts WHERE file_id = ? AND channel_id = ?'),
      ref: this.db.prepare(
        'INSERT OR IGNORE INTO file_messages (message_id, file_id, channel_id) VALUES (?, ?, ?)',
      ),
      refsOf: this.db.prepare<[string], { file_id: string; channel_id: string }>(
        'SELECT file_id, channel_id FROM file_messages WHERE message_id = ?',
      ),
      unref: this.db.prepare('DELETE FROM file_messages WHERE message_id = ?'),
      naming: this.db.prepare<[string, string], { message_id: string }>(
        'SELECT message_id FROM file_messages WHERE file_id = ? AND channel_id = ? LIMIT 100',
      ),
      stillNamed: this.db.prepare<[string, string], { n: number }>(
        'SELECT 1 AS n FROM file_messages WHERE file_id = ? AND channel_id = ? LIMIT 1',
      ),
      unbind: this.db.prepare('DELETE FROM file_channels WHERE file_id = ? AND channel_id = ?'),
      unbound: this.db.prepare<{ id: string }, { n: number }>(
        `SELECT 1 AS n FROM files WHERE id = @id
           AND NOT EXISTS (SELECT 1 FROM file_channels WHERE file_id = @id)
           AND NOT EXISTS (SELECT 1 FROM file_puts WHERE file_id = @id)`,
      ),
    };
  }

  close(): void {
    this.db.close();
  }

  /**
   * Keeps a manifest (idempotent), as a file of `channelId`. `owner` is who it counts against
   * (the first to put it); `pinned` keeps it from eviction (a file this peer wrote or hosts).
   */
  add(
    manifest: Manifest,
    channelId: string,
    opts: { owner?: string; pinned?: boolean } = {},
  ): string {
    let id = '';
    this.db.transaction(() => {
      id = this.keep(manifest, opts.owner ?? null, opts.pinned);
      this.q.bind.run(id, channelId);
      // In the channel now: what was proven towards it (`offer`, `prove`) is moot.
      this.q.dropProofs.run(id, channelId);
      this.q.dropPut.run(id, channelId);
    })();
    return id;
  }

  /**
   * Keeps a manifest without giving the file to the channel yet (the server's `file_put`): its
   * chunks may now be uploaded for that channel.
   */
  addManifest(manifest: Manifest, channelId: string, owner: string): string {
    const id = this.keep(manifest, owner, false);
    if (!this.inChannel(id, channelId)) this.q.putFor.run(id, channelId);
    return id;
  }

  /**
   * A peer's copy of a file it fetches for `channelId` and does not hold for it yet: the
   * manifest is kept, but the file becomes the channel's here only once every chunk came for
   * it (`prove`), as at the server. Bytes held for another channel are not this one's because
   * a message of this one names them: anyone who knows a file's reference may write that.
   */
  offer(manifest: Manifest, channelId: string, opts: { pinned?: boolean } = {}): string {
    let id = '';
    this.db.transaction(() => {
      id = this.keep(manifest, null, opts.pinned);
      if (!this.inChannel(id, channelId)) this.q.putFor.run(id, channelId);
    })();
    return id;
  }

  /**
   * Keeps a manifest (idempotent: a file already here keeps its owner), counted against `owner`
   * when it is new, pinned when asked; its id.
   */
  private keep(manifest: Manifest, owner: string | null, pinned = false): string {
    const id = fileId(manifest);
    this.q.insert.run(
      id,
      JSON.stringify(manifest),
      manifest.size,
      manifest.chunks.length,
      owner,
      pinned ? 1 : 0,
      this.now(),
    );
    if (pinned) this.q.pin.run(id);
    return id;
  }

  /** The chunks held here that are `channelId`'s: all of them once the file is in it. */
  chunksFor(id: string, channelId: string): number[] {
    return this.inChannel(id, channelId) ? this.chunks(id) : this.proven(id, channelId);
  }

  /** True when the file was put for this channel (its chunks may be uploaded for it). */
  isPut(id: string, channelId: string): boolean {
    return this.inChannel(id, channelId) || this.q.isPut.get(id, channelId) !== undefined;
  }

  /** The chunks uploaded for `channelId` of a file not yet in it. */
  proven(id: string, channelId: string): number[] {
    return this.q.proofs.all(id, channelId).map((r) => r.idx);
  }

  /**
   * Chunk `index` was uploaded for `channelId` (and matched): once every chunk was, the file
   * joins the channel. Answers whether it is in the channel now.
   */
  prove(id: string, channelId: string, index: number): boolean {
    if (this.inChannel(id, channelId)) return true;
    const m = this.manifest(id);
    if (!m) return false;
    return this.db.transaction(() => {
      this.q.prove.run(id, channelId, index);
      if (this.q.proofs.all(id, channelId).length < m.chunks.length) return false;
      this.q.dropProofs.run(id, channelId);
      this.q.dropPut.run(id, channelId);
      this.q.bind.run(id, channelId);
      return true;
    })();
  }

  state(id: string): FileState | undefined {
    const r = this.q.get.get(id);
    if (!r) return undefined;
    return {
      manifest: this.parsed(r),
      held: r.held,
      heldBytes: r.held_bytes,
      complete: r.held === r.chunk_count,
      pinned: r.pinned === 1,
      backedUp: r.backed_up !== 0,
      ...(r.owner !== null ? { owner: r.owner } : {}),
    };
  }

  manifest(id: string): Manifest | undefined {
    return this.state(id)?.manifest;
  }

  /**
   * A row's manifest, parsed once: an id names one manifest for ever (its hash), and every
   * chunk served or stored reads it.
   */
  private parsed(r: FileRow): Manifest {
    let m = this.manifests.get(r.id);
    if (!m) {
      m = JSON.parse(r.manifest) as Manifest;
      if (this.manifests.size >= 1000) this.manifests.clear();
      this.manifests.set(r.id, m);
    }
    return m;
  }

  /** True when the file belongs to this channel here. */
  inChannel(id: string, channelId: string): boolean {
    return this.q.inChannel.get(id, channelId) !== undefined;
  }

  channels(id: string): string[] {
    return this.q.channels.all(id).map((r) => r.channel_id);
  }

  /** The indexes of the chunks held, in order. */
  chunks(id: string): number[] {
    return this.q.chunks.all(id).map((r) => r.idx);
  }

  hasChunk(id: string, index: number): boolean {
    return this.q.hasChunk.get(id, index) !== undefined;
  }

  /**
   * Stores chunk `index` when its bytes hash to the manifest's; false (nothing written) when
   * they do not. Idempotent.
   */
  putChunk(id: string, index: number, data: Buffer): boolean {
    const m = this.manifest(id);
    if (!m || index >= m.chunks.length) return false;
    if (data.length !== chunkLength(m, index) || chunkHash(data) !== m.chunks[index]) return false;
    if (this.hasChunk(id, index)) return true;
    const file = this.chunkPath(id, index);
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.tmp`;
    // 0600 whatever the umask, as every other file of the data folder: a chunk is a piece of
    // someone's file. A leftover of a crash goes first, so the mode is this write's own.
    fs.rmSync(tmp, { force: true });
    fs.writeFileSync(tmp, data, { mode: 0o600, flag: 'wx' });
    fs.renameSync(tmp, file);
    this.db.transaction(() => {
      if (this.q.addChunk.run(id, index).changes === 1) this.q.held.run(data.length, id);
    })();
    return true;
  }

  /** A chunk's bytes, when held (checked against the manifest again: a disk can rot). */
  readChunk(id: string, index: number): Buffer | undefined {
    const m = this.manifest(id);
    if (!m || !this.hasChunk(id, index)) return undefined;
    try {
      const data = fs.readFileSync(this.chunkPath(id, index));
      return chunkHash(data) === m.chunks[index] ? data : undefined;
    } catch {
      return undefined;
    }
  }

  /** Where chunk `index` lies on disk (for streaming a whole file out). */
  chunkPath(id: string, index: number): string {
    return path.join(this.dir, id, String(index));
  }

  touch(id: string): void {
    this.q.touch.run(this.now(), id);
  }

  /** Bytes of the files `owner` put here (the server's quota). */
  usage(owner: string): number {
    return this.q.usage.get(owner)?.bytes ?? 0;
  }

  /** Files `owner` put here that the server does not hold whole yet (a peer's own uploads). */
  notBackedUp(owner: string): string[] {
    return this.q.notBackedUp.all(owner).map((r) => r.id);
  }

  /** Attached here (again): the server is to hold it for every channel it is in here. */
  needsBackup(id: string, owner: string): void {
    this.q.needsBackup.run(owner, id);
  }

  /** The server holds it whole (`held`), or refused it for good (its messages go anyway). */
  markBackedUp(id: string, held = true): void {
    this.q.backedUp.run(held ? 1 : 2, id);
  }

  /** Records that `username` holds the file whole, for readers of `channelId`. */
  addHolder(id: string, channelId: string, username: string): void {
    this.q.addHolder.run(id, channelId, username, this.now());
  }

  /** Who said they hold the file whole, newest first. */
  holders(id: string, channelId: string): string[] {
    return this.q.holders.all(id, channelId).map((r) => r.username);
  }

  /**
   * Drops the least recently used unpinned files until the unpinned ones take at most
   * `maxBytes`; answers the ids dropped.
   */
  evict(maxBytes: number): string[] {
    const dropped: string[] = [];
    let total = this.q.cached.get()?.bytes ?? 0;
    while (total > maxBytes) {
      const batch = this.q.lru.all();
      if (batch.length === 0) break;
      for (const r of batch) {
        if (total <= maxBytes) break;
        this.remove(r.id);
        total -= r.held_bytes;
        dropped.push(r.id);
      }
    }
    return dropped;
  }

  /**
   * An item reached a replica's log: a message names its files; a delete that took its message
   * away (`erased`) takes the files no other message of the channel names. Answers the files
   * removed from this store.
   */
  itemStored(
    m: {
      id: string;
      channelId: string;
      kind?: string;
      target?: string;
      files?: ReadonlyArray<{ id: string }>;
    },
    erased: boolean,
  ): string[] {
    if ((m.kind ?? 'message') === 'message' && m.files)
      this.refMessage(
        m.id,
        m.channelId,
        m.files.map((f) => f.id),
      );
    return m.kind === 'delete' && m.target !== undefined && erased
      ? this.unrefMessage(m.target)
      : [];
  }

  /** A message of `channelId` names these files. */
  refMessage(messageId: string, channelId: string, fileIds: readonly string[]): void {
    for (const f of fileIds) this.q.ref.run(messageId, f, channelId);
  }

  /** The messages of `channelId` that name the file (as many as 100). */
  messagesNaming(id: string, channelId: string): string[] {
    return this.q.naming.all(id, channelId).map((r) => r.message_id);
  }

  /**
   * A message was deleted: a file no other message of its channel names leaves that channel,
   * and goes when no channel here has it (nor waits for its upload to one). Answers the files
   * removed.
   */
  unrefMessage(messageId: string): string[] {
    const refs = this.q.refsOf.all(messageId);
    if (refs.length === 0) return [];
    this.q.unref.run(messageId);
    for (const r of refs)
      if (!this.q.stillNamed.get(r.file_id, r.channel_id))
        this.q.unbind.run(r.file_id, r.channel_id);
    return this.removeUnbound(refs.map((r) => r.file_id));
  }

  /**
   * A channel is gone, with the uploads, holders and messages it had: its files go too, unless
   * another channel here has them or waits for their upload (as the PostgreSQL store does).
   */
  dropChannel(channelId: string): void {
    const ids = this.q.ofChannel.all(channelId, channelId).map((r) => r.file_id);
    this.db.transaction(() => {
      for (const drop of this.q.dropChannel) drop.run(channelId);
    })();
    this.removeUnbound(ids);
  }

  /** Removes those of these files no channel here has nor waits for; answers the ones removed. */
  private removeUnbound(ids: readonly string[]): string[] {
    const gone = [...new Set(ids)].filter((id) => this.q.unbound.get({ id }) !== undefined);
    for (const id of gone) this.remove(id);
    return gone;
  }

  remove(id: string): void {
    this.manifests.delete(id);
    this.q.remove.run(id);
    fs.rmSync(path.join(this.dir, id), { recursive: true, force: true });
  }
}
