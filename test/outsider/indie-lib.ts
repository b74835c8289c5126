/**
 * An independent Hybrid Chat client, written from docs/PROTOCOL.md alone (no src/ import):
 * framing (§1), TLS 1.3 and fingerprints (§1.1), ids, digests and signatures (§2.1),
 * the server link (§3), compact frames (§3.11) and both ends of the P2P handshake (§4.1).
 * Only node built-ins are used.
 */
import crypto from 'node:crypto';
import tls from 'node:tls';
import net from 'node:net';
import { launchHchat, type HchatProcess } from '../hchat-spawn.js';

// ---------------------------------------------------------------- bytes and hashes

export const sha256 = (b: Buffer | string): Buffer =>
  crypto.createHash('sha256').update(b).digest();
export const b64u = (b: Buffer): string => b.toString('base64url');

/** §1.1: SHA-256 of the DER SubjectPublicKeyInfo, base64url without padding. */
export function fingerprintOf(cert: crypto.X509Certificate): string {
  return b64u(sha256(cert.publicKey.export({ type: 'spki', format: 'der' })));
}

// ---------------------------------------------------------------- framing (§1)

export function encodeFrame(obj: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(obj), 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

export function rawFrame(body: Buffer | string): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const head = Buffer.alloc(4);
  head.writeUInt32BE(b.length);
  return Buffer.concat([head, b]);
}

type Frame = Record<string, any>;

/** One framed link over a TLS socket: a queue of received frames, requests matched by id. */
export class FrameLink {
  readonly frames: Frame[] = [];
  /** Every frame ever received (for assertions). */
  readonly seen: Frame[] = [];
  private waiters: Array<{ pred: (f: Frame) => boolean; resolve: (f: Frame) => void }> = [];
  private buf = Buffer.alloc(0);
  private nextId = 1;
  private hb: NodeJS.Timeout | undefined;
  closed = false;
  readonly closedP: Promise<void>;
  autoPong = true;

  constructor(readonly sock: tls.TLSSocket) {
    this.closedP = new Promise((resolve) => {
      sock.once('close', () => {
        this.closed = true;
        if (this.hb) clearInterval(this.hb);
        resolve();
      });
    });
    sock.on('error', () => {});
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 4) {
        const n = this.buf.readUInt32BE(0);
        if (this.buf.length < 4 + n) break;
        const body = this.buf.subarray(4, 4 + n);
        this.buf = this.buf.subarray(4 + n);
        let f: Frame;
        try {
          f = JSON.parse(body.toString('utf8'));
        } catch {
          f = { t: '__unparsable__', raw: body.toString('utf8') };
        }
        this.deliver(f);
      }
    });
  }

  private deliver(f: Frame): void {
    this.seen.push(f);
    if (f.t === 'ping' && this.autoPong) this.send({ t: 'pong' });
    const i = this.waiters.findIndex((w) => w.pred(f));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      w!.resolve(f);
    } else this.frames.push(f);
  }

  send(obj: unknown): void {
    if (!this.sock.destroyed) this.sock.write(encodeFrame(obj));
  }

  write(b: Buffer): void {
    if (!this.sock.destroyed) this.sock.write(b);
  }

  /** The next frame matching `pred` (taken from the queue first). */
  next(pred: (f: Frame) => boolean = () => true, ms = 5000, what = 'frame'): Promise<Frame> {
    const i = this.frames.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (f: Frame) => {
          clearTimeout(timer);
          resolve(f);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(
          new Error(
            `timed out waiting for ${what}; seen ${JSON.stringify(this.seen.slice(-5)).slice(0, 800)}`,
          ),
        );
      }, ms);
      this.waiters.push(w);
    });
  }

  /** Resolves false if nothing matching arrives in `ms`. */
  async absent(pred: (f: Frame) => boolean, ms: number): Promise<boolean> {
    try {
      await this.next(pred, ms);
      return false;
    } catch {
      return true;
    }
  }

  ev(name: string, pred: (b: any) => boolean = () => true, ms = 5000): Promise<any> {
    return this.next((f) => f.t === 'ev' && f.ev === name && pred(f.body), ms, `ev ${name}`).then(
      (f) => f.body,
    );
  }

  /** Sends `req` and resolves with the whole `res` frame ({id, body} or {id, error}). */
  request(op: string, body: unknown = {}, ms = 8000): Promise<Frame> {
    const id = this.nextId++;
    this.send({ t: 'req', id, op, body });
    return this.next((f) => f.t === 'res' && f.id === id, ms, `res to ${op}`);
  }

  /** Sends `req`, throws on an error answer, resolves with the body. */
  async call(op: string, body: unknown = {}, ms = 8000): Promise<any> {
    const r = await this.request(op, body, ms);
    if (r.error) throw new ProtoError(op, r.error);
    return r.body;
  }

  /** The fatal error frame that ended the link (if any), once it has closed. */
  async fatal(ms = 6000): Promise<Frame | undefined> {
    const t = setTimeout(() => this.sock.destroy(), ms);
    await this.closedP;
    clearTimeout(t);
    return this.seen.find((f) => f.t === 'error');
  }

  heartbeat(ms: number): void {
    this.hb = setInterval(() => this.send({ t: 'ping' }), ms);
    this.hb.unref();
  }

  close(): void {
    if (this.hb) clearInterval(this.hb);
    this.sock.destroy();
  }
}

export class ProtoError extends Error {
  constructor(
    readonly op: string,
    readonly error: { code: string; message: string; retryAfterMs?: number },
  ) {
    super(`${op}: ${error.code} ${error.message}`);
  }
}

// ---------------------------------------------------------------- TLS (§1.1)

/** Opens TLS 1.3 to host:port; with `pin`, refuses (before any frame) a key of another fingerprint. */
export function dialTls(
  host: string,
  port: number,
  opts: { pin?: string; minVersion?: tls.SecureVersion; maxVersion?: tls.SecureVersion } = {},
): Promise<{ sock: tls.TLSSocket; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({
      host,
      port,
      minVersion: opts.minVersion ?? 'TLSv1.3',
      maxVersion: opts.maxVersion ?? 'TLSv1.3',
      rejectUnauthorized: false, // self-signed: the key is checked by fingerprint (or by §4.1 on P2P)
      servername: net.isIP(host) ? undefined : host,
    });
    sock.once('error', reject);
    sock.once('secureConnect', () => {
      const fp = fingerprintOf(sock.getPeerX509Certificate()!);
      if (opts.pin && fp !== opts.pin) {
        sock.destroy();
        reject(new Error(`server key ${fp} is not the pinned ${opts.pin}`));
        return;
      }
      sock.off('error', reject);
      resolve({ sock, fingerprint: fp });
    });
  });
}

/** RFC 9266 tls-exporter: label EXPORTER-Channel-Binding, empty context, 32 bytes. */
export function channelBinding(sock: tls.TLSSocket): string {
  return b64u(sock.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0)));
}

// ------------------------------------------------- a self-signed certificate, built by hand

function derLen(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  while (n > 0) {
    bytes.unshift(n & 0xff);
    n >>= 8;
  }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, ...parts: Buffer[]): Buffer => {
  const c = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), derLen(c.length), c]);
};
const seq = (...p: Buffer[]) => tlv(0x30, ...p);
function oid(s: string): Buffer {
  const a = s.split('.').map(Number);
  const out = [40 * a[0]! + a[1]!];
  for (const v of a.slice(2)) {
    const g: number[] = [v & 0x7f];
    let x = v >> 7;
    while (x > 0) {
      g.unshift(0x80 | (x & 0x7f));
      x >>= 7;
    }
    out.push(...g);
  }
  return tlv(0x06, Buffer.from(out));
}
const utcTime = (d: Date) =>
  tlv(0x17, Buffer.from(d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z', 'ascii'));

/** An ECDSA P-256 key and a self-signed X.509 v3 certificate for it, in PEM. */
export function selfSignedCert(): { key: string; cert: string } {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const alg = seq(oid('1.2.840.10045.4.3.2'));
  const name = seq(tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from('indie-host')))));
  const serial = crypto.randomBytes(8);
  serial[0]! &= 0x7f;
  const now = Date.now();
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))),
    tlv(0x02, serial),
    alg,
    name,
    seq(utcTime(new Date(now - 3600_000)), utcTime(new Date(now + 86400_000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
  );
  const sig = crypto.sign('sha256', tbs, privateKey);
  const der = seq(tbs, alg, tlv(0x03, Buffer.from([0]), sig));
  const pem = `-----BEGIN CERTIFICATE-----\n${der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END CERTIFICATE-----\n`;
  return { key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, cert: pem };
}

// ---------------------------------------------------------------- keys and claims (§2.1)

export interface Keys {
  priv: crypto.KeyObject;
  pub: crypto.KeyObject;
  /** raw 32 bytes, base64url (43 characters) */
  publicKey: string;
}

export function newKeys(): Keys {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const raw = publicKey.export({ type: 'spki', format: 'der' }).subarray(-32);
  return { priv: privateKey, pub: publicKey, publicKey: b64u(raw) };
}

export function ed25519FromRaw(b64url: string): crypto.KeyObject {
  const prefix = Buffer.from('302a300506032b6570032100', 'hex');
  return crypto.createPublicKey({
    key: Buffer.concat([prefix, Buffer.from(b64url, 'base64url')]),
    format: 'der',
    type: 'spki',
  });
}

export const signB64u = (k: Keys, data: string) =>
  b64u(crypto.sign(null, Buffer.from(data, 'utf8'), k.priv));

/** Server-signed claims: base64url(claims) "." base64url(sig). */
export function readClaims(
  s: string,
  serverKey?: crypto.KeyObject,
): { claims: any; valid: boolean } {
  const [a, b] = s.split('.');
  const claims = JSON.parse(Buffer.from(a!, 'base64url').toString('utf8'));
  const valid = serverKey
    ? crypto.verify(null, Buffer.from(a!, 'ascii'), serverKey, Buffer.from(b!, 'base64url'))
    : false;
  return { claims, valid };
}

/** The server hello's publicKey: standard base64 of the SPKI DER. */
export const serverKeyOf = (hello: Frame) =>
  crypto.createPublicKey({
    key: Buffer.from(hello.publicKey, 'base64'),
    format: 'der',
    type: 'spki',
  });

// ---------------------------------------------------------------- items (§2.1, §2.2)

export interface ItemFields {
  channelId: string;
  ts: number;
  lc: number;
  kind?: string;
  target?: string;
  text?: string;
  replyTo?: string;
  mentions?: string[];
  emoji?: string;
  change?: {
    name?: string;
    topic?: string;
    allowVisitors?: boolean;
    remove?: string;
    deleted?: true;
  };
  digest?: string;
}

export function bodyDigest(m: ItemFields): string {
  if (m.digest) return m.digest;
  const c = m.change;
  const change = c
    ? [
        c.name ?? null,
        c.topic ?? null,
        c.allowVisitors ?? null,
        c.remove ?? null,
        c.deleted ?? null,
      ]
    : null;
  const arr = [
    'hchat/body/1',
    m.text ?? null,
    m.replyTo ?? null,
    m.mentions ?? null,
    m.emoji ?? null,
    change,
  ];
  return b64u(sha256(JSON.stringify(arr)));
}

export function itemId(m: ItemFields, author: string): string {
  const h = sha256(
    JSON.stringify([
      'hchat/item-id/2',
      m.channelId,
      author.toLowerCase(),
      m.ts,
      m.lc,
      m.kind ?? 'message',
      m.target ?? null,
      bodyDigest(m),
    ]),
  );
  const b = Buffer.alloc(16);
  b.writeUIntBE(m.ts, 0, 6);
  b[6] = 0x80 | (h[0]! & 0x0f);
  b[7] = h[1]!;
  b[8] = 0x80 | (h[2]! & 0x3f);
  h.copy(b, 9, 3, 10);
  const x = b.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export function itemSigInput(m: ItemFields & { id: string }, author: string): string {
  return JSON.stringify([
    'hchat/item/2',
    m.id,
    m.channelId,
    author.toLowerCase(),
    m.ts,
    m.lc,
    m.kind ?? 'message',
    m.target ?? null,
    bodyDigest(m),
  ]);
}

/** Checks an item as §2.1 says a receiver does (id derived, cert by server, user, author, sig). */
export function verifyItem(m: any, serverKey: crypto.KeyObject): string | null {
  const { claims, valid } = readClaims(m.cert, serverKey);
  if (!valid) return 'cert signature';
  if (claims.typ !== 'key') return 'cert typ';
  if (claims.r !== 'user') return 'cert role';
  if (String(claims.u).toLowerCase() !== String(m.author).toLowerCase()) return 'cert user';
  if (m.ts > claims.exp) return 'cert expired';
  if (itemId(m, m.author) !== m.id) return 'id not derived';
  const ok = crypto.verify(
    null,
    Buffer.from(itemSigInput(m, m.author), 'utf8'),
    ed25519FromRaw(claims.pk),
    Buffer.from(m.sig, 'base64url'),
  );
  return ok ? null : 'signature';
}

/** A hybrid logical clock (§2.1). */
export class Hlc {
  ts = 0;
  lc = 0;
  now(): { ts: number; lc: number } {
    const w = Date.now();
    if (w > this.ts) {
      this.ts = w;
      this.lc = 0;
    } else this.lc++;
    return { ts: this.ts, lc: this.lc };
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

// ---------------------------------------------------------------- a session

export interface Session {
  username: string;
  sessionId: string;
  token: string;
  cert: string;
  keys: Keys;
  clock: Hlc;
}

/** A new signed item of `s` (kind message unless given), ready for `post`. */
export function signItem(
  s: Session,
  f: Omit<ItemFields, 'ts' | 'lc'> & { ts?: number; lc?: number },
) {
  const t = f.ts !== undefined ? { ts: f.ts, lc: f.lc ?? 0 } : s.clock.now();
  const m: ItemFields = { ...f, ...t };
  const id = itemId(m, s.username);
  const sig = signB64u(s.keys, itemSigInput({ ...m, id }, s.username));
  return { id, ...m, sig, cert: s.cert };
}

// ---------------------------------------------------------------- server link (§3)

export interface ServerConn {
  link: FrameLink;
  hello: Frame;
  serverKey: crypto.KeyObject;
  fingerprint: string;
}

export async function openServer(
  host: string,
  port: number,
  pin: string,
  helloExtra: Record<string, unknown> = {},
): Promise<ServerConn> {
  const { sock, fingerprint } = await dialTls(host, port, { pin });
  const link = new FrameLink(sock);
  link.send({ t: 'hello', v: 4, role: 'peer', agent: 'indie/0', ...helloExtra });
  const hello = await link.next((f) => f.t === 'hello' || f.t === 'error', 5000, 'server hello');
  if (hello.t !== 'hello') throw new Error(`hello refused: ${JSON.stringify(hello)}`);
  link.heartbeat(4000);
  return { link, hello, serverKey: serverKeyOf(hello), fingerprint };
}

export async function login(c: ServerConn, username: string, password: string): Promise<Session> {
  const keys = newKeys();
  const r = await c.link.call('login', { username, password, publicKey: keys.publicKey });
  return {
    username: r.username,
    sessionId: r.sessionId,
    token: r.token,
    cert: r.cert,
    keys,
    clock: new Hlc(),
  };
}

// ---------------------------------------------------------------- P2P (§4.1)

export const p2pTranscript = (
  signer: 'host' | 'peer',
  peerNonce: string,
  hostNonce: string,
  peerSession: string,
  hostSession: string,
  binding: string,
) =>
  JSON.stringify(['hchat/p2p/3', signer, peerNonce, hostNonce, peerSession, hostSession, binding]);

/** The dial a member signs in its hello (§4.1): its nonce, its session, the host's, the binding. */
export const p2pDial = (
  peerNonce: string,
  peerSession: string,
  hostSession: string,
  binding: string,
) => JSON.stringify(['hchat/p2p-dial/1', peerNonce, peerSession, hostSession, binding]);

/** Member side: dials a tracker entry, checks the host's proof, proves its own. */
export async function dialHost(
  entry: { ip: string; port: number; username: string; sessionId: string },
  s: Session,
  serverKey: crypto.KeyObject,
  opts: { bindingOverride?: string; helloExtra?: Record<string, unknown> } = {},
): Promise<{ link: FrameLink; hostHello: Frame }> {
  const { sock } = await dialTls(entry.ip, entry.port);
  const link = new FrameLink(sock);
  const binding = channelBinding(sock);
  const nonce = b64u(crypto.randomBytes(32));
  const mySid = readClaims(s.cert).claims.sid;
  const dial = signB64u(s.keys, p2pDial(nonce, mySid, entry.sessionId, binding));
  link.send({ t: 'hello', v: 4, role: 'peer', cert: s.cert, nonce, dial, ...opts.helloExtra });
  const h = await link.next(() => true, 5000, 'host hello');
  if (h.t !== 'hello') throw new Error(`host answered ${JSON.stringify(h)}`);
  const { claims, valid } = readClaims(h.cert, serverKey);
  if (!valid || claims.typ !== 'key' || claims.r !== 'user') throw new Error('host cert invalid');
  if (claims.u.toLowerCase() !== entry.username.toLowerCase() || claims.sid !== entry.sessionId)
    throw new Error('host cert is not the dialled entry');
  if (claims.exp < Date.now()) throw new Error('host cert expired');
  const ok = crypto.verify(
    null,
    Buffer.from(p2pTranscript('host', nonce, h.nonce, mySid, claims.sid, binding)),
    ed25519FromRaw(claims.pk),
    Buffer.from(h.sig, 'base64url'),
  );
  if (!ok) throw new Error('host transcript signature does not verify');
  const b = opts.bindingOverride ?? binding;
  link.send({
    t: 'auth',
    sig: signB64u(s.keys, p2pTranscript('peer', nonce, h.nonce, mySid, claims.sid, b)),
  });
  link.heartbeat(Math.max(500, (h.heartbeatMs ?? 2000) - 500));
  return { link, hostHello: h };
}

/** Host side: a TLS listener that runs §4.1 as the host, then hands requests to `serve`. */
export interface IndieHost {
  port: number;
  handshakes: Array<{ member: any; ok: boolean; why?: string }>;
  requests: Array<{ op: string; body: any }>;
  links: FrameLink[];
  close(): void;
}

export function startHost(
  s: Session,
  serverKey: crypto.KeyObject,
  serve: (
    op: string,
    body: any,
    member: any,
  ) => { body?: unknown; error?: { code: string; message: string } },
): Promise<IndieHost> {
  const { key, cert } = selfSignedCert();
  const h: IndieHost = { port: 0, handshakes: [], requests: [], links: [], close: () => {} };
  const mySid = readClaims(s.cert).claims.sid;
  const server = tls.createServer(
    { key, cert, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' },
    async (sock) => {
      const link = new FrameLink(sock);
      h.links.push(link);
      try {
        const hello = await link.next(() => true, 5000, 'member hello');
        if (hello.t !== 'hello') throw new Error('E_HELLO_REQUIRED');
        const { claims, valid } = readClaims(hello.cert, serverKey);
        if (!valid || claims.typ !== 'key' || claims.exp < Date.now())
          throw new Error('E_SESSION_INVALID');
        const binding = channelBinding(sock);
        // The member's dial names this host's session on this connection (§4.1).
        const dialled =
          typeof hello.dial === 'string' &&
          crypto.verify(
            null,
            Buffer.from(p2pDial(hello.nonce, claims.sid, mySid, binding)),
            ed25519FromRaw(claims.pk),
            Buffer.from(String(hello.dial), 'base64url'),
          );
        if (!dialled) throw new Error('E_SESSION_INVALID');
        const nonce = b64u(crypto.randomBytes(32));
        link.send({
          t: 'hello',
          v: 4,
          role: 'host',
          cert: s.cert,
          nonce,
          sig: signB64u(
            s.keys,
            p2pTranscript('host', hello.nonce, nonce, claims.sid, mySid, binding),
          ),
          heartbeatMs: 2000,
          timeoutMs: 6000,
        });
        const auth = await link.next(() => true, 5000, 'auth');
        if (auth.t !== 'auth') throw new Error('E_AUTH_REQUIRED');
        const ok = crypto.verify(
          null,
          Buffer.from(p2pTranscript('peer', hello.nonce, nonce, claims.sid, mySid, binding)),
          ed25519FromRaw(claims.pk),
          Buffer.from(auth.sig, 'base64url'),
        );
        h.handshakes.push({ member: claims, ok });
        if (!ok) throw new Error('E_SESSION_INVALID');
        for (;;) {
          const f = await link.next((x) => x.t === 'req', 60_000, 'req');
          h.requests.push({ op: f.op, body: f.body });
          const a = serve(f.op, f.body ?? {}, claims);
          link.send({ t: 'res', id: f.id, ...a });
        }
      } catch (e) {
        const code = String((e as Error).message);
        if (/^E_/.test(code)) {
          h.handshakes.push({ member: null, ok: false, why: code });
          link.send({ t: 'error', code, message: code });
        }
        link.close();
      }
    },
  );
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      h.port = (server.address() as net.AddressInfo).port;
      h.close = () => {
        for (const l of h.links) l.close();
        server.close();
      };
      resolve(h);
    }),
  );
}

// ---------------------------------------------------------------- processes and the local API

export interface Proc extends HchatProcess {
  kill(): Promise<void>;
}

/** Starts `bin/hchat args` (killed by the returned `kill`, for beforeAll/afterAll use). */
export async function start(args: string[]): Promise<Proc> {
  const l = launchHchat(args, {}, 20_000);
  const p = await l.ready;
  return Object.assign(p, {
    kill: async () => {
      if (l.proc.exitCode === null && l.proc.signalCode === null) {
        l.proc.kill('SIGKILL');
        await l.exited;
      }
    },
  });
}

export async function api(
  ui: string,
  method: string,
  route: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const token = new URL(ui).searchParams.get('token');
  const res = await fetch(new URL(route, ui), {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

export async function until<T>(
  f: () => T | Promise<T>,
  ms = 8000,
  what = 'condition',
): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
