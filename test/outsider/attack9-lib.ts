// Attack 9: helpers written from README.md and docs/PROTOCOL.md alone (no src/ import).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { createHash, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'hchat');

export interface Proc {
  child: ChildProcess;
  dir: string;
  line: string;
  stop(): Promise<void>;
}

function startProc(args: string[], dir: string): Promise<Proc> {
  const child = spawn(process.execPath, [BIN, ...args, '--data', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HCHAT_LOG_LEVEL: 'silent' },
  });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no ready line: ' + out)), 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^ready .*$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({
          child,
          dir,
          line: m[0],
          stop: () =>
            new Promise<void>((res) => {
              if (child.exitCode !== null) return res();
              child.once('exit', () => res());
              child.kill('SIGKILL');
            }),
        });
      }
    });
    child.stderr!.on('data', () => {});
    child.once('exit', (code) => reject(new Error('exited ' + code + ' ' + out)));
  });
}

export interface Server extends Proc {
  tcpHost: string;
  tcpPort: number;
  http: string;
  fingerprint: string;
}

const dirs: string[] = [];
export function freshDir(tag: string): string {
  const d = mkdtempSync(join(tmpdir(), 'attack9-' + tag + '-'));
  dirs.push(d);
  return d;
}
export function cleanDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export async function startServer(extra: string[] = []): Promise<Server> {
  const p = await startProc(
    ['server', '--port', '0', '--http-port', '0', ...extra],
    freshDir('srv'),
  );
  const m = /tcp=([\d.]+):(\d+) http=(\S+) fingerprint=(\S+)/.exec(p.line)!;
  return {
    ...p,
    tcpHost: m[1]!,
    tcpPort: +m[2]!,
    http: m[3]!.replace(/\/$/, ''),
    fingerprint: m[4]!,
  };
}

export interface Peer extends Proc {
  ui: string;
  token: string;
  api(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; json: any; text: string; headers: Headers }>;
}

export async function startPeer(
  server: Server,
  extra: string[] = [],
  dir = freshDir('peer'),
): Promise<Peer> {
  const p = await startProc(
    ['peer', '--server', `${server.tcpHost}:${server.tcpPort}#${server.fingerprint}`, ...extra],
    dir,
  );
  const m = /ui=(http:\/\/[\d.:]+)\/\?token=(\S+)/.exec(p.line)!;
  const ui = m[1]!;
  const token = m[2]!;
  return {
    ...p,
    ui,
    token,
    async api(method, path, body, headers = {}) {
      const h: Record<string, string> = { authorization: `Bearer ${token}`, ...headers };
      let b: any = undefined;
      if (body instanceof Uint8Array) b = body;
      else if (body !== undefined) {
        b = JSON.stringify(body);
        h['content-type'] = 'application/json';
      }
      const r = await fetch(ui + path, { method, headers: h, body: b });
      const text = await r.text();
      let json: any = undefined;
      try {
        json = JSON.parse(text);
      } catch {}
      return { status: r.status, json, text, headers: r.headers };
    },
  };
}

export async function rest(
  server: Server,
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: any; text: string; headers: Headers }> {
  const h: Record<string, string> = {};
  if (token) h.authorization = `Bearer ${token}`;
  let b: string | undefined;
  if (body !== undefined) {
    b = typeof body === 'string' ? body : JSON.stringify(body);
    h['content-type'] = 'application/json';
  }
  const r = await fetch(server.http + '/api/v1' + path, { method, headers: h, body: b });
  const text = await r.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, json, text, headers: r.headers };
}

// A raw client of the peer ↔ server link (PROTOCOL.md §1, §3).
export class Wire {
  private buf = Buffer.alloc(0);
  private nextId = 1;
  private waiters = new Map<number, (f: any) => void>();
  events: any[] = [];
  errors: any[] = [];
  closed = false;
  private ping?: NodeJS.Timeout;
  constructor(public sock: tls.TLSSocket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 4) {
        const n = this.buf.readUInt32BE(0);
        if (this.buf.length < 4 + n) break;
        const f = JSON.parse(this.buf.subarray(4, 4 + n).toString('utf8'));
        this.buf = this.buf.subarray(4 + n);
        this.onFrame(f);
      }
    });
    sock.on('close', () => {
      this.closed = true;
      if (this.ping) clearInterval(this.ping);
    });
    sock.on('error', () => {});
  }
  private helloWaiter?: (f: any) => void;
  private onFrame(f: any): void {
    if (f.t === 'hello') this.helloWaiter?.(f);
    else if (f.t === 'res') {
      const w = this.waiters.get(f.id);
      this.waiters.delete(f.id);
      w?.(f);
    } else if (f.t === 'ping') this.send({ t: 'pong' });
    else if (f.t === 'ev') this.events.push(f);
    else if (f.t === 'error') this.errors.push(f);
  }
  send(f: unknown): void {
    const body = Buffer.from(JSON.stringify(f), 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    this.sock.write(Buffer.concat([len, body]));
  }
  static async connect(server: Server): Promise<Wire> {
    const sock = tls.connect({
      host: server.tcpHost,
      port: server.tcpPort,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
    });
    await new Promise<void>((res, rej) => {
      sock.once('secureConnect', () => res());
      sock.once('error', rej);
    });
    const w = new Wire(sock);
    const hello = new Promise<any>((res) => (w.helloWaiter = res));
    w.send({ t: 'hello', v: 4, role: 'peer', agent: 'attack9' });
    await hello;
    w.ping = setInterval(() => w.send({ t: 'ping' }), 2000);
    return w;
  }
  req(op: string, body: unknown = {}, timeoutMs = 10_000): Promise<any> {
    const id = this.nextId++;
    this.send({ t: 'req', id, op, body });
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error('timeout ' + op)), timeoutMs);
      this.waiters.set(id, (f) => {
        clearTimeout(t);
        res(f);
      });
    });
  }
  close(): void {
    if (this.ping) clearInterval(this.ping);
    this.sock.destroy();
  }
}

export function freshPublicKey(): string {
  const { publicKey } = generateKeyPairSync('ed25519');
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return der.subarray(der.length - 32).toString('base64url');
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  ms = 10_000,
  step = 100,
): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as T;
    if (Date.now() > end) return undefined;
    await sleep(step);
  }
}

export function keypair(): { pk: string; privateKey: KeyObject } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return { pk: der.subarray(der.length - 32).toString('base64url'), privateKey };
}

// PROTOCOL.md §2.1: digest, content-derived id (v8 UUID), signature over the header.
export function signedMessage(
  channelId: string,
  author: string,
  text: string,
  ts: number,
  k: { privateKey: KeyObject },
  cert: string,
) {
  const digest = createHash('sha256')
    .update(JSON.stringify(['hchat/body/1', text, null, null, null, null]), 'utf8')
    .digest('base64url');
  const h = createHash('sha256')
    .update(
      JSON.stringify([
        'hchat/item-id/2',
        channelId,
        author.toLowerCase(),
        ts,
        0,
        'message',
        null,
        digest,
      ]),
      'utf8',
    )
    .digest();
  const b = Buffer.alloc(16);
  b.writeUIntBE(ts, 0, 6);
  b[6] = 0x80 | (h[0]! & 0x0f);
  b[7] = h[1]!;
  b[8] = 0x80 | (h[2]! & 0x3f);
  h.copy(b, 9, 3, 10);
  const x = b.toString('hex');
  const id = `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
  const sig = sign(
    null,
    Buffer.from(
      JSON.stringify([
        'hchat/item/2',
        id,
        channelId,
        author.toLowerCase(),
        ts,
        0,
        'message',
        null,
        digest,
      ]),
      'utf8',
    ),
    k.privateKey,
  ).toString('base64url');
  return { id, channelId, ts, lc: 0, text, sig, cert };
}

export function signedAvatar(
  username: string,
  type: string,
  data: Buffer,
  ts: number,
  k: { privateKey: KeyObject },
  cert: string,
) {
  const h = createHash('sha256').update(data).digest('base64url');
  const sig = sign(
    null,
    Buffer.from(JSON.stringify(['hchat/avatar/1', username.toLowerCase(), type, h, ts]), 'utf8'),
    k.privateKey,
  ).toString('base64url');
  return { username, type, data: data.toString('base64'), ts, sig, cert };
}

export async function wireUser(
  server: Server,
  username: string,
): Promise<{ w: Wire; k: ReturnType<typeof keypair>; cert: string; token: string }> {
  const w = await Wire.connect(server);
  const r1 = await w.req('register', { username, password: username + '-pw1' });
  if (r1.error && r1.error.code !== 'E_USERNAME_TAKEN') throw new Error(JSON.stringify(r1.error));
  const k = keypair();
  const r = await w.req('login', { username, password: username + '-pw1', publicKey: k.pk });
  if (r.error) throw new Error(JSON.stringify(r.error));
  return { w, k, cert: r.body.cert, token: r.body.token };
}

// Starts a peer again on a data folder it used before (README: "A peer restarted on the same
// --data resumes its session, outbox, status and caches").
export function restartPeer(server: Server, dir: string): Promise<Peer> {
  return startPeer(server, [], dir);
}

/**
 * The scene of the token-key attacks: alice registered and logged in on her peer, mallory on a
 * raw link owning (hosting) a channel `room` that alice joined. The caller closes `w`.
 */
export async function aliceInMallorysRoom(
  server: Server,
  alice: Peer,
): Promise<{ w: Wire; room: string }> {
  const account = { username: 'alice', password: 'alice-pw1' };
  if ((await alice.api('POST', '/api/register', account)).status !== 201)
    throw new Error('alice could not register');
  if ((await alice.api('POST', '/api/login', account)).status !== 200)
    throw new Error('alice could not log in');
  const { w } = await wireUser(server, 'mallory');
  const room = randomUUID();
  const made = await w.req('channel_create', {
    id: room,
    name: 'mallory-room',
    allowVisitors: false,
  });
  if (made.error) throw new Error(JSON.stringify(made.error));
  if ((await alice.api('POST', `/api/channels/${room}/join`)).status !== 200)
    throw new Error("alice could not join mallory's room");
  return { w, room };
}
