/**
 * A deployment for tests: real `hchat server` processes on one fresh PostgreSQL database and one
 * NATS of their own, signing with one key (README "Several server instances"), ended with the test.
 */
import fs from 'node:fs';
import path from 'node:path';
import { onTestFinished } from 'vitest';
import { tempDir } from './testnet.js';
import { spawnServer } from './processes.js';
import { startNats } from './nats.js';
import { createTestDatabase } from './pg-kit.js';
import { newKeyPair } from '../src/shared/keygen.js';

/** Writes a deployment's Ed25519 signing key (PEM, 0600) in `dir`; answers its path. */
export function signingKeyFile(dir: string): string {
  const key = path.join(dir, 'signing-key.pem');
  fs.writeFileSync(key, newKeyPair('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), {
    mode: 0o600,
  });
  return key;
}

/**
 * `instances` servers on a fresh database and NATS, each given `extra` flags too. `at(i)` is
 * instance i's framed-protocol address; `dbUrl` the database they share; `nats` their NATS (to kill
 * and restart).
 */
export async function startCluster(extra: string[] = [], instances = 2) {
  const db = await createTestDatabase();
  onTestFinished(() => db.drop());
  const nats = await startNats();
  onTestFinished(() => nats.kill());
  const dir = tempDir();
  const key = signingKeyFile(dir);
  const servers = await Promise.all(
    Array.from({ length: instances }, (_, i) =>
      spawnServer(path.join(dir, `srv${i}`), {
        extra: ['--store', db.url, '--bus', nats.url, '--signing-key', key, ...extra],
      }),
    ),
  );
  const at = (i: number) => {
    const [host, port] = servers[i]!.ready.tcp!.split(':');
    return { host: host!, port: Number(port) };
  };
  return { at, servers, dbUrl: db.url, nats };
}
