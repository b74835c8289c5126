/**
 * A swarm of real `bin/hchat` processes for end-to-end scenarios: one server and named peers,
 * each registered and logged in as its name. Helpers read what a user sees (the local API), what
 * each process logged, and what the server stored.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { onTestFinished } from 'vitest';
import { api, stablePort, tempDir, waitFor, type ApiAnswer } from './testnet.js';
import { spawnHchat, spawnServer, type HchatProcess } from './processes.js';
import { parseRecord } from '../src/shared/connlog.js';

export interface SwarmPeer {
  proc: HchatProcess;
  ui: string;
  p2p: string;
  data: string;
  args: string[];
}

export interface Swarm {
  dir: string;
  server: HchatProcess;
  peers: Record<string, SwarmPeer>;
  call<T = any>(name: string, method: string, route: string, body?: unknown): Promise<ApiAnswer<T>>;
  /** The channel as `name` sees it now: texts in order, and where they came from. */
  view(
    name: string,
    channelId: string,
  ): Promise<{ texts: string[]; source: string; states: string[] }>;
  /** Waits until `name` reads the channel from `source` and sees exactly `texts`. */
  waitView(name: string, channelId: string, texts: string[], source?: string): Promise<void>;
  kill(name: string): Promise<void>;
  /** Starts the server again on the same port and data (after a kill). */
  restartServer(): Promise<void>;
  restart(name: string): Promise<SwarmPeer>;
  log(name: string): Array<Record<string, string>>;
  /** Messages the server stored for a channel: [id, text], in channel order. */
  serverMessages(channelId: string): Array<{ id: string; text: string; author: string }>;
  /** Ids of every item (messages and changes) the server stored for a channel. */
  serverItemIds(channelId: string): string[];
  serverStats(): Promise<{
    traffic: Record<string, number>;
    messages: { posted: number; forwarded: number; duplicates: number; pushed: number };
  }>;
  /** Kills every process now and removes the data (a soak plays many swarms in one test). */
  close(): Promise<void>;
}

/**
 * Starts a server and one peer per name, each logged in as its name; `alice@2` is a second
 * device of alice (logged in as alice on its own data). `serverEnv` is the server's environment.
 */
export async function startSwarm(
  names: string[],
  opts: { serverEnv?: Record<string, string> } = {},
): Promise<Swarm> {
  const dir = tempDir();
  const sdata = path.join(dir, 'server');
  let server = await spawnServer(sdata, { port: await stablePort(), env: opts.serverEnv });
  const peers: Record<string, SwarmPeer> = {};
  const startPeer = async (name: string, args: string[]) => {
    const proc = await spawnHchat(args);
    peers[name] = { proc, ui: proc.ready.ui!, p2p: proc.ready.p2p!, data: args[4]!, args };
    return peers[name]!;
  };
  let db: Database.Database | undefined;
  onTestFinished(() => {
    db?.close();
  });
  const swarm: Swarm = {
    dir,
    server,
    peers,
    call: (name, method, route, body) => api(peers[name]!.ui, method, route, body),
    async view(name, channelId) {
      const r = await swarm.call(name, 'GET', `/api/channels/${channelId}/messages?limit=500`);
      if (r.status !== 200) throw new Error(`${name}: ${JSON.stringify(r.body)}`);
      return {
        texts: r.body.messages.map((m: any) => m.text),
        states: r.body.messages.map((m: any) => m.state),
        source: r.body.source,
      };
    },
    async waitView(name, channelId, texts, source) {
      let last: unknown;
      await waitFor(
        async () => {
          const v = await swarm.view(name, channelId);
          last = v;
          return (
            JSON.stringify(v.texts) === JSON.stringify(texts) && (!source || v.source === source)
          );
        },
        15_000,
        `${name} to see ${JSON.stringify(texts)} from ${source ?? 'any source'} (last: ${JSON.stringify(last)})`,
      );
    },
    async kill(name) {
      const p = peers[name]!;
      p.proc.proc.kill('SIGKILL');
      await p.proc.exited;
    },
    async restartServer() {
      const [host, port] = server.ready.tcp!.split(':') as [string, string];
      server = await spawnHchat(
        ['server', '--host', host, '--port', port, '--http-port', '0', '--data', sdata],
        opts.serverEnv,
      );
      swarm.server = server;
    },
    async restart(name) {
      return startPeer(name, peers[name]!.args);
    },
    log(name) {
      const file =
        name === 'server'
          ? path.join(sdata, 'connections.log')
          : path.join(peers[name]!.data, 'connections.log');
      return fs.readFileSync(file, 'utf8').trim().split('\n').map(parseRecord);
    },
    serverMessages(channelId) {
      db ??= new Database(path.join(sdata, 'server.db'), { readonly: true });
      return db
        .prepare<[string], { id: string; text: string; author: string }>(
          `SELECT id, text, author FROM messages WHERE channel_id = ? AND kind = 'message'
           ORDER BY ts, lc, id`,
        )
        .all(channelId);
    },
    serverItemIds(channelId) {
      db ??= new Database(path.join(sdata, 'server.db'), { readonly: true });
      return db
        .prepare<[string], { id: string }>('SELECT id FROM messages WHERE channel_id = ?')
        .all(channelId)
        .map((r) => r.id);
    },
    async serverStats() {
      return (await fetch(new URL('stats', server.ready.http))).json() as any;
    },
    async close() {
      db?.close();
      db = undefined;
      for (const p of [swarm.server, ...Object.values(peers).map((x) => x.proc)]) {
        if (p.proc.exitCode !== null || p.proc.signalCode !== null) continue;
        p.proc.kill('SIGKILL');
        await p.exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  const registered = new Set<string>();
  for (const name of names) {
    await startPeer(name, ['peer', '--server', server.ready.tcp!, '--data', path.join(dir, name)]);
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
