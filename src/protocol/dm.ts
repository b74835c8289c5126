/**
 * Direct messages (issue 15; docs/PROTOCOL.md §10): end-to-end encrypted conversations of 2 to
 * 10 users. Every device (one peer's copy of one account) has an Ed25519 identity key and
 * publishes X3DH prekeys at the server (`dm_publish`); a sender encrypts each message once per
 * recipient device, and once per other device of its own user, with a Double Ratchet session
 * (src/e2e/). The ciphertext goes straight to the device over P2P (`dm_deliver`) when it is
 * online, else to its mailbox at the server (`dm_send`), which the device empties
 * (`dm_fetch`, `dm_ack`). The server sees who sends to which device, when, and how many bytes;
 * never the contents, the conversation or its other members.
 */
import { z } from 'zod';
import { base64urlBytes } from './base64url.js';
import { Emoji, MessageText, Mentions, TrackerEntry, Username, Uuid } from './common.js';
import { op, WireError } from './rpc.js';
import { DM_LIMITS } from '../shared/limits.js';

const b64u = (bytes: number, what: string) =>
  base64urlBytes(bytes, `expected ${what} (${bytes} bytes, base64url)`);

/** A device's id: 16 random bytes, base64url, chosen by the device. */
export const DeviceId = b64u(16, 'a device id');
/** A device's identity key: raw Ed25519 public key (its X25519 form is derived, §10.2). */
export const IdentityKey = b64u(32, 'an Ed25519 identity key');
/** A raw X25519 public key. */
export const DhKey = b64u(32, 'an X25519 public key');
export const Signature = b64u(64, 'an Ed25519 signature');
export const PrekeyId = z.number().int().min(0).max(0xffffffff);

/** The signed prekey: its id, X25519 public key, and the identity key's signature of it. */
export const SignedPrekey = z.object({ id: PrekeyId, key: DhKey, sig: Signature });
export const OneTimePrekey = z.object({ id: PrekeyId, key: DhKey });

/** A device as others see it. */
export const Device = z.object({ deviceId: DeviceId, identityKey: IdentityKey });
export type Device = z.infer<typeof Device>;

/** One device of one user: the address of an envelope. */
export const DeviceAddress = z.object({ username: Username, deviceId: DeviceId });
export type DeviceAddress = z.infer<typeof DeviceAddress>;

/** What a sender needs to start a session with a device (X3DH). */
export const PrekeyBundle = Device.extend({
  username: Username,
  signedPrekey: SignedPrekey,
  /** Absent when the device has none left: X3DH then runs without it. */
  oneTimePrekey: OneTimePrekey.optional(),
});
export type PrekeyBundle = z.infer<typeof PrekeyBundle>;

/**
 * The encrypted body of an envelope (§10.3): a Double Ratchet message, preceded on a session's
 * first messages by what the recipient needs to run X3DH (`prekey`).
 */
export const DmCipher = z.object({
  v: z.literal(1),
  prekey: z
    .object({
      /** The sender device's identity key. */
      ik: IdentityKey,
      /** The sender's ephemeral X25519 key. */
      ek: DhKey,
      /** Which of the recipient's prekeys were used. */
      spk: PrekeyId,
      opk: PrekeyId.optional(),
    })
    .optional(),
  /** The ratchet header: the sender's current ratchet key, previous chain length, message number. */
  dh: DhKey,
  pn: z.number().int().min(0).max(0xffffffff),
  n: z.number().int().min(0).max(0xffffffff),
  /** XChaCha20-Poly1305 ciphertext and tag, base64url. */
  ct: z
    .string()
    .min(22)
    .max(DM_LIMITS.maxCipherChars, `ct: at most ${DM_LIMITS.maxCipherChars} characters`)
    .regex(/^[A-Za-z0-9_-]+$/, 'ct: base64url'),
});
export type DmCipher = z.infer<typeof DmCipher>;

/** An envelope as a sender hands it over: one message for one device. */
export const OutEnvelope = z.object({
  /** Unique per envelope (not per message): retries carry the same id, so nothing doubles. */
  id: Uuid,
  to: DeviceAddress,
  body: DmCipher,
});
export type OutEnvelope = z.infer<typeof OutEnvelope>;

/** An envelope as a device receives it from its mailbox. */
export const MailEnvelope = z.object({
  /** The mailbox's number, for `dm_ack`. */
  seq: z.number().int().min(1),
  id: Uuid,
  /** Stamped by the server from the sending session: who sent it, from which device. */
  from: DeviceAddress,
  /** When the server took it (ms). */
  ts: z.number().int().min(0),
  body: DmCipher,
});
export type MailEnvelope = z.infer<typeof MailEnvelope>;

/** One envelope's outcome. Refusals name the envelope; the others of the batch go on. */
export const EnvelopeResult = z.union([
  z.object({ id: Uuid, ok: z.literal(true) }),
  z.object({ id: z.string(), error: WireError }),
]);

/** A conversation id: for two users it is derived from their names (§10.4), else random. */
export const ConversationId = Uuid;

/** What every payload names (§10.4): its conversation, the members, its own id and time. */
const PayloadHeader = z.object({
  conversation: ConversationId,
  /** Every member, the sender included, sorted, each once: fixed for the conversation's life. */
  members: z
    .array(Username)
    .min(2)
    .max(DM_LIMITS.maxMembers)
    .refine((a) => a.every((u, i) => i === 0 || a[i - 1]! < u), 'members: sorted, each once'),
  /** The payload's id: the same in every device's envelope. */
  id: Uuid,
  /** Sender's clock, ms. */
  ts: z
    .number()
    .int()
    .min(0)
    .max(2 ** 48 - 1),
});

/** A message of a conversation named whole: its id and its author (a message is its author's). */
export const DmMessageRef = z.object({ id: Uuid, author: Username });

/** A member's reaction to a message of the conversation: `target` by `targetAuthor`. */
const Reaction = { target: Uuid, targetAuthor: Username, emoji: Emoji };

/**
 * What the ciphertext holds (§10.4), in JSON: a message of a conversation (perhaps a reply to
 * another, `replyTo`), its author's edit or deletion of one of their own (`target`, the
 * message's id), or a member's reaction to any message (added or taken back).
 */
export const DmPayload = z.discriminatedUnion('t', [
  PayloadHeader.extend({
    t: z.literal('msg'),
    text: MessageText,
    mentions: Mentions.optional(),
    replyTo: DmMessageRef.optional(),
  }),
  PayloadHeader.extend({
    t: z.literal('edit'),
    target: Uuid,
    text: MessageText,
    mentions: Mentions.optional(),
  }),
  PayloadHeader.extend({ t: z.literal('delete'), target: Uuid }),
  PayloadHeader.extend({ t: z.literal('react'), ...Reaction }),
  PayloadHeader.extend({ t: z.literal('unreact'), ...Reaction }),
]);
export type DmPayload = z.infer<typeof DmPayload>;

/** A device of a user, and where it is now if its user lets the asker see it (§10.1). */
const ListedDevice = Device.extend({ entry: TrackerEntry.optional() });

/** Who a user blocks (`dm_block`, `dm_blocks`, and the `dm_blocks` event). */
export const BlockList = z.object({ blocked: z.array(Username) });

/** Operations at the server: users only (visitors have no DMs). */
export const DM_OPS = {
  /**
   * Publishes (or refreshes) this session's device: its identity key, current signed prekey and
   * fresh one-time prekeys, and binds the session to it. A device's identity key never changes.
   */
  dm_publish: op(
    'user',
    Device.extend({
      signedPrekey: SignedPrekey,
      oneTimePrekeys: z.array(OneTimePrekey).max(DM_LIMITS.maxPrekeysPerPublish).default([]),
    }),
    /** How many one-time prekeys the server now holds for this device. */
    z.object({ oneTimePrekeys: z.number().int() }),
  ),
  /**
   * The devices of these users (the session's own user included, if asked). `check`: only to
   * check a sender's keys — it records no lookup and gives no `entry`.
   */
  dm_devices: op(
    'user',
    z.object({
      usernames: z.array(Username).min(1).max(DM_LIMITS.maxMembers),
      check: z.boolean().default(false),
    }),
    z.object({
      users: z.array(z.object({ username: Username, devices: z.array(ListedDevice) })),
    }),
  ),
  /** Prekey bundles of these devices; each hands out (and deletes) one one-time prekey. */
  dm_bundles: op(
    'user',
    z.object({ devices: z.array(DeviceAddress).min(1).max(DM_LIMITS.maxDevicesPerAsk) }),
    z.object({ bundles: z.array(PrekeyBundle) }),
  ),
  /** Leaves envelopes in their devices' mailboxes (from this session's device). */
  dm_send: op(
    'user',
    z.object({ envelopes: z.array(OutEnvelope).min(1).max(DM_LIMITS.maxBatch) }),
    z.object({ results: z.array(EnvelopeResult) }),
  ),
  /** This session's device's mailbox, oldest first, after `after`; cut to the frame limit. */
  dm_fetch: op(
    'user',
    z.object({ after: z.number().int().min(0).default(0) }),
    z.object({ envelopes: z.array(MailEnvelope), more: z.boolean() }),
  ),
  /** Drops this device's envelopes up to `upTo` (they are stored on the device). */
  dm_ack: op('user', z.object({ upTo: z.number().int().min(0) }), z.object({})),
  /** Blocks (or unblocks) a user: nothing of theirs reaches this user's devices. */
  dm_block: op('user', z.object({ username: Username, blocked: z.boolean() }), BlockList),
  /** The users this session's user blocks. */
  dm_blocks: op('user', z.object({}), BlockList),
} as const;

/**
 * Server → device: an envelope arrived in this session's device's mailbox (`dm`); the session's
 * user blocks someone else now, from any of its devices (`dm_blocks`, the whole list).
 */
export const DM_EVENTS = { dm: MailEnvelope, dm_blocks: BlockList } as const;

/** The P2P operation: a sender's device hands envelopes to the recipient device directly. */
export const P2P_DM_OPS = {
  /** `from` is the link's proven user; `fromDevice` names which of its devices sent them. */
  dm_deliver: op(
    'user',
    z.object({
      fromDevice: DeviceId,
      envelopes: z
        .array(z.object({ id: Uuid, to: DeviceId, body: DmCipher }))
        .min(1)
        .max(DM_LIMITS.maxBatch),
    }),
    z.object({ results: z.array(EnvelopeResult) }),
  ),
} as const;
