/**
 * The P2P handshake's proof of possession (SPEC §7, docs/PROTOCOL.md §4.1). Neither side shows a
 * bearer secret: each presents its key certificate and signs the handshake transcript (both
 * nonces, both session ids, which side it is, and the TLS connection's channel binding) with the
 * certified session key. A signature made for one connection is worthless on any other (fresh
 * nonces, another binding), one side's signature can never pass for the other's (the role is
 * signed), and a man in the middle who terminates TLS at both ends holds two connections with two
 * bindings, so neither end's signature verifies at the other (RFC 9266 `tls-exporter`).
 */
import crypto from 'node:crypto';
import { HchatError } from '../protocol/errors.js';
import { verifyEd25519 } from './ed25519.js';
import type { SessionKeys } from './signing.js';
import { verifyCert, type CertClaims } from './tokens.js';

/** Who the other end of a P2P link is, as its certificate says. */
export interface LinkIdentity {
  username: string;
  sessionId: string;
  role: 'user' | 'visitor';
}

/** What a side proves itself with: its certificate and the key it certifies. */
export interface LinkCredentials {
  cert: string;
  keys: SessionKeys;
  /** The session the certificate names. */
  sessionId: string;
}

/** A fresh handshake nonce: 32 random bytes, base64url. */
export function newNonce(): string {
  return crypto.randomBytes(32).toString('base64url');
}

/** What each side signs: the connection's nonces, session ids and binding, and its own part. */
export function transcript(
  signer: 'peer' | 'host',
  t: {
    peerNonce: string;
    hostNonce: string;
    peerSession: string;
    hostSession: string;
    /** The TLS connection's `tls-exporter` channel binding (shared/tls.ts). */
    binding: Buffer;
  },
): Buffer {
  return Buffer.from(
    JSON.stringify([
      'hchat/p2p/3',
      signer,
      t.peerNonce,
      t.hostNonce,
      t.peerSession,
      t.hostSession,
      t.binding.toString('base64url'),
    ]),
  );
}

/**
 * What the connecting peer signs in its hello, before the host has said anything: that its
 * session dials the host session of the tracker entry it dialled, on this TLS connection. The
 * host shows it to the server in `session_check` (PROTOCOL.md §3.3, §4.1): the server answers
 * only about a session that proved it dialled the asker.
 */
export function dialTranscript(t: {
  peerNonce: string;
  peerSession: string;
  hostSession: string;
  binding: Buffer;
}): Buffer {
  return Buffer.from(
    JSON.stringify([
      'hchat/p2p-dial/1',
      t.peerNonce,
      t.peerSession,
      t.hostSession,
      t.binding.toString('base64url'),
    ]),
  );
}

/** True when `sig` (base64url) is the signature of `data` by the raw Ed25519 key `pk`. */
export function signedBy(pk: string, data: Buffer, sig: string): boolean {
  return verifyEd25519(data, Buffer.from(sig, 'base64url'), Buffer.from(pk, 'base64url'));
}

/** Signs a transcript with the session key. */
export function signTranscript(keys: SessionKeys, data: Buffer): string {
  return crypto.sign(null, data, keys.privateKey).toString('base64url');
}

/**
 * Checks the other side's certificate for a link made now: signed by the server, not expired.
 * Returns its claims, or throws E_SESSION_INVALID naming what failed.
 */
export function checkLinkCert(
  cert: string,
  serverKey: crypto.KeyObject | undefined,
  now = Date.now(),
): CertClaims {
  if (!serverKey)
    throw new HchatError('E_SESSION_INVALID', "the central server's key is not known yet");
  const claims = verifyCert(cert, serverKey);
  if (!claims)
    throw new HchatError('E_SESSION_INVALID', 'certificate not signed by the central server');
  if (claims.exp < now) throw new HchatError('E_SESSION_INVALID', 'certificate expired');
  return claims;
}

/** Throws E_SESSION_INVALID unless `sig` is the certified key's signature of `data`. */
export function verifyTranscript(claims: CertClaims, data: Buffer, sig: string): void {
  if (!signedBy(claims.pk, data, sig))
    throw new HchatError('E_SESSION_INVALID', 'handshake signature does not verify');
}

/** The identity a certificate names. */
export function identityOf(claims: CertClaims): LinkIdentity {
  return { username: claims.u, sessionId: claims.sid, role: claims.r };
}
