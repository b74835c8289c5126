/**
 * Signed messages (SPEC §7). Authors sign each message with their session's Ed25519 key over
 * canonical bytes; the message carries the signature and the server's certificate of that key.
 * Server, host and members verify both, so no host and no server can forge or alter someone
 * else's message.
 *
 * Canonical bytes: the UTF-8 of JSON.stringify(["hchat/message/1", id, channelId, author, ts,
 * lc, text]), the author in lower case.
 */
import crypto from 'node:crypto';
import { HchatError } from '../protocol/errors.js';
import { verifyEd25519 } from './ed25519.js';
import { verifyCert, type CertClaims } from './tokens.js';

/** The signed fields of a message, with its signature and certificate. */
export interface Signed {
  id: string;
  channelId: string;
  author: string;
  ts: number;
  lc: number;
  text: string;
  sig: string;
  cert: string;
}

/** A session's message key. */
export interface SessionKeys {
  privateKey: crypto.KeyObject;
  /** Raw public key, base64url (as certified). */
  publicKey: string;
}

/** A fresh key pair for a new session. */
export function newSessionKeys(): SessionKeys {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  return { privateKey, publicKey: publicKey.export({ format: 'jwk' }).x! };
}

/** Rebuilds saved keys from the private key's PKCS#8 DER (base64). */
export function loadSessionKeys(pkcs8: string): SessionKeys {
  const privateKey = crypto.createPrivateKey({
    key: Buffer.from(pkcs8, 'base64'),
    format: 'der',
    type: 'pkcs8',
  });
  return { privateKey, publicKey: crypto.createPublicKey(privateKey).export({ format: 'jwk' }).x! };
}

/** The private key as PKCS#8 DER (base64), for the owner-only session file. */
export function exportPrivateKey(keys: SessionKeys): string {
  return keys.privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64');
}

function canonical(m: Omit<Signed, 'sig' | 'cert'>): Buffer {
  return Buffer.from(
    JSON.stringify([
      'hchat/message/1',
      m.id,
      m.channelId,
      m.author.toLowerCase(),
      m.ts,
      m.lc,
      m.text,
    ]),
  );
}

/** Signs a message as its author. */
export function signMessage(m: Omit<Signed, 'sig' | 'cert'>, keys: SessionKeys): string {
  return crypto.sign(null, canonical(m), keys.privateKey).toString('base64url');
}

/** One Ed25519 check: the canonical bytes, the signature, the author's raw 32-byte key. */
export interface SignatureCheck {
  data: Buffer;
  sig: Buffer;
  key: Buffer;
}

/** The error of a signature that does not match. */
export const BAD_SIGNATURE = () =>
  new HchatError('E_BAD_SIGNATURE', 'signature does not match the message');

/** Verifies messages against the server's key, remembering certificates it already checked. */
export class MessageVerifier {
  private readonly certs = new Map<string, { claims: CertClaims; key: Buffer } | null>();

  constructor(private readonly serverKey: () => crypto.KeyObject | undefined) {}

  /** Undefined when the message is authentic; else the reason it is refused. */
  check(m: Signed): HchatError | undefined {
    const p = this.prepare(m);
    if (p instanceof HchatError) return p;
    return verifyEd25519(p.data, p.sig, p.key) ? undefined : BAD_SIGNATURE();
  }

  /**
   * The checks that need no signature verification (certificate, author), and the inputs of the
   * one that does, so that a pool of threads can run it (server/verify-pool.ts).
   */
  prepare(m: Signed): HchatError | SignatureCheck {
    const c = this.cert(m.cert);
    if (!c)
      return new HchatError('E_BAD_SIGNATURE', 'certificate not signed by the central server');
    if (c.claims.u.toLowerCase() !== m.author.toLowerCase()) {
      return new HchatError(
        'E_BAD_SIGNATURE',
        `certificate is ${c.claims.u}'s, message claims ${m.author}`,
      );
    }
    return {
      data: canonical(m),
      sig: Buffer.from(m.sig, 'base64url'),
      key: c.key,
    };
  }

  private cert(cert: string): { claims: CertClaims; key: Buffer } | null {
    const cached = this.certs.get(cert);
    if (cached !== undefined) return cached;
    const serverKey = this.serverKey();
    if (!serverKey) return null; // not cached: the key may be known later
    const claims = verifyCert(cert, serverKey);
    const key = claims ? Buffer.from(claims.pk, 'base64url') : undefined;
    const entry = claims && key?.length === 32 ? { claims, key } : null;
    if (this.certs.size > 10_000) this.certs.clear();
    this.certs.set(cert, entry);
    return entry;
  }
}
