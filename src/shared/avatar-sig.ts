/**
 * An avatar's signature (docs/PROTOCOL.md §9.5): Ed25519, by the user's session key, over the
 * UTF-8 bytes of JSON.stringify(["hchat/avatar/1", username in lower case, type, SHA-256 of the
 * picture (base64url), ts]); the record carries the server's certificate of that key. Anyone
 * holding the server's key can check it, whoever served the record.
 */
import crypto from 'node:crypto';
import { HchatError } from '../protocol/errors.js';
import type { AvatarRecord, AvatarType } from '../protocol/avatars.js';
import { verifyEd25519 } from './ed25519.js';
import { FILE_LIMITS } from './limits.js';
import { pictureError } from './picture.js';
import type { SessionKeys } from './signing.js';
import { verifyCert } from './tokens.js';

/** SHA-256 of the picture's bytes, base64url. */
export function avatarHash(data: Buffer): string {
  return crypto.createHash('sha256').update(data).digest('base64url');
}

function canonical(a: { username: string; type: string; ts: number }, hash: string): Buffer {
  return Buffer.from(
    JSON.stringify(['hchat/avatar/1', a.username.toLowerCase(), a.type, hash, a.ts]),
  );
}

/** Signs a picture as `username`'s avatar. */
export function signAvatar(
  a: { username: string; type: AvatarRecord['type']; data: Buffer; ts: number },
  keys: SessionKeys,
  cert: string,
): AvatarRecord {
  const sig = crypto.sign(null, canonical(a, avatarHash(a.data)), keys.privateKey);
  return {
    username: a.username,
    type: a.type,
    data: a.data.toString('base64'),
    ts: a.ts,
    sig: sig.toString('base64url'),
    cert,
  };
}

/**
 * Why an avatar record does not hold, or undefined: its certificate must be the server's, a
 * user's, that user's, not expired when it was set, its signature must verify (E_BAD_SIGNATURE),
 * and its bytes must be a whole picture of its type, at most FILE_LIMITS.maxAvatarSide pixels
 * wide and high (E_BAD_REQUEST, `avatarPictureError`). Whether the certificate's session was
 * revoked only the server knows: it checks that apart.
 */
export function avatarError(
  a: AvatarRecord,
  serverKey: crypto.KeyObject | undefined,
): HchatError | undefined {
  const c = serverKey && verifyCert(a.cert, serverKey);
  if (!c || c.r !== 'user' || c.u.toLowerCase() !== a.username.toLowerCase())
    return new HchatError(
      'E_BAD_SIGNATURE',
      "avatar: the certificate is not the server's for this user",
    );
  if (a.ts > c.exp)
    return new HchatError('E_BAD_SIGNATURE', 'avatar: set after its certificate expired');
  const data = Buffer.from(a.data, 'base64');
  const ok = verifyEd25519(
    canonical(a, avatarHash(data)),
    Buffer.from(a.sig, 'base64url'),
    Buffer.from(c.pk, 'base64url'),
  );
  if (!ok) return new HchatError('E_BAD_SIGNATURE', 'avatar: the signature does not verify');
  return avatarPictureError(a.type, data);
}

/**
 * Why these bytes are no avatar of this type, or undefined: they must be a whole PNG, JPEG or
 * WebP of the declared type (shared/picture.ts), at most FILE_LIMITS.maxAvatarSide pixels wide
 * and high.
 */
export function avatarPictureError(type: AvatarType, data: Buffer): HchatError | undefined {
  const why = pictureError(data, type, FILE_LIMITS.maxAvatarSide);
  return why === undefined
    ? undefined
    : new HchatError('E_BAD_REQUEST', `avatar (${type}): ${why}`);
}
