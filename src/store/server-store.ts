/**
 * The central server's storage: accounts, sessions, channels, memberships and messages.
 * `ServerStore` is the seam both stores plug into: `SqliteServerStore` (embedded, one process,
 * sqlite-server-store.ts) and `PostgresServerStore` (several server instances, pg/). Every
 * method is asynchronous, so that a store across the network fits; the SQLite one answers at
 * once from its synchronous driver. Both behave alike, which test/store-conformance.test.ts
 * checks by running one suite against each.
 */
import { HchatError } from '../protocol/errors.js';
import type { Channel, NewMessage, Role, StoredMessage } from '../protocol/common.js';
import type {
  LimitSweep,
  LoginBackoff,
  LoginBudget,
  LoginCharge,
  RegistrationTicket,
} from './limit-rows.js';

export type { LimitSweep, LoginBackoff, LoginBudget, LoginCharge, RegistrationTicket };

/** A registered account. */
export interface UserRecord {
  username: string;
  passHash: string;
}

/** A login session (user or visitor). */
export interface SessionRecord {
  sessionId: string;
  username: string;
  role: Role;
  createdAt: number;
  revoked: boolean;
  /** When it was revoked (ms since the epoch), if it was. */
  revokedAt?: number;
  /** The session's message key (raw Ed25519, base64url), certified at login and each resume. */
  publicKey: string;
}

/** A message to insert, with the author the server authenticated. */
export interface MessageInsert {
  message: NewMessage;
  author: string;
  /**
   * The session that posted it, if it came as its `post`: the batch refuses the item
   * (E_SESSION_INVALID) when the store has that session revoked, whichever instance revoked it.
   */
  session?: string;
  /**
   * For a `channel` item that removes a member: the accounts that leave the channel with it (the
   * member's bots, PROTOCOL.md §2.2), taken out of its members in the same transaction, so that
   * no crash can store the removal and leave them members.
   */
  leavers?: readonly string[];
}

/** The refusal of an item whose posting session is revoked in the store. */
export function revokedPoster(): HchatError {
  return new HchatError('E_SESSION_INVALID', 'the session that posted it is logged out');
}

/** The outcome of inserting one message: its place in the channel, or that it was there. */
export interface InsertResult {
  seq: number;
  duplicate: boolean;
  stored: StoredMessage;
}

/** A page of `history`, oldest first, and what names its messages. */
export interface HistoryPage {
  messages: StoredMessage[];
  /** Older messages remain. */
  hasMore: boolean;
  /** The items naming `messages` (edits, deletes, reactions), message by message, HLC order. */
  related: StoredMessage[];
}

/**
 * An account's channel caps (docs/SECURITY.md), counted by the store in the same transaction as
 * the row it adds, under a lock of the account, so that instances adding at once never pass them.
 */
export interface ChannelCaps {
  /** Channels it may own. */
  owned: number;
  /** Channels it may be a member of (owned ones included). */
  memberships: number;
}

/** The refusal past a channel cap, alike from every store. */
export function channelCapError(what: 'own' | 'join', cap: number): HchatError {
  return new HchatError('E_FORBIDDEN', `an account may ${what} at most ${cap} channels`);
}

/**
 * The refusal of a channel under a deleted channel's id, alike from every store: an item's
 * signature covers its channel's id alone, so a channel made under that id would take and show
 * what was signed for the deleted one (PROTOCOL.md §2.2).
 */
export function deletedChannelIdError(): HchatError {
  return new HchatError(
    'E_CHANNEL_EXISTS',
    'that id belonged to a channel that was deleted: a channel id is never used again',
  );
}

/** The refusal of a name that looks like an account's (its look-alike key is taken). */
export function lookAlikeTaken(): HchatError {
  return new HchatError('E_USERNAME_TAKEN', 'that username looks like one that is taken');
}

/** A page of `directory`: channels after a (createdAt, id) cursor. */
export interface ChannelPage {
  after?: { createdAt: number; id: string };
  limit: number;
  visitorsOnly: boolean;
  /**
   * Accounts whose removal from a channel by its owner leaves it out (any case): the reader,
   * and a bot's owner (PROTOCOL.md §2.2: neither may join it again).
   */
  removedOf?: readonly string[];
}

/**
 * A visitor's hold on its name, deployment-wide (PROTOCOL.md §3.3 `visitor`): the look-alike keys
 * of the name (shared/look-alike.ts), held for one session by the instance it is on, until
 * `expiresAt` unless that instance renews it.
 */
export interface VisitorNameLease {
  keys: readonly string[];
  sessionId: string;
  instance: string;
  expiresAt: number;
}

/** A session's visitor name as its instance renews it: the session and all its keys. */
export type VisitorNameHeld = Pick<VisitorNameLease, 'sessionId' | 'keys'>;

/** What the server needs from storage. */
export interface ServerStore {
  /**
   * Throws E_USERNAME_TAKEN when the name (any case) is registered, or when one of its look-alike
   * keys (shared/look-alike.ts) is an account's: checked by the insert, so atomically.
   */
  createUser(user: UserRecord): Promise<void>;
  getUser(username: string): Promise<UserRecord | undefined>;
  /** Every registered username (the server indexes their confusable skeletons at start). */
  usernames(): Promise<string[]>;
  createSession(s: Omit<SessionRecord, 'revoked'>): Promise<void>;
  getSession(sessionId: string): Promise<SessionRecord | undefined>;
  revokeSession(sessionId: string): Promise<void>;
  /** A user's sessions that are not revoked, oldest first. */
  liveSessions(username: string, role: Role): Promise<SessionRecord[]>;
  /** How many channels a user owns. */
  ownedChannels(username: string): Promise<number>;
  /** How many channels a user is a member of (owned ones included). */
  memberships(username: string): Promise<number>;
  /**
   * Creates the channel with its owner as member; E_CHANNEL_EXISTS when the id is taken or was a
   * deleted channel's (never used again), and
   * E_FORBIDDEN when `caps` are given and the owner is at one of them (counted atomically).
   */
  createChannel(c: Channel, caps?: ChannelCaps): Promise<void>;
  getChannel(id: string): Promise<Channel | undefined>;
  /**
   * Channels in (createdAt, id) order, after `after` when given, at most `limit`; only those
   * that allow visitors when `visitorsOnly` (a page of `directory`).
   */
  listChannels(o: ChannelPage): Promise<Channel[]>;
  channelsOf(username: string): Promise<Channel[]>;
  /**
   * Adds a member (nothing if it is one); E_FORBIDDEN when `maxMemberships` is given and the user
   * is a member of that many channels already (counted atomically with the insert).
   */
  addMember(channelId: string, username: string, maxMemberships?: number): Promise<void>;
  isMember(channelId: string, username: string): Promise<boolean>;
  members(channelId: string): Promise<string[]>;
  /**
   * Inserts a batch in one transaction; idempotent by message id. Throws nothing per item: each
   * gets its seq (1, 2, 3… per channel, without gaps), a duplicate's stored copy, or a refusal.
   */
  insertMessages(batch: readonly MessageInsert[]): Promise<(InsertResult | HchatError)[]>;
  /**
   * Newest `limit` messages older than `before` (or the newest), in channel order, with the items
   * naming them (E_NOT_FOUND when `before` is no message of this channel: an item of another
   * kind, an edit or a reaction say, is not one).
   */
  history(channelId: string, limit: number, before?: string): Promise<HistoryPage>;
  /** Messages with seq > since, by seq, at most `limit`. */
  since(channelId: string, since: number, limit: number): Promise<StoredMessage[]>;
  lastSeq(channelId: string): Promise<number>;
  /** The item with this id, if stored (a tombstone once deleted). */
  getItem(id: string): Promise<StoredMessage | undefined>;
  /** The items that name these messages (edits, deletes, reactions), in HLC order. */
  related(ids: readonly string[]): Promise<StoredMessage[]>;
  /** True when the channel's owner removed this user (who may not read, post or join again). */
  isRemoved(channelId: string, username: string): Promise<boolean>;
  /** A member leaves (the owner cannot: it deletes the channel instead). */
  removeMember(channelId: string, username: string): Promise<void>;
  /**
   * Messages of `channelIds` whose shown text has every one of `words` (shared/search-text.ts
   * `searchWords`) as the prefix of one of its words, folded alike; newest first (by arrival),
   * older than message `before` when given.
   */
  search(
    words: readonly string[],
    channelIds: readonly string[],
    limit: number,
    before?: string,
  ): Promise<StoredMessage[]>;
  // Limits every server instance shares (limit-rows.ts; docs/SECURITY.md).
  /** The login budgets of these keys that exist and are not forgotten at `now`. */
  loginBudgets(
    keys: readonly string[],
    now: number,
    forgetAfterMs: number,
  ): Promise<Map<string, LoginBudget>>;
  /**
   * One failure more in each budget (limit-rows.ts `afterFailure`), in one transaction that
   * holds each row while it counts, so failures counted at once by several instances all count;
   * the budgets after, in the order given.
   */
  addLoginFailures(
    charges: readonly LoginCharge[],
    now: number,
    backoff: LoginBackoff,
  ): Promise<LoginBudget[]>;
  /** Forgets a login budget (a successful login clears its account and address pair). */
  clearLoginBudget(key: string): Promise<void>;
  /** The address prefixes `account` (lower case) logged in from, with when it was recorded. */
  knownLoginPrefixes(account: string): Promise<{ prefix: string; lastAt: number }[]>;
  /** Records a login of `account` from `prefix`; keeps the account's newest `keep` prefixes. */
  rememberLoginPrefix(account: string, prefix: string, now: number, keep: number): Promise<void>;
  /**
   * Takes one registration of `prefix`'s budget (`limit` per `windowMs`) atomically: its id, or
   * how long until the oldest one in the window leaves it.
   */
  takeRegistration(
    prefix: string,
    now: number,
    limit: number,
    windowMs: number,
  ): Promise<RegistrationTicket>;
  /** Gives a registration back (it never reached the password hash). */
  releaseRegistration(id: string): Promise<void>;
  /** Deletes up to `max` expired budgets and up to `max` old registrations; how many. */
  sweepLimits(now: number, o: LimitSweep): Promise<number>;
  // Visitor names present now, on every instance (visitor-names.ts).
  /**
   * Takes every key of `lease` for its session, atomically: true, or false and nothing taken when
   * a key is held by another session whose lease has not run out at `now`. Taking the keys of a
   * session again (resumed on another instance) moves them to the new instance.
   */
  claimVisitorName(lease: VisitorNameLease, now: number): Promise<boolean>;
  /**
   * Extends to `expiresAt` the keys `instance` holds for these sessions (each given with all its
   * keys); forgets expired keys. Answers the sessions of which `instance` held fewer keys than
   * given: their lease ran out and was forgotten (the store was out of reach of `instance`), or
   * another instance took them (a resume there). The caller may claim them again.
   */
  renewVisitorNames(
    instance: string,
    leases: readonly VisitorNameHeld[],
    now: number,
    expiresAt: number,
  ): Promise<string[]>;
  /** Frees the keys `instance` holds for `sessionId` (the visitor left). */
  releaseVisitorName(sessionId: string, instance: string): Promise<void>;
  /**
   * The instance whose unexpired lease holds `sessionId`'s name at `now`, or undefined: where the
   * visitor is present (it moves with a resume on another instance).
   */
  visitorNameHolder(sessionId: string, now: number): Promise<string | undefined>;
  /**
   * Up to `max` live (unrevoked) visitor sessions whose name no unexpired lease holds at `now`:
   * present on no instance, connected nor within a grace there (their instance died or stopped).
   */
  unheldVisitorSessions(now: number, max: number): Promise<string[]>;
  /** A cheap round trip: resolves while the store answers (`/ready`). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export { SqliteServerStore } from './sqlite-server-store.js';
