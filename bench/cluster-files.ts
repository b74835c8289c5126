/**
 * File backups through the store (issue 16), part of the cluster bench (bench/cluster.ts, run by
 * `npm run bench`) or alone: `npm run build && node --import tsx bench/cluster-files.ts`. A user
 * backs up a BENCH_CLUSTER_FILE_MIB (25) MiB file through the first instance (`file_put`, then
 * each 256 KiB chunk one request at a time, as a peer's backup sends them), then a reader reads it
 * back chunk by chunk through the last instance (`file_chunk`), comparing every byte. One SQLite
 * instance (chunks in files in its data folder) against two PostgreSQL instances with NATS (chunks
 * as rows, written by one instance and read by the other), in the same run; the median of
 * BENCH_REPEATS (3) files each, fewer when a deployment's files took BENCH_CLUSTER_FILES_SECONDS
 * (60) already (one file at least): the part stays bounded on a slow or loaded machine.
 */
import crypto from 'node:crypto';
import { chunkHash, fileId } from '../src/shared/file-id.js';
import { FILE_LIMITS } from '../src/shared/limits.js';
import { newSessionKeys } from '../src/shared/signing.js';
import { Client } from './harness.js';
import { deploy, natsAvailable, pgAvailable, type Deployment } from './cluster-deploy.js';
import { median } from './stats.js';

const MIB = Number(process.env.BENCH_CLUSTER_FILE_MIB ?? 25);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
/** No new file is begun on a deployment after this long (seconds) on it. */
const BUDGET_SECONDS = Number(process.env.BENCH_CLUSTER_FILES_SECONDS ?? 60);

/** Milliseconds to back one file up and to read it back, per file. */
interface FileRun {
  putMs: number;
  readMs: number;
}

async function user(d: Deployment, i: number, name: string): Promise<Client> {
  const c = await Client.connect(d.instances[i]!.server, true);
  await c.request('register', { username: name, password: 'bench-pw' });
  await c.request('login', {
    username: name,
    password: 'bench-pw',
    publicKey: newSessionKeys().publicKey,
  });
  return c;
}

async function runs(d: Deployment): Promise<FileRun[]> {
  const writer = await user(d, 0, 'writer');
  const reader = await user(d, d.instances.length - 1, 'reader');
  const channelId = crypto.randomUUID();
  await writer.request('channel_create', { id: channelId, name: 'files', allowVisitors: false });
  await reader.request('channel_join', { channelId });
  const out: FileRun[] = [];
  const deadline = performance.now() + BUDGET_SECONDS * 1000;
  try {
    for (let r = 0; r < REPEATS && (r === 0 || performance.now() < deadline); r++) {
      const data = crypto.randomBytes(MIB * 1024 * 1024);
      const parts: Buffer[] = [];
      for (let o = 0; o < data.length; o += FILE_LIMITS.chunkBytes)
        parts.push(data.subarray(o, o + FILE_LIMITS.chunkBytes));
      const manifest = {
        name: `bench-${r}.bin`,
        size: data.length,
        type: 'application/octet-stream',
        chunkBytes: FILE_LIMITS.chunkBytes,
        chunks: parts.map(chunkHash),
      };
      const id = fileId(manifest);
      let t = performance.now();
      const put = await writer.request('file_put', { channelId, manifest });
      for (const i of put.missing as number[])
        await writer.request('file_chunk_put', {
          channelId,
          fileId: id,
          index: i,
          data: parts[i]!.toString('base64'),
        });
      const putMs = performance.now() - t;
      t = performance.now();
      for (const [i, part] of parts.entries()) {
        const got = await reader.request('file_chunk', { channelId, fileId: id, index: i });
        if (!Buffer.from(got.data, 'base64').equals(part)) throw new Error(`chunk ${i} differs`);
      }
      out.push({ putMs, readMs: performance.now() - t });
    }
  } finally {
    writer.close();
    reader.close();
  }
  return out;
}

/**
 * The medians of each deployment's files, in ms and MiB/s: `sqlite1` always, `pg2` when
 * `withCluster` (PostgreSQL and NATS answer).
 */
export async function benchClusterFiles(withCluster: boolean): Promise<Record<string, unknown>> {
  console.log(`\nfile backups: a ${MIB} MiB file put and read chunk by chunk, ${REPEATS} times`);
  const out: Record<string, unknown> = { mib: MIB, repeats: REPEATS };
  const plans: [string, 'sqlite' | 'pg', number][] = [['sqlite1', 'sqlite', 1]];
  if (withCluster) plans.push(['pg2', 'pg', 2]);
  for (const [key, store, count] of plans) {
    const d = await deploy(store, count, ['--max-registrations-per-address', '1000']);
    try {
      const r = await runs(d);
      const putMs = median(r.map((x) => x.putMs));
      const readMs = median(r.map((x) => x.readMs));
      out[key] = {
        runs: r.length,
        putMs: Math.round(putMs),
        readMs: Math.round(readMs),
        putMiBps: +(MIB / (putMs / 1000)).toFixed(1),
        readMiBps: +(MIB / (readMs / 1000)).toFixed(1),
      };
      console.log(`  ${d.name}:`, JSON.stringify(out[key]));
    } finally {
      await d.close();
    }
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  (async () => {
    const withCluster = (await pgAvailable()) && (await natsAvailable());
    if (!withCluster) console.log('PostgreSQL or NATS not answering: SQLite only');
    await benchClusterFiles(withCluster);
  })().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
