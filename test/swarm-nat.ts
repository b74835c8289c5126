/**
 * A swarm (test/swarm.ts) across NATs: the server on the internet of test/netns.ts and each peer
 * at a home of its own behind the router its NatSpec describes, so members reach their host the
 * way they would over the internet (a punched hole, or the server's relay). Every Swarm method
 * works as on 127.0.0.1: local APIs are called through the homes' forwarders, the server's HTTP
 * port through one on the internet, and logs and the server's SQLite file are read from the data
 * folders, which the namespaces share with the test.
 */
import fs from 'node:fs';
import path from 'node:path';
import { onTestFinished } from 'vitest';
import { createNatWorld, type HomePeer, type NatSpec } from './netns.js';
import { parseRecord } from '../src/shared/connlog.js';
import type { HchatProcess } from './processes.js';
import { channelReader, sqliteReader } from './swarm-reads.js';
import type { Swarm, SwarmOptions, SwarmPeer } from './swarm.js';

/**
 * Punching or relaying a link takes a few seconds more than a dial on one machine (a punch that
 * times out before the relay takes over: 10 s and more), so views are waited for longer.
 */
const WAIT_VIEW_MS = 30_000;

export async function startNatSwarm(
  names: string[],
  specs: NatSpec[],
  opts: SwarmOptions,
): Promise<Swarm> {
  if ((opts.instances ?? 1) > 1)
    throw new Error('a swarm across NATs has one server instance: instances is not supported');
  if (specs.length !== names.length)
    throw new Error(`a swarm across NATs needs one home per peer: ${specs.length} for ${names}`);
  const world = createNatWorld(specs);
  const sdata = path.join(world.dir, 'server');
  const startServer = () => world.startServer(opts.serverArgs, opts.serverEnv);
  const servers: HchatProcess[] = [await startServer()];
  const stored = sqliteReader(path.join(sdata, 'server.db'));
  onTestFinished(() => stored.close());
  const inHome: Record<string, HomePeer> = {};
  const peers: Record<string, SwarmPeer> = {};
  const home: Record<string, number> = {};
  const startPeer = async (name: string, spawned?: Promise<HomePeer>) => {
    const p = await (spawned ?? world.spawnPeer(names.indexOf(name), servers[0]!, name));
    inHome[name] = p;
    peers[name] = { proc: p.proc, ui: p.ui, p2p: p.p2p, data: p.data, args: p.args };
    return peers[name]!;
  };
  const only = (i: number) => {
    if (i !== 0) throw new Error(`a swarm across NATs has one server instance, not ${i + 1}`);
  };
  const swarm: Swarm = {
    dir: world.dir,
    server: servers[0]!,
    servers,
    peers,
    home,
    world,
    call: (name, method, route, body) => inHome[name]!.call(method, route, body),
    ...channelReader((name, method, route) => swarm.call(name, method, route), WAIT_VIEW_MS),
    kill: (name) => inHome[name]!.kill(),
    async stopServer(i = 0, signal = 'SIGKILL') {
      only(i);
      const s = servers[0]!;
      if (s.proc.exitCode !== null || s.proc.signalCode !== null) return;
      s.proc.kill(signal);
      await s.exited;
    },
    async restartServer(i = 0) {
      only(i);
      servers[0] = await startServer();
      swarm.server = servers[0];
    },
    restart: (name) => startPeer(name),
    log(name) {
      if (name !== 'server') return inHome[name]!.log();
      return fs
        .readFileSync(path.join(sdata, 'connections.log'), 'utf8')
        .trim()
        .split('\n')
        .map(parseRecord);
    },
    serverMessages: (channelId) => stored.messages(channelId),
    serverItemIds: (channelId) => stored.itemIds(channelId),
    async serverStats() {
      const r = await world.serverHttp(swarm.server, '/stats');
      if (r.status !== 200) throw new Error(`server /stats: ${r.status}`);
      return r.body;
    },
    async close() {
      await stored.close();
      await world.close();
    },
  };
  const registered = new Set<string>();
  // The processes start at once; they are registered and logged in one after another, in order.
  const spawned = names.map((name, k) => world.spawnPeer(k, servers[0]!, name));
  // A start that fails fails the swarm once every start has ended (the world ends them all).
  const failed = (await Promise.allSettled(spawned)).find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  for (const [k, name] of names.entries()) {
    home[name] = 0;
    await startPeer(name, spawned[k]);
    const user = name.split('@')[0]!;
    const password = `${user}-pw`;
    if (!registered.has(user)) {
      const reg = await swarm.call(name, 'POST', '/api/register', { username: user, password });
      if (reg.status !== 201) throw new Error(`register ${user}: ${JSON.stringify(reg.body)}`);
      registered.add(user);
    }
    const login = await swarm.call(name, 'POST', '/api/login', { username: user, password });
    if (login.status !== 200) throw new Error(`login ${name}: ${JSON.stringify(login.body)}`);
  }
  return swarm;
}
