/**
 * A local process's files and signals (issue 11, finding 21): a damaged database or session file
 * stops the process at start with a message naming the file, and every way of stopping the demo
 * (`npm start` stopped by a supervisor's SIGTERM, a closing terminal's SIGHUP) stops all of it.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { onTestFinished, describe, expect, it } from 'vitest';
import { runHchat, spawnHchat, spawnServer } from '../processes.js';
import { tempDir, waitFor } from '../testnet.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

/** Writes a database with real content by running the process once on `data`, then stops it. */
async function makeDatabase(kind: 'server' | 'peer', data: string): Promise<string> {
  const p =
    kind === 'server'
      ? await spawnServer(data)
      : await spawnHchat(['peer', '--server', '127.0.0.1:1', '--data', data]);
  p.proc.kill('SIGTERM');
  expect(await p.exited).toBe(0);
  const file = path.join(data, `${kind}.db`);
  expect(fs.statSync(file).size).toBeGreaterThan(8192);
  return file;
}

/** Ways a database file gets damaged: not SQLite at all, cut short, pages overwritten. */
const DAMAGE: Record<string, (b: Buffer) => Buffer> = {
  'random bytes': (b) => Buffer.from(Array.from({ length: b.length }, (_, i) => (i * 131) & 255)),
  truncated: (b) => b.subarray(0, Math.floor(b.length / 2) + 100),
  'pages overwritten': (b) => {
    const c = Buffer.from(b);
    for (let i = 4096; i < c.length; i++) c[i] = (c[i]! * 7 + 13) & 255;
    return c;
  },
};

function args(kind: 'server' | 'peer', data: string): string[] {
  return kind === 'server'
    ? ['server', '--port', '0', '--http-port', '0', '--data', data]
    : ['peer', '--server', '127.0.0.1:1', '--data', data];
}

describe('damaged files', () => {
  for (const kind of ['server', 'peer'] as const) {
    it(`a damaged ${kind}.db refuses to start, naming the file`, async () => {
      const dir = tempDir();
      const good = fs.readFileSync(await makeDatabase(kind, path.join(dir, 'good')));
      for (const [how, damage] of Object.entries(DAMAGE)) {
        const data = path.join(dir, how.replace(/ /g, '-'));
        fs.mkdirSync(data, { mode: 0o700 });
        const file = path.join(data, `${kind}.db`);
        fs.writeFileSync(file, damage(good), { mode: 0o600 });
        const r = await runHchat(args(kind, data), {}, 10_000);
        expect(r.timedOut, `${how}: started anyway:\n${r.out}`).toBe(false);
        expect(r.code, how).not.toBe(0);
        expect(r.out, how).toContain(file);
        expect(r.out, how).not.toMatch(/^ready/m);
      }
    });
  }

  it('a bad key in session.json refuses to start, naming the file and what to do', async () => {
    const data = tempDir();
    const file = path.join(data, 'session.json');
    fs.writeFileSync(
      file,
      JSON.stringify({
        username: 'alice',
        role: 'user',
        sessionId: 'abcdefgh12345678',
        token: 'x.y',
        cert: 'c',
        key: Buffer.from('not a pkcs8 key at all').toString('base64'),
      }),
      { mode: 0o600 },
    );
    const r = await runHchat(['peer', '--server', '127.0.0.1:1', '--data', data], {}, 10_000);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain(file);
    expect(r.out).toMatch(/delete it/);
    expect(r.out).not.toMatch(/asn1|ASN\.1|DECODER/i);
  });
});

/**
 * The processes of group `pgid` that still run (zombies count as ended: their sockets and files
 * are released, and whether init reaps them is not the demo's doing).
 */
function groupAlive(pgid: number): number[] {
  const alive: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // ended meanwhile
    }
    // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') alive.push(Number(entry));
  }
  return alive;
}

/** Runs `npm start` in its own process group (as a terminal would) and waits for its last line. */
async function npmStart(): Promise<{
  pid: number;
  tcp: number[];
  udp: number[];
  data: string;
  exited: Promise<unknown>;
  out: () => string;
}> {
  const proc = spawn('npm', ['start'], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise((r) => proc.once('exit', r));
  // Whatever happens, nothing of this group outlives the test.
  onTestFinished(() => {
    try {
      process.kill(-proc.pid!, 'SIGKILL');
    } catch {
      // the group is gone
    }
  });
  let out = '';
  onTestFinished(() => {
    const data = /data=(\S+)/.exec(out)?.[1];
    if (data) fs.rmSync(data, { recursive: true, force: true });
  });
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(
    () => /^Ctrl-C/m.test(out),
    40_000,
    () => `npm start:\n${out}`,
  );
  const ports = (re: RegExp) => [...out.matchAll(re)].map((m) => Number(m[1]));
  return {
    pid: proc.pid!,
    tcp: ports(/(?:tcp|http|ui|p2p)=[^\s]*?:(\d+)/g),
    udp: ports(/udp=[^\s]*?:(\d+)/g),
    data: /data=(\S+)/.exec(out)![1]!,
    exited,
    out: () => out,
  };
}

describe('stopping npm start', () => {
  it('a signal while the demo starts still removes its temporary data', async () => {
    const tmp = tempDir();
    const proc = spawn(process.execPath, [path.join(ROOT, 'bin', 'hchat'), 'demo'], {
      env: { ...process.env, TMPDIR: tmp },
      stdio: 'ignore',
    });
    const exited = new Promise((r) => proc.once('exit', r));
    onTestFinished(() => void proc.kill('SIGKILL'));
    // As soon as the demo has made its folder, before its peers are up.
    await waitFor(() => fs.readdirSync(tmp).length > 0, 15_000, 'the demo folder');
    proc.kill('SIGTERM');
    await exited;
    expect(fs.readdirSync(tmp)).toEqual([]);
  });

  for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
    it(`${signal} to npm stops the demo: all its processes end, temporary data removed`, async () => {
      const demo = await npmStart();
      expect(demo.tcp.length).toBe(2 + 3 * 2);
      expect(demo.udp.length).toBe(3);
      expect(fs.existsSync(demo.data)).toBe(true);
      process.kill(demo.pid, signal);
      // Every process of the group ends (and its ports with it: a port polled for being free
      // may meanwhile be another test's, picked by the kernel for a listener on port 0).
      await waitFor(
        () => groupAlive(demo.pid).length === 0 && !fs.existsSync(demo.data),
        10_000,
        () =>
          `the demo to stop after ${signal}: still running ${JSON.stringify(groupAlive(demo.pid))}, data ${fs.existsSync(demo.data) ? 'still there' : 'removed'}\n${demo.out()}`,
      );
    }, 60_000);
  }
});
