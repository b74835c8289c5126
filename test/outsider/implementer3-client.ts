// Independent client of the Hybrid Chat wire protocol v4, written from docs/PROTOCOL.md alone.
import tls from 'node:tls';
import crypto from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const b64u = (b: Buffer | Uint8Array) => Buffer.from(b).toString('base64url');

// ---------- server process ----------
export interface ServerProc {
  proc: ChildProcess;
  host: string;
  port: number;
  http: string;
  fingerprint: string;
  dir: string;
  stop(): Promise<void>;
}

/** Starts `bin/hchat <args>` and waits (30 s at most) for its stdout to match `ready`. */
async function launch(
  args: string[],
  ready: RegExp,
  what: string,
): Promise<{ proc: ChildProcess; line: string }> {
  const repo = path.resolve(new URL('../..', import.meta.url).pathname);
  const proc = spawn(process.execPath, [path.join(repo, 'bin/hchat'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const line: string = await new Promise((resolve, reject) => {
    let out = '';
    const to = setTimeout(() => reject(new Error(`${what} not ready: ${err}`)), 30_000);
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = out.match(ready);
      if (m) {
        clearTimeout(to);
        resolve(m[0]);
      }
    });
    proc.on('exit', (c) => reject(new Error(`${what} exited ${c} ${err}`)));
  });
  return { proc, line };
}

export async function startServer(extra: string[] = []): Promise<ServerProc> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'impl3-'));
  const { proc, line } = await launch(
    [
      'server',
      '--port',
      '0',
      '--http-port',
      '0',
      '--data',
      path.join(dir, 'srv'),
      '--log-level',
      'warn',
      ...extra,
    ],
    /ready [^\n]*\n/,
    'server',
  );
  const m = line.match(/tcp=([\d.]+):(\d+) http=(\S+) fingerprint=(\S+)/)!;
  return {
    proc,
    host: m[1]!,
    port: Number(m[2]),
    http: m[3]!,
    fingerprint: m[4]!,
    dir,
    async stop() {
      if (proc.exitCode === null) {
        const done = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGINT');
        await Promise.race([done, new Promise((r) => setTimeout(r, 5000))]);
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------- framing / connection ----------
export type Frame = Record<string, any>;

export class Conn {
  sock!: tls.TLSSocket;
  buf = Buffer.alloc(0);
  frames: Frame[] = [];
  raw: string[] = [];
  waiters: Array<() => void> = [];
  closed = false;
  nextId = 1;
  peerFingerprint = '';

  static async open(srv: { host: string; port: number }): Promise<Conn> {
    const c = new Conn();
    await new Promise<void>((resolve, reject) => {
      c.sock = tls.connect(
        {
          host: srv.host,
          port: srv.port,
          rejectUnauthorized: false,
          minVersion: 'TLSv1.3',
          maxVersion: 'TLSv1.3',
        },
        () => resolve(),
      );
      c.sock.once('error', reject);
    });
    const cert = c.sock.getPeerX509Certificate();
    if (cert) {
      const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
      c.peerFingerprint = b64u(crypto.createHash('sha256').update(spki).digest());
    }
    c.sock.on('error', () => {});
    c.sock.on('data', (d: Buffer) => c.onData(d));
    c.sock.on('close', () => {
      c.closed = true;
      if (c.hb) clearInterval(c.hb);
      c.wake();
    });
    c.lastSent = Date.now();
    c.startHeartbeat();
    return c;
  }

  onData(d: Buffer) {
    this.buf = Buffer.concat([this.buf, d]);
    while (this.buf.length >= 4) {
      const n = this.buf.readUInt32BE(0);
      if (this.buf.length < 4 + n) break;
      const body = this.buf.subarray(4, 4 + n).toString('utf8');
      this.buf = this.buf.subarray(4 + n);
      this.raw.push(body);
      this.frames.push(JSON.parse(body));
    }
    this.wake();
  }
  wake() {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }
  lastSent = 0;
  hb?: NodeJS.Timeout;
  startHeartbeat() {
    // §3.2: some frame at least every heartbeatMs
    this.hb = setInterval(() => {
      if (!this.closed && Date.now() - this.lastSent > 3000) this.send({ t: 'ping' });
    }, 1000);
    this.hb.unref();
  }
  sendRaw(body: Buffer | string) {
    this.lastSent = Date.now();
    const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    const h = Buffer.alloc(4);
    h.writeUInt32BE(b.length);
    this.sock.write(Buffer.concat([h, b]));
  }
  send(f: Frame) {
    this.sendRaw(JSON.stringify(f));
  }
  /** waits for (and removes) the first frame matching pred */
  async next(pred: (f: Frame) => boolean = () => true, ms = 5000): Promise<Frame> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.frames.findIndex(pred);
      if (i >= 0) return this.frames.splice(i, 1)[0]!;
      if (this.closed) throw new Error('closed; frames=' + JSON.stringify(this.frames));
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error('timeout; frames=' + JSON.stringify(this.frames).slice(0, 2000));
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
  async waitClosed(ms = 3000) {
    const d = Date.now() + ms;
    while (!this.closed && Date.now() < d) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }
  async hello(extra: Frame = {}): Promise<Frame> {
    this.send({ t: 'hello', v: 4, role: 'peer', ...extra });
    return this.next((f) => f.t === 'hello' || f.t === 'error');
  }
  async req(op: string, body: any = {}, ms = 8000): Promise<Frame> {
    const id = this.nextId++;
    this.send({ t: 'req', id, op, body });
    return this.next((f) => f.t === 'res' && f.id === id, ms);
  }
  async ok(op: string, body: any = {}): Promise<any> {
    const r = await this.req(op, body);
    if (r.error) throw new Error(`${op} failed: ${JSON.stringify(r.error)}`);
    return r.body;
  }
  close() {
    this.sock.destroy();
  }
}

// ---------- keys, certificates ----------
export interface Session {
  conn: Conn;
  username: string;
  priv: crypto.KeyObject;
  pub: string;
  cert: string;
  token: string;
  sessionId: string;
  serverKey: crypto.KeyObject;
  hello: Frame;
  login: any;
}

export function newKey() {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return { priv: privateKey, pub: b64u(der.subarray(der.length - 32)), pubKey: publicKey };
}

export function serverKeyFromHello(h: Frame) {
  return crypto.createPublicKey({
    key: Buffer.from(h.publicKey, 'base64'),
    format: 'der',
    type: 'spki',
  });
}

export function verifyClaims(token: string, serverKey: crypto.KeyObject): any | null {
  const [a, s] = token.split('.');
  if (!a || !s) return null;
  const sig = Buffer.from(s, 'base64url');
  if (sig.length !== 64 || b64u(sig) !== s) return null;
  if (!crypto.verify(null, Buffer.from(a, 'ascii'), serverKey, sig)) return null;
  return JSON.parse(Buffer.from(a, 'base64url').toString('utf8'));
}

export async function connectUser(
  srv: ServerProc,
  username: string,
  opts: { compact?: number; register?: boolean } = {},
): Promise<Session> {
  const conn = await Conn.open(srv);
  const hello = await conn.hello(opts.compact ? { compact: opts.compact } : {});
  if (opts.register !== false) {
    const r = await conn.req('register', { username, password: 'secret-pass' });
    if (r.error && r.error.code !== 'E_USERNAME_TAKEN') throw new Error(JSON.stringify(r));
  }
  const k = newKey();
  const login = await conn.ok('login', { username, password: 'secret-pass', publicKey: k.pub });
  return {
    conn,
    username: login.username,
    priv: k.priv,
    pub: k.pub,
    cert: login.cert,
    token: login.token,
    sessionId: login.sessionId,
    serverKey: serverKeyFromHello(hello),
    hello,
    login,
  };
}

export async function connectVisitor(srv: ServerProc, name: string, compact = false) {
  const conn = await Conn.open(srv);
  const hello = await conn.hello(compact ? { compact: 1 } : {});
  const k = newKey();
  const r = await conn.req('visitor', { name, publicKey: k.pub });
  return { conn, hello, res: r, k };
}

// ---------- items: digest, id, signature (§2.1) ----------
export function digestOf(item: any): string {
  if (item.digest) return item.digest;
  const ch = item.change
    ? [
        item.change.name ?? null,
        item.change.topic ?? null,
        item.change.allowVisitors ?? null,
        item.change.remove ?? null,
        item.change.deleted ?? null,
      ]
    : null;
  const arr: any[] = [
    'hchat/body/1',
    item.text ?? null,
    item.replyTo ?? null,
    item.mentions ?? null,
    item.emoji ?? null,
    ch,
  ];
  if (item.files)
    arr.push(
      item.files.map((f: any) => [
        f.id,
        f.name,
        f.size,
        f.type,
        f.image?.width ?? null,
        f.image?.height ?? null,
        f.image?.preview ?? null,
      ]),
    );
  return b64u(crypto.createHash('sha256').update(JSON.stringify(arr), 'utf8').digest());
}

function idFromHash(ts: number, h: Buffer): string {
  const b = Buffer.alloc(16);
  b.writeUIntBE(ts, 0, 6);
  b[6] = 0x80 | (h[0]! & 0x0f);
  b[7] = h[1]!;
  b[8] = 0x80 | (h[2]! & 0x3f);
  h.copy(b, 9, 3, 10);
  const x = b.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export function deriveId(item: any, author: string): string {
  const input = [
    'hchat/item-id/2',
    item.channelId,
    author.toLowerCase(),
    item.ts,
    item.lc,
    item.kind ?? 'message',
    item.target ?? null,
    digestOf(item),
  ];
  return idFromHash(
    item.ts,
    crypto.createHash('sha256').update(JSON.stringify(input), 'utf8').digest(),
  );
}
export function deriveIdV1(item: any, author: string): string {
  const input = [
    'hchat/message-id/1',
    item.channelId,
    author.toLowerCase(),
    item.ts,
    item.lc,
    item.text,
  ];
  return idFromHash(
    item.ts,
    crypto.createHash('sha256').update(JSON.stringify(input), 'utf8').digest(),
  );
}
export function sigBytes(item: any, author: string): Buffer {
  return Buffer.from(
    JSON.stringify([
      'hchat/item/2',
      item.id,
      item.channelId,
      author.toLowerCase(),
      item.ts,
      item.lc,
      item.kind ?? 'message',
      item.target ?? null,
      digestOf(item),
    ]),
    'utf8',
  );
}

let lastTs = 0;
export function makeItem(
  s: { username: string; priv: crypto.KeyObject; cert: string },
  channelId: string,
  body: any,
  tsOverride?: number,
) {
  let ts = tsOverride ?? Date.now();
  if (tsOverride === undefined) {
    if (ts <= lastTs) ts = lastTs + 1;
    lastTs = ts;
  }
  const item: any = { channelId, ts, lc: 0, ...body };
  item.id = deriveId(item, s.username);
  item.sig = b64u(crypto.sign(null, sigBytes(item, s.username), s.priv));
  item.cert = s.cert;
  return item;
}
export function makeItemV1(
  s: { username: string; priv: crypto.KeyObject; cert: string },
  channelId: string,
  text: string,
) {
  const item: any = { channelId, ts: Date.now(), lc: 7, text };
  item.id = deriveIdV1(item, s.username);
  const bytes = Buffer.from(
    JSON.stringify([
      'hchat/message/1',
      item.id,
      channelId,
      s.username.toLowerCase(),
      item.ts,
      item.lc,
      text,
    ]),
    'utf8',
  );
  item.sig = b64u(crypto.sign(null, bytes, s.priv));
  item.cert = s.cert;
  return item;
}

/** §2.1 checks a receiver must make; returns the list of failed checks */
export function checkStored(m: any, serverKey: crypto.KeyObject): string[] {
  const bad: string[] = [];
  const claims = verifyClaims(m.cert, serverKey);
  if (!claims) return ['cert does not verify'];
  if (claims.typ !== 'key') bad.push('cert typ');
  if (claims.r !== 'user') bad.push('cert r');
  if (String(claims.u).toLowerCase() !== String(m.author).toLowerCase())
    bad.push('cert u != author');
  if (m.ts > claims.exp) bad.push('ts > exp');
  const isV1 =
    !m.kind &&
    !m.replyTo &&
    !m.mentions &&
    !m.digest &&
    m.text !== undefined &&
    m.id === deriveIdV1(m, m.author);
  if (!isV1 && m.id !== deriveId(m, m.author)) bad.push('id not derived');
  const pk = crypto.createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: claims.pk },
    format: 'jwk',
  });
  const bytes = isV1
    ? Buffer.from(
        JSON.stringify([
          'hchat/message/1',
          m.id,
          m.channelId,
          m.author.toLowerCase(),
          m.ts,
          m.lc,
          m.text,
        ]),
        'utf8',
      )
    : sigBytes(m, m.author);
  if (!crypto.verify(null, bytes, pk, Buffer.from(m.sig, 'base64url'))) bad.push('sig');
  return bad;
}

// ---------- compact receiver (§3.11) ----------
export class CompactTables {
  certs = new Map<number, string>();
  chans = new Map<number, string>();
  refs: Frame[] = [];
  take(f: Frame) {
    if (f.t !== 'ref') throw new Error('not a ref');
    const keys = Object.keys(f)
      .filter((k) => k !== 't')
      .sort()
      .join(',');
    if (keys === 'cert,k') {
      this.certs.delete(f.k);
      this.certs.set(f.k, f.cert);
      if (this.certs.size > 256) this.certs.delete(this.certs.keys().next().value!);
    } else if (keys === 'c,channelId') {
      this.chans.delete(f.c);
      this.chans.set(f.c, f.channelId);
      if (this.chans.size > 256) this.chans.delete(this.chans.keys().next().value!);
    } else throw new Error('ref with members ' + keys);
    this.refs.push(f);
  }
  rebuild(ci: any): any {
    const { t, c, k, ...rest } = ci;
    if (!this.chans.has(c)) throw new Error('unknown channel number ' + c);
    if ((k === undefined) === (ci.cert === undefined))
      throw new Error('k and cert: both or neither');
    const cert = k !== undefined ? this.certs.get(k) : ci.cert;
    if (!cert) throw new Error('unknown cert number ' + k);
    const claims = JSON.parse(Buffer.from(cert.split('.')[0], 'base64url').toString('utf8'));
    const m: any = { ...rest, channelId: this.chans.get(c), cert };
    if (m.author === undefined) m.author = claims.u;
    if (m.id === undefined) m.id = deriveId(m, m.author);
    return m;
  }
}

export function uuidv7(): string {
  const b = crypto.randomBytes(16);
  b.writeUIntBE(Date.now(), 0, 6);
  b[6] = 0x70 | (b[6]! & 0x0f);
  b[8] = 0x80 | (b[8]! & 0x3f);
  const x = b.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export const uname = (p: string) => (p + crypto.randomBytes(4).toString('hex')).slice(0, 32);

// ---------- a real peer process and its local API ----------
export interface PeerProc {
  proc: ChildProcess;
  api: string;
  token: string;
  call(
    method: string,
    p: string,
    body?: any,
    raw?: { body: Buffer; type: string },
  ): Promise<{ status: number; body: any }>;
  stop(): Promise<void>;
}
export async function startPeer(srv: ServerProc, name: string): Promise<PeerProc> {
  const { proc, line } = await launch(
    [
      'peer',
      '--server',
      `${srv.host}:${srv.port}#${srv.fingerprint}`,
      '--data',
      path.join(srv.dir, name),
      '--ui-port',
      '0',
    ],
    /ready ui=\S+/,
    'peer',
  );
  const u = new URL(line.slice('ready ui='.length));
  const api = u.origin;
  const token = u.searchParams.get('token')!;
  return {
    proc,
    api,
    token,
    async call(method, p, body, raw) {
      const r = await fetch(api + p, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body
            ? { 'content-type': 'application/json' }
            : raw
              ? { 'content-type': raw.type }
              : {}),
        },
        body: body ? JSON.stringify(body) : raw ? new Uint8Array(raw.body) : undefined,
      });
      const t = await r.text();
      let b: any = t;
      try {
        b = t ? JSON.parse(t) : null;
      } catch {}
      return { status: r.status, body: b };
    },
    async stop() {
      if (proc.exitCode === null) {
        const done = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGINT');
        await Promise.race([done, new Promise((r) => setTimeout(r, 5000))]);
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
    },
  };
}
