/**
 * The server's file backups (docs/PROTOCOL.md §9) behind one asynchronous seam, `ServerFileStore`:
 * manifests, which channels a file is in, the chunks uploaded for a channel (proofs), the chunk
 * bytes, who put each file (quotas), who holds it whole, and which messages name it. One process
 * keeps them in `<dataDir>/files/` through the peers' `FileStore` (here, its layout unchanged);
 * several instances keep them in PostgreSQL (pg/pg-file-store.ts, migration 5), picked from
 * `--store` by `openFileStore`. Both answer alike (test/file-store-conformance.test.ts).
 *
 * A chunk is stored only when its SHA-256 is the manifest's: nothing unverified is ever kept.
 */
import type { Manifest } from '../protocol/files.js';
import { fileId } from '../shared/file-id.js';
import { FileStore } from './file-store.js';

/** What an item does to files: a message names them, a delete may take them away. */
export interface FileNamingItem {
  id: string;
  channelId: string;
  kind?: string;
  target?: string;
  files?: ReadonlyArray<{ id: string }>;
}

/** The server's file backups. */
export interface ServerFileStore {
  close(): Promise<void>;
  /**
   * `file_put`: keeps the manifest (idempotent) and lets its chunks be uploaded for `channelId`.
   * A file not held yet counts against `owner`; false (nothing kept) when it would take `owner`
   * past `quotaBytes`. A file held already is charged to whoever put it first.
   */
  addManifest(
    manifest: Manifest,
    channelId: string,
    owner: string,
    quotaBytes: number,
  ): Promise<boolean>;
  /** The manifest of a file held, in any channel or none yet. */
  manifest(id: string): Promise<Manifest | undefined>;
  /** True when every chunk of the file is held. */
  complete(id: string): Promise<boolean>;
  /** True when the file was put for the channel (its chunks may be uploaded for it). */
  isPut(id: string, channelId: string): Promise<boolean>;
  /** True when the file belongs to the channel (every chunk was uploaded for it). */
  inChannel(id: string, channelId: string): Promise<boolean>;
  /** The chunks uploaded for `channelId` of a file not yet in it. */
  proven(id: string, channelId: string): Promise<number[]>;
  /**
   * Stores chunk `index` when its bytes hash to the manifest's; false (nothing written) when
   * they do not. Idempotent, also when two instances store the same chunk at once.
   */
  putChunk(id: string, index: number, data: Buffer): Promise<boolean>;
  /**
   * Chunk `index` was uploaded for `channelId` (and matched): once every chunk was, the file
   * joins the channel. Answers whether it is in the channel now.
   */
  prove(id: string, channelId: string, index: number): Promise<boolean>;
  /** A chunk's bytes, when held and still matching the manifest. */
  readChunk(id: string, index: number): Promise<Buffer | undefined>;
  /** The file was read now (its last use). */
  touch(id: string): Promise<void>;
  /** Bytes of the files `owner` put (the quota's count). */
  usage(owner: string): Promise<number>;
  /** `username` holds the file whole, for readers of `channelId`. */
  addHolder(id: string, channelId: string, username: string): Promise<void>;
  /** Who said they hold the file whole, newest first (at most 500). */
  holders(id: string, channelId: string): Promise<string[]>;
  /**
   * An item was stored: a message names its files; a delete that took its message away
   * (`erased`) takes the files no other message of the channel names. Answers the files removed.
   */
  itemStored(m: FileNamingItem, erased: boolean): Promise<string[]>;
  /** A channel is gone: its files go too, unless another channel has them. */
  dropChannel(channelId: string): Promise<void>;
}

/** True when a new file of `size` bytes keeps its owner, who has `used`, within `quotaBytes`. */
export function withinQuota(used: number, size: number, quotaBytes: number): boolean {
  return used + size <= quotaBytes;
}

/** The server's file backups in one process: `FileStore` in `<dataDir>/files/`. */
export class SqliteServerFileStore implements ServerFileStore {
  constructor(private readonly files: FileStore) {}

  async close(): Promise<void> {
    this.files.close();
  }

  async addManifest(
    manifest: Manifest,
    channelId: string,
    owner: string,
    quotaBytes: number,
  ): Promise<boolean> {
    const known = this.files.state(fileId(manifest)) !== undefined;
    if (!known && !withinQuota(this.files.usage(owner), manifest.size, quotaBytes)) return false;
    this.files.addManifest(manifest, channelId, owner);
    return true;
  }

  async manifest(id: string): Promise<Manifest | undefined> {
    return this.files.manifest(id);
  }

  async complete(id: string): Promise<boolean> {
    return this.files.state(id)?.complete ?? false;
  }

  async isPut(id: string, channelId: string): Promise<boolean> {
    return this.files.isPut(id, channelId);
  }

  async inChannel(id: string, channelId: string): Promise<boolean> {
    return this.files.inChannel(id, channelId);
  }

  async proven(id: string, channelId: string): Promise<number[]> {
    return this.files.proven(id, channelId);
  }

  async putChunk(id: string, index: number, data: Buffer): Promise<boolean> {
    return this.files.putChunk(id, index, data);
  }

  async prove(id: string, channelId: string, index: number): Promise<boolean> {
    return this.files.prove(id, channelId, index);
  }

  async readChunk(id: string, index: number): Promise<Buffer | undefined> {
    return this.files.readChunk(id, index);
  }

  async touch(id: string): Promise<void> {
    this.files.touch(id);
  }

  async usage(owner: string): Promise<number> {
    return this.files.usage(owner);
  }

  async addHolder(id: string, channelId: string, username: string): Promise<void> {
    this.files.addHolder(id, channelId, username);
  }

  async holders(id: string, channelId: string): Promise<string[]> {
    return this.files.holders(id, channelId);
  }

  async itemStored(m: FileNamingItem, erased: boolean): Promise<string[]> {
    return this.files.itemStored(m, erased);
  }

  async dropChannel(channelId: string): Promise<void> {
    this.files.dropChannel(channelId);
  }
}
