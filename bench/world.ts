/**
 * A small world for the benches that need real peers (bench/hosting.ts, bench/web-ui.ts): a
 * central server in this process on any free port, and peers started on it, each registered and
 * logged in; `close` stops them all and removes their data.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CentralServer } from '../src/server/server.js';
import type { ServerOptions } from '../src/server/server-options.js';
import { startPeer, type PeerProcess } from '../src/peer/index.js';

/** Polls `check` until it holds; throws after `ms` naming `what`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A server (with `options` beyond the defaults) and a way to add logged-in peers to it. */
export async function benchWorld(prefix: string, options: Partial<ServerOptions> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const server = await CentralServer.start({
    host: '127.0.0.1',
    port: 0,
    httpPort: 0,
    dataDir: path.join(dir, 'server'),
    ...options,
  });
  const [host, port] = server.tcpAddress.split(':') as [string, string];
  const peers: PeerProcess[] = [];
  /** A peer whose user `name` (password `<name>-bench`) is registered and logged in. */
  const peer = async (name: string) => {
    const p = await startPeer({
      serverHost: host,
      serverPort: Number(port),
      serverFingerprint: server.fingerprint,
      host: '127.0.0.1',
      p2pPort: 0,
      udpPort: 0,
      uiPort: 0,
      dataDir: path.join(dir, name),
    });
    peers.push(p);
    await p.node.register(name, `${name}-bench`);
    await p.node.login(name, `${name}-bench`);
    return p;
  };
  const close = async () => {
    for (const p of peers) await p.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { dir, server, host, port: Number(port), peer, close };
}
