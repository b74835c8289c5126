/**
 * Deployments for bench/cluster.ts: real `bin/hchat server` processes on SQLite (one), or on a
 * fresh PostgreSQL database of their own, sharing NATS under a namespace of their own when there
 * are several, all with one signing key made here (so the bench may sign session tokens as the
 * deployment does, bench/cluster-idle.ts). `close` stops them and drops what they made.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startServer, stopProcess, type ServerAddress, type Started } from './harness.js';

/** The PostgreSQL server the bench makes its databases on (trust auth). */
export const PG_ADMIN = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';
/** The NATS server instances share. */
export const NATS_URL = process.env.BENCH_NATS ?? 'nats://127.0.0.1:4222';

/** One running instance. */
export interface Instance {
  pid: number;
  server: ServerAddress;
  /** Its HTTP port's base URL (/metrics). */
  http: string;
  proc: Started['proc'];
}

/** Instances of one deployment, and what they share. */
export interface Deployment {
  name: string;
  instances: Instance[];
  /** The deployment's signing key (Ed25519). */
  signingKey: crypto.KeyObject;
  /** A client on the deployment's database, when it is PostgreSQL. */
  db?: pg.Client;
  close(): Promise<void>;
}

/** True when PostgreSQL answers at PG_ADMIN within 3 s. */
export async function pgAvailable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_ADMIN, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** True when NATS accepts a TCP connection at NATS_URL within 3 s. */
export function natsAvailable(): Promise<boolean> {
  const u = new URL(NATS_URL);
  return new Promise((resolve) => {
    const s = net.connect(Number(u.port || 4222), u.hostname);
    const done = (ok: boolean) => (s.destroy(), resolve(ok));
    s.setTimeout(3000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/**
 * Starts `count` instances: on SQLite when `store` is 'sqlite' (count must be 1), else on a new
 * PostgreSQL database, with NATS between them when count > 1. `extra` flags go to every one.
 */
export async function deploy(
  store: 'sqlite' | 'pg',
  count: number,
  extra: readonly string[] = [],
): Promise<Deployment> {
  const tag = crypto.randomBytes(5).toString('hex');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-cluster-'));
  const { privateKey } = crypto.generateKeyPairSync('ed25519');
  const keyFile = path.join(dir, 'signing-key.pem');
  fs.writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const flags = ['--signing-key', keyFile, ...extra];
  let dbName: string | undefined;
  let db: pg.Client | undefined;
  if (store === 'pg') {
    dbName = `hchat_bench_${tag}`;
    const admin = new pg.Client({ connectionString: PG_ADMIN });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbName}`);
    await admin.end();
    const url = new URL(PG_ADMIN);
    url.pathname = `/${dbName}`;
    flags.push('--store', url.toString());
    db = new pg.Client({ connectionString: url.toString() });
  }
  if (count > 1) flags.push('--bus', NATS_URL, '--bus-namespace', `bench${tag}`);
  const instances: Instance[] = [];
  const close = async () => {
    await db?.end().catch(() => undefined);
    await Promise.all(instances.map((i) => stopProcess(i.proc)));
    if (dbName) {
      const admin = new pg.Client({ connectionString: PG_ADMIN });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await admin.end();
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    // One at a time: the first migrates the database, the others find it done.
    for (let k = 0; k < count; k++) {
      const data = path.join(dir, `instance${k}`);
      fs.mkdirSync(data);
      const s = await startServer(data, process.env.BENCH_SERVER_NODE, false, flags);
      instances.push({
        pid: s.proc.pid!,
        proc: s.proc,
        server: { addr: s.ready.tcp!, fingerprint: s.ready.fingerprint },
        http: s.ready.http!,
      });
    }
    await db?.connect();
  } catch (err) {
    await close();
    throw err;
  }
  const name = store === 'sqlite' ? 'SQLite, 1 instance' : `PostgreSQL, ${count} instance(s)`;
  return { name, instances, signingKey: privateKey, db, close };
}

/** `hchat_pushes_total` of one instance, summed over event types (its /metrics). */
export async function pushesTotal(i: Instance): Promise<number> {
  const text = await (await fetch(new URL('/metrics', i.http))).text();
  let sum = 0;
  for (const m of text.matchAll(/^hchat_pushes_total\{[^}]*\} (\d+(?:\.\d+)?(?:e\+\d+)?)$/gm))
    sum += Number(m[1]);
  return sum;
}

/** The value at percentile p of sorted samples. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  return sorted.length
    ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
    : NaN;
}
