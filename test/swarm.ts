/**
 * A swarm of real `bin/hchat` processes for end-to-end scenarios: a server (or several instances
 * of one on PostgreSQL and NATS) and named peers, each registered and logged in as its name.
 * Helpers read what a user sees (the local API), what each process logged, and what the server
 * stored. Everything runs on 127.0.0.1, or with `nat` each peer in a home of its own behind a
 * router and the server on the internet of test/netns.ts (test/swarm-nat.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { onTestFinished } from 'vitest';
import { api, stablePort, tempDir, type ApiAnswer } from './testnet.js';
import { spawnHchat, type HchatProcess } from './processes.js';
import { startNats, type TestNats } from './nats.js';
import { createTestDatabase } from './pg-kit.js';
import { signingKeyFile } from './cluster-kit.js';
import { parseRecord } from '../src/shared/connlog.js';
import { channelReader, pgReader, sqliteReader, type StoredMessage } from './swarm-reads.js';
import { startNatSwarm } from './swarm-nat.js';
import type { NatSpec, NatWorld } from './netns.js';

export type { StoredMessage } from './swarm-reads.js';

export interface SwarmPeer {
  proc: HchatProcess;
  ui: string;
  p2p: string;
  data: string;
  args: string[];
}

export interface Swarm {
  dir: string;
  /** The first server instance (the only one unless `instances` was given). */
  server: HchatProcess;
  /** Every server instance, by index. */
  servers: HchatProcess[];
  peers: Record<string, SwarmPeer>;
  /** The instance each peer connects to first (its `--server` list starts there). */
  home: Record<string, number>;
  /** In NAT mode, the namespaces the swarm runs in (home k is the k-th name's). */
  world?: NatWorld;
  call<T = any>(name: string, method: string, route: string, body?: unknown): Promise<ApiAnswer<T>>;
  /** The channel as `name` sees it now: ids and texts in order, and where they came from. */
  view(
    name: string,
    channelId: string,
  ): Promise<{ ids: string[]; texts: string[]; source: string; states: string[] }>;
  /** Waits until `name` reads the channel from `source` and sees exactly `texts`. */
  waitView(name: string, channelId: string, texts: string[], source?: string): Promise<void>;
  kill(name: string): Promise<void>;
  /**
   * Ends server instance `i` (default 0) with `signal` and waits for its exit: SIGKILL is a
   * crash, SIGTERM a drain (its peers are told to move first).
   */
  stopServer(i?: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts server instance `i` (default 0) again on the same port and data (after a stop). */
  restartServer(i?: number): Promise<void>;
  restart(name: string): Promise<SwarmPeer>;
  log(name: string): Array<Record<string, string>>;
  /** Messages the server stored for a channel, in channel order. */
  serverMessages(channelId: string): Promise<StoredMessage[]>;
  /** Ids of every item (messages and changes) the server stored for a channel. */
  serverItemIds(channelId: string): Promise<string[]>;
  serverStats(): Promise<{
    traffic: Record<string, number>;
    messages: { posted: number; forwarded: number; duplicates: number; pushed: number };
  }>;
  /** Kills every process now and removes the data (a soak plays many swarms in one test). */
  close(): Promise<void>;
}

/** Options of `startSwarm`. */
export interface SwarmOptions {
  serverEnv?: Record<string, string>;
  instances?: number;
  serverArgs?: string[];
  /** One home per peer, in the order of the names: the swarm runs across NATs. */
  nat?: NatSpec[];
}

/** The shared parts of a deployment of several instances: database, bus and signing key. */
interface Cluster {
  storeUrl: string;
  nats: TestNats;
  key: string;
  drop(): Promise<void>;
}

/** The shared parts; the instances are spawned by `startSwarm` (on stable ports, restartable). */
async function startClusterServices(dir: string): Promise<Cluster> {
  const db = await createTestDatabase();
  const nats = await startNats();
  return { storeUrl: db.url, nats, key: signingKeyFile(dir), drop: db.drop };
}

/**
 * Starts a server and one peer per name, each logged in as its name; `alice@2` is a second
 * device of alice (logged in as alice on its own data). `serverEnv` is the server's environment.
 * With `instances` (2 or more) the server is that many instances on a fresh PostgreSQL database,
 * a NATS of their own and one signing key; peer k starts on instance k mod N and lists every
 * instance after it, in turn (so peers know all addresses, in different orders).
 * `serverArgs` are added to every instance's command line. With `nat`, the server (one instance)
 * runs on the internet and each peer at its own home behind the router `nat[k]` describes.
 */
export async function startSwarm(names: string[], opts: SwarmOptions = {}): Promise<Swarm> {
  if (opts.nat) return startNatSwarm(names, opts.nat, opts);
  const dir = tempDir();
  const count = opts.instances ?? 1;
  const cluster = count > 1 ? await startClusterServices(dir) : undefined;
  const sdata = (i: number) => path.join(dir, i === 0 ? 'server' : `server${i}`);
  const clusterArgs = cluster
    ? ['--store', cluster.storeUrl, '--bus', cluster.nats.url, '--signing-key', cluster.key]
    : [];
  const extra = [...clusterArgs, ...(opts.serverArgs ?? [])];
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await stablePort());
  // An instance opens PostgreSQL and NATS before it is ready: slower on a loaded machine.
  const spawnInstance = (i: number) =>
    spawnHchat(
      [
        'server',
        '--host',
        '127.0.0.1',
        '--port',
        String(ports[i]),
        '--http-port',
        '0',
        '--data',
        sdata(i),
        ...extra,
      ],
      opts.serverEnv,
      cluster ? 30_000 : 15_000,
    );
  const servers: HchatProcess[] = [];
  for (let i = 0; i < count; i++) servers.push(await spawnInstance(i));
  const stored = cluster
    ? pgReader(cluster.storeUrl)
    : sqliteReader(path.join(sdata(0), 'server.db'));
  const peers: Record<string, SwarmPeer> = {};
  const home: Record<string, number> = {};
  const startPeer = async (name: string, args: string[]) => {
    const proc = await spawnHchat(args);
    peers[name] = { proc, ui: proc.ready.ui!, p2p: proc.ready.p2p!, data: args[4]!, args };
    return peers[name]!;
  };
  onTestFinished(async () => {
    await stored.close();
  });
  const swarm: Swarm = {
    dir,
    server: servers[0]!,
    servers,
    peers,
    home,
    call: (name, method, route, body) => api(peers[name]!.ui, method, route, body),
    ...channelReader((name, method, route) => swarm.call(name, method, route), 15_000),
    async kill(name) {
      const p = peers[name]!;
      p.proc.proc.kill('SIGKILL');
      await p.proc.exited;
    },
    async stopServer(i = 0, signal = 'SIGKILL') {
      const s = servers[i]!;
      if (s.proc.exitCode !== null || s.proc.signalCode !== null) return;
      s.proc.kill(signal);
      await s.exited;
    },
    async restartServer(i = 0) {
      servers[i] = await spawnInstance(i);
      if (i === 0) swarm.server = servers[0]!;
    },
    async restart(name) {
      return startPeer(name, peers[name]!.args);
    },
    log(name) {
      const file =
        name === 'server'
          ? path.join(sdata(0), 'connections.log')
          : path.join(peers[name]!.data, 'connections.log');
      return fs.readFileSync(file, 'utf8').trim().split('\n').map(parseRecord);
    },
    serverMessages: (channelId) => stored.messages(channelId),
    serverItemIds: (channelId) => stored.itemIds(channelId),
    async serverStats() {
      return (await fetch(new URL('stats', swarm.server.ready.http))).json() as any;
    },
    async close() {
      await stored.close();
      for (const p of [...servers, ...Object.values(peers).map((x) => x.proc)]) {
        if (p.proc.exitCode !== null || p.proc.signalCode !== null) continue;
        p.proc.kill('SIGKILL');
        await p.exited;
      }
      if (cluster) {
        await cluster.nats.kill();
        await cluster.drop();
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  const registered = new Set<string>();
  for (const [k, name] of names.entries()) {
    home[name] = k % count;
    const order = Array.from({ length: count }, (_, j) => `127.0.0.1:${ports[(k + j) % count]}`);
    await startPeer(name, ['peer', '--server', order.join(','), '--data', path.join(dir, name)]);
    const user = name.split('@')[0]!;
    if (!registered.has(user)) {
      const reg = await swarm.call(name, 'POST', '/api/register', {
        username: user,
        password: `${user}-pw`,
      });
      if (reg.status !== 201) throw new Error(JSON.stringify(reg.body));
      registered.add(user);
    }
    await swarm.call(name, 'POST', '/api/login', { username: user, password: `${user}-pw` });
  }
  return swarm;
}

/** alice hosts "general"; bob and carol joined and read it from her peer. */
export async function hostedChannel(s: Swarm): Promise<string> {
  const ch = (
    await s.call('alice', 'POST', '/api/channels', { name: 'general', allowVisitors: false })
  ).body;
  for (const m of ['bob', 'carol']) await s.call(m, 'POST', `/api/channels/${ch.id}/join`);
  for (const m of ['bob', 'carol']) await s.waitView(m, ch.id, [], 'host');
  return ch.id;
}
