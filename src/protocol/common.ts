/**
 * Shapes shared by every link: names, ids, messages, channels. Each is a zod schema, and its
 * TypeScript type is derived from it, so a shape is written once.
 */
import { z } from 'zod';

/** Protocol version spoken in hello frames; bumped on any incompatible change. */
export const PROTOCOL_VERSION = 3;
/** Longest message text, in Unicode code points (zod 4 counts string lengths so; PROTOCOL.md §2). */
export const MAX_TEXT = 4000;

// Printable characters only: no C0/C1 controls, no line or paragraph separators.
const PRINTABLE = /^[^\p{Cc}\u2028\u2029]+$/u;

export const Username = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{2,32}$/, 'username: 2-32 characters of A-Z a-z 0-9 _ . -');
export const Password = z
  .string()
  .min(6, 'password: at least 6 characters')
  .max(256, 'password: at most 256 characters');
// What a visitor name may not contain: controls, format characters (bidi overrides such as
// U+202E, zero-width spaces and joiners), every default-ignorable code point, private-use,
// unassigned and lone surrogate code points, line/paragraph separators, any space but U+0020, and
// the colon. Such characters make a name look like another or hide what it says; the server also
// refuses names that merely look like another (server/name-index.ts).
const NAME_FORBIDDEN =
  /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Cs}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\p{Bidi_Control}:]|[^\S ]/u;

export const VisitorName = z
  .string()
  .trim()
  .min(1, 'name: 1-32 printable characters')
  .max(32, 'name: 1-32 printable characters')
  .refine(
    (s) => !NAME_FORBIDDEN.test(s),
    'name: printable characters only (no colon, no invisible, bidi or format characters)',
  );
export const ChannelName = z
  .string()
  .trim()
  .min(1, 'channel name: 1-64 printable characters')
  .max(64, 'channel name: 1-64 printable characters')
  .regex(PRINTABLE, 'channel name: printable characters only');
/** Ids made by their author: UUIDs, lower case (UUIDv7 in practice: time-ordered). */
export const Uuid = z
  .string()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'expected a UUID');
export const SessionId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'expected a session id');
export const Role = z.enum(['user', 'visitor']);
export const Status = z.enum(['online', 'invisible', 'offline']);
export const MessageText = z
  .string()
  .min(1, 'text: must not be empty')
  .max(MAX_TEXT, `text: at most ${MAX_TEXT} characters`)
  .refine((s) => s.trim().length > 0, 'text: must not be blank');
/** Hybrid logical clock reading: physical milliseconds and a logical counter. */
export const HlcTime = z.object({
  /** Milliseconds since the epoch; 48 bits, as message ids carry it (shared/message-id.ts). */
  ts: z
    .number()
    .int()
    .min(0)
    .max(2 ** 48 - 1),
  lc: z.number().int().min(0).max(0xffff),
});
export const Port = z.number().int().min(1).max(65535);
export const Ip = z.union([z.ipv4(), z.ipv6()]);

/** A channel as every side describes it. */
export const Channel = z.object({
  id: Uuid,
  name: ChannelName,
  owner: Username,
  allowVisitors: z.boolean(),
  createdAt: z.number().int(),
});

/** Raw Ed25519 public key, base64url. */
export const PublicKey = z
  .string()
  .regex(/^[A-Za-z0-9_-]{43}$/, 'expected a raw Ed25519 public key, base64url');

/** A message as the author made it (before any replica stores it), signed (shared/signing.ts). */
export const NewMessage = z.object({
  id: Uuid,
  channelId: Uuid,
  ts: HlcTime.shape.ts,
  lc: HlcTime.shape.lc,
  text: MessageText,
  /** Ed25519 signature of the canonical bytes, base64url. */
  sig: z.string().regex(/^[A-Za-z0-9_-]{86}$/, 'expected an Ed25519 signature, base64url'),
  /** The server's certificate of the author's session key. */
  cert: z.string().min(1).max(1000),
});

/** A stored message, with the author the server vouched for and its sequence in the channel. */
export const StoredMessage = NewMessage.extend({
  author: Username,
  seq: z.number().int().min(1),
});

/** A live stream a peer announces in its tracker entry (SPEC §8): where to ask to watch it. */
export const LiveStream = z.object({ streamId: Uuid, channelId: Uuid });

/** One tracker entry: a logged-in peer session and where to reach it. */
export const TrackerEntry = z.object({
  username: z.string(),
  role: Role,
  ip: Ip,
  port: Port,
  udpPort: Port,
  sessionId: SessionId,
  status: z.enum(['online', 'invisible']),
  /** Channels this peer hosts (their primary copy lives here). */
  hosts: z.array(Uuid).max(1000),
  /** Streams this peer has live, in channels its user belongs to. */
  live: z.array(LiveStream).max(16).default([]),
});

export type Username = z.infer<typeof Username>;
export type Role = z.infer<typeof Role>;
export type Status = z.infer<typeof Status>;
export type Channel = z.infer<typeof Channel>;
export type NewMessage = z.infer<typeof NewMessage>;
export type StoredMessage = z.infer<typeof StoredMessage>;
export type TrackerEntry = z.infer<typeof TrackerEntry>;

/** The key that makes a tracker entry unique: (ip and port, user name, session id). */
export function entryKey(e: Pick<TrackerEntry, 'ip' | 'port' | 'username' | 'sessionId'>): string {
  return `${e.ip}:${e.port}|${e.username}|${e.sessionId}`;
}
