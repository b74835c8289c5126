// Outsider TLS helpers, written from docs/PROTOCOL.md §1.1 only: fingerprints, a TLS 1.2 /
// plaintext / garbage prober, a throwaway certificate, and an impostor server that counts the
// application bytes a victim sends it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { execFileSync } from 'node:child_process';
import { certClaims } from './lib.js';

/** §1.1: SHA-256 of the DER SubjectPublicKeyInfo, base64url without padding. */
export function fingerprintOf(cert: crypto.X509Certificate): string {
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return crypto.createHash('sha256').update(spki).digest('base64url');
}

/** A self-signed ECDSA P-256 certificate made by openssl (node cannot make X.509 itself). */
export function makeCert(): { key: string; cert: string; fingerprint: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hc-out-cert-'));
  const k = path.join(dir, 'k.pem');
  const c = path.join(dir, 'c.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=impostor',
      '-days',
      '1',
      '-keyout',
      k,
      '-out',
      c,
    ],
    { stdio: 'ignore' },
  );
  const cert = fs.readFileSync(c, 'utf8');
  return {
    key: fs.readFileSync(k, 'utf8'),
    cert,
    fingerprint: fingerprintOf(new crypto.X509Certificate(cert)),
  };
}

/** What came back on a raw probe: bytes received, whether it closed, and how long it took. */
export interface Probe {
  bytes: Buffer;
  closed: boolean;
  ms: number;
  secure?: boolean;
  error?: string;
}

/**
 * How long a probe waits for the door to close a connection it must refuse: a refusal is at
 * once, but a door under a full suite's load answered after more than 3 s.
 */
const CLOSE_WAIT_MS = 10_000;

/** Plain TCP: send `data` (maybe nothing) and collect the answer until close or `waitMs`. */
export function rawProbe(
  port: number,
  data: Buffer | null,
  waitMs = CLOSE_WAIT_MS,
): Promise<Probe> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => data && s.write(data));
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => {});
    const done = (closed: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve({ bytes: Buffer.concat(chunks), closed, ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => done(false), waitMs);
    s.on('close', () => done(true));
  });
}

/** A TLS client limited to `maxVersion`: did the handshake finish? */
export function tlsProbe(
  port: number,
  opts: tls.ConnectionOptions,
  waitMs = CLOSE_WAIT_MS,
): Promise<Probe> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let secure = false;
    let error: string | undefined;
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
    s.on('secureConnect', () => (secure = true));
    s.on('error', (e: any) => (error = e.code ?? e.message));
    const timer = setTimeout(() => (s.destroy(), resolve(r(false))), waitMs);
    const r = (closed: boolean): Probe => ({
      bytes: Buffer.alloc(0),
      closed,
      ms: Date.now() - t0,
      secure,
      error,
    });
    s.on('close', () => (clearTimeout(timer), resolve(r(true))));
  });
}

/**
 * Finish TLS 1.3, then write `garbage` straight onto the TCP socket under it (bytes that are no
 * TLS record): the listener must drop that connection.
 */
export function garbageAfterHandshake(port: number, garbage: Buffer, waitMs = CLOSE_WAIT_MS) {
  return new Promise<Probe>((resolve) => {
    const t0 = Date.now();
    const raw = net.connect(port, '127.0.0.1');
    raw.on('error', () => {});
    const s = tls.connect({ socket: raw, rejectUnauthorized: false });
    s.on('error', () => {});
    let secure = false;
    s.on('secureConnect', () => {
      secure = true;
      raw.write(garbage);
    });
    const timer = setTimeout(() => (s.destroy(), done(false)), waitMs);
    const done = (closed: boolean) =>
      resolve({ bytes: Buffer.alloc(0), closed, ms: Date.now() - t0, secure });
    raw.on('close', () => (clearTimeout(timer), done(true)));
  });
}

/** A TLS 1.3 server with its own key on `port` that counts every application byte it gets. */
export async function impostor(port: number, cred = makeCert()) {
  const st = { handshakes: 0, appBytes: 0, fingerprint: cred.fingerprint };
  const socks = new Set<tls.TLSSocket>();
  const srv = tls.createServer({ key: cred.key, cert: cred.cert, minVersion: 'TLSv1.3' }, (s) => {
    st.handshakes++;
    socks.add(s);
    s.on('data', (d) => (st.appBytes += d.length));
    s.on('error', () => {});
    s.on('close', () => socks.delete(s));
  });
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', () => r()));
  return {
    st,
    close: () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        srv.close(() => r());
      }),
  };
}

/** RFC 9266 tls-exporter of this connection, base64url (PROTOCOL.md §1.1). */
export const bindingOf = (s: tls.TLSSocket) =>
  s.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0)).toString('base64url');

/** The §4.1 transcript, as this outsider reads it. */
export const transcript = (
  signer: 'host' | 'peer',
  peerNonce: string,
  hostNonce: string,
  peerSession: string,
  hostSession: string,
  binding: string,
) =>
  Buffer.from(
    JSON.stringify([
      'hchat/p2p/3',
      signer,
      peerNonce,
      hostNonce,
      peerSession,
      hostSession,
      binding,
    ]),
    'utf8',
  );

/**
 * The host's §4.1 hello answering `peerHello` as `me`, with our `nonce`, its transcript signed
 * over `binding` (the connection's own, or another one to play a relay).
 */
export function hostHello(
  me: { cert: string; sessionId: string; key: { privateKey: crypto.KeyObject } },
  peerHello: { nonce: string; cert: string },
  nonce: string,
  binding: string,
) {
  const sig = crypto
    .sign(
      null,
      transcript(
        'host',
        peerHello.nonce,
        nonce,
        certClaims(peerHello.cert).sid,
        me.sessionId,
        binding,
      ),
      me.key.privateKey,
    )
    .toString('base64url');
  return {
    t: 'hello',
    v: 4,
    role: 'host',
    cert: me.cert,
    nonce,
    sig,
    heartbeatMs: 2000,
    timeoutMs: 6000,
  };
}

/** Incoming frames of a TLS socket (§1 framing), one callback per frame. */
export function onFrames(s: tls.TLSSocket, cb: (f: any) => void) {
  let buf = Buffer.alloc(0);
  s.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 4) {
      const n = buf.readUInt32BE(0);
      if (buf.length < 4 + n) break;
      const f = JSON.parse(buf.subarray(4, 4 + n).toString('utf8'));
      buf = buf.subarray(4 + n);
      cb(f);
    }
  });
}
