/**
 * Spawning the real `bin/hchat` for tests that kill processes or restart them on the same data.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { onTestFinished } from 'vitest';
import { launchHchat, type HchatProcess } from './hchat-spawn.js';

export type { HchatProcess };

const BIN = path.resolve(import.meta.dirname, '..', 'bin', 'hchat');

/**
 * Starts `bin/hchat args…` and waits for its ready line. Killed at the end of the test. `wrap`
 * runs it through another command (`ip netns exec <ns>`: test/netns.ts), which execs it in place.
 */
export function spawnHchat(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 15_000,
  until: RegExp = /^ready (.*)$/m,
  wrap: string[] = [],
): Promise<HchatProcess> {
  const { proc, exited, ready } = launchHchat(args, env, timeoutMs, until, wrap);
  onTestFinished(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
  });
  return ready;
}

/** Starts `bin/hchat server` on `data`, HTTP on any port; `port` 0 unless a test restarts it. */
export function spawnServer(
  data: string,
  opts: { port?: number; extra?: string[]; env?: Record<string, string> } = {},
): Promise<HchatProcess> {
  return spawnHchat(
    [
      'server',
      '--port',
      String(opts.port ?? 0),
      '--http-port',
      '0',
      '--data',
      data,
      ...(opts.extra ?? []),
    ],
    opts.env,
  );
}

/**
 * Runs `bin/hchat args…` to completion; resolves with its exit code and output. A process still
 * running after `timeoutMs` is killed (code null, `timedOut` true): a command that should have
 * refused to start fails its test instead of hanging it.
 */
export function runHchat(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 20_000,
): Promise<{ code: number | null; out: string; timedOut: boolean }> {
  const proc = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill('SIGKILL');
  }, timeoutMs);
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) =>
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, timedOut });
    }),
  );
}
