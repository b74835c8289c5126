/**
 * A process whose own event loop was held (a long task, a collector pause, a suspended laptop, an
 * overloaded machine) must not take that for the other end's silence: what the other end sent
 * meanwhile is in the kernel's buffers, unread. Found in the realistic mix (bench/mix.ts): member
 * processes late by seconds dropped thousands of healthy host links for E_HEARTBEAT_TIMEOUT, and
 * the reconnections made them later still. A real server in its own process; the link in this
 * one, whose thread the test holds.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ServerLink } from '../src/peer/server-link.js';
import { ServerTrust } from '../src/peer/server-trust.js';
import type { HchatError } from '../src/protocol/errors.js';
import { spawnServer } from './processes.js';
import { tempDir } from './testnet.js';

/** Holds this thread (timers, sockets, everything) for `ms`. */
const hold = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a held event loop is not the other end going silent', () => {
  it('a link held past the timeout, counted from the last frame it read, stays up when the answer came meanwhile', async () => {
    // The server pings nobody: a quiet link reads a pong per ping, every 1.6-2 s here.
    const s = await spawnServer(path.join(tempDir(), 's'), {
      extra: ['--heartbeat-ms', '2000', '--peer-timeout-ms', '3000'],
    });
    const [host, port] = s.ready.tcp!.split(':') as [string, string];
    const link = new ServerLink({
      host,
      port: Number(port),
      trust: ServerTrust.pinned(host, Number(port), s.ready.fingerprint!),
      reconnect: false,
    });
    onTestFinished(() => link.stop());
    await link.start();
    const downs: (string | undefined)[] = [];
    link.on('down', (e?: HchatError) => downs.push(e?.code ?? 'eof'));
    for (let round = 0; round < 3; round++) {
      // Read an answer, then nothing for 1.4 s (a request counts as sent: no ping meanwhile)…
      await link.request('reflect', {});
      await sleep(1400);
      // …then ask, and hold the thread 2 s while the answer arrives. The server heard this
      // request 2 s ago (within its 3 s); this end last read a frame 3.4 s ago.
      const answer = link.request('reflect', {});
      await new Promise((r) => setImmediate(r)); // a turn's writes leave at its end
      hold(2000);
      await expect(answer).resolves.toMatchObject({ ip: '127.0.0.1' });
      await sleep(300);
      expect(downs, `round ${round}`).toEqual([]);
      expect(link.connected).toBe(true);
    }
  });

  it('a link busy past the timeout after reading its last answer, with nothing asked meanwhile, is not dropped: a server only answers', async () => {
    // PROTOCOL §3.2: the server answers pings; it owes nothing while nothing is asked. A member
    // process whose turns take seconds read its pong early in a turn and checked at its end.
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(import.meta.dirname, 'patient-server.ts')],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    onTestFinished(() => void child.kill('SIGKILL'));
    const [port, fingerprint] = await new Promise<[number, string]>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (b) => {
        out += b;
        const m = /ready (\d+) (\S+)/.exec(out);
        if (m) resolve([Number(m[1]), m[2]!]);
      });
      child.once('exit', () => reject(new Error(`patient server exited: ${out}`)));
    });
    const link = new ServerLink({
      host: '127.0.0.1',
      port,
      trust: ServerTrust.pinned('127.0.0.1', port, fingerprint),
      reconnect: false,
    });
    onTestFinished(() => link.stop());
    await link.start();
    const downs: (string | undefined)[] = [];
    link.on('down', (e?: HchatError) => downs.push(e?.code ?? 'eof'));
    for (let round = 0; round < 2; round++) {
      // Runs in the turn that read the answer: 3.5 s of work follow its last read.
      await link.request('reflect', {});
      hold(3500);
      await sleep(1500);
      expect(downs, `round ${round}`).toEqual([]);
      await expect(link.request('reflect', {})).resolves.toMatchObject({ ip: '127.0.0.1' });
    }
  });
});
