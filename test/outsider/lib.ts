// Outsider attack helpers, written from docs/PROTOCOL.md only.
import { spawn, type ChildProcess } from 'node:child_process';
import tls from 'node:tls';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'hchat');

export interface Proc {
  child: ChildProcess;
  ready: string;
  data: string;
  stderr: () => string;
  kill: () => Promise<void>;
}

const procs: Proc[] = [];

/**
 * Starts `bin/hchat` with `args`. `keep`: not ended by `killAll` (a process tests share, which
 * whoever started it ends with `kill`).
 */
export async function startProc(args: string[], data?: string, keep = false): Promise<Proc> {
  const dir = data ?? fs.mkdtempSync(path.join(os.tmpdir(), 'hc-out-'));
  const child = spawn(process.execPath, [BIN, ...args, '--data', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const ready = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no ready line: ' + out + err)), 20000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = out.match(/^ready .*$/m);
      if (m) {
        clearTimeout(t);
        resolve(m[0]);
      }
    });
    child.on('exit', (c) => reject(new Error('exited ' + c + ' ' + err)));
  });
  const p: Proc = {
    child,
    ready,
    data: dir,
    stderr: () => err,
    kill: () =>
      new Promise((r) => {
        if (child.exitCode !== null || child.signalCode) return r();
        child.once('exit', () => r());
        child.kill('SIGKILL');
      }),
  };
  if (!keep) procs.push(p);
  return p;
}

export async function killAll() {
  await Promise.all(procs.splice(0).map((p) => p.kill()));
}

export async function startServer(
  extra: string[] = [],
  opts: { data?: string; port?: number; keep?: boolean } = {},
) {
  const p = await startProc(
    ['server', '--port', String(opts.port ?? 0), '--http-port', '0', ...extra],
    opts.data,
    opts.keep,
  );
  const m = p.ready.match(/tcp=([\d.]+):(\d+)/)!;
  return { ...p, host: m[1]!, port: Number(m[2]) };
}

export async function startPeer(
  server: { host: string; port: number },
  extra: string[] = [],
  opts: { data?: string; pin?: string } = {},
) {
  const addr = `${server.host}:${server.port}` + (opts.pin ? '#' + opts.pin : '');
  const p = await startProc(['peer', '--server', addr, ...extra], opts.data);
  const m = p.ready.match(
    /ui=(http:\/\/127\.0\.0\.1:(\d+))\/\?token=(\S+) p2p=([\d.]+):(\d+) udp=([\d.]+):(\d+)/,
  )!;
  const base = m[1];
  const token = m[3];
  const api = localApi(base!, token!);
  return {
    ...p,
    base,
    uiPort: Number(m[2]),
    token,
    p2pPort: Number(m[5]),
    udpPort: Number(m[7]),
    api,
  };
}

/** An HTTP answer's status, and its body as JSON when it parses, else as text. */
export async function readAnswer(r: Response): Promise<{ status: number; body: any }> {
  const text = await r.text();
  let json: any = text;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, body: json };
}

/**
 * Calls a peer's local API at `base` with its token: `body` goes as JSON, or as it is when it is
 * bytes or a string (sent as `type`, JSON by default).
 */
export function localApi(base: string, token: string) {
  return async (method: string, route: string, body?: unknown, type?: string) => {
    const raw = body instanceof Buffer || typeof body === 'string';
    const r = await fetch(base + route, {
      method,
      headers: {
        authorization: 'Bearer ' + token,
        ...(body !== undefined ? { 'content-type': type ?? 'application/json' } : {}),
      },
      body: body === undefined ? undefined : raw ? (body as any) : JSON.stringify(body),
    });
    return readAnswer(r);
  };
}

/**
 * One server for the tests of a file that cannot meet each other's data (each names its own
 * users with `names`, below): started by the first test that asks, ended after the file. Tests
 * whose assertions depend on what else the server holds, or that restart or kill it, start their
 * own with `startServer`.
 */
export function sharedServer(extra: string[] = []) {
  let s: ReturnType<typeof startServer> | undefined;
  return {
    get: () => (s ??= startServer(extra, { keep: true })),
    end: async () => {
      const started = s;
      s = undefined;
      if (started) await (await started.catch(() => undefined))?.kill();
    },
  };
}

const NAME_LETTERS = 'abcdefghjkpqstxyz'; // none a look-alike of another, alone or paired
let nameSets = 0;

/**
 * `base` with a suffix of its own for each call of `names()` (`_` and two letters): the users and
 * visitors of one test on a shared server never are, nor look like, another test's.
 */
export function names(): (base: string) => string {
  const n = nameSets++;
  const suffix =
    '_' +
    NAME_LETTERS[Math.floor(n / NAME_LETTERS.length) % NAME_LETTERS.length]! +
    NAME_LETTERS[n % NAME_LETTERS.length]!;
  return (base) => base + suffix;
}

export const b64u = (b: Buffer) => b.toString('base64url');

export function newKey() {
  // Encoded at generation, then read back: exporting the KeyObjects generateKeyPairSync returns
  // can deadlock Node 20 when a garbage collection meets the export (src/shared/keygen.ts).
  const der = crypto.generateKeyPairSync('ed25519', {
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'der' },
  });
  const publicKey = crypto.createPublicKey({ key: der.publicKey, format: 'der', type: 'spki' });
  const privateKey = crypto.createPrivateKey({ key: der.privateKey, format: 'der', type: 'pkcs8' });
  const jwk = publicKey.export({ format: 'jwk' }) as { x: string };
  return { publicKey, privateKey, pk: jwk.x };
}

/** PROTOCOL.md §2.1 body digest of a plain message (no reply, mentions, emoji or change). */
export function bodyDigest(text: string): string {
  return crypto
    .createHash('sha256')
    .update(JSON.stringify(['hchat/body/1', text, null, null, null, null]), 'utf8')
    .digest('base64url');
}

/** PROTOCOL.md §2.1 item id of a plain message (version 4). */
export function messageId(channelId: string, author: string, ts: number, lc: number, text: string) {
  const h = crypto
    .createHash('sha256')
    .update(
      JSON.stringify([
        'hchat/item-id/2',
        channelId,
        author.toLowerCase(),
        ts,
        lc,
        'message',
        null,
        bodyDigest(text),
      ]),
      'utf8',
    )
    .digest();
  return idLayout(ts, h);
}

/** PROTOCOL.md §2.1 _Message ids_: the UUIDv8 of `ts` and the hash `h`. */
export function idLayout(ts: number, h: Buffer): string {
  const b = Buffer.alloc(16);
  b.writeUIntBE(ts, 0, 6);
  b[6] = 0x80 | (h[0]! & 0x0f);
  b[7] = h[1]!;
  b[8] = 0x80 | (h[2]! & 0x3f);
  h.copy(b, 9, 3, 10);
  const x = b.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** A plain message signed as PROTOCOL.md §2.1 says (`hchat/item/2`). */
export function signMessage(
  key: { privateKey: crypto.KeyObject },
  cert: string,
  channelId: string,
  author: string,
  text: string,
  ts = Date.now(),
  lc = 0,
) {
  const id = messageId(channelId, author, ts, lc, text);
  const header = [channelId, author.toLowerCase(), ts, lc, 'message', null, bodyDigest(text)];
  const sig = crypto
    .sign(
      null,
      Buffer.from(JSON.stringify(['hchat/item/2', id, ...header]), 'utf8'),
      key.privateKey,
    )
    .toString('base64url');
  return { id, channelId, ts, lc, text, sig, cert };
}

export function uuid7() {
  const b = crypto.randomBytes(16);
  b.writeUIntBE(Date.now(), 0, 6);
  b[6] = 0x70 | (b[6]! & 0x0f);
  b[8] = 0x80 | (b[8]! & 0x3f);
  const x = b.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export function frame(obj: unknown) {
  const body = Buffer.from(JSON.stringify(obj), 'utf8');
  const h = Buffer.alloc(4);
  h.writeUInt32BE(body.length);
  return Buffer.concat([h, body]);
}

/** A raw framed client (server link or P2P link). */
export class Raw {
  sock: tls.TLSSocket;
  buf = Buffer.alloc(0);
  frames: any[] = [];
  events: any[] = [];
  bytesIn = 0;
  closed = false;
  private nextId = 1;
  private waiters = new Map<number, (f: any) => void>();
  private frameWaiters: ((f: any) => void)[] = [];
  onEvent?: (f: any) => void;
  /** Every frame in wire order, with its body's length in bytes, before anything else sees it. */
  onFrame?: (f: any, bodyBytes: number) => void;
  closeP: Promise<void>;
  /** Resolves once the TLS handshake is done (the channel binding exists from then on). */
  private readonly secure: Promise<void>;

  constructor(host: string, port: number, opts: { localAddress?: string } = {}) {
    // PROTOCOL.md §1.1: TLS 1.3; this client accepts any key (it pins nothing).
    this.sock = tls.connect({ host, port, ...opts, rejectUnauthorized: false });
    this.sock.on('error', () => {});
    this.secure = new Promise((resolve, reject) => {
      this.sock.once('secureConnect', () => resolve());
      this.sock.once('error', reject);
    });
    this.secure.catch(() => undefined);
    this.closeP = new Promise((r) =>
      this.sock.on('close', () => {
        this.closed = true;
        // No answer can come any more: say so now rather than at each request's timeout.
        for (const [id, w] of [...this.waiters])
          w({ t: 'res', id, error: { code: 'CLOSED_LOCAL' } });
        this.waiters.clear();
        r();
      }),
    );
    this.sock.on('data', (d) => {
      this.bytesIn += d.length;
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 4) {
        const n = this.buf.readUInt32BE(0);
        if (this.buf.length < 4 + n) break;
        const f = JSON.parse(this.buf.subarray(4, 4 + n).toString('utf8'));
        this.buf = this.buf.subarray(4 + n);
        this.onFrame?.(f, n);
        this.handle(f);
      }
    });
  }
  connected() {
    return this.secure;
  }
  private handle(f: any) {
    if (f.t === 'ping') return this.send({ t: 'pong' });
    if (f.t === 'res' && this.waiters.has(f.id)) {
      const w = this.waiters.get(f.id)!;
      this.waiters.delete(f.id);
      return w(f);
    }
    if (f.t === 'ev') {
      this.events.push(f);
      this.onEvent?.(f);
    }
    this.frames.push(f);
    const fw = this.frameWaiters.shift();
    if (fw) fw(f);
  }
  send(obj: unknown) {
    if (!this.closed) this.sock.write(frame(obj));
  }
  nextFrame(ms = 5000) {
    return new Promise<any>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timeout waiting frame')), ms);
      this.frameWaiters.push((f) => (clearTimeout(t), resolve(f)));
    });
  }
  req(op: string, body: unknown = {}, ms = 15000): Promise<any> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiters.delete(id);
        resolve({ t: 'res', id, error: { code: 'TIMEOUT_LOCAL' } });
      }, ms);
      this.waiters.set(id, (f) => (clearTimeout(t), resolve(f)));
      if (this.closed)
        return this.waiters.get(id)!({ t: 'res', id, error: { code: 'CLOSED_LOCAL' } });
      this.send({ t: 'req', id, op, body });
    });
  }
  close() {
    this.sock.destroy();
  }
}

export async function serverHello(srv: { host: string; port: number }, maxFrame?: number) {
  const c = new Raw(srv.host, srv.port);
  await c.connected();
  c.send({ t: 'hello', v: 4, role: 'peer', agent: 'outsider', ...(maxFrame ? { maxFrame } : {}) });
  const h = await c.nextFrame();
  const ping = setInterval(() => c.send({ t: 'ping' }), 2000);
  c.sock.on('close', () => clearInterval(ping));
  return { c, hello: h };
}

export async function registerLogin(
  srv: { host: string; port: number },
  username: string,
  password = 'pw-' + username,
) {
  const { c, hello } = await serverHello(srv);
  const r = await c.req('register', { username, password });
  const key = newKey();
  const l = await c.req('login', { username, password, publicKey: key.pk });
  if (!l.body) throw new Error('login failed ' + JSON.stringify(l) + JSON.stringify(r));
  return {
    c,
    hello,
    key,
    cert: l.body.cert as string,
    token: l.body.token as string,
    sessionId: l.body.sessionId as string,
    username: l.body.username as string,
    password,
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function certClaims(cert: string) {
  return JSON.parse(Buffer.from(cert.split('.')[0]!, 'base64url').toString('utf8'));
}

/**
 * Where a P2P dial goes: a tracker entry (its port and its session, §3.5), or a peer started
 * here (its session read from its local API).
 */
export type DialTarget =
  { port: number; sessionId: string } | { p2pPort: number; api: ReturnType<typeof localApi> };

/** The port and session a dial goes to. */
export async function dialTarget(to: DialTarget): Promise<{ port: number; sessionId: string }> {
  if ('sessionId' in to) return to;
  const s = await to.api('GET', '/api/session');
  const sessionId = s.body?.me?.sessionId as string | undefined;
  if (!sessionId) throw new Error(`the peer at ${to.p2pPort} has no session to dial`);
  return { port: to.p2pPort, sessionId };
}

/** RFC 9266 tls-exporter of a connection: 32 bytes, label EXPORTER-Channel-Binding, no context. */
export function bindingOf(sock: tls.TLSSocket): string {
  return sock
    .exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0))
    .toString('base64url');
}

/**
 * The hello's `dial` (§4.1): the dialling session's signature of its nonce, its session, the host
 * session it dials and the connection's binding.
 */
export function dialSig(
  key: crypto.KeyObject,
  nonce: string,
  peerSession: string,
  hostSession: string,
  binding: string,
): string {
  const data = JSON.stringify(['hchat/p2p-dial/1', nonce, peerSession, hostSession, binding]);
  return crypto.sign(null, Buffer.from(data), key).toString('base64url');
}

/**
 * `session_check` (§3.3) about `sessionId` as `asker` (a session on its server connection),
 * showing the dial that session's key would sign in a hello to the asker (§4.1): what a host
 * asks about a session that dials it. Resolves with `live`, or the error's code.
 */
export async function checkSession(
  asker: { c: Raw; sessionId: string },
  sessionId: string,
  key: { privateKey: crypto.KeyObject },
): Promise<boolean | string> {
  const nonce = b64u(crypto.randomBytes(32));
  const binding = b64u(crypto.randomBytes(32));
  const sig = dialSig(key.privateKey, nonce, sessionId, asker.sessionId, binding);
  const r = await asker.c.req('session_check', { sessionId, proof: { nonce, binding, sig } });
  return r.body?.live ?? r.error?.code;
}

/** Dial a peer's P2P port and complete the handshake as (cert, key). */
export async function p2pConnect(
  to: DialTarget,
  me: { cert: string; key: { privateKey: crypto.KeyObject } },
  maxFrame?: number,
  /** More hello members (`compact`, §3.11). */
  extra: Record<string, unknown> = {},
) {
  const { port, sessionId: hostSid } = await dialTarget(to);
  const c = new Raw('127.0.0.1', port);
  await c.connected();
  const nonce = b64u(crypto.randomBytes(32));
  const peerSid = certClaims(me.cert).sid;
  const binding = bindingOf(c.sock);
  c.send({
    t: 'hello',
    v: 4,
    role: 'peer',
    cert: me.cert,
    nonce,
    dial: dialSig(me.key.privateKey, nonce, peerSid, hostSid, binding),
    ...(maxFrame ? { maxFrame } : {}),
    ...extra,
  });
  const h = await c.nextFrame();
  if (h.t !== 'hello') return { c, hello: h, ok: false };
  const sig = crypto
    .sign(
      null,
      Buffer.from(
        JSON.stringify([
          'hchat/p2p/3',
          'peer',
          nonce,
          h.nonce,
          peerSid,
          certClaims(h.cert).sid,
          binding,
        ]),
      ),
      me.key.privateKey,
    )
    .toString('base64url');
  c.send({ t: 'auth', sig });
  const ping = setInterval(() => c.send({ t: 'ping' }), 1000);
  c.sock.on('close', () => clearInterval(ping));
  return { c, hello: h, ok: true };
}

/** The lines of a process's connection log in `data`, the rotated file's first (PROTOCOL.md §6). */
export function logLines(data: string): string[] {
  const out: string[] = [];
  for (const f of ['connections.log.1', 'connections.log']) {
    const file = path.join(data, f);
    if (fs.existsSync(file))
      out.push(...fs.readFileSync(file, 'latin1').split('\n').filter(Boolean));
  }
  return out;
}

/** Stops a process the way an operator does (SIGINT: a clean close, its log flushed). */
export async function stopGently(p: Proc): Promise<void> {
  if (p.child.exitCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGINT');
  await exited;
}
