/**
 * One suite, both stores of the server's file backups (issue 16): a manifest put within the
 * quota, chunks kept only when they match it, a file joining a channel once every chunk was
 * uploaded for it, holders newest first, message deletes and channel deletes taking files away
 * (but not a file whose upload to another channel is under way), on SQLite (`files/` in the data folder) and on PostgreSQL (a database of its own each run).
 * On PostgreSQL, two store objects (two server instances) storing the same chunks at once both
 * succeed and count each chunk once, and one user's puts through both keep the quota.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Manifest } from '../src/protocol/files.js';
import { chunkHash, fileId } from '../src/shared/file-id.js';
import { FILE_LIMITS } from '../src/shared/limits.js';
import { FileStore } from '../src/store/file-store.js';
import { SqliteServerFileStore, type ServerFileStore } from '../src/store/server-file-store.js';
import { PostgresFileStore } from '../src/store/pg/pg-file-store.js';
import { createTestDatabase } from './pg-kit.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-file-conformance-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** A clock the test moves (holders are ordered by when they said so). */
let clock = 1000;
const now = () => clock;

type Open = () => Promise<{ store: ServerFileStore; done: () => Promise<void> }>;

const STORES: [string, Open][] = [
  [
    'sqlite',
    async () => {
      const store = new SqliteServerFileStore(new FileStore(path.join(dir, `s${n++}`), now));
      return { store, done: () => store.close() };
    },
  ],
  [
    'postgres',
    async () => {
      const db = await createTestDatabase();
      const store = await PostgresFileStore.open(db.url, now);
      return {
        store,
        done: async () => {
          await store.close();
          await db.drop();
        },
      };
    },
  ],
];

const CHUNK = FILE_LIMITS.chunkBytes;
const QUOTA = 10 * CHUNK;

/** A file of `size` random bytes: its manifest, id and chunks. */
function file(size: number, name = 'f.bin') {
  const data = crypto.randomBytes(size);
  const parts: Buffer[] = [];
  for (let o = 0; o < size; o += CHUNK) parts.push(data.subarray(o, o + CHUNK));
  const manifest: Manifest = {
    name,
    size,
    type: 'application/octet-stream',
    chunkBytes: CHUNK,
    chunks: parts.map(chunkHash),
  };
  return { manifest, id: fileId(manifest), parts };
}

/** True when a chunk read back is these bytes (compared as bytes: deep equality is slow). */
const same = (got: Buffer | undefined, want: Buffer) => got !== undefined && got.equals(want);

/** Uploads every chunk of `f` for `channelId`, as `file_chunk_put` does. */
async function upload(store: ServerFileStore, f: ReturnType<typeof file>, channelId: string) {
  const answers: boolean[] = [];
  for (const [i, p] of f.parts.entries()) {
    expect(await store.putChunk(f.id, i, p)).toBe(true);
    answers.push(await store.prove(f.id, channelId, i));
  }
  return answers;
}

describe.each(STORES)('ServerFileStore conformance: %s', (_name, open) => {
  let store: ServerFileStore;
  let done: () => Promise<void>;
  beforeEach(async () => {
    ({ store, done } = await open());
  });
  afterEach(async () => {
    await done();
  });

  it('keeps only matching chunks; a file joins a channel once every chunk was uploaded for it', async () => {
    const f = file(2 * CHUNK + 1000);
    expect(await store.manifest(f.id)).toBeUndefined();
    expect(await store.isPut(f.id, 'C1')).toBe(false);
    expect(await store.addManifest(f.manifest, 'C1', 'alice', QUOTA)).toBe(true);
    expect(await store.manifest(f.id)).toEqual(f.manifest);
    expect(await store.isPut(f.id, 'C1')).toBe(true);
    expect(await store.inChannel(f.id, 'C1')).toBe(false);
    expect(await store.complete(f.id)).toBe(false);

    // Wrong bytes, a wrong length, an index past the end, an unknown file: nothing kept.
    const bad = Buffer.from(f.parts[0]!);
    bad[7]! ^= 1;
    expect(await store.putChunk(f.id, 0, bad)).toBe(false);
    expect(await store.putChunk(f.id, 2, f.parts[1]!)).toBe(false);
    expect(await store.putChunk(f.id, 3, f.parts[2]!)).toBe(false);
    expect(await store.putChunk('nope', 0, f.parts[0]!)).toBe(false);
    expect(await store.readChunk(f.id, 0)).toBeUndefined();

    expect(await store.putChunk(f.id, 1, f.parts[1]!)).toBe(true);
    expect(await store.putChunk(f.id, 1, f.parts[1]!)).toBe(true);
    expect(await store.prove(f.id, 'C1', 1)).toBe(false);
    expect(await store.proven(f.id, 'C1')).toEqual([1]);
    expect(await upload(store, f, 'C1')).toEqual([false, false, true]);
    expect(await store.inChannel(f.id, 'C1')).toBe(true);
    expect(await store.complete(f.id)).toBe(true);
    for (const [i, p] of f.parts.entries())
      expect(same(await store.readChunk(f.id, i), p)).toBe(true);
    await store.touch(f.id);

    // Held already, the file is still not in another channel until uploaded for it there.
    expect(await store.addManifest(f.manifest, 'C2', 'bob', QUOTA)).toBe(true);
    expect(await store.inChannel(f.id, 'C2')).toBe(false);
    expect(await store.isPut(f.id, 'C2')).toBe(true);
    expect(await store.isPut(f.id, 'C3')).toBe(false);
    expect(await store.proven(f.id, 'C2')).toEqual([]);
    expect(await upload(store, f, 'C2')).toEqual([false, false, true]);
    expect(await store.inChannel(f.id, 'C2')).toBe(true);
    // Put again where it is, nothing is left to prove.
    expect(await store.addManifest(f.manifest, 'C1', 'alice', QUOTA)).toBe(true);
    expect(await store.proven(f.id, 'C1')).toEqual([]);
  });

  it('charges a file once, to whoever put it first, and refuses a put past the quota', async () => {
    const big = file(6 * CHUNK);
    const more = file(5 * CHUNK);
    expect(await store.addManifest(big.manifest, 'C1', 'alice', QUOTA)).toBe(true);
    expect(await store.usage('alice')).toBe(6 * CHUNK);
    // The same file again, by her or another: no new charge, never refused.
    expect(await store.addManifest(big.manifest, 'C2', 'alice', QUOTA)).toBe(true);
    expect(await store.addManifest(big.manifest, 'C3', 'bob', 1)).toBe(true);
    expect(await store.usage('alice')).toBe(6 * CHUNK);
    expect(await store.usage('bob')).toBe(0);
    // Past her quota: refused, nothing kept.
    expect(await store.addManifest(more.manifest, 'C1', 'alice', QUOTA)).toBe(false);
    expect(await store.manifest(more.id)).toBeUndefined();
    expect(await store.isPut(more.id, 'C1')).toBe(false);
    expect(await store.usage('alice')).toBe(6 * CHUNK);
    // Exactly at the quota is within it.
    expect(await store.addManifest(file(4 * CHUNK).manifest, 'C1', 'alice', QUOTA)).toBe(true);
    expect(await store.usage('alice')).toBe(QUOTA);
  });

  it('lists holders newest first, once each', async () => {
    const f = file(100);
    await store.addManifest(f.manifest, 'C1', 'alice', QUOTA);
    for (const u of ['carol', 'dave', 'carol', 'erin']) {
      clock += 10;
      await store.addHolder(f.id, 'C1', u);
    }
    expect(await store.holders(f.id, 'C1')).toEqual(['erin', 'carol', 'dave']);
    expect(await store.holders(f.id, 'C2')).toEqual([]);
  });

  it('a file leaves a channel with the last message naming it there, and goes with the last channel', async () => {
    const f = file(CHUNK + 5);
    await store.addManifest(f.manifest, 'C1', 'alice', QUOTA);
    await upload(store, f, 'C1');
    await store.addManifest(f.manifest, 'C2', 'alice', QUOTA);
    await upload(store, f, 'C2');
    const named = (id: string, channelId: string) => ({ id, channelId, files: [{ id: f.id }] });
    const del = (target: string, channelId: string) => ({
      id: `d-${target}`,
      channelId,
      kind: 'delete',
      target,
    });
    expect(await store.itemStored(named('m1', 'C1'), false)).toEqual([]);
    expect(await store.itemStored(named('m2', 'C1'), false)).toEqual([]);
    expect(await store.itemStored(named('m3', 'C2'), false)).toEqual([]);
    // A delete that did not take its message away (a tombstone was there) changes nothing.
    expect(await store.itemStored(del('m1', 'C1'), false)).toEqual([]);
    expect(await store.itemStored(del('m1', 'C1'), true)).toEqual([]);
    expect(await store.inChannel(f.id, 'C1')).toBe(true);
    expect(await store.itemStored(del('m2', 'C1'), true)).toEqual([]);
    expect(await store.inChannel(f.id, 'C1')).toBe(false);
    expect(await store.inChannel(f.id, 'C2')).toBe(true);
    expect(same(await store.readChunk(f.id, 0), f.parts[0]!)).toBe(true);
    // The last channel's last message: the bytes go.
    expect(await store.itemStored(del('m3', 'C2'), true)).toEqual([f.id]);
    expect(await store.manifest(f.id)).toBeUndefined();
    expect(await store.readChunk(f.id, 0)).toBeUndefined();
    expect(await store.usage('alice')).toBe(0);
  });

  it("a deleted channel's files go, unless another channel has them", async () => {
    const only = file(300, 'only.txt');
    const shared = file(400, 'shared.txt');
    for (const f of [only, shared]) {
      await store.addManifest(f.manifest, 'C1', 'alice', QUOTA);
      await upload(store, f, 'C1');
    }
    await store.addManifest(shared.manifest, 'C2', 'alice', QUOTA);
    await upload(store, shared, 'C2');
    await store.dropChannel('C1');
    expect(await store.manifest(only.id)).toBeUndefined();
    expect(await store.readChunk(only.id, 0)).toBeUndefined();
    expect(await store.inChannel(shared.id, 'C1')).toBe(false);
    expect(await store.inChannel(shared.id, 'C2')).toBe(true);
    expect(same(await store.readChunk(shared.id, 0), shared.parts[0]!)).toBe(true);
  });

  it('a deleted channel takes its pending uploads, and leaves the files another upload waits for', async () => {
    // `moving`: in C1, half uploaded for C2. `waiting`: half uploaded for C3, in no channel.
    // `abandoned`: put for C1 only. `kept`: in C2, put for C1 too.
    const [moving, waiting, abandoned, kept] = ['m', 'w', 'a', 'k'].map((n) => file(2 * CHUNK, n));
    await store.addManifest(moving!.manifest, 'C1', 'alice', QUOTA);
    await upload(store, moving!, 'C1');
    await store.addManifest(moving!.manifest, 'C2', 'alice', QUOTA);
    expect(await store.prove(moving!.id, 'C2', 0)).toBe(false);
    await store.addManifest(waiting!.manifest, 'C3', 'bob', QUOTA);
    expect(await store.putChunk(waiting!.id, 0, waiting!.parts[0]!)).toBe(true);
    expect(await store.prove(waiting!.id, 'C3', 0)).toBe(false);
    await store.addManifest(abandoned!.manifest, 'C1', 'bob', QUOTA);
    await store.addManifest(kept!.manifest, 'C2', 'carol', QUOTA);
    await upload(store, kept!, 'C2');
    await store.addManifest(kept!.manifest, 'C1', 'carol', QUOTA);
    await store.addHolder(kept!.id, 'C1', 'dave');

    await store.dropChannel('C1');
    expect(await store.inChannel(moving!.id, 'C1')).toBe(false);
    expect(await store.proven(moving!.id, 'C2')).toEqual([0]);
    expect(same(await store.readChunk(moving!.id, 1), moving!.parts[1]!)).toBe(true);
    expect(await store.proven(waiting!.id, 'C3')).toEqual([0]);
    expect(same(await store.readChunk(waiting!.id, 0), waiting!.parts[0]!)).toBe(true);
    expect(await store.manifest(abandoned!.id)).toBeUndefined();
    expect(await store.usage('bob')).toBe(waiting!.manifest.size);
    expect(await store.isPut(kept!.id, 'C1')).toBe(false);
    expect(await store.holders(kept!.id, 'C1')).toEqual([]);
    expect(await store.inChannel(kept!.id, 'C2')).toBe(true);

    // The uploads waited for finish as if nothing had happened.
    expect(await store.prove(moving!.id, 'C2', 1)).toBe(true);
    expect(await upload(store, waiting!, 'C3')).toEqual([false, true]);
    expect(await store.complete(waiting!.id)).toBe(true);
  });

  it('a file whose last message is deleted stays while an upload to another channel waits for it', async () => {
    const f = file(2 * CHUNK);
    await store.addManifest(f.manifest, 'C1', 'alice', QUOTA);
    await upload(store, f, 'C1');
    expect(
      await store.itemStored({ id: 'm1', channelId: 'C1', files: [{ id: f.id }] }, false),
    ).toEqual([]);
    await store.addManifest(f.manifest, 'C2', 'alice', QUOTA);
    expect(await store.prove(f.id, 'C2', 0)).toBe(false);

    const del = { id: 'd1', channelId: 'C1', kind: 'delete', target: 'm1' };
    expect(await store.itemStored(del, true)).toEqual([]);
    expect(await store.inChannel(f.id, 'C1')).toBe(false);
    expect(await store.proven(f.id, 'C2')).toEqual([0]);
    expect(await store.prove(f.id, 'C2', 1)).toBe(true);
    expect(same(await store.readChunk(f.id, 1), f.parts[1]!)).toBe(true);
    expect(await store.usage('alice')).toBe(f.manifest.size);
  });
});

/** Runs `work` with two store objects (two server instances) on a database of its own. */
async function twoInstances(work: (a: ServerFileStore, b: ServerFileStore) => Promise<void>) {
  const db = await createTestDatabase();
  const [a, b] = await Promise.all([
    PostgresFileStore.open(db.url),
    PostgresFileStore.open(db.url),
  ]);
  try {
    await work(a, b);
  } finally {
    await Promise.all([a.close(), b.close()]);
    await db.drop();
  }
}

describe('PostgresFileStore: two instances at once', () => {
  it('store the same chunks and proofs at once: both succeed, each chunk counted once', () =>
    twoInstances(async (a, b) => {
      const f = file(8 * CHUNK + 17);
      expect(await a.addManifest(f.manifest, 'C1', 'alice', QUOTA)).toBe(true);
      expect(await b.addManifest(f.manifest, 'C1', 'alice', QUOTA)).toBe(true);
      // Every chunk through both at once, each proved for the channel by the one that stored it.
      const answers = await Promise.all(
        f.parts.flatMap((p, i) =>
          [a, b].map(async (s) => {
            expect(await s.putChunk(f.id, i, p)).toBe(true);
            return s.prove(f.id, 'C1', i);
          }),
        ),
      );
      // The last proof joins the file to the channel, whichever instance makes it.
      expect(answers.filter(Boolean).length).toBeGreaterThanOrEqual(1);
      expect(await a.inChannel(f.id, 'C1')).toBe(true);
      expect(await b.complete(f.id)).toBe(true);
      expect(await a.proven(f.id, 'C1')).toEqual([]);
      for (const [i, p] of f.parts.entries())
        expect(same(await b.readChunk(f.id, i), p)).toBe(true);
      expect(await a.usage('alice')).toBe(f.manifest.size);
    }));

  it("one user's new files put through both at once stay within the quota", () =>
    twoInstances(async (a, b) => {
      const files = Array.from({ length: 8 }, (_, i) => file(3 * CHUNK, `f${i}`));
      const ok = await Promise.all(
        files.map((f, i) => (i % 2 ? a : b).addManifest(f.manifest, 'C1', 'alice', QUOTA)),
      );
      // 10 chunks of quota hold three files of three chunks.
      expect(ok.filter(Boolean).length).toBe(3);
      expect(await a.usage('alice')).toBe(9 * CHUNK);
    }));
});
