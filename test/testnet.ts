/**
 * Test harness: a real central server and real peers on 127.0.0.1 (port 0 everywhere), in this
 * process, torn down when the test ends. Multi-process tests use `spawnHchat` instead.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { onTestFinished } from 'vitest';
import { parseRecord } from '../src/shared/connlog.js';
import { CentralServer, type ServerOptions } from '../src/server/server.js';
import { startPeer, type PeerProcess } from '../src/peer/index.js';
import type { PeerOptions } from '../src/peer/node.js';
import { ServerTrust } from '../src/peer/server-trust.js';
import { ServerLink } from '../src/peer/server-link.js';
import type crypto from 'node:crypto';
import { newSessionKeys, signMessage, type SessionKeys } from '../src/shared/signing.js';
import { messageId } from '../src/shared/message-id.js';
import { publicKeyFromBase64 } from '../src/shared/tokens.js';
import { HostLink } from '../src/peer/host-link.js';
import type { TrackerEntry } from '../src/protocol/common.js';

/**
 * A free TCP port below the kernel's ephemeral range (32768-60999 here). Servers that tests
 * restart on the same port use one: a port-0 bind elsewhere (any other test) can never take it
 * while the server is down, as it could an ephemeral port.
 */
export async function stablePort(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/** A fresh temporary folder, removed after the test. */
export function tempDir(prefix = 'hchat-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The answer of a local API call. */
export interface ApiAnswer<T = any> {
  status: number;
  body: T;
}

/**
 * The headers that open a peer's local API: its token, taken from the `?token=` of `base` (a
 * `ui=` URL as printed), as `Authorization: Bearer`. None when `base` has no token.
 */
export function authHeaders(base: string): Record<string, string> {
  const token = new URL(base).searchParams.get('token');
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** Calls a peer's local API; `base` is its `ui=` URL (the token in it is sent as Bearer). */
export async function api<T = any>(
  base: string,
  method: string,
  route: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<ApiAnswer<T>> {
  // `route` is absolute: the URL keeps base's origin and drops its `?token=`.
  const res = await fetch(new URL(route, base), {
    method,
    headers: {
      ...authHeaders(base),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** A peer of a testnet, with its API bound. */
export interface TestPeer extends PeerProcess {
  dataDir: string;
  call<T = any>(method: string, route: string, body?: unknown): Promise<ApiAnswer<T>>;
}

export interface Testnet {
  dir: string;
  server: CentralServer;
  serverHost: string;
  serverPort: number;
  peers: TestPeer[];
  addPeer(name?: string, extra?: Partial<PeerOptions>): Promise<TestPeer>;
  /** Stops a peer and starts it again on the same data (and `extra` options); it takes the old one's place. */
  restartPeer(p: TestPeer, extra?: Partial<PeerOptions>): Promise<TestPeer>;
  /** Stops the server and starts it again on the same port and data. */
  restartServer(): Promise<void>;
  /** Stops the server (`startServer` brings it back on the same port and data). */
  stopServer(): Promise<void>;
  startServer(): Promise<void>;
  /** A raw protocol client (no reconnect), closed after the test. */
  rawLink(): Promise<ServerLink>;
}

/** Starts a server and `peers` peers. */
export async function createTestnet(
  o: { peers?: number; server?: Partial<ServerOptions> } = {},
): Promise<Testnet> {
  const dir = tempDir();
  // Every test peer comes from 127.0.0.1: the per-address limits on registrations, visitors,
  // tracker entries and failed REST API tokens are raised here; test/hostile/ sets the ones it
  // attacks to their defaults itself.
  const raised: Partial<ServerOptions> = {
    maxRegistrationsPerAddress: 10_000,
    maxVisitorsPerAddress: 10_000,
    maxTrackerEntriesPerAddress: 10_000,
    apiBadTokenBurst: 100_000,
  };
  const server = await CentralServer.start({
    host: '127.0.0.1',
    port: await stablePort(),
    httpPort: 0,
    dataDir: path.join(dir, 'server'),
    ...raised,
    ...o.server,
  });
  const serverOpts = {
    host: '127.0.0.1',
    httpPort: 0,
    dataDir: path.join(dir, 'server'),
    ...raised,
    ...o.server,
  };
  const closers: Array<() => Promise<void>> = [() => net.server.close()];
  onTestFinished(async () => {
    for (const c of closers.reverse()) await c();
  });
  const [serverHost, portText] = server.tcpAddress.split(':') as [string, string];
  const serverPort = Number(portText);
  let n = 0;
  const net: Testnet = {
    dir,
    server,
    serverHost,
    serverPort,
    peers: [],
    async addPeer(name = `peer${n}`, extra = {}) {
      n++;
      const dataDir = path.join(dir, name);
      const p = await startPeer({
        serverHost,
        serverPort,
        serverFingerprint: server.fingerprint,
        host: '127.0.0.1',
        p2pPort: 0,
        udpPort: 0,
        uiPort: 0,
        dataDir,
        minBackoffMs: 20,
        maxBackoffMs: 200,
        ...extra,
      });
      closers.push(() => p.close());
      const tp: TestPeer = Object.assign(p, {
        dataDir,
        call: <T = any>(method: string, route: string, body?: unknown) =>
          api<T>(p.uiUrl, method, route, body),
      });
      net.peers.push(tp);
      return tp;
    },
    async restartPeer(p, extra = {}) {
      await p.close();
      const name = path.basename(p.dataDir);
      const i = net.peers.indexOf(p);
      const again = await net.addPeer(name, extra);
      net.peers.pop();
      net.peers[i] = again;
      return again;
    },
    async restartServer() {
      await net.stopServer();
      await net.startServer();
    },
    async stopServer() {
      await net.server.close();
    },
    async startServer() {
      net.server = await CentralServer.start({ ...serverOpts, port: serverPort });
    },
    async rawLink() {
      const link = new ServerLink({
        host: serverHost,
        port: serverPort,
        trust: ServerTrust.pinned(serverHost, serverPort, server.fingerprint),
        reconnect: false,
      });
      await link.start();
      closers.push(async () => link.stop());
      return link;
    },
  };
  for (let i = 0; i < (o.peers ?? 0); i++) await net.addPeer();
  return net;
}

/** Registers and logs in `username` on a peer (password `<username>-pw`). */
export async function signIn(p: TestPeer, username: string): Promise<void> {
  const r = await p.call('POST', '/api/register', { username, password: `${username}-pw` });
  if (r.status !== 201) throw new Error(`register ${username}: ${JSON.stringify(r.body)}`);
  const l = await p.call('POST', '/api/login', { username, password: `${username}-pw` });
  if (l.status !== 200) throw new Error(`login ${username}: ${JSON.stringify(l.body)}`);
}

/** alice's channel `name` with bob a member, both signed in on their own peers of a new testnet. */
export async function twoMembers(name = 'general') {
  const net = await createTestnet({ peers: 2 });
  const [pa, pb] = net.peers as [TestPeer, TestPeer];
  await signIn(pa, 'alice');
  await signIn(pb, 'bob');
  const ch = (await pa.call('POST', '/api/channels', { name, allowVisitors: false })).body;
  await pb.call('POST', `/api/channels/${ch.id}/join`);
  return { net, pa, pb, ch };
}

/**
 * Makes bot `username` owned by the peer's signed-in user (README "Bots") and a read and write
 * token for it; answers the token.
 */
export async function botToken(p: TestPeer, username: string): Promise<string> {
  const b = await p.call('POST', '/api/bots', { username });
  if (b.status !== 201) throw new Error(`bot ${username}: ${JSON.stringify(b.body)}`);
  const t = await p.call('POST', '/api/tokens', {
    name: username,
    account: username,
    scopes: ['read', 'write'],
  });
  if (t.status !== 201) throw new Error(`token of ${username}: ${JSON.stringify(t.body)}`);
  return t.body.token as string;
}

/** Polls `check` until it returns a truthy value, or fails after `ms`. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  ms = 10_000,
  what: string | (() => string) = 'condition',
): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${typeof what === 'function' ? what() : what}${last ? `: ${String(last)}` : ''}`,
      );
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Reads an SSE stream of a peer, collecting events until closed by the test's end. */
export function collectEvents(base: string): {
  events: Array<{ id: number; event: string; data: any }>;
  ready: Promise<void>;
} {
  const events: Array<{ id: number; event: string; data: any }> = [];
  const ctrl = new AbortController();
  onTestFinished(() => ctrl.abort());
  const ready = (async () => {
    const res = await fetch(new URL('/api/events', base), {
      signal: ctrl.signal,
      headers: authHeaders(base),
    });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    void (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buf += decoder.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const e: Record<string, string> = {};
            for (const line of block.split('\n')) {
              const m = /^(\w+): (.*)$/.exec(line);
              if (m) e[m[1]!] = m[2]!;
            }
            if (e.event)
              events.push({ id: Number(e.id), event: e.event, data: JSON.parse(e.data ?? 'null') });
          }
        }
      } catch {
        // aborted at the end of the test
      }
    })();
  })();
  return { events, ready };
}

/** A raw client's session, as `rawSession` opens it. */
export interface RawSession {
  username: string;
  sessionId: string;
  keys: SessionKeys;
  cert: string;
  token: string;
  /** The central server's key, from its hello. */
  serverKey: crypto.KeyObject;
}

/** A raw client's session: logs in (or enters as a visitor) with a fresh message key. */
export async function rawSession(
  link: ServerLink,
  how: { username: string; password: string } | { name: string },
): Promise<RawSession> {
  const keys = newSessionKeys();
  const r =
    'name' in how
      ? await link.request('visitor', { name: how.name, publicKey: keys.publicKey })
      : await link.request('login', { ...how, publicKey: keys.publicKey });
  return {
    username: r.username,
    sessionId: r.sessionId,
    keys,
    cert: r.cert,
    token: r.token,
    serverKey: publicKeyFromBase64(link.server!.publicKey),
  };
}

/** A P2P link from a raw session to a peer's tracker entry (proof-of-possession handshake). */
export function rawHostLink(entry: TrackerEntry, s: RawSession): HostLink {
  const link = new HostLink(
    entry,
    { cert: s.cert, keys: s.keys, sessionId: s.sessionId },
    () => s.serverKey,
  );
  onTestFinished(() => link.stop());
  return link;
}

/**
 * A message signed by a raw session, ready for `post`. Without an `id`, the id is derived from
 * the content, as honest peers do; a given `id` is kept (to test refusals).
 */
export function signed(
  s: { username: string; keys: SessionKeys; cert: string },
  m: { id?: string; channelId: string; ts: number; lc: number; text: string },
) {
  const id = m.id ?? messageId({ ...m, author: s.username });
  const full = { ...m, id };
  return { ...full, sig: signMessage({ ...full, author: s.username }, s.keys), cert: s.cert };
}

/** A test peer's connection log, flushed and parsed, one record per line. */
export function peerLog(p: TestPeer): Array<Record<string, string>> {
  p.node.log.flush();
  return fs
    .readFileSync(path.join(p.dataDir, 'connections.log'), 'utf8')
    .trim()
    .split('\n')
    .map(parseRecord);
}
