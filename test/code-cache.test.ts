/**
 * bin/hchat's code cache (README "Tests"): the first start of a command in a build leaves V8's
 * cache of what it compiled, later starts read it instead of writing it again, and a cache that
 * is not V8's (garbage on disk) costs only the saving: the process starts, and writes a good one.
 * Run on a copy of the install (bin/hchat beside dist/hchat/), so that the repository's own cache
 * is never touched while other tests start processes from it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDir } from './testnet.js';
import { launchHchat } from './hchat-spawn.js';

const ROOT = path.resolve(import.meta.dirname, '..');

/** A copy of bin/hchat and the bundle in a fresh folder, using the repository's node_modules. */
function install(): string {
  const dir = tempDir('hchat-install-');
  fs.mkdirSync(path.join(dir, 'bin'));
  fs.mkdirSync(path.join(dir, 'dist', 'hchat'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'bin', 'hchat'), path.join(dir, 'bin', 'hchat'));
  for (const f of ['main.cjs', 'build-id'])
    fs.copyFileSync(path.join(ROOT, 'dist', 'hchat', f), path.join(dir, 'dist', 'hchat', f));
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

/**
 * Starts `hchat server` of `installDir` (under `node nodeArgs…`), waits for its ready line, then
 * `lingerMs`; stops it.
 */
async function startServer(
  installDir: string,
  lingerMs: number,
  nodeArgs: string[] = [],
): Promise<void> {
  const { proc, exited, ready } = launchHchat(
    ['server', '--port', '0', '--http-port', '0', '--data', tempDir()],
    {},
    20_000,
    undefined,
    [],
    { bin: path.join(installDir, 'bin', 'hchat'), nodeArgs },
  );
  onTestFinished(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  });
  await ready;
  await new Promise((r) => setTimeout(r, lingerMs));
  proc.kill('SIGTERM');
  await exited;
}

function cacheFile(installDir: string): string {
  const id = fs.readFileSync(path.join(installDir, 'dist', 'hchat', 'build-id'), 'utf8').trim();
  return path.join(installDir, 'dist', 'hchat', 'cache', `server-${id}.bin`);
}

describe('bin/hchat code cache', () => {
  it('is made by the first start of a command, read by the next, remade when it is garbage, and kept apart for each set of node options', async () => {
    const dir = install();
    const file = cacheFile(dir);
    expect(fs.existsSync(file)).toBe(false);

    await startServer(dir, 3000);
    const made = fs.statSync(file);
    expect(made.size, 'a cache of the code compiled at start').toBeGreaterThan(100_000);

    // V8 rejects a cache made under other flags: a start under one (a profiler's, an operator's
    // NODE_OPTIONS) writes its own, and the plain starts' cache stays as it was.
    await startServer(dir, 3000, ['--stack-trace-limit=50']);
    const names = fs.readdirSync(path.dirname(file)).sort();
    expect(names).toHaveLength(2);
    const flagged = path.join(
      path.dirname(file),
      names.find((n) => n !== path.basename(file))!,
    );
    expect(path.basename(flagged)).toMatch(/^server-[0-9a-f]+-[0-9a-f]{8}\.bin$/);
    const flaggedMade = fs.statSync(flagged);

    // Each is read by the starts it was made for, not written again: a cache is replaced (a new
    // file) only when V8 rejects it.
    await startServer(dir, 3000);
    await startServer(dir, 3000, ['--stack-trace-limit=50']);
    const again = [file, flagged].map((f) => fs.statSync(f)).map((st) => [st.ino, st.mtimeMs]);
    expect(again).toEqual([
      [made.ino, made.mtimeMs],
      [flaggedMade.ino, flaggedMade.mtimeMs],
    ]);

    fs.writeFileSync(file, Buffer.alloc(made.size, 0x5a));
    await startServer(dir, 3000);
    const remade = fs.readFileSync(file);
    expect(remade.equals(Buffer.alloc(made.size, 0x5a))).toBe(false);
    expect(remade.length).toBeGreaterThan(100_000);
    // No file left aside by the writes (each is written under another name, then renamed).
    expect(fs.readdirSync(path.dirname(file)).sort()).toEqual(names);
  });
});
