/**
 * Files (issue 14; docs/PROTOCOL.md §9): content-addressed, cut into chunks of
 * FILE_LIMITS.chunkBytes, each named by its SHA-256. A file's manifest (its reference — name,
 * size, type, image size and preview — and its chunks' hashes) is named by the hash of its
 * canonical form (shared/file-id.ts); a message carries the references of its files, signed
 * with the rest of its body, so every byte a peer shows is checked back to the author.
 *
 * The server keeps one backup of each file (`file_put`, `file_chunk_put`) and serves it when
 * no peer can; peers serve the files they hold to whoever shows a grant of the server's for the
 * channel (`file_sources`), on their P2P port (`file_have`, `file_manifest`, `file_chunk`).
 */
import { z } from 'zod';
import { base64Bytes } from './base64.js';
import { Digest, FileRef, Uuid } from './common.js';
export { FileRef, FileRefs } from './common.js';
import { op } from './rpc.js';
import { FILE_LIMITS } from '../shared/limits.js';

/** A file's id: the SHA-256 of its manifest's canonical form, base64url. */
export const FileId = Digest;

/** A file's manifest: its reference without the id, and the SHA-256 of each chunk in order. */
export const Manifest = FileRef.omit({ id: true }).extend({
  chunkBytes: z.literal(FILE_LIMITS.chunkBytes),
  chunks: z
    .array(Digest)
    .min(1)
    .max(2 ** 22),
});
export type Manifest = z.infer<typeof Manifest>;

/** A chunk's bytes, canonical base64 (a file has at least one byte, so each chunk has). */
const ChunkData = base64Bytes(FILE_LIMITS.chunkBytes, 0);
const Index = z.number().int().min(0);
const FileOf = z.object({ channelId: Uuid, fileId: FileId });

/** Operations the server answers about files. */
export const FILE_OPS = {
  /**
   * The author's peer offers a file of a channel it is a member of for backup: the server keeps
   * the manifest (counted against the user's quota once) and answers the chunks it lacks.
   */
  file_put: op(
    'user',
    z.object({ channelId: Uuid, manifest: Manifest }),
    z.object({ fileId: FileId, missing: z.array(Index) }),
  ),
  /** One chunk of a file put before; stored when its hash is the manifest's. */
  file_chunk_put: op(
    'user',
    FileOf.extend({ index: Index, data: ChunkData }),
    z.object({ complete: z.boolean() }),
  ),
  /** The manifest of a file of a channel the session may read. */
  file_manifest: op('session', FileOf, z.object({ manifest: Manifest })),
  /** One chunk of a file the server holds whole, for a session that may read its channel. */
  file_chunk: op('session', FileOf.extend({ index: Index }), z.object({ data: ChunkData })),
  /** This peer holds the whole file now, and serves it to other readers of the channel. */
  file_held: op('session', FileOf, z.object({})),
  /**
   * Who may serve the file: online peers holding it whole (usernames; the channel's host
   * first when it holds it), whether the server holds it whole, and a grant for this session
   * that opens the channel's files at those peers (valid FILE_LIMITS.grantTtlMs).
   */
  file_sources: op(
    'session',
    FileOf,
    z.object({
      holders: z.array(z.string()).max(100),
      server: z.boolean(),
      grant: z.string().max(2000),
    }),
  ),
} as const;

/** Operations a peer answers on its P2P port about the files it holds (`grant` required). */
export const P2P_FILE_OPS = {
  /** Which chunks of the file this peer holds (all of them: `all`). */
  file_have: op(
    'session',
    FileOf.extend({ grant: z.string().max(2000) }),
    z.object({ all: z.boolean(), chunks: z.array(Index) }),
  ),
  file_manifest: op(
    'session',
    FileOf.extend({ grant: z.string().max(2000) }),
    z.object({ manifest: Manifest }),
  ),
  file_chunk: op(
    'session',
    FileOf.extend({ grant: z.string().max(2000), index: Index }),
    z.object({ data: ChunkData }),
  ),
} as const;
