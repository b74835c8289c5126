/**
 * A real `nats-server` for tests that kill, restart or configure NATS (the shared one at
 * 127.0.0.1:4222 stays up for everyone else). Started on a stable port (testnet.ts), so that a
 * restart gets the same address; stopped at the end of the test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { onTestFinished } from 'vitest';
import { stablePort, tempDir, waitFor } from './testnet.js';

const NATS_SERVER = '/usr/sbin/nats-server';

/** A nats-server process the test controls. */
export interface TestNats {
  port: number;
  url: string;
  /** Ends it with SIGKILL (no goodbye to its clients) and waits for the exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
}

/** Starts nats-server on 127.0.0.1; `config` is the text of a configuration file, if any. */
export async function startNats(config?: string): Promise<TestNats> {
  const nats = await launchNats(config, () => tempDir('hchat-nats-'));
  onTestFinished(nats.kill);
  return nats;
}

/**
 * `startNats` without vitest's end of test: the caller kills it (a deployment several tests share,
 * started once and ended in `afterAll`).
 */
export async function launchNats(
  config?: string,
  dir: () => string = () => fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-nats-')),
): Promise<TestNats> {
  const port = await stablePort();
  let args = ['-p', String(port), '-a', '127.0.0.1'];
  if (config !== undefined) {
    const file = path.join(dir(), 'nats.conf');
    fs.writeFileSync(file, config);
    args = ['-c', file, ...args];
  }
  let proc: ChildProcess | undefined;
  const launch = async () => {
    const p = spawn(NATS_SERVER, args, { stdio: 'ignore' });
    proc = p;
    await waitFor(
      () =>
        p.exitCode === null &&
        new Promise<boolean>((resolve) => {
          const s = net.connect(port, '127.0.0.1');
          s.once('connect', () => (s.destroy(), resolve(true)));
          s.once('error', () => resolve(false));
        }),
      10_000,
      `nats-server on ${port}`,
    );
  };
  const kill = async () => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  };
  try {
    await launch();
  } catch (err) {
    await kill();
    throw err;
  }
  return { port, url: `nats://127.0.0.1:${port}`, kill, restart: launch };
}
