/**
 * TLS 1.3 for every framed link (SPEC §7, docs/PROTOCOL.md §1.1). node:tls does the protocol;
 * this file holds what we add around it: a self-signed certificate for a key made here (the
 * central server keeps one in its data folder; a peer makes one for its P2P port at start), the
 * key's fingerprint (SHA-256 of the DER SubjectPublicKeyInfo, base64url) that peers pin, and the
 * channel binding of a connection (RFC 9266 `tls-exporter`) that the P2P handshake signs.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import type net from 'node:net';
import type { ConnectionLog } from './connlog.js';
import { remoteOf } from './framed-socket.js';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  Certificate,
  Name,
  RelativeDistinguishedName,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from '@peculiar/asn1-x509';
import { newKeyPair } from './keygen.js';

/** A TLS key and its certificate, PEM, with the key's fingerprint. */
export interface TlsIdentity {
  key: string;
  cert: string;
  fingerprint: string;
}

/**
 * Both ends speak TLS 1.3 and nothing older. Listeners choose AES-128-GCM first (all three TLS 1.3
 * suites are allowed): 128-bit AES is ample and costs less CPU per pushed byte than AES-256.
 */
export const TLS_VERSIONS = {
  minVersion: 'TLSv1.3',
  maxVersion: 'TLSv1.3',
  ciphers: 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256',
  honorCipherOrder: true,
} as const;

let clientContext: tls.SecureContext | undefined;

/**
 * The TLS context of every link this process dials (TLS_VERSIONS; nothing else in it: the other
 * end is checked after the handshake, by a pinned key or channel binding). Made once: making
 * one per connection cost ~0.3 ms of CPU each time, for every host link and every reconnect.
 */
export function dialContext(): tls.SecureContext {
  return (clientContext ??= tls.createSecureContext(TLS_VERSIONS));
}

/** RFC 9266: the exporter label of the `tls-exporter` channel binding (32 bytes, no context). */
const CHANNEL_BINDING_LABEL = 'EXPORTER-Channel-Binding';

const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const OID_COMMON_NAME = '2.5.4.3';

/** The fingerprint of a public key: SHA-256 of its DER SubjectPublicKeyInfo, base64url. */
export function fingerprintOf(key: crypto.KeyObject): string {
  const spki = key.export({ type: 'spki', format: 'der' });
  return crypto.createHash('sha256').update(spki).digest('base64url');
}

/** The fingerprint of the key in a PEM certificate. */
export function fingerprintOfCert(certPem: string): string {
  return fingerprintOf(new crypto.X509Certificate(certPem).publicKey);
}

/** The fingerprint of the key the other end of a TLS connection showed. */
export function peerFingerprint(socket: tls.TLSSocket): string | undefined {
  const cert = socket.getPeerX509Certificate();
  return cert && fingerprintOf(cert.publicKey);
}

/**
 * The connection's channel binding (RFC 9266): the same 32 bytes at both ends of one TLS
 * connection, different on any other; a man in the middle holds two connections, so two values.
 */
export function channelBinding(socket: tls.TLSSocket): Buffer {
  return socket.exportKeyingMaterial(32, CHANNEL_BINDING_LABEL, Buffer.alloc(0));
}

/**
 * A new ECDSA P-256 key with a self-signed X.509 v3 certificate (valid from a day ago for 100
 * years: peers pin the key, not the dates).
 */
export function selfSignedIdentity(commonName: string): TlsIdentity {
  const { publicKey, privateKey } = newKeyPair('p256');
  const alg = new AlgorithmIdentifier({ algorithm: OID_ECDSA_SHA256 });
  const name = new Name([
    new RelativeDistinguishedName([
      new AttributeTypeAndValue({
        type: OID_COMMON_NAME,
        value: new AttributeValue({ utf8String: commonName }),
      }),
    ]),
  ]);
  const serial = crypto.randomBytes(16);
  // A positive INTEGER in minimal DER: top bit clear, first byte never zero (OpenSSL refuses
  // a leading zero byte as "illegal padding").
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  const now = Date.now();
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: toArrayBuffer(serial),
    signature: alg,
    issuer: name,
    validity: new Validity({
      notBefore: new Date(now - 86_400_000),
      notAfter: new Date(now + 100 * 365 * 86_400_000),
    }),
    subject: name,
    subjectPublicKeyInfo: AsnConvert.parse(
      publicKey.export({ type: 'spki', format: 'der' }),
      SubjectPublicKeyInfo,
    ),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = crypto.sign('sha256', tbsDer, { key: privateKey, dsaEncoding: 'der' });
  const der = Buffer.from(
    AsnConvert.serialize(
      new Certificate({
        tbsCertificate: tbs,
        signatureAlgorithm: alg,
        signatureValue: toArrayBuffer(signature),
      }),
    ),
  );
  const cert = `-----BEGIN CERTIFICATE-----\n${der
    .toString('base64')
    .replace(/.{64}/g, '$&\n')
    .replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`;
  return {
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    cert,
    fingerprint: fingerprintOf(publicKey),
  };
}

/**
 * The server's TLS identity: the operator's certificate and key when given (from a real CA),
 * else the self-signed pair in the data folder, made on first start (files 0600).
 */
export function loadOrCreateServerIdentity(
  dataDir: string,
  given?: { certFile: string; keyFile: string },
): TlsIdentity {
  if (given) {
    const cert = fs.readFileSync(given.certFile, 'utf8');
    const key = fs.readFileSync(given.keyFile, 'utf8');
    return { cert, key, fingerprint: readingFile(given.certFile, () => fingerprintOfCert(cert)) };
  }
  const keyFile = path.join(dataDir, 'tls-key.pem');
  const certFile = path.join(dataDir, 'tls-cert.pem');
  if (fs.existsSync(keyFile) && fs.existsSync(certFile)) {
    const cert = fs.readFileSync(certFile, 'utf8');
    const key = fs.readFileSync(keyFile, 'utf8');
    // A damaged or mismatched pair is refused, never silently replaced: peers pin this key.
    const certKey = readingFile(certFile, () => new crypto.X509Certificate(cert).publicKey);
    const own = readingFile(keyFile, () => crypto.createPublicKey(crypto.createPrivateKey(key)));
    if (fingerprintOf(certKey) !== fingerprintOf(own))
      throw new Error(`${certFile} does not hold the certificate of ${keyFile}`);
    return { cert, key, fingerprint: fingerprintOf(own) };
  }
  const id = selfSignedIdentity('hchat server');
  fs.writeFileSync(keyFile, id.key, { mode: 0o600 });
  fs.writeFileSync(certFile, id.cert, { mode: 0o600 });
  return id;
}

/** `read()`'s answer; its error names `file` (OpenSSL's alone says nothing of which). */
function readingFile<T>(file: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw new Error(`${file} is damaged: ${(err as Error).message}`);
  }
}

function toArrayBuffer(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

/**
 * A TLS 1.3 listener with `identity` whose handshakes must finish within `handshakeMs`; a failed
 * handshake (plaintext, an old version, garbage) is logged as `tls_error` and its socket closed.
 */
export function createTlsServer(
  identity: TlsIdentity,
  handshakeMs: number,
  log: ConnectionLog,
  onSecure: (socket: tls.TLSSocket) => void,
): tls.Server {
  const server = tls.createServer(
    { key: identity.key, cert: identity.cert, ...TLS_VERSIONS, handshakeTimeout: handshakeMs },
    onSecure,
  );
  server.on('tlsClientError', (err, socket: net.Socket) => {
    const r = remoteOf(socket);
    // Nobody is known yet: within its address group's share of the log (LOG_LIMITS).
    log.outsider(r.ip, 'tls_error', { addr: `${r.ip}:${r.port}`, reason: tlsReason(err) });
    socket.destroy();
  });
  return server;
}

/** A failed TLS handshake's reason, short and log-safe (`ERR_SSL_…`, `ECONNRESET`, …). */
export function tlsReason(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code ?? err.message;
  return code.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 80) || 'unknown';
}
