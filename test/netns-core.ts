/**
 * A small internet in Linux network namespaces (issue 18), without vitest: test/netns.ts builds
 * one per test and removes it when the test ends; bench/nat.ts builds one per run and removes it
 * itself (also on an error or SIGINT). An "internet" namespace whose bridge holds the server's
 * address, and per home a NAT namespace (its WAN address on that bridge, iptables MASQUERADE, a
 * home router's firewall) in front of a home namespace with a private LAN. Addresses are RFC
 * 5737 documentation ranges on the internet side and 10.0.i.0/24 at home i, so nothing here can
 * leak to a real network.
 *
 * Processes run inside a namespace through `ip netns exec` (which execs in place: the pid is the
 * process's own). A peer's local API listens on 127.0.0.1 of its home, which the builder's own
 * namespace cannot reach: a forwarder in the home serves it on a Unix socket, whose path is
 * shared by every namespace (the server's HTTP port, on the internet, likewise). Needs root and
 * iproute2 and iptables (.ci/run installs them).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { launchHchat, type HchatProcess } from './hchat-spawn.js';
import { parseRecord } from '../src/shared/connlog.js';
// Types only: erased at run time, so vitest (which testnet.ts imports) is not loaded.
import type { ApiAnswer } from './testnet.js';

/** How a home's router maps ports. */
export interface NatSpec {
  /**
   * `--random-fully`: every connection gets a random public port, so a mapping learnt through
   * one destination says nothing of the next (behaves like a symmetric NAT).
   */
  symmetric?: boolean;
  /**
   * No firewall: unsolicited SYNs reach the router's own stack, which answers RST (a router
   * that REJECTs does the same), instead of being dropped silently.
   */
  noFirewall?: boolean;
  /**
   * A stricter firewall (an office's, a hotel's): the home may reach the server's address and
   * nothing else on the internet, so no hole can be punched, whatever the NAT.
   */
  onlyServer?: boolean;
  /** UDP blocked: the router forwards no UDP from home (STUN and media alike). */
  blockUdp?: boolean;
}

/** One home: its router's namespace and its own. */
export interface Home {
  /** The home's namespace, where its peer runs. */
  ns: string;
  /** The router's namespace. */
  nat: string;
  /** The home machine's private address. */
  lanIp: string;
  /** The router's address on the internet: what the server sees of the home. */
  wanIp: string;
}

/** A peer process in a home, with its local API reached through the home's forwarder. */
export interface HomePeer {
  proc: HchatProcess;
  /** `ip:port` of its P2P listener, as its ready line says. */
  p2p: string;
  /** Its `ui=` URL as printed: on the home's 127.0.0.1, which only `call` and `uiUrl` reach. */
  ui: string;
  data: string;
  /** The `bin/hchat` arguments it was started with. */
  args: string[];
  /** Where `call` reaches its local API: for callers that need the raw HTTP (streams, bytes). */
  api: { socketPath: string; port: number; token: string };
  call<T = any>(method: string, route: string, body?: unknown): Promise<ApiAnswer<T>>;
  /** Its connection log, one record per line (docs/PROTOCOL.md §6). */
  log(): Array<Record<string, string>>;
  /**
   * Its web UI's URL (with its token) for a browser in the caller's own namespace: a listener
   * on the same 127.0.0.1 port there, passing each connection to the home's forwarder (the
   * peer wants its own host:port as the Host of every request). Closed with the world.
   */
  uiUrl(): Promise<string>;
  /** SIGKILLs the peer (a crash) and its forwarder; resolves once both have exited. */
  kill(): Promise<void>;
}

/** A peer for `startPeers`: its home, its user's name, and extra flags. */
export type PeerToStart = [i: number, username: string, extra?: string[]];

export interface NatWorld {
  /** The namespace of the internet, where the server runs. */
  inet: string;
  serverIp: string;
  homes: Home[];
  dir: string;
  /** Runs a command in a namespace to completion; returns its stdout. */
  run(ns: string, cmd: string[]): string;
  /**
   * Starts `bin/hchat server` on the internet (TCP port 7000, on `<dir>/server`, with `extra`
   * flags and `env`): called again after the server stopped, it restarts it on the same port
   * and data.
   */
  startServer(extra?: string[], env?: Record<string, string>): Promise<HchatProcess>;
  /**
   * Starts a peer at home `i` for `server`, registered and logged in as `username`, with
   * `extra` flags (several peers may share a home: their ports are free ones).
   */
  startPeer(i: number, server: HchatProcess, username: string, extra?: string[]): Promise<HomePeer>;
  /**
   * `startPeer` for each of `peers` (`[home, username, extra?]`): the processes start at once,
   * and are then registered and logged in one after another, in the order given (as calls of
   * `startPeer` one after another would, less the wait for each process to start).
   */
  startPeers<L extends PeerToStart[]>(
    server: HchatProcess,
    peers: [...L],
  ): Promise<{ [K in keyof L]: HomePeer }>;
  /**
   * Starts a peer at home `i` for `server` on `<dir>/<name>` (with `extra` flags), neither
   * registered nor logged in: on a folder an earlier peer left, it is that peer restarted on the
   * same data.
   */
  spawnPeer(i: number, server: HchatProcess, name: string, extra?: string[]): Promise<HomePeer>;
  /** GET on the server's HTTP port (`/stats`, `/health`…), which is on the internet only. */
  serverHttp<T = any>(server: HchatProcess, route: string): Promise<ApiAnswer<T>>;
}

/**
 * A world with its `close`: ends its processes, removes its namespaces and files (a test's world
 * is also closed when the test finishes; closing it earlier is allowed).
 */
export interface OwnedNatWorld extends NatWorld {
  close(): Promise<void>;
}

/** Namespaces of this family are `hcnat<pid>x<random>-<role>`: stale ones name a dead pid. */
const FAMILY = 'hcnat';
export const SERVER_IP = '203.0.113.1';
const SERVER_PORT = 7000;

/**
 * Builds the world; the caller must `close` it (once is enough: later calls wait for the
 * first). A build that fails half-way removes what it made before it throws.
 */
export function buildNatWorld(specs: NatSpec[]): OwnedNatWorld {
  if (process.getuid?.() !== 0) throw new Error('the NAT world needs root (network namespaces)');
  removeStale();
  const prefix = `${FAMILY}${process.pid}x${crypto.randomBytes(3).toString('hex')}`;
  const created: string[] = [];
  const procs: ChildProcess[] = [];
  const bridges: net.Server[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-nat-'));
  const removeAll = () => {
    // One `ip` for them all; -force goes on past a namespace a failed build never made.
    const names = created.splice(0).reverse();
    if (names.length) ipBatchForced(names.map((ns) => `netns del ${ns}`));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // Processes first: a namespace with a process left in it outlives `ip netns del`.
      await Promise.all(procs.map(killAndWait));
      await Promise.all(bridges.map((b) => new Promise((r) => b.close(r))));
      removeAll();
    })());
  let inet: string;
  let homes: Home[];
  try {
    // The same `ip` and `iptables` commands as one at a time, `ip`'s in one process per
    // namespace (and one in ours for the namespaces and the veths between them).
    const nsName = (role: string) => `${prefix}-${role}`;
    inet = nsName('inet');
    const plans = specs.map((spec, k) => planHome(nsName, inet, spec, k + 1));
    const all = [inet, ...plans.flatMap((p) => [p.home.nat, p.home.ns])];
    created.push(...all);
    // One shell runs it all: a process started from this one (large) costs tens of ms under
    // load, one started from a shell a few.
    const script = [
      'pids=',
      ipBatchLine([...all.map((ns) => `netns add ${ns}`), ...plans.flatMap((p) => p.root)]),
      ipBatchLine(
        [
          'link set lo up',
          'link add br0 type bridge',
          `addr add ${SERVER_IP}/24 dev br0`,
          'link set br0 up',
          ...plans.flatMap((p) => p.inet),
        ],
        inet,
      ),
      // The homes at once, each in a subshell of its own; any that fails fails the build.
      ...plans.map((p) =>
        [
          '(',
          ipBatchLine(['link set lo up', ...p.nat], p.home.nat),
          ipBatchLine(['link set lo up', ...p.lan], p.home.ns),
          ...p.router.map((cmd) => `ip netns exec ${p.home.nat} ${cmd}`),
          ') & pids="$pids $!"',
        ].join('\n'),
      ),
      'for p in $pids; do wait $p; done',
    ];
    exec('sh', ['-ec', script.join('\n')]);
    homes = plans.map((p) => p.home);
  } catch (err) {
    removeAll();
    throw err;
  }
  const inNs = (ns: string) => ['ip', 'netns', 'exec', ns];
  /** Starts `bin/hchat`, owned by the world from its first moment (killed on close). */
  const hchat = (args: string[], ns: string, env: Record<string, string> = {}) => {
    const launched = launchHchat(args, env, 15_000, undefined, inNs(ns));
    procs.push(launched.proc);
    return launched.ready;
  };
  let sockets = 0;
  const serverSockets = new WeakMap<HchatProcess, { path: string; host: string }>();
  const world: NatWorld = {
    inet,
    serverIp: SERVER_IP,
    homes,
    dir,
    run: (ns, cmd) => exec('ip', ['netns', 'exec', ns, ...cmd]),
    async startServer(extra = [], env = {}) {
      const args = ['server', '--host', SERVER_IP, '--port', String(SERVER_PORT)];
      const data = path.join(dir, 'server');
      return hchat([...args, '--http-port', '0', '--data', data, ...extra], inet, env);
    },
    async startPeer(i, server, username, extra = []) {
      return signIn(await world.spawnPeer(i, server, username, extra), username);
    },
    async startPeers(server, list) {
      const spawned = list.map(([i, username, extra]) =>
        world.spawnPeer(i, server, username, extra),
      );
      // Every start is waited for before one that failed fails the call: none is left half-way
      // (the world ends them all when it closes).
      const settled = await Promise.allSettled(spawned);
      const peers: HomePeer[] = [];
      for (const [k, r] of settled.entries()) {
        if (r.status === 'rejected') throw r.reason;
        peers.push(await signIn(r.value, list[k]![1]));
      }
      return peers as { [K in keyof typeof list]: HomePeer };
    },
    async spawnPeer(i, server, name, extra = []) {
      const home = homes[i]!;
      const data = path.join(dir, name);
      const args = [
        'peer',
        '--server',
        `${SERVER_IP}:${SERVER_PORT}`,
        '--server-fingerprint',
        server.ready.fingerprint!,
        '--host',
        home.lanIp,
        '--data',
        data,
        ...extra,
      ];
      const proc = await hchat(args, home.ns);
      const ui = new URL(proc.ready.ui!);
      // A socket per process: a restarted peer's API is on another port, its old socket stale.
      const sock = path.join(dir, `${name}.${++sockets}.sock`);
      const fwd = await forwarder(inNs(home.ns), sock, '127.0.0.1', Number(ui.port), (p) =>
        procs.push(p),
      );
      const token = ui.searchParams.get('token')!;
      const auth = { authorization: `Bearer ${token}` };
      return {
        proc,
        p2p: proc.ready.p2p!,
        ui: proc.ready.ui!,
        data,
        args,
        api: { socketPath: sock, port: Number(ui.port), token },
        call: (method, route, body) =>
          requestVia(sock, `127.0.0.1:${ui.port}`, method, route, auth, body),
        log: () =>
          fs
            .readFileSync(path.join(data, 'connections.log'), 'utf8')
            .trim()
            .split('\n')
            .map(parseRecord),
        async uiUrl() {
          const bridge = net.createServer((c) => {
            const u = net.connect(sock);
            c.pipe(u).pipe(c);
            u.on('error', () => c.destroy());
            c.on('error', () => u.destroy());
          });
          bridges.push(bridge);
          await new Promise<void>((resolve, reject) => {
            bridge.once('error', reject);
            bridge.listen(Number(ui.port), '127.0.0.1', resolve);
          });
          return ui.toString();
        },
        async kill() {
          await killAndWait(proc.proc);
          await killAndWait(fwd);
        },
      };
    },
    async serverHttp(server, route) {
      let sock = serverSockets.get(server);
      if (!sock) {
        const base = new URL(server.ready.http!);
        const file = path.join(dir, `server.${++sockets}.sock`);
        await forwarder(inNs(inet), file, base.hostname, Number(base.port), (p) => procs.push(p));
        sock = { path: file, host: base.host };
        serverSockets.set(server, sock);
      }
      return requestVia(sock.path, sock.host, 'GET', route, {});
    },
  };
  return { ...world, close };
}

/** What building home `i` takes: the commands, by the namespace they run in. */
interface HomePlan {
  home: Home;
  /** `ip` commands in the builder's namespace (the veths, made straight in their two ends). */
  root: string[];
  /** `ip` commands in the internet's namespace. */
  inet: string[];
  /** `ip` commands in the router's namespace. */
  nat: string[];
  /** `ip` commands in the home's namespace. */
  lan: string[];
  /** Shell commands in the router's namespace: forwarding, NAT and firewall. */
  router: string[];
}

/** Registers `username` on `peer` (password `<username>-pw`) and logs it in. */
async function signIn(peer: HomePeer, username: string): Promise<HomePeer> {
  const password = `${username}-pw`;
  const reg = await peer.call('POST', '/api/register', { username, password });
  if (reg.status !== 201) throw new Error(`register ${username}: ${JSON.stringify(reg.body)}`);
  const login = await peer.call('POST', '/api/login', { username, password });
  if (login.status !== 200) throw new Error(`login ${username}: ${JSON.stringify(login.body)}`);
  return peer;
}

/** What building home `i` takes (NAT, firewall) and its own, wired to the internet's bridge. */
function planHome(
  nsName: (role: string) => string,
  inet: string,
  spec: NatSpec,
  i: number,
): HomePlan {
  const nat = nsName(`nat${i}`);
  const home = nsName(`home${i}`);
  const wanIp = `203.0.113.${10 + i}`;
  const gw = `10.0.${i}.1`;
  const lanIp = `10.0.${i}.2`;
  const router = [
    'sysctl -qw net.ipv4.ip_forward=1',
    `iptables -t nat -A POSTROUTING -o wan -j MASQUERADE${spec.symmetric ? ' --random-fully' : ''}`,
  ];
  // A home router's firewall: nothing from the internet that it did not ask for, neither to
  // the router nor through it, and silently (no RST: a refused SYN would end the other side's
  // simultaneous open before ours reached its router).
  if (!spec.noFirewall)
    for (const chain of ['INPUT', 'FORWARD'])
      router.push(`iptables -A ${chain} -i wan -m conntrack --ctstate NEW,INVALID -j DROP`);
  if (spec.blockUdp) router.push('iptables -A FORWARD -i lan -p udp -j DROP');
  if (spec.onlyServer) router.push(`iptables -A FORWARD -i lan ! -d ${SERVER_IP} -j DROP`);
  return {
    home: { ns: home, nat, lanIp, wanIp },
    // Each veth is made straight in its two namespaces: no name is ever taken in the root one.
    root: [
      `link add wan netns ${nat} type veth peer name p${i} netns ${inet}`,
      `link add lan netns ${nat} type veth peer name eth0 netns ${home}`,
    ],
    inet: [`link set p${i} master br0 up`],
    nat: [
      `addr add ${wanIp}/24 dev wan`,
      'link set wan up',
      `addr add ${gw}/24 dev lan`,
      'link set lan up',
    ],
    lan: [`addr add ${lanIp}/24 dev eth0`, 'link set eth0 up', `route add default via ${gw}`],
    router,
  };
}

/** A shell line that runs `ip` commands in one process, in namespace `ns` if given. */
function ipBatchLine(lines: string[], ns?: string): string {
  return `ip ${ns ? `-n ${ns} ` : ''}-batch - <<'EOF'\n${lines.join('\n')}\nEOF`;
}

/** Runs `ip` commands in one process, all of them: one that fails (nothing to undo) is skipped. */
function ipBatchForced(lines: string[]): void {
  try {
    execFileSync('ip', ['-force', '-batch', '-'], {
      input: lines.join('\n') + '\n',
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch {
    // It still ran the others; what failed was a namespace a failed build never made.
  }
}

function ip(args: string[], quiet = false): void {
  try {
    exec('ip', args);
  } catch (err) {
    if (!quiet) throw err;
  }
}

function exec(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, {
    encoding: 'utf8',
    timeout: 10_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Removes the namespaces of earlier runs whose process is gone (a crash skipped its cleanup). */
function removeStale(): void {
  const names = exec('ip', ['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(FAMILY));
  for (const ns of names) {
    const pid = Number(/^hcnat(\d+)x/.exec(ns)?.[1]);
    if (pid && !alive(pid)) ip(['netns', 'del', ns], true);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function killAndWait(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((resolve) => p.once('exit', resolve));
  p.kill('SIGKILL');
  await exited;
}

/**
 * Serves host:port of a namespace on a Unix socket; resolves with its process once it listens.
 * `own` gets the process as soon as it exists, so that it is ended even if it never listens.
 */
async function forwarder(
  wrap: string[],
  sock: string,
  host: string,
  port: number,
  own: (p: ChildProcess) => void,
): Promise<ChildProcess> {
  const script = `const net = require('node:net');
net.createServer((c) => {
  const u = net.connect(${port}, ${JSON.stringify(host)});
  c.pipe(u).pipe(c);
  u.on('error', () => c.destroy());
  c.on('error', () => u.destroy());
}).listen(${JSON.stringify(sock)}, () => console.log('ready'));`;
  const [cmd, ...pre] = [...wrap, process.execPath];
  const p = spawn(cmd!, [...pre, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  own(p);
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error('timed out waiting for the API forwarder')),
      10_000,
    );
    p.stdout!.on('data', () => {
      if (out.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    p.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the API forwarder exited with ${code}`));
    });
  });
  return p;
}

/** An HTTP request through a forwarder's socket, as to `host` (the address it forwards to). */
function requestVia<T>(
  socketPath: string,
  host: string,
  method: string,
  route: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<ApiAnswer<T>> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath,
        method,
        path: route,
        headers: {
          host,
          ...headers,
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        // JSON comes parsed, anything else (the server's /metrics) as text.
        const json = /json/.test(res.headers['content-type'] ?? '');
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: !text ? undefined : json ? JSON.parse(text) : text,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
