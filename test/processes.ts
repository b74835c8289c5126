/**
 * Spawning the real `bin/hchat` for tests that kill processes or restart them on the same data.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { onTestFinished } from 'vitest';

const BIN = path.resolve(import.meta.dirname, '..', 'bin', 'hchat');

/** A spawned hchat process and the fields of its ready line. */
export interface HchatProcess {
  proc: ChildProcess;
  ready: Record<string, string>;
  /** stdout and stderr, interleaved as they came. */
  output(): string;
  /** stdout alone (the ready line and what follows it). */
  stdout(): string;
  /** stderr alone (the server's operational log). */
  stderr(): string;
  /** Resolves when the process has exited. */
  exited: Promise<number | null>;
}

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
  const [cmd, ...pre] = [...wrap, process.execPath];
  const proc = spawn(cmd!, [...pre, BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let stdout = '';
  let stderr = '';
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => resolve(code)),
  );
  onTestFinished(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ready line from hchat ${args.join(' ')}:\n${out}`)),
      timeoutMs,
    );
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      stdout += d.toString();
      const m = until.exec(out);
      if (m) {
        clearTimeout(timer);
        const ready: Record<string, string> = {};
        for (const kv of (m[1] ?? '').split(' ')) {
          const i = kv.indexOf('=');
          ready[kv.slice(0, i)] = kv.slice(i + 1);
        }
        resolve({
          proc,
          ready,
          output: () => out,
          stdout: () => stdout,
          stderr: () => stderr,
          exited,
        });
      }
    });
    proc.stderr!.on('data', (d: Buffer) => {
      out += d.toString();
      stderr += d.toString();
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hchat ${args.join(' ')} exited with ${code}:\n${out}`));
    });
  });
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
