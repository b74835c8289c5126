/**
 * Starting the real `bin/hchat` and waiting for its ready line, without vitest: the core of
 * test/processes.ts's `spawnHchat` (which also kills it when the test ends), shared with the NAT
 * world (test/netns-core.ts), which bench/nat.ts builds outside any test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

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

/** A process just started: the caller owns `proc` (and its end) from now on. */
export interface Launched {
  proc: ChildProcess;
  exited: Promise<number | null>;
  /** Resolves on the ready line; rejects when the process exits first or stays silent. */
  ready: Promise<HchatProcess>;
}

/**
 * Starts `bin/hchat args…`. `wrap` runs it through another command (`ip netns exec <ns>`:
 * test/netns-core.ts), which execs it in place. `bin` is another install's `bin/hchat`, run
 * under `node nodeArgs…` (test/code-cache.test.ts).
 */
export function launchHchat(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 15_000,
  until: RegExp = /^ready (.*)$/m,
  wrap: string[] = [],
  { bin = BIN, nodeArgs = [] }: { bin?: string; nodeArgs?: string[] } = {},
): Launched {
  const [cmd, ...pre] = [...wrap, process.execPath];
  const proc = spawn(cmd!, [...pre, ...nodeArgs, bin, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let stdout = '';
  let stderr = '';
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => resolve(code)),
  );
  const ready = new Promise<HchatProcess>((resolve, reject) => {
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
        const fields: Record<string, string> = {};
        for (const kv of (m[1] ?? '').split(' ')) {
          const i = kv.indexOf('=');
          fields[kv.slice(0, i)] = kv.slice(i + 1);
        }
        resolve({
          proc,
          ready: fields,
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
  return { proc, exited, ready };
}
