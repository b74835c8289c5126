/**
 * Signed items (SPEC §7): messages and every later change (edit, delete, reaction, channel
 * change). Authors sign each with their session's Ed25519 key over canonical bytes; the item
 * carries the signature and the server's certificate of that key. Server, host and members
 * verify both, so no host and no server can forge or alter someone else's content.
 *
 * Canonical bytes: the UTF-8 of JSON.stringify(["hchat/item/2", id, channelId, author in lower
 * case, ts, lc, kind, target or null, digest]) where digest is the body's SHA-256
 * (shared/message-id.ts `bodyDigest`): a tombstone, whose body is erased, still verifies.
 */
import crypto from 'node:crypto';
import { HchatError } from '../protocol/errors.js';
import { verifyEd25519 } from './ed25519.js';
import { verifyCert, type CertClaims } from './tokens.js';
import { digestOf, itemHeader, legacyMessageId, messageId, type IdFields } from './message-id.js';
import { MESSAGE_LIMITS } from './limits.js';
import { newKeyPair } from './keygen.js';

/** The signed fields of an item, with its signature and certificate. */
export interface Signed extends IdFields {
  id: string;
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
  const { privateKey, publicKey } = newKeyPair('ed25519');
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

/**
 * A message written under protocol 3 (PROTOCOL.md §8): a plain text message whose id is the
 * version-1 id. Its version-1 signature covers all it says, so it verifies as it was signed; a
 * backup made before version 4 stays readable by members who join later.
 */
function isLegacy(m: Omit<Signed, 'sig' | 'cert'>): m is Omit<Signed, 'sig' | 'cert'> & {
  text: string;
} {
  return (
    m.kind === undefined &&
    m.text !== undefined &&
    m.replyTo === undefined &&
    m.mentions === undefined &&
    m.digest === undefined &&
    legacyMessageId({ ...m, text: m.text }) === m.id
  );
}

function legacyCanonical(m: Omit<Signed, 'sig' | 'cert'>): Buffer {
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

function canonical(m: Omit<Signed, 'sig' | 'cert'>, digest?: string): Buffer {
  return Buffer.from(JSON.stringify(['hchat/item/2', m.id, ...itemHeader(m, digest)]));
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

/** Settings of a verifier. */
export interface VerifierOptions {
  /** ε: how far ahead of `now` a message may be stamped (MESSAGE_LIMITS.maxClockSkewMs). */
  maxClockSkewMs?: number;
  /** This replica's wall clock. */
  now?: () => number;
}

/**
 * The one decision "is this message authentic and acceptable here?", made alike by the server,
 * hosts and members (SPEC §7): its time is at most ε ahead of our clock; its id is the hash of
 * its content (shared/message-id.ts); its certificate is the server's, for a user (never a
 * visitor), for this author, and had not expired when the message was written; and its
 * signature verifies with the certified key. Certificates already checked are remembered.
 */
export class MessageVerifier {
  private readonly certs = new Map<string, { claims: CertClaims; key: Buffer } | null>();
  private readonly maxSkew: number;
  private readonly now: () => number;

  constructor(
    private readonly serverKey: () => crypto.KeyObject | undefined,
    opts: VerifierOptions = {},
  ) {
    this.maxSkew = opts.maxClockSkewMs ?? MESSAGE_LIMITS.maxClockSkewMs;
    this.now = opts.now ?? Date.now;
  }

  /** Undefined when the message is authentic; else the reason it is refused. */
  check(m: Signed): HchatError | undefined {
    const p = this.prepare(m);
    if (p instanceof HchatError) return p;
    return verifyEd25519(p.data, p.sig, p.key) ? undefined : BAD_SIGNATURE();
  }

  /**
   * The checks that need no signature verification (clock, id, certificate, author), and the
   * inputs of the one that does, so that a pool of threads can run it (server/verify-pool.ts).
   */
  prepare(m: Signed): HchatError | SignatureCheck {
    const ahead = m.ts - this.now();
    if (ahead > this.maxSkew) {
      return new HchatError(
        'E_CLOCK_SKEW',
        `message stamped ${Math.round(ahead / 1000)} s ahead of this replica's clock (at most ${this.maxSkew / 1000} s)`,
      );
    }
    // The body is hashed once, for the id and the signed bytes alike; the version-1 id is tried
    // only for an item whose id is not the version-2 one.
    const digest = digestOf(m);
    const v2 = messageId(m, digest) === m.id;
    const legacy = !v2 && isLegacy(m);
    if (!v2 && !legacy)
      return new HchatError(
        'E_BAD_SIGNATURE',
        "message id is not derived from the message's content",
      );
    const c = this.cert(m.cert);
    if (!c)
      return new HchatError('E_BAD_SIGNATURE', 'certificate not signed by the central server');
    if (c.claims.r !== 'user')
      return new HchatError('E_BAD_SIGNATURE', "certificate is a visitor's: visitors cannot write");
    if (c.claims.u.toLowerCase() !== m.author.toLowerCase()) {
      return new HchatError(
        'E_BAD_SIGNATURE',
        `certificate is ${c.claims.u}'s, message claims ${m.author}`,
      );
    }
    if (m.ts > c.claims.exp)
      return new HchatError(
        'E_BAD_SIGNATURE',
        'certificate had expired when the message was written',
      );
    return {
      data: legacy ? legacyCanonical(m) : canonical(m, digest),
      sig: Buffer.from(m.sig, 'base64url'),
      key: c.key,
    };
  }

  /** The claims of a certificate the server signed, or undefined. */
  certClaims(cert: string): CertClaims | undefined {
    return this.cert(cert)?.claims;
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
