/**
 * Session tokens as every node checks them: `base64url(JSON claims) "." base64url(Ed25519
 * signature of the first part)`, signed by the central server (server/accounts.ts). A host checks
 * a member's token with the server's public key alone (SPEC §7).
 */
import crypto from 'node:crypto';
import type { Role } from '../protocol/common.js';

/** What a session token vouches for. */
export interface TokenClaims {
  sid: string;
  u: string;
  r: Role;
  iat: number;
}

/** Checks a token's signature with the server's public key; undefined when it does not hold. */
export function verifyToken(token: string, publicKey: crypto.KeyObject): TokenClaims | undefined {
  const dot = token.indexOf('.');
  if (dot <= 0) return undefined;
  const payload = token.slice(0, dot);
  let ok = false;
  try {
    ok = crypto.verify(
      null,
      Buffer.from(payload),
      publicKey,
      Buffer.from(token.slice(dot + 1), 'base64url'),
    );
  } catch {
    return undefined;
  }
  if (!ok) return undefined;
  try {
    const c = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as TokenClaims;
    if (
      typeof c.sid !== 'string' ||
      typeof c.u !== 'string' ||
      (c.r !== 'user' && c.r !== 'visitor')
    ) {
      return undefined;
    }
    return c;
  } catch {
    return undefined;
  }
}

/** Turns the base64 SPKI key of the server hello into a key object. */
export function publicKeyFromBase64(spki: string): crypto.KeyObject {
  return crypto.createPublicKey({ key: Buffer.from(spki, 'base64'), format: 'der', type: 'spki' });
}
