/**
 * What the central server signs, as every node checks it: `base64url(JSON claims) "."
 * base64url(Ed25519 signature of the first part)`, with the server's key (server/accounts.ts).
 * Two kinds, told apart by `typ` so one can never pass for the other:
 * - session tokens (`typ: "session"`): a bearer credential, secret, shown only to the server (it
 *   never leaves the peer ↔ server link; P2P links use certificates and signatures instead);
 * - key certificates (`typ: "key"`): public, attached to every message, binding a session's
 *   Ed25519 message key to its user (SPEC §7).
 * A host checks both with the server's public key alone.
 */
import crypto from 'node:crypto';
import type { Role } from '../protocol/common.js';

/** What a session token vouches for. */
export interface TokenClaims {
  typ: 'session';
  sid: string;
  u: string;
  r: Role;
  iat: number;
}

/**
 * What a key certificate vouches for: session `sid` of account (`r`, `u`) signs with key `pk`
 * until `exp`. The account is the pair: a visitor named bob is never the user bob.
 */
export interface CertClaims {
  typ: 'key';
  sid: string;
  u: string;
  r: Role;
  /** Raw Ed25519 public key, base64url. */
  pk: string;
  iat: number;
  /** Expiry, ms since the epoch: links refuse it after, messages stamped after it fail. */
  exp: number;
  /** The account is a bot (issue 17): members' UIs mark its messages BOT. */
  bot?: true;
}

/**
 * What a file grant vouches for (PROTOCOL.md §9): session `sid` of account (`r`, `u`) may read
 * channel `c`, and so fetch its files from any peer that holds them, until `exp`. The server
 * hands it out with `file_sources`; seeders check it with the server's key alone.
 */
export interface GrantClaims {
  typ: 'file';
  sid: string;
  u: string;
  r: Role;
  /** The channel whose files it opens. */
  c: string;
  exp: number;
}

/** Signs claims with the server's private key. */
export function signClaims(
  claims: TokenClaims | CertClaims | GrantClaims,
  privateKey: crypto.KeyObject,
): string {
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${payload}.${crypto.sign(null, Buffer.from(payload), privateKey).toString('base64url')}`;
}

function verifySigned(
  signed: string,
  publicKey: crypto.KeyObject,
): Record<string, unknown> | undefined {
  const dot = signed.indexOf('.');
  if (dot <= 0) return undefined;
  const payload = signed.slice(0, dot);
  // Only the signature exactly as it was written (Node's decoder skips characters outside the
  // alphabet and ignores unused bits: another spelling of the same bytes is not this token).
  const text = signed.slice(dot + 1);
  const sig = Buffer.from(text, 'base64url');
  if (sig.length !== 64 || sig.toString('base64url') !== text) return undefined;
  try {
    if (!crypto.verify(null, Buffer.from(payload), publicKey, sig)) return undefined;
    return readClaims(signed);
  } catch {
    return undefined;
  }
}

function validBase(c: Record<string, unknown>): boolean {
  return (
    typeof c.sid === 'string' && typeof c.u === 'string' && (c.r === 'user' || c.r === 'visitor')
  );
}

/**
 * The claims of a token or certificate read WITHOUT checking its signature: only for a reader
 * that already trusts where it got it (a bot reading items the server stored, whose
 * certificates the server checked). Undefined when it is not `payload.signature` of JSON.
 */
export function readClaims(signed: string): Record<string, unknown> | undefined {
  const dot = signed.indexOf('.');
  if (dot <= 0) return undefined;
  try {
    const c = JSON.parse(
      Buffer.from(signed.slice(0, dot), 'base64url').toString('utf8'),
    ) as unknown;
    return c !== null && typeof c === 'object' && !Array.isArray(c)
      ? (c as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Checks a session token with the server's public key; undefined when it does not hold. */
export function verifyToken(token: string, publicKey: crypto.KeyObject): TokenClaims | undefined {
  const c = verifySigned(token, publicKey);
  return c && c.typ === 'session' && validBase(c) ? (c as unknown as TokenClaims) : undefined;
}

/** Checks a key certificate with the server's public key; undefined when it does not hold. */
export function verifyCert(cert: string, publicKey: crypto.KeyObject): CertClaims | undefined {
  const c = verifySigned(cert, publicKey);
  return c &&
    c.typ === 'key' &&
    validBase(c) &&
    typeof c.pk === 'string' &&
    typeof c.exp === 'number' &&
    typeof c.iat === 'number'
    ? (c as unknown as CertClaims)
    : undefined;
}

/** Checks a file grant with the server's public key; undefined when it does not hold. */
export function verifyGrant(grant: string, publicKey: crypto.KeyObject): GrantClaims | undefined {
  const c = verifySigned(grant, publicKey);
  return c &&
    c.typ === 'file' &&
    validBase(c) &&
    typeof c.c === 'string' &&
    typeof c.exp === 'number'
    ? (c as unknown as GrantClaims)
    : undefined;
}

/** Turns the base64 SPKI key of the server hello into a key object. */
export function publicKeyFromBase64(spki: string): crypto.KeyObject {
  return crypto.createPublicKey({ key: Buffer.from(spki, 'base64'), format: 'der', type: 'spki' });
}
