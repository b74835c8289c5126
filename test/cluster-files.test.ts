/**
 * File backups across server instances (issue 16): two real `hchat server` processes on one
 * PostgreSQL database and one NATS. A file put through one instance is read whole through the
 * other, and still once the first is SIGKILLed (by a member and by a visitor of an open channel);
 * the quota counts a user's files once whichever instance took them; a chunk that does not match
 * its manifest is refused and not stored; `file_sources` on one instance names a holder that
 * said `file_held` on the other; a message deleted through one instance takes away the file it
 * named through the other, and a deleted channel its files.
 */
import crypto from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { waitFor } from './testnet.js';
import { startCluster as startTwo } from './cluster-kit.js';
import { newKey, registerLogin, serverHello } from './outsider/lib.js';
import {
  manifestOf,
  refOf,
  signChannelDelete,
  signFilesMessage,
  signMessageDelete,
} from './outsider/files-lib.js';

const MiB = 1024 * 1024;
const QUOTA = 2 * MiB;
const RAISED = ['--max-registrations-per-address', '1000', '--max-visitors-per-address', '1000'];

type User = Awaited<ReturnType<typeof registerLogin>>;
type File = ReturnType<typeof manifestOf>;

/** Two instances on a fresh database and NATS, with a small quota; ended with the test. */
async function startCluster() {
  const { at, servers, dbUrl } = await startTwo(['--file-quota-bytes', String(QUOTA), ...RAISED]);
  /** Rows of the shared store (what every instance reads). */
  const rows = async (sql: string, params: unknown[]) => {
    const c = new pg.Client({ connectionString: dbUrl });
    await c.connect();
    try {
      return (await c.query(sql, params)).rows;
    } finally {
      await c.end();
    }
  };
  return { at, servers, rows };
}

/** Puts `f` for `channelId` through `u`'s instance: file_put, then every chunk it misses. */
async function backup(u: User, channelId: string, f: File) {
  const put = await u.c.req('file_put', { channelId, manifest: f.manifest });
  expect(put.error).toBeUndefined();
  const answers = [];
  for (const i of put.body.missing as number[]) {
    const r = await u.c.req('file_chunk_put', {
      channelId,
      fileId: f.id,
      index: i,
      data: f.parts[i]!.toString('base64'),
    });
    expect(r.error).toBeUndefined();
    answers.push(r.body.complete);
  }
  return { missing: put.body.missing as number[], complete: answers.at(-1) };
}

/** Reads `f` whole from the server through `c`: its manifest and every chunk, byte for byte. */
async function readWhole(c: User['c'], channelId: string, f: File) {
  const m = await c.req('file_manifest', { channelId, fileId: f.id });
  expect(m.body?.manifest).toEqual(f.manifest);
  for (const [i, part] of f.parts.entries()) {
    const r = await c.req('file_chunk', { channelId, fileId: f.id, index: i });
    expect(r.error).toBeUndefined();
    expect(Buffer.from(r.body.data, 'base64').equals(part)).toBe(true);
  }
}

const code = (r: any) => r.error?.code ?? 'OK';

async function channel(owner: User, allowVisitors = false) {
  const id = crypto.randomUUID();
  const r = await owner.c.req('channel_create', { id, name: 'files', allowVisitors });
  expect(r.error).toBeUndefined();
  return id;
}

describe('file backups across two instances on PostgreSQL and NATS', () => {
  it('a file put through one instance is read whole through the other, and still once the first is SIGKILLed', async () => {
    const { at, servers, rows } = await startCluster();
    const alice = await registerLogin(at(0), 'alice');
    const bob = await registerLogin(at(1), 'bob');
    const ch = await channel(alice, true);
    expect(code(await bob.c.req('channel_join', { channelId: ch }))).toBe('OK');
    const f = manifestOf(crypto.randomBytes(MiB + 1234), 'photo.raw', 'application/octet-stream');
    // alice's whole backup through instance 0; the last chunk completes it.
    expect(await backup(alice, ch, f)).toEqual({ missing: [0, 1, 2, 3, 4], complete: true });
    // Instance 1 knows it is held whole, and bob reads it there byte for byte.
    const s = await bob.c.req('file_sources', { channelId: ch, fileId: f.id });
    expect(s.body.server).toBe(true);
    await readWhole(bob.c, ch, f);
    // Put again through instance 1, nothing is missing: the proofs are shared too.
    const again = await registerLogin(at(1), 'alice', alice.password);
    expect((await again.c.req('file_put', { channelId: ch, manifest: f.manifest })).body).toEqual({
      fileId: f.id,
      missing: [],
    });
    // Nothing of it in either instance's data folder: the store has every byte, once.
    const [held] = await rows(
      'SELECT count(*)::int AS n, sum(length(data))::int AS bytes FROM file_chunks WHERE file_id = $1',
      [f.id],
    );
    expect(held).toEqual({ n: 5, bytes: f.manifest.size });

    // Instance 0 dies; bob and a visitor of the open channel still get every byte from 1.
    servers[0]!.proc.kill('SIGKILL');
    await servers[0]!.exited;
    await readWhole(bob.c, ch, f);
    const { c: vic } = await serverHello(at(1));
    expect(code(await vic.req('visitor', { name: 'vic', publicKey: newKey().pk }))).toBe('OK');
    await readWhole(vic, ch, f);
  }, 90_000);

  it('quota once across instances, a bad chunk refused, holders shared, deletes applied to the shared store', async () => {
    const { at, rows } = await startCluster();
    const a0 = await registerLogin(at(0), 'alice');
    const a1 = await registerLogin(at(1), 'alice', a0.password);
    const bob = await registerLogin(at(1), 'bob');
    const carol = await registerLogin(at(0), 'carol');
    const ch = await channel(a0);
    const other = await channel(a0);
    for (const u of [bob, carol])
      expect(code(await u.c.req('channel_join', { channelId: ch }))).toBe('OK');

    // 1.5 MiB through instance 0; the same file for another channel through 1 is not charged
    // again, but 1 MiB more through 1 would pass her 2 MiB: refused, and nothing kept.
    const big = manifestOf(crypto.randomBytes(1.5 * MiB), 'big.bin', 'application/octet-stream');
    await backup(a0, ch, big);
    expect((await backup(a1, other, big)).complete).toBe(true);
    const more = manifestOf(crypto.randomBytes(MiB), 'more.bin', 'application/octet-stream');
    expect(code(await a1.c.req('file_put', { channelId: ch, manifest: more.manifest }))).toBe(
      'E_QUOTA_EXCEEDED',
    );
    expect(await rows('SELECT id FROM files WHERE id = $1', [more.id])).toEqual([]);

    // A chunk that does not hash to the manifest, through instance 1: refused, not stored; the
    // right bytes through instance 0 then complete the file.
    const small = manifestOf(crypto.randomBytes(300 * 1024), 'small.bin', 'text/plain');
    const put = await a1.c.req('file_put', { channelId: ch, manifest: small.manifest });
    expect(put.body.missing).toEqual([0, 1]);
    const wrong = Buffer.from(small.parts[0]!);
    wrong[0]! ^= 0xff;
    const bad = await a1.c.req('file_chunk_put', {
      channelId: ch,
      fileId: small.id,
      index: 0,
      data: wrong.toString('base64'),
    });
    expect(code(bad)).toBe('E_BAD_CHUNK');
    expect(await rows('SELECT idx FROM file_chunks WHERE file_id = $1', [small.id])).toEqual([]);
    expect(code(await bob.c.req('file_chunk', { channelId: ch, fileId: small.id, index: 0 }))).toBe(
      'E_NOT_FOUND',
    );
    expect((await backup(a0, ch, small)).complete).toBe(true);
    await readWhole(bob.c, ch, small);

    // carol says on instance 0 that she holds it; bob on instance 1 is told so.
    await carol.c.req('submit_info', {
      ip: '10.1.1.1',
      port: 4000,
      udpPort: 4001,
      status: 'online',
    });
    expect(code(await carol.c.req('file_held', { channelId: ch, fileId: big.id }))).toBe('OK');
    await waitFor(
      async () =>
        (await bob.c.req('file_sources', { channelId: ch, fileId: big.id })).body?.holders?.[0] ===
        'carol',
      5000,
      'carol named as a holder on the other instance',
    );

    // A message naming `small`, posted through 0 and deleted through 1: the file goes.
    const msg = signFilesMessage(a0, ch, [refOf(small.manifest)]);
    expect(code(await a0.c.req('post', { message: msg }))).toBe('OK');
    const del = signMessageDelete(a1, ch, msg.id);
    expect(code(await a1.c.req('post', { message: del }))).toBe('OK');
    await waitFor(
      async () => (await rows('SELECT id FROM files WHERE id = $1', [small.id])).length === 0,
      5000,
      "the deleted message's file gone from the shared store",
    );
    expect(code(await bob.c.req('file_manifest', { channelId: ch, fileId: small.id }))).toBe(
      'E_NOT_FOUND',
    );

    // `other` deleted through 1: `big` leaves it but stays for `ch`; her quota counts it still.
    expect(code(await a1.c.req('post', { message: signChannelDelete(a1, other) }))).toBe('OK');
    await waitFor(
      async () =>
        (await rows('SELECT 1 FROM file_channels WHERE channel_id = $1', [other])).length === 0,
      5000,
      "the deleted channel's files gone",
    );
    await readWhole(bob.c, ch, big);
  }, 90_000);
});
