/**
 * Content addressing of files (docs/PROTOCOL.md §5): a chunk is named by its SHA-256, a file by
 * the SHA-256 of its manifest's canonical form, `JSON.stringify(["hchat/file/1", name, size,
 * type, width, height, preview, chunkBytes, chunks])` (absent image members as null).
 */
import crypto from 'node:crypto';
import type { FileRef, Manifest } from '../protocol/files.js';

/** SHA-256 of a chunk, base64url. */
export function chunkHash(data: Buffer): string {
  return crypto.createHash('sha256').update(data).digest('base64url');
}

/** A file's id: the hash of its manifest. */
export function fileId(m: Manifest): string {
  const canonical = JSON.stringify([
    'hchat/file/1',
    m.name,
    m.size,
    m.type,
    m.image?.width ?? null,
    m.image?.height ?? null,
    m.image?.preview ?? null,
    m.chunkBytes,
    m.chunks,
  ]);
  return crypto.createHash('sha256').update(canonical).digest('base64url');
}

/** How many chunks a file of `size` bytes has, and how long chunk `i` is. */
export function chunkCount(size: number, chunkBytes: number): number {
  return Math.ceil(size / chunkBytes);
}
export function chunkLength(m: Pick<Manifest, 'size' | 'chunkBytes'>, i: number): number {
  return Math.min(m.chunkBytes, m.size - i * m.chunkBytes);
}

/** A manifest's reference (what a message carries of it). */
export function refOf(m: Manifest): FileRef {
  const { chunks: _c, chunkBytes: _b, ...ref } = m;
  return { id: fileId(m), ...ref };
}

/** Why a manifest does not describe a file (chunk count against size), or undefined. */
export function manifestError(m: Manifest): string | undefined {
  if (m.chunks.length !== chunkCount(m.size, m.chunkBytes))
    return `manifest: ${m.chunks.length} chunks for ${m.size} bytes (expected ${chunkCount(m.size, m.chunkBytes)})`;
  return undefined;
}

/** True when the reference a message carries is this manifest's, member for member. */
export function sameRef(ref: FileRef, m: Manifest): boolean {
  return (
    ref.id === fileId(m) &&
    ref.name === m.name &&
    ref.size === m.size &&
    ref.type === m.type &&
    ref.image?.width === m.image?.width &&
    ref.image?.height === m.image?.height &&
    ref.image?.preview === m.image?.preview
  );
}

/** A size as people read it: 25 MiB, 300 KiB, 1,000 bytes. */
export function humanBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n.toLocaleString('en-US')} bytes`;
}
