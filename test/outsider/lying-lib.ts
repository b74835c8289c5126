// A compromised central server, written from docs/PROTOCOL.md (§1 framing, §1.1 TLS, §3 the
// server link) alone: a TLS 1.3 front with its own key (the one victims pin) in front of a real
// `hchat server` whose signing key it holds (`--signing-key`, README "Several server
// instances"). It passes frames both ways and lets a test alter, drop, answer or invent any of
// them, and write raw bytes (broken frames) to the victim.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { execFileSync } from 'node:child_process';
import { frame, b64u } from './lib.js';
import { makeCert } from './tls.js';

export type Frame = Record<string, any>;

/** One victim connection and its own link to the real server. */
export class Link {
  /** every frame the victim sent, in order (after the proxy's hooks saw them) */
  up: Frame[] = [];
  /** every frame the real server sent towards the victim (before hooks) */
  down: Frame[] = [];
  /** request id -> op of the victim's requests */
  ops = new Map<number, { op: string; body: any }>();
  closed = false;
  victimClosedAt = 0;
  private upBuf = Buffer.alloc(0);
  private downBuf = Buffer.alloc(0);

  constructor(
    readonly proxy: LyingServer,
    readonly victim: tls.TLSSocket,
    readonly real: tls.TLSSocket,
  ) {
    victim.on('data', (d) => {
      this.upBuf = Buffer.concat([this.upBuf, d]);
      this.drain('up');
    });
    real.on('data', (d) => {
      this.downBuf = Buffer.concat([this.downBuf, d]);
      this.drain('down');
    });
    const end = () => {
      if (this.closed) return;
      this.closed = true;
      this.victimClosedAt = Date.now();
      victim.destroy();
      real.destroy();
    };
    victim.on('close', end);
    real.on('close', end);
    victim.on('error', () => {});
    real.on('error', () => {});
  }

  private drain(dir: 'up' | 'down') {
    for (;;) {
      const buf = dir === 'up' ? this.upBuf : this.downBuf;
      if (buf.length < 4) return;
      const n = buf.readUInt32BE(0);
      if (buf.length < 4 + n) return;
      const body = buf.subarray(4, 4 + n);
      if (dir === 'up') this.upBuf = buf.subarray(4 + n);
      else this.downBuf = buf.subarray(4 + n);
      let f: Frame;
      try {
        f = JSON.parse(body.toString('utf8'));
      } catch {
        // not ours to judge: pass it on untouched
        (dir === 'up' ? this.real : this.victim).write(Buffer.concat([buf.subarray(0, 4), body]));
        continue;
      }
      if (dir === 'up') this.fromVictim(f);
      else this.fromServer(f);
    }
  }

  private fromVictim(f: Frame) {
    this.up.push(f);
    if (f.t === 'req' && typeof f.id === 'number') this.ops.set(f.id, { op: f.op, body: f.body });
    if (f.t === 'hello' && !this.proxy.allowCompact) delete f.compact;
    const out = this.proxy.onUp ? this.proxy.onUp(f, this) : [f];
    for (const o of out ?? []) this.toServer(o);
  }

  private fromServer(f: Frame) {
    if (this.takeOwn(f)) return;
    this.down.push(f);
    if (f.t === 'hello') Object.assign(f, this.proxy.helloPatch);
    const out = this.proxy.onDown ? this.proxy.onDown(f, this) : [f];
    for (const o of out ?? []) this.toVictim(o);
  }

  /** The op a `res` answers, as the victim asked it. */
  opOf(res: Frame) {
    return this.ops.get(res.id)?.op;
  }
  toVictim(f: Frame | Buffer) {
    if (!this.closed) this.victim.write(Buffer.isBuffer(f) ? f : frame(f));
  }
  toServer(f: Frame | Buffer) {
    if (!this.closed) this.real.write(Buffer.isBuffer(f) ? f : frame(f));
  }
  /** A request the real server answers on this link, unseen by the victim. */
  private nextOwnId = 4_000_000_000;
  private own = new Map<number, (f: Frame) => void>();
  ask(op: string, body: unknown): Promise<Frame> {
    const id = this.nextOwnId++;
    return new Promise((r) => {
      this.own.set(id, r);
      this.toServer({ t: 'req', id, op, body });
    });
  }
  /** Called by the proxy's default down path: answers to our own asks never reach the victim. */
  takeOwn(f: Frame): boolean {
    if (f.t !== 'res' || !this.own.has(f.id)) return false;
    this.own.get(f.id)!(f);
    this.own.delete(f.id);
    return true;
  }
  /** Error frames the victim sent (fatal errors it raised against "the server"). */
  errors() {
    return this.up.filter((f) => f.t === 'error');
  }
  kill() {
    this.closed = true;
    this.victimClosedAt = Date.now();
    this.victim.destroy();
    this.real.destroy();
  }
}

export class LyingServer {
  links: Link[] = [];
  onUp?: (f: Frame, l: Link) => Frame[] | null | undefined;
  onDown?: (f: Frame, l: Link) => Frame[] | null | undefined;
  /** members merged into the real server's hello before the victim reads it */
  helloPatch: Frame = {};
  /** keep `compact` in the victim's hello (§3.11); off by default: full-form frames only */
  allowCompact = false;
  port = 0;
  fingerprint: string;
  private srv: tls.Server;
  private cred: { key: string; cert: string; fingerprint: string };
  /** Every TLS handshake the victim completed with us. */
  handshakes = 0;

  constructor(readonly real: { host: string; port: number }) {
    this.cred = makeCert();
    this.fingerprint = this.cred.fingerprint;
    this.srv = tls.createServer(
      { key: this.cred.key, cert: this.cred.cert, minVersion: 'TLSv1.3' },
      (victim) => {
        this.handshakes++;
        victim.pause();
        const real = tls.connect({
          host: this.real.host,
          port: this.real.port,
          rejectUnauthorized: false,
        });
        real.on('error', () => victim.destroy());
        real.once('secureConnect', () => {
          const l = new Link(this, victim, real);
          this.links.push(l);
          victim.resume();
        });
      },
    );
    this.srv.on('tlsClientError', () => {});
  }

  async listen() {
    await new Promise<void>((r) => this.srv.listen(0, '127.0.0.1', () => r()));
    this.port = (this.srv.address() as { port: number }).port;
    return this;
  }
  /** The victim's live link (the newest open one). */
  get link(): Link | undefined {
    return [...this.links].reverse().find((l) => !l.closed && l.up.length > 0);
  }
  /** Wait for a link that has a session (resume or login answered) and is not `not`. */
  async liveLink(not?: Link, ms = 20000): Promise<Link> {
    const t0 = Date.now();
    for (;;) {
      const l = this.link;
      if (l && l !== not && l.up.some((f) => f.t === 'req' && f.op === 'subscribe')) return l;
      if (Date.now() - t0 > ms) throw new Error('no live victim link');
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  close() {
    for (const l of this.links) l.kill();
    return new Promise<void>((r) => this.srv.close(() => r()));
  }
}

/** A fresh Ed25519 signing key in PEM (PKCS#8), as `openssl genpkey -algorithm ed25519` makes. */
export function signingKeyFile(): { file: string; privateKey: crypto.KeyObject; spkiB64: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hc-lying-sk-'));
  const file = path.join(dir, 'signing-key.pem');
  execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', file], { stdio: 'ignore' });
  const privateKey = crypto.createPrivateKey(fs.readFileSync(file, 'utf8'));
  const spkiB64 = crypto
    .createPublicKey(privateKey)
    .export({ type: 'spki', format: 'der' })
    .toString('base64');
  return { file, privateKey, spkiB64 };
}

/** §2.1 server-signed claims: base64url(claims) "." base64url(Ed25519 signature). */
export function signClaims(claims: object, key: crypto.KeyObject) {
  const head = b64u(Buffer.from(JSON.stringify(claims), 'utf8'));
  return head + '.' + b64u(crypto.sign(null, Buffer.from(head, 'ascii'), key));
}
