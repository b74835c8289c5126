/**
 * What the local API answers (README "Local API"), as zod schemas: each route declares them
 * (api-doc.ts makes the OpenAPI document of them), the code builds its answers to their types,
 * and the web UI's types are generated from that document (web/src/local-api-types.ts).
 */
import { z } from 'zod';
import {
  Channel as WireChannel,
  FileRef,
  Role,
  SessionId,
  Status,
  TrackerEntry,
  Username,
  Uuid,
} from '../protocol/common.js';
import { AvatarInfo } from '../protocol/avatars.js';
import { BotInfo, TOKEN_OPS, TokenInfo } from '../protocol/token-ops.js';
import { named } from './api-doc.js';

/** The signed-in user, and this peer's link to the server. */
export const Me = named(
  'Me',
  z.object({
    username: z.string(),
    role: Role,
    status: Status,
    sessionId: SessionId,
    connection: z.enum(['connected', 'connecting', 'offline']),
    /** Messages of this user still in the outbox. */
    pending: z.number().int(),
    /** Set while the central server shows a TLS key this peer does not trust (README). */
    serverKeyError: z.string().optional(),
  }),
);
export type Me = z.infer<typeof Me>;

export const Session = z.object({
  me: Me.nullable(),
  /**
   * Nobody is logged in because the server ended the last session: its error code and why
   * (`session ended: a newer login of this account retired it …`). Gone once a session starts.
   */
  ended: z.object({ code: z.string(), message: z.string() }).optional(),
});
export const Registered = z.object({ username: Username });
export const SignedIn = named(
  'SignedIn',
  z.object({ username: z.string(), role: Role, sessionId: SessionId }),
);
export const StatusAnswer = z.object({ status: Status });

/** A logged-in session as the tracker lists it. */
export const Peer = named('Peer', TrackerEntry.omit({ live: true }));

/** A channel of the server's directory, and whether this user joined it. */
export const DirectoryChannel = named(
  'DirectoryChannel',
  WireChannel.extend({ joined: z.boolean() }),
);

/** A channel as the local API shows it. */
export const ApiChannel = named(
  'Channel',
  WireChannel.extend({
    hosted: z.boolean(),
    unread: z.number().int(),
    /** Unread messages that mention this user. */
    mentions: z.number().int(),
  }),
);
export type ApiChannel = z.infer<typeof ApiChannel>;

/**
 * A member's presence as this session may know it: `unknown` where it may not (a visitor is told
 * the presence of a channel's host and streamers only, docs/SECURITY.md "The tracker").
 */
export const MemberStatus = z.enum(['online', 'offline', 'unknown']);
export type MemberStatus = z.infer<typeof MemberStatus>;

/** A member of a channel and its presence as this session may know it. */
export const Member = named('Member', z.object({ username: Username, status: MemberStatus }));
export type Member = z.infer<typeof Member>;

/** A file as the local API shows it: the message's reference and what this peer holds of it. */
export const ApiFile = named(
  'File',
  FileRef.extend({
    channelId: Uuid,
    /** GET it for the bytes (fetched from peers or the server first when not held here). */
    url: z.string(),
    state: z.enum(['complete', 'partial', 'missing']),
    /** Bytes held here. */
    have: z.number().int(),
  }),
);
export type ApiFile = z.infer<typeof ApiFile>;

/** A file whose manifest has not come yet: nothing of it is here. */
export const MissingFile = named(
  'MissingFile',
  z.object({
    id: z.string(),
    channelId: Uuid,
    url: z.string(),
    state: z.literal('missing'),
    have: z.literal(0),
  }),
);
export const FileStatus = z.union([ApiFile, MissingFile]);
export type FileStatus = z.infer<typeof FileStatus>;

/** A reaction on a message: who reacted with this emoji, and whether the viewer did. */
export const ApiReaction = named(
  'Reaction',
  z.object({
    emoji: z.string(),
    count: z.number().int(),
    users: z.array(z.string()),
    me: z.boolean(),
  }),
);
export type ApiReaction = z.infer<typeof ApiReaction>;

/** Where an item stands: in the outbox, taken by a replica, or refused for good (`error`). */
export const MessageState = z.enum(['pending', 'delivered', 'failed']);

/** A message as the local API shows it: its current state after edits, deletes and reactions. */
export const ApiMessage = named(
  'Message',
  z.object({
    id: z.string(),
    channelId: Uuid,
    author: z.string(),
    ts: z.number().int(),
    lc: z.number().int(),
    /** The text shown: the newest edit's ('' once deleted). */
    text: z.string(),
    state: MessageState,
    error: z.string().optional(),
    /** The message this one answers, with a preview when this peer holds it. */
    replyTo: z
      .object({
        id: z.string(),
        author: z.string().optional(),
        text: z.string().optional(),
        deleted: z.boolean().optional(),
      })
      .optional(),
    /** Users mentioned (lower case), or `here`. */
    mentions: z.array(z.string()).optional(),
    /** True when it mentions the viewer (by name, or `here`). */
    mentionsMe: z.boolean().optional(),
    /** When it was last edited. */
    editedAt: z.number().int().optional(),
    /** Set once deleted (by its author or the channel's owner); the text is gone. */
    deleted: z.literal(true).optional(),
    reactions: z.array(ApiReaction),
    /** Its files (absent when none, and once deleted). */
    files: z.array(ApiFile).optional(),
    /** Its author is a bot: its key certificate says so (PROTOCOL.md §2.1; absent for a person). */
    bot: z.literal(true).optional(),
  }),
);
export type ApiMessage = z.infer<typeof ApiMessage>;

/** Where a page came from: the channel's host, the server, or this peer's own copy. */
export const PageSource = z.enum(['host', 'server', 'local']);

/**
 * How the link to a channel's host was made (docs/PROTOCOL.md §3.9, §3.10): dialled, through a
 * hole punched in both NATs, or through the server's relay.
 */
export const LinkVia = z.enum(['direct', 'punched', 'relay']);
export type LinkVia = z.infer<typeof LinkVia>;

/**
 * The user's messages not delivered (pending, failed), oldest first, in every channel: also those
 * of channels the user no longer reads (left, removed, deleted), which show nowhere else.
 */
export const Outbox = named('Outbox', z.object({ messages: z.array(ApiMessage) }));

/** A page of a channel's messages, oldest first. */
export const Page = named(
  'Page',
  z.object({
    messages: z.array(ApiMessage),
    source: PageSource,
    /** With `source: host` when another peer hosts it: how this peer's link to it was made. */
    link: LinkVia.optional(),
    hasMore: z.boolean(),
    /** Only on a page `around` a message: newer messages exist after it. */
    hasNewer: z.boolean().optional(),
  }),
);
export type Page = z.infer<typeof Page>;

/** An item just written (a message, an edit, a delete, a reaction, a channel change). */
export const Written = named('Written', z.object({ id: z.string(), state: MessageState }));
export type Written = z.infer<typeof Written>;

/** A piece of a search result's snippet: `match` for a word found. */
export const SnippetPart = z.object({ text: z.string(), match: z.boolean() });

export const ApiSearchResult = named(
  'SearchResult',
  z.object({
    channelId: Uuid,
    /** The channel's name ('' when this peer does not know the channel). */
    channelName: z.string(),
    message: ApiMessage,
    /** The shown text around the first match, cut where the query's words are. */
    snippet: z.array(SnippetPart),
  }),
);
export type ApiSearchResult = z.infer<typeof ApiSearchResult>;

/** The answer of `GET /api/search`. */
export const ApiSearch = named(
  'SearchAnswer',
  z.object({
    results: z.array(ApiSearchResult),
    /** Where the results came from. */
    source: z.enum(['local', 'server', 'both']),
    /** True when older matches remain (ask again with the last result's id as `before`). */
    hasMore: z.boolean(),
  }),
);
export type ApiSearch = z.infer<typeof ApiSearch>;

/** What is known of a user's avatar: its hash and when it was set. */
export const Avatar = named('Avatar', AvatarInfo);

/** A direct-message conversation as the local API shows it (README "Direct messages"). */
export const ApiDm = named(
  'Dm',
  z.object({
    id: z.string(),
    /** Every member, the own user included, sorted. */
    members: z.array(z.string()),
    /** The other members' names, comma-separated. */
    title: z.string(),
    /** Messages from others after the last read. */
    unread: z.number().int(),
    /** Of those, how many mention the own user. */
    mentions: z.number().int(),
    /** When the newest message was written (ms), or null. */
    lastTs: z.number().int().nullable(),
    last: z.object({ author: z.string(), text: z.string(), ts: z.number().int() }).optional(),
    /** Every other member's keys are marked verified, and unchanged since. */
    verified: z.boolean(),
    /** Some other member's safety number changed and was not verified again. */
    keyChanged: z.boolean(),
  }),
);
export type ApiDm = z.infer<typeof ApiDm>;

/** Own messages: pending until every device got it; others': delivered. */
export const DmState = z.enum(['pending', 'delivered']);

/** A message, or a notice, of a conversation. */
export const ApiDmMessage = named(
  'DmMessage',
  z.object({
    id: z.string(),
    kind: z.enum(['message', 'notice']),
    /** For a notice: the user it concerns. */
    author: z.string(),
    ts: z.number().int(),
    text: z.string(),
    state: DmState,
    mentions: z.array(z.string()),
    mentioned: z.boolean(),
    /** Where it came from: P2P from the sender's device, the server's mailbox, or written here. */
    source: z.enum(['peer', 'server', 'local']),
    /** The members' reactions (none once deleted), as a channel message's. */
    reactions: z.array(ApiReaction),
    /** The message this one answers, with a preview when this device holds it. */
    replyTo: z
      .object({
        id: z.string(),
        author: z.string(),
        text: z.string().optional(),
        deleted: z.literal(true).optional(),
      })
      .optional(),
    /** When its author last edited it (that edit's time, ms); `text` is the edited text. */
    edited: z.number().int().optional(),
    /** Its author deleted it: `text` is empty, and nothing of it is kept. */
    deleted: z.literal(true).optional(),
  }),
);
export type ApiDmMessage = z.infer<typeof ApiDmMessage>;

export const DmPage = z.object({ messages: z.array(ApiDmMessage) });
export const DmWritten = z.object({ id: z.string(), state: DmState });

/** The safety numbers of a conversation's other members. */
export const ApiSafety = named(
  'Safety',
  z.object({
    members: z.array(
      z.object({
        username: z.string(),
        /** 60 digits in 12 groups of 5. */
        safetyNumber: z.string(),
        verified: z.boolean(),
        changed: z.boolean(),
        devices: z.number().int(),
      }),
    ),
  }),
);
export type ApiSafety = z.infer<typeof ApiSafety>;

export const Blocks = z.object({ blocked: z.array(z.string()) });

/** Bots and REST API tokens: the server's own shapes (protocol/token-ops.ts). */
export const Bot = named('Bot', BotInfo);
export const Token = named('Token', TokenInfo);
export const NewToken = named('NewToken', TOKEN_OPS.token_create.req);
export const MadeToken = named(
  'MadeToken',
  TOKEN_OPS.token_create.res,
  'A token just made: its record and, this once, its secret',
);
export const Bots = z.object({ bots: z.array(Bot) });
export const Tokens = z.object({ tokens: z.array(Token) });
