/**
 * Microseconds per step of one 256 KiB file chunk's way from a seeder's disk to a member's, each
 * timed alone in this process over 100 random chunks (after a warm-up): the hashing, the base64
 * and the JSON frame around the bytes (`file_chunk`'s answer), the answer's schema check, and
 * the file store's write and read. Not part of `npm run bench`: where the files bench's
 * one-source time goes (bench/README.md), and a check when changing any of these.
 *
 *   node --import tsx bench/chunk-cost.ts
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeFrame, FrameDecoder } from '../src/protocol/frame.js';
import { P2P_FILE_OPS, type Manifest } from '../src/protocol/files.js';
import { chunkHash } from '../src/shared/file-id.js';
import { FILE_LIMITS } from '../src/shared/limits.js';
import { FileStore } from '../src/store/file-store.js';

const C = FILE_LIMITS.chunkBytes;
const N = 100;
const chunks = Array.from({ length: N }, () => crypto.randomBytes(C));
const b64 = chunks.map((c) => c.toString('base64'));
const frames = b64.map((data, id) => encodeFrame({ t: 'res', id, body: { data } }));

function time(name: string, step: (i: number) => unknown, warm = true): void {
  if (warm) for (let i = 0; i < 20; i++) step(i % N);
  const t = performance.now();
  for (let i = 0; i < N; i++) step(i);
  const us = ((performance.now() - t) / N) * 1000;
  const rate = C / 2 ** 20 / (us / 1e6);
  console.log(`| ${name} | ${us.toFixed(0)} | ${rate.toFixed(0)} |`);
}

console.log(`| step (one ${C / 1024} KiB chunk) | µs | MiB/s |\n|---|---:|---:|`);
time('SHA-256', (i) => chunkHash(chunks[i]!));
time('base64 encode', (i) => chunks[i]!.toString('base64'));
time('base64 decode', (i) => Buffer.from(b64[i]!, 'base64'));
time('encodeFrame of the answer (JSON.stringify, UTF-8)', (i) =>
  encodeFrame({ t: 'res', id: i, body: { data: b64[i] } }),
);
time('FrameDecoder of the answer (UTF-8 check, JSON.parse)', (i) =>
  new FrameDecoder(2 ** 20).push(frames[i]!),
);
time('zod check of the answer', (i) => P2P_FILE_OPS.file_chunk.res.parse({ data: b64[i] }));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-chunk-cost-'));
const store = new FileStore(dir);
try {
  const manifest: Manifest = {
    name: 'cost.bin',
    size: C * N,
    type: 'application/octet-stream',
    chunkBytes: C,
    chunks: chunks.map(chunkHash),
  };
  const id = store.add(manifest, crypto.randomUUID());
  // Each chunk is written once: no warm-up, or it would be held already.
  time(
    'FileStore.putChunk (SHA-256, write, rename, SQLite)',
    (i) => store.putChunk(id, i, chunks[i]!),
    false,
  );
  time('FileStore.readChunk (SQLite, read, SHA-256)', (i) => store.readChunk(id, i));
  time("FileStore.manifest (the manifest's JSON.parse)", () => store.manifest(id));
} finally {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
