/**
 * Avatars (issue 14 item 5; docs/PROTOCOL.md §9.5): a user's small square picture, signed by the
 * user (shared/avatar-sig.ts) so that every peer can check it whoever served it. The server
 * keeps each user's newest one and tells co-members when it changes (`avatar`); peers cache them
 * by hash.
 */
import { z } from 'zod';
import { base64Bytes } from './base64.js';
import { base64urlBytes } from './base64url.js';
import { Digest, Username } from './common.js';
import { op } from './rpc.js';
import { FILE_LIMITS } from '../shared/limits.js';

/** The picture types an avatar may have (shown inline by every browser, no script). */
export const AvatarType = z.enum(['image/png', 'image/jpeg', 'image/webp']);
export type AvatarType = z.infer<typeof AvatarType>;

/**
 * A signed avatar: the picture (canonical base64, at least one byte), its type, when it was set,
 * and its user's signature. That the bytes are a whole picture of that type is checked with the
 * signature (shared/avatar-sig.ts `avatarError`).
 */
export const AvatarRecord = z.object({
  username: Username,
  type: AvatarType,
  data: base64Bytes(FILE_LIMITS.maxAvatarBytes),
  ts: z
    .number()
    .int()
    .min(0)
    .max(2 ** 48 - 1),
  /** Ed25519 signature of the canonical bytes (shared/avatar-sig.ts), base64url. */
  sig: base64urlBytes(64, 'expected an Ed25519 signature, base64url'),
  /** The server's certificate of the signing session's key. */
  cert: z.string().min(1).max(1000),
});
export type AvatarRecord = z.infer<typeof AvatarRecord>;

/** What is known of a user's avatar without its bytes. */
export const AvatarInfo = z.object({ username: Username, hash: Digest, ts: z.number().int() });
export type AvatarInfo = z.infer<typeof AvatarInfo>;

export const AVATAR_OPS = {
  /** Sets the session's user's avatar (a newer `ts` than the one held). */
  avatar_set: op('user', z.object({ avatar: AvatarRecord }), AvatarInfo),
  /** The avatars held of these users (those without one are left out). */
  avatars: op(
    'session',
    z.object({ usernames: z.array(Username).min(1).max(100) }),
    z.object({ avatars: z.array(AvatarInfo) }),
  ),
  /** One user's avatar, whole. */
  avatar_get: op('session', z.object({ username: Username }), z.object({ avatar: AvatarRecord })),
} as const;

/** Pushed to the users who share a channel with one whose avatar changed. */
export const AVATAR_EVENTS = { avatar: AvatarInfo } as const;
