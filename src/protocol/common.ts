/**
 * Shapes shared by every link: names, ids, messages, channels. Each is a zod schema, and its
 * TypeScript type is derived from it, so a shape is written once.
 */
import { z } from 'zod';
import { FILE_LIMITS, NAT_LIMITS } from '../shared/limits.js';
import { USERNAME } from '../shared/mention-syntax.js';
import { base64urlBytes } from './base64url.js';

/** Protocol version spoken in hello frames; bumped on any incompatible change. */
export const PROTOCOL_VERSION = 4;
/** Longest message text, in Unicode code points (zod 4 counts string lengths so; PROTOCOL.md §2). */
export const MAX_TEXT = 4000;

// Printable characters only: no C0/C1 controls, no line or paragraph separators.
export const PRINTABLE = /^[^\p{Cc}\u2028\u2029]+$/u;

export const Username = z
  .string()
  .regex(USERNAME, 'username: 2-32 characters of A-Z a-z 0-9 _ . -');
/**
 * The mentions that name no user (PROTOCOL.md §2.2): `here` is every online member. No account
 * or visitor may take one of these names, or a look-alike (server/name-index.ts), and `hchat bot`
 * never turns a name it fills in into one (bot/rules.ts). Defined with the mention syntax.
 */
export { SPECIAL_MENTIONS } from '../shared/mention-syntax.js';
export const Password = z
  .string()
  .min(6, 'password: at least 6 characters')
  .max(256, 'password: at most 256 characters');
// What a visitor name may not contain: controls, format characters (bidi overrides such as
// U+202E, zero-width spaces and joiners), every default-ignorable code point, private-use,
// unassigned and lone surrogate code points, line/paragraph separators, any space but U+0020, the
// braille blank U+2800 (a symbol, but drawn as nothing: "bob\u2800" showed as "bob"), and the
// colon and `@` (`alice@10.0.0.5` read as alice at another address where links are named
// `user@ip:port`, and as a mention). Such characters make a name look like another or hide what it says; the server also
// refuses names that merely look like another (server/name-index.ts).
const NAME_FORBIDDEN =
  /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Cs}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\p{Bidi_Control}\u2800:@]|[^\S ]/u;

export const VisitorName = z
  .string()
  .trim()
  .min(1, 'name: 1-32 printable characters')
  .max(32, 'name: 1-32 printable characters')
  .refine(
    (s) => !NAME_FORBIDDEN.test(s),
    'name: printable characters only (no colon, no @, no invisible, bidi or format characters)',
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
  /** What the channel is about, as its owner set it (a `channel` item). */
  topic: z.string().max(256).optional(),
});

/** Raw Ed25519 public key, base64url. */
export const PublicKey = base64urlBytes(32, 'expected a raw Ed25519 public key, base64url');

/** What an item of a channel's log is (PROTOCOL.md §2.2); absent on the wire means `message`. */
export const ItemKind = z.enum(['message', 'edit', 'delete', 'react', 'unreact', 'channel']);
/** A reaction: one emoji (or short name), 1-32 printable characters without spaces. */
export const Emoji = z
  .string()
  .min(1, 'emoji: 1-32 characters')
  .max(32, 'emoji: 1-32 characters')
  .regex(/^[^\p{Cc}\p{Z}\u2028\u2029]+$/u, 'emoji: printable characters without spaces');
/** Who a message mentions: members' names in lower case, or `here` (every online member). */
export const Mentions = z
  .array(
    z.string().regex(/^(?:here|[a-z0-9_.-]{2,32})$/, 'mentions: user names in lower case, or here'),
  )
  .max(50, 'mentions: at most 50')
  .refine((a) => new Set(a).size === a.length, 'mentions: each name once');
export const Topic = z
  .string()
  .max(256, 'topic: at most 256 characters')
  .regex(/^[^\p{Cc}\u2028\u2029]*$/u, 'topic: printable characters only');
/** What a channel's owner changes (kind `channel`); at least one field. */
export const ChannelChange = z
  .object({
    name: ChannelName.optional(),
    topic: Topic.optional(),
    allowVisitors: z.boolean().optional(),
    /** A member removed: can no longer read, post or join. */
    remove: Username.optional(),
    /** The channel is deleted: every replica drops it. */
    deleted: z.literal(true).optional(),
  })
  .strict()
  .refine((c) => Object.values(c).some((v) => v !== undefined), 'change: names nothing');
/** SHA-256 of an item's body, base64url: what a tombstone keeps of the text it lost. */
export const Digest = base64urlBytes(32, 'expected a SHA-256 digest, base64url');

/** A MIME type, as `type/subtype` (parameters allowed, e.g. `text/plain; charset=utf-8`). */
export const MimeType = z
  .string()
  .max(255, 'type: at most 255 characters')
  .regex(
    // Both cases spelt out (no `i` flag): OpenAPI patterns carry no flags, and the documents
    // generated from this schema must accept what it accepts (`Text/Plain`).
    /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*(?:\s*;[ -~]*)?$/,
    'type: expected a MIME type',
  );

/** A small preview of an image: a data URL of a JPEG, PNG or WebP. */
export const Preview = z
  .string()
  .max(FILE_LIMITS.maxPreviewChars, `preview: at most ${FILE_LIMITS.maxPreviewChars} characters`)
  .regex(
    /^data:image\/(?:jpeg|png|webp);base64,[A-Za-z0-9+/]+=*$/,
    'preview: expected a data URL of a JPEG, PNG or WebP',
  );

const ImageSide = z.number().int().min(1).max(65535);

/** What a message says of a file: enough to show it before a byte of it is fetched. */
export const FileRef = z.object({
  id: Digest,
  name: z
    .string()
    .min(1, 'name: must not be empty')
    .max(FILE_LIMITS.maxNameChars, `name: at most ${FILE_LIMITS.maxNameChars} characters`)
    .regex(/^[^\p{Cc}/\\]+$/u, 'name: no control characters or slashes'),
  size: z
    .number()
    .int()
    .min(1)
    .max(2 ** 40),
  type: MimeType,
  image: z.object({ width: ImageSide, height: ImageSide, preview: Preview.optional() }).optional(),
});
export type FileRef = z.infer<typeof FileRef>;

/** A message's files: each once. */
export const FileRefs = z
  .array(FileRef)
  .min(1, 'files: at least one when given')
  .max(FILE_LIMITS.filesPerMessage, `files: at most ${FILE_LIMITS.filesPerMessage}`)
  .refine((a) => new Set(a.map((f) => f.id)).size === a.length, 'files: each file once');

/**
 * An item of a channel's log as its author made it (before any replica stores it), signed
 * (shared/signing.ts): a message, or a change to one (edit, delete, reaction) or to the channel.
 * A tombstone (a deleted message or edit) has no body (`text`, `replyTo`, `mentions`) but its
 * `digest`, so that its signature still verifies.
 */
export const ItemFields = z.object({
  id: Uuid,
  channelId: Uuid,
  ts: HlcTime.shape.ts,
  lc: HlcTime.shape.lc,
  kind: ItemKind.optional(),
  /** The message an edit, delete or reaction is about. */
  target: Uuid.optional(),
  text: MessageText.optional(),
  /** The message this one answers. */
  replyTo: Uuid.optional(),
  mentions: Mentions.optional(),
  emoji: Emoji.optional(),
  change: ChannelChange.optional(),
  /** The files a message carries (PROTOCOL.md §9). */
  files: FileRefs.optional(),
  digest: Digest.optional(),
  /** Ed25519 signature of the canonical bytes, base64url. */
  sig: base64urlBytes(64, 'expected an Ed25519 signature, base64url'),
  /** The server's certificate of the author's session key. */
  cert: z.string().min(1).max(1000),
});
/** Adds the per-kind rule (itemShapeError) to a schema of items. */
export function checkedItem<T extends z.ZodType<z.infer<typeof ItemFields>>>(schema: T): T {
  return schema.superRefine((m, ctx) => {
    const why = itemShapeError(m);
    if (why) ctx.addIssue({ code: 'custom', message: why });
  }) as unknown as T;
}
export const NewMessage = checkedItem(ItemFields);

/** Which fields each kind carries (besides the header); the rest must be absent. */
const KIND_FIELDS: Record<z.infer<typeof ItemKind>, readonly string[]> = {
  message: ['text', 'replyTo', 'mentions', 'files'],
  edit: ['target', 'text', 'mentions'],
  delete: ['target'],
  react: ['target', 'emoji'],
  unreact: ['target', 'emoji'],
  channel: ['change'],
};
const BODY_FIELDS = ['text', 'replyTo', 'mentions', 'emoji', 'change', 'files'] as const;

/** Why an item's fields do not fit its kind, or undefined. */
export function itemShapeError(m: {
  kind?: z.infer<typeof ItemKind>;
  digest?: string;
  [k: string]: unknown;
}): string | undefined {
  const kind = m.kind ?? 'message';
  const allowed = KIND_FIELDS[kind];
  for (const f of ['target', ...BODY_FIELDS]) {
    if (m[f] !== undefined && !allowed.includes(f)) return `${f}: not part of a ${kind}`;
  }
  if (allowed.includes('target') && m.target === undefined) return `target: a ${kind} needs one`;
  if (m.digest !== undefined) {
    // A tombstone: only messages and edits are erased, and nothing of the body remains.
    if (kind !== 'message' && kind !== 'edit') return `digest: a ${kind} is never erased`;
    if (BODY_FIELDS.some((f) => m[f] !== undefined)) return 'digest: a tombstone has no body';
    return undefined;
  }
  if (kind === 'message' && m.text === undefined && m.files === undefined)
    return 'text: a message needs text or files';
  if (kind === 'edit' && m.text === undefined) return 'text: an edit needs text';
  if ((kind === 'react' || kind === 'unreact') && m.emoji === undefined)
    return `emoji: a ${kind} needs one`;
  if (kind === 'channel' && m.change === undefined) return 'change: a channel item needs one';
  return undefined;
}

/** A stored message, with the author the server vouched for and its sequence in the channel. */
export const StoredMessage = checkedItem(
  ItemFields.extend({ author: Username, seq: z.number().int().min(1) }),
);

/** The delete that erased a tombstone being posted (`post`'s `deletedBy`), with its author. */
export const DeletedBy = checkedItem(ItemFields.extend({ author: Username })).refine(
  (m) => m.kind === 'delete',
  'deletedBy: expected an item of kind delete',
);

/** A live stream a peer announces in its tracker entry (SPEC §8): where to ask to watch it. */
export const LiveStream = z.object({ streamId: Uuid, channelId: Uuid });

/**
 * One address where a peer may be reached (docs/PROTOCOL.md §3.8), in the manner of ICE
 * (RFC 8445): `host` is an address of the peer's own machine, `srflx` (server-reflexive) the
 * public address the server saw its traffic come from, `base` then being the local port that
 * traffic left from (equal to `port` when the NAT kept the port).
 */
export const Candidate = z.object({
  type: z.enum(['host', 'srflx']),
  proto: z.enum(['tcp', 'udp']),
  ip: Ip,
  port: Port,
  base: Port.optional(),
});

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
  /** Where else it may be reached (§3.8); absent from entries of peers that do not announce any. */
  candidates: z.array(Candidate).max(NAT_LIMITS.candidatesPerEntry).optional(),
});

export type Username = z.infer<typeof Username>;
export type Role = z.infer<typeof Role>;
export type Status = z.infer<typeof Status>;
export type Channel = z.infer<typeof Channel>;
export type NewMessage = z.infer<typeof NewMessage>;
export type ItemKind = z.infer<typeof ItemKind>;
export type ChannelChange = z.infer<typeof ChannelChange>;
export type StoredMessage = z.infer<typeof StoredMessage>;
export type TrackerEntry = z.infer<typeof TrackerEntry>;
export type Candidate = z.infer<typeof Candidate>;

/** The key that makes a tracker entry unique: (ip and port, user name, session id). */
export function entryKey(e: Pick<TrackerEntry, 'ip' | 'port' | 'username' | 'sessionId'>): string {
  return `${e.ip}:${e.port}|${e.username}|${e.sessionId}`;
}
