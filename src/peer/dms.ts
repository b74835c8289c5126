/**
 * Direct messages on a peer (issue 15; README "Direct messages"; docs/PROTOCOL.md §10): what
 * the local API calls, and the node's hooks (a session came up, a `dm` push, a P2P delivery).
 * The parts: this device's keys (dm-keys.ts), ratchet sessions (dm-sessions.ts), whose keys are
 * trusted (dm-trust.ts), what the server says of devices (dm-directory.ts), sending
 * (dm-outbox.ts) and receiving (dm-inbox.ts), all in `<data>/dms.db` (store/peer-dm-store.ts).
 */
import crypto from 'node:crypto';
import { HchatError } from '../protocol/errors.js';
import type { TrackerEntry } from '../protocol/common.js';
import { DM_LIMITS } from '../shared/limits.js';
import { RateLimiter } from '../shared/rate-limit.js';
import { directConversationId, sortedMembers } from '../shared/dm-ids.js';
import type { ConnectionLog } from '../shared/connlog.js';
import {
  PeerDmStore,
  type ConversationRow,
  type DmMessageRow,
  type DmShownRow,
} from '../store/peer-dm-store.js';
import type { ApiDm, ApiDmMessage, ApiSafety } from './api-shapes.js';
import { DmDirectory } from './dm-directory.js';
import { DmInbox } from './dm-inbox.js';
import { DmKeys } from './dm-keys.js';
import { DmOutbox } from './dm-outbox.js';
import { DmSessions } from './dm-sessions.js';
import { DmTrust } from './dm-trust.js';
import type { EventHub } from './event-hub.js';
import type { HostLink } from './host-link.js';
import { namedMentions, resolveMentions } from './mentions.js';
import type { ServerLink } from './server-link.js';
import { deliverRequest } from './dm-p2p.js';

/** How long a post (or a change) waits for its delivery before answering `pending`. */
const DELIVERY_WAIT_MS = 3000;

/** What writing answers: the new item's id, and whether every device has it yet. */
type Written = { id: string; state: 'pending' | 'delivered' };

export interface DirectMessagesDeps {
  dataDir: string;
  log: ConnectionLog;
  events: EventHub;
  /** The logged-in user's name; undefined for visitors and when nobody is logged in. */
  account(): string | undefined;
  /** True when a visitor is logged in. */
  isVisitor(): boolean;
  server(): ServerLink | undefined;
  dial(entry: TrackerEntry): HostLink | undefined;
  background(task: Promise<void>): void;
  closed(): boolean;
  /** True while the user chose to be offline: nothing can go out, so nothing is waited for. */
  offline(): boolean;
}

export class DirectMessages {
  readonly store: PeerDmStore;
  private readonly keys: DmKeys;
  private readonly trust: DmTrust;
  private readonly directory: DmDirectory;
  private readonly outbox: DmOutbox;
  readonly inbox: DmInbox;
  private readonly waiters = new Map<string, () => void>();
  /** Envelopes handed over P2P, per sending user. */
  private readonly p2pLimiter = new RateLimiter(
    DM_LIMITS.p2pEnvelopesPerSecond,
    DM_LIMITS.p2pEnvelopeBurst,
  );
  private publishing: Promise<void> | undefined;
  /** The account whose device this connection is bound to at the server (after `dm_publish`). */
  private published: string | undefined;

  constructor(private readonly d: DirectMessagesDeps) {
    this.store = new PeerDmStore(d.dataDir);
    this.keys = new DmKeys(this.store);
    const sessions = new DmSessions(this.store);
    this.trust = new DmTrust(
      this.store,
      sessions,
      (conversationId, id, author) => this.announce(conversationId, id, author),
      (account) => {
        const own = this.keys.own(account);
        return {
          deviceId: own.deviceId,
          identityKey: own.identity.publicKey.toString('base64url'),
        };
      },
    );
    this.directory = new DmDirectory(this.trust);
    const base = {
      store: this.store,
      log: d.log,
      keys: this.keys,
      sessions,
      directory: this.directory,
      account: () => d.account(),
      server: (account: string) => this.serverFor(account),
      closed: () => d.closed(),
    };
    this.outbox = new DmOutbox({
      ...base,
      dial: (e) => d.dial(e),
      delivered: (conversationId, id) => {
        this.waiters.get(id)?.();
        // Messages only: an edit or deletion shows through the message it changed.
        const account = d.account();
        if (account && this.store.item(account, id, account)?.kind !== 'message') return;
        d.events.emit('dm_state', { conversationId, id, state: 'delivered' });
      },
    });
    this.inbox = new DmInbox({
      ...base,
      trust: this.trust,
      received: (conversationId, id, author) => this.announce(conversationId, id, author),
      prekeyUsed: () => d.background(this.publish()),
    });
  }

  close(): void {
    this.outbox.close();
    this.inbox.close();
    this.store.close();
  }

  // ---- the node's hooks -----------------------------------------------------------------------

  /** A user's session is up at the server: publish this device, learn blocks, pull, send. */
  async online(): Promise<void> {
    const account = this.d.account();
    if (!account) return;
    await this.publish();
    const server = this.serverFor(account);
    if (!server) return;
    const { blocked } = await server.request('dm_blocks', {});
    this.store.setBlocked(account, blocked);
    // Independent: a failed pull must not keep what was written offline from going out.
    const [pulled, drained] = await Promise.allSettled([this.inbox.pull(), this.outbox.drain()]);
    for (const r of [pulled, drained]) if (r.status === 'rejected') throw r.reason;
  }

  /** The session is gone (logout, or the server link went down). */
  offline(): void {
    this.published = undefined;
    this.publishing = undefined;
    this.directory.clear();
  }

  /** The server link, while it is bound to `account`'s device on this peer. */
  private serverFor(account: string): ServerLink | undefined {
    if (this.published !== account.toLowerCase() || this.d.account() !== account) return undefined;
    return this.d.server();
  }

  /** A `dm` push: something waits in this device's mailbox. */
  mailboxChanged(): void {
    if (this.published) this.d.background(this.inbox.pull());
  }

  /** A `dm_blocks` push: this user (on another device, say) blocks these users now. */
  blocksChanged(blocked: string[]): void {
    const account = this.d.account();
    if (!account || this.published !== account.toLowerCase()) return;
    this.store.setBlocked(account, blocked);
    this.d.events.emit('dms', {});
  }

  /** `dm_deliver` on the P2P link (dm-p2p.ts checks it). */
  deliver(who: { username: string; role: string }, body: unknown, linkName: string) {
    return deliverRequest(
      this.inbox,
      this.p2pLimiter,
      () => this.ownDeviceId(),
      who,
      body,
      linkName,
    );
  }

  private ownDeviceId(): { account: string; deviceId: string } | undefined {
    const account = this.d.account();
    return account ? { account, deviceId: this.keys.own(account).deviceId } : undefined;
  }

  private publish(): Promise<void> {
    this.publishing ??= (async () => {
      try {
        const account = this.d.account();
        const server = this.d.server();
        if (!account || !server) return;
        const device = await this.keys.publish(server, account);
        // Logged out (or in as another) meanwhile: that session's binding is not ours.
        if (this.d.account() !== account || this.d.server() !== server) return;
        this.published = account.toLowerCase();
        this.d.log.write('dm_device', { peer: 'server', device });
      } finally {
        this.publishing = undefined;
      }
    })();
    return this.publishing;
  }

  // ---- what the local API calls ---------------------------------------------------------------

  list(): ApiDm[] {
    const account = this.requireUser();
    return this.store.conversations(account).map((c) => this.apiDm(account, c));
  }

  get(id: string): ApiDm {
    const account = this.requireUser();
    return this.apiDm(account, this.conversation(account, id));
  }

  /** Starts (or finds, for two) a conversation with `others`; `created` says which. */
  async start(others: string[]): Promise<{ dm: ApiDm; created: boolean }> {
    const account = this.requireUser();
    const lower = others.map((o) => o.toLowerCase());
    if (lower.includes(account.toLowerCase()))
      throw new HchatError('E_BAD_REQUEST', 'members: name the other members, not yourself');
    if (new Set(lower).size !== lower.length)
      throw new HchatError('E_BAD_REQUEST', 'members: each name once');
    if (others.length < 1 || others.length > DM_LIMITS.maxMembers - 1)
      throw new HchatError('E_BAD_REQUEST', `members: 1 to ${DM_LIMITS.maxMembers - 1} others`);
    const server = this.serverFor(account);
    if (!server) throw new HchatError('E_OFFLINE', 'starting a conversation needs the server');
    const found = await this.directory.refresh(server, account, others);
    const unknown = others.filter((o) => !found.has(o.toLowerCase()));
    if (unknown.length) throw new HchatError('E_NOT_FOUND', `no such user: ${unknown.join(', ')}`);
    const members = sortedMembers([
      account,
      ...others.map((o) => this.directory.canonical(o) ?? o),
    ]);
    const id =
      members.length === 2 ? directConversationId(members[0]!, members[1]!) : crypto.randomUUID();
    const created = this.store.addConversation(account, id, members, Date.now());
    if (created) this.d.events.emit('dms', {});
    return { dm: this.apiDm(account, this.conversation(account, id)), created };
  }

  messages(id: string, limit: number, before?: string): { messages: ApiDmMessage[] } {
    const account = this.requireUser();
    this.conversation(account, id);
    return {
      messages: this.store.messages(account, id, limit, before).map((m) => apiMessage(account, m)),
    };
  }

  /**
   * Writes a message (a reply to the conversation's message `replyTo`, if given): stored
   * pending at once, then sealed and handed over (dm-outbox.ts).
   */
  async post(id: string, text: string, replyTo?: string): Promise<Written> {
    const account = this.requireUser();
    const conv = this.writable(account, id);
    const original = replyTo === undefined ? undefined : this.original(account, id, replyTo);
    const m: DmMessageRow = {
      id: crypto.randomUUID(),
      conversation: id,
      kind: 'message',
      author: account,
      ts: Date.now(),
      text,
      mentions: resolveMentions(text, conv.members).filter((n) => n !== 'here'),
      state: 'pending',
      source: 'local',
      ...(original ? { replyTo: { id: original.id, author: original.author } } : {}),
    };
    this.store.addMessage(account, m, { unread: false, sealed: false });
    this.d.log.write('dm_post', { id: m.id, conversation: id });
    this.announce(id, m.id, account);
    return this.handOver(account, m.id);
  }

  /**
   * Hands over what was just stored (sealed and sent by dm-outbox.ts), and answers its state:
   * `delivered` once every device has it, if that takes at most DELIVERY_WAIT_MS.
   */
  private async handOver(account: string, id: string): Promise<Written> {
    // Offline by choice: stored, and sent once back online (a channel post answers so too).
    if (this.d.offline()) return { id, state: 'pending' };
    const delivered = new Promise<void>((resolve) => this.waiters.set(id, resolve));
    this.d.background(this.outbox.drain());
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      delivered,
      new Promise<void>((r) => (timer = setTimeout(r, DELIVERY_WAIT_MS))),
    ]);
    clearTimeout(timer);
    this.waiters.delete(id);
    // The peer stopped meanwhile: it is stored, and goes out when the peer is back.
    if (this.d.closed()) return { id, state: 'pending' };
    return { id, state: this.store.item(account, id, account)?.state ?? 'pending' };
  }

  /**
   * Edits one of this user's messages: the edit is stored at once (the message reads edited
   * here), then sealed and handed over to every device as a message is (dm-outbox.ts).
   */
  edit(id: string, messageId: string, text: string): Promise<Written> {
    const account = this.requireUser();
    // New words, so not to someone this user blocks (deleting stays possible).
    const conv = this.writable(account, id);
    const mentions = resolveMentions(text, conv.members).filter((n) => n !== 'here');
    return this.change(account, id, messageId, { kind: 'edit', text, mentions });
  }

  /** Deletes one of this user's messages, here at once and then on every device. */
  remove(id: string, messageId: string): Promise<Written> {
    const account = this.requireUser();
    this.conversation(account, id);
    return this.change(account, id, messageId, { kind: 'delete', text: '', mentions: [] });
  }

  /**
   * Adds (`on`) or takes back this user's reaction `emoji` to the conversation's message
   * `messageId`, whoever wrote it: here at once, then on every device of the conversation.
   */
  react(id: string, messageId: string, emoji: string, on: boolean): Promise<Written> {
    const account = this.requireUser();
    // A reaction says something to them; taking one back (as deleting) stays possible.
    if (on) this.writable(account, id);
    else this.conversation(account, id);
    const target = this.original(account, id, messageId);
    const r: DmMessageRow = {
      id: crypto.randomUUID(),
      conversation: id,
      kind: on ? 'react' : 'unreact',
      author: account,
      // After this user's last vote on it whatever this clock says: the newest one counts.
      ts: Math.max(Date.now(), this.store.lastVote(account, id, target, emoji) + 1),
      text: '',
      mentions: [],
      state: 'pending',
      source: 'local',
      target: target.id,
      targetAuthor: target.author,
      emoji,
    };
    this.store.addMessage(account, r, { unread: false, sealed: false });
    this.d.log.write(on ? 'dm_react' : 'dm_unreact', {
      id: r.id,
      conversation: id,
      target: target.id,
      emoji,
    });
    this.announce(id, target.id, target.author);
    return this.handOver(account, r.id);
  }

  /** The conversation, if this user may write in it (not a 1:1 with someone they blocked). */
  private writable(account: string, id: string): ConversationRow {
    const conv = this.conversation(account, id);
    const others = conv.members.filter((m) => m.toLowerCase() !== account.toLowerCase());
    const blocked = this.store.blocked(account);
    if (others.length === 1 && blocked.includes(others[0]!.toLowerCase()))
      throw new HchatError('E_FORBIDDEN', `you blocked ${others[0]}: unblock them to write`);
    return conv;
  }

  /** The conversation's message `messageId` (any member's), not deleted: what one may answer. */
  private original(account: string, conversation: string, messageId: string): DmShownRow {
    const m = this.store.find(account, conversation, messageId);
    if (!m) throw new HchatError('E_NOT_FOUND', 'no such message in this conversation');
    if (m.deleted) throw new HchatError('E_NOT_FOUND', 'that message was deleted');
    return m;
  }

  /** This user's message `messageId` of the conversation, not deleted: what it may change. */
  private ownMessage(account: string, conversation: string, messageId: string, what: string) {
    const m = this.store.message(account, messageId, account);
    if (m?.kind === 'message' && m.conversation === conversation && !m.deleted) return m;
    if (m?.kind === 'message' && m.conversation === conversation)
      throw new HchatError('E_NOT_FOUND', 'that message was deleted');
    if (this.store.heldByOthers(account, conversation, messageId, account))
      throw new HchatError('E_FORBIDDEN', `only its author may ${what} a message`);
    throw new HchatError('E_NOT_FOUND', 'no such message of yours in this conversation');
  }

  /** Stores an own edit or deletion of `messageId`, tells the views, and sends it. */
  private change(
    account: string,
    conversation: string,
    messageId: string,
    what: Pick<DmMessageRow, 'kind' | 'text' | 'mentions'>,
  ): Promise<Written> {
    const target = this.ownMessage(account, conversation, messageId, what.kind);
    const c: DmMessageRow = {
      ...what,
      id: crypto.randomUUID(),
      conversation,
      author: account,
      // After its last change whatever this clock says: the latest edit is the one that shows.
      ts: Math.max(Date.now(), (target.edited ?? target.ts) + 1),
      state: 'pending',
      source: 'local',
      target: messageId,
    };
    this.store.addMessage(account, c, { unread: false, sealed: false });
    this.d.log.write(c.kind === 'edit' ? 'dm_edit' : 'dm_delete', {
      id: c.id,
      conversation,
      target: messageId,
    });
    this.announce(conversation, messageId, account);
    return this.handOver(account, c.id);
  }

  read(id: string): void {
    const account = this.requireUser();
    this.conversation(account, id);
    this.store.markRead(account, id);
    this.d.events.emit('dms', {});
  }

  /** The safety numbers, with the devices asked of the server again first when it is there. */
  async safety(id: string): Promise<ApiSafety> {
    const account = this.requireUser();
    const conv = this.conversation(account, id);
    const server = this.serverFor(account);
    if (server)
      await this.directory.refresh(server, account, conv.members, true).catch(() => undefined);
    return this.safetyNow(account, conv);
  }

  private safetyNow(account: string, conv: ConversationRow): ApiSafety {
    const others = conv.members.filter((m) => m.toLowerCase() !== account.toLowerCase());
    return { members: this.trust.safety(account, others) };
  }

  setVerified(id: string, username: string, verified: boolean): ApiSafety {
    const account = this.requireUser();
    const conv = this.conversation(account, id);
    const member = conv.members.find(
      (m) =>
        m.toLowerCase() === username.toLowerCase() && m.toLowerCase() !== account.toLowerCase(),
    );
    if (!member) throw new HchatError('E_NOT_FOUND', `${username} is not another member here`);
    this.trust.setVerified(account, member, verified);
    this.d.events.emit('dms', {});
    return this.safetyNow(account, conv);
  }

  /** The block list, as the server has it when it answers (another device may have changed it). */
  async blocks(): Promise<{ blocked: string[] }> {
    const account = this.requireUser();
    const server = this.serverFor(account);
    if (server) {
      const r = await server.request('dm_blocks', {}).catch(() => undefined);
      if (r) this.store.setBlocked(account, r.blocked);
    }
    return { blocked: this.store.blocked(account) };
  }

  async block(username: string, blocked: boolean): Promise<{ blocked: string[] }> {
    const account = this.requireUser();
    if (username.toLowerCase() === account.toLowerCase())
      throw new HchatError('E_BAD_REQUEST', 'you cannot block yourself');
    const server = this.serverFor(account);
    if (!server) throw new HchatError('E_OFFLINE', 'blocking needs the server');
    const r = await server.request('dm_block', { username, blocked });
    this.store.setBlocked(account, r.blocked);
    this.d.log.write('dm_block', { peer: 'server', user: username, blocked: String(blocked) });
    this.d.events.emit('dms', {});
    return { blocked: this.store.blocked(account) };
  }

  /** Undelivered own messages (for `GET /api/me`'s pending count). */
  pending(): number {
    const account = this.d.account();
    return account ? this.store.pendingCount(account) : 0;
  }

  // ---- helpers --------------------------------------------------------------------------------

  private requireUser(): string {
    const account = this.d.account();
    if (account) return account;
    if (this.d.isVisitor()) throw new HchatError('E_FORBIDDEN', 'visitors have no direct messages');
    throw new HchatError('E_AUTH_REQUIRED');
  }

  private conversation(account: string, id: string): ConversationRow {
    const c = this.store.conversation(account, id);
    if (!c) throw new HchatError('E_NOT_FOUND', 'no such conversation');
    return c;
  }

  private announce(conversationId: string, id: string, author: string): void {
    const account = this.d.account();
    const m = account && this.store.message(account, id, author);
    if (!m) return;
    this.d.events.emit('dm', { conversationId, message: apiMessage(account, m) });
    this.d.events.emit('dms', {});
  }

  private apiDm(account: string, c: ConversationRow): ApiDm {
    const others = c.members.filter((m) => m.toLowerCase() !== account.toLowerCase());
    const trust = this.trust.status(account, others);
    const last = this.store.lastMessage(account, c.id);
    return {
      id: c.id,
      members: c.members,
      title: others.join(', '),
      unread: c.unread,
      mentions: c.mentions,
      lastTs: c.lastTs,
      ...(last ? { last: { author: last.author, text: last.text, ts: last.ts } } : {}),
      verified: trust.verified,
      keyChanged: trust.changed,
    };
  }
}

function apiMessage(account: string, m: DmShownRow): ApiDmMessage {
  // As stored from now on (dm-inbox.ts); a row stored before keeps what it was sent with.
  const mentions = namedMentions(m.text, m.mentions);
  return {
    id: m.id,
    kind: m.kind === 'notice' ? 'notice' : 'message',
    author: m.author,
    ts: m.ts,
    text: m.text,
    state: m.state,
    mentions,
    mentioned: m.kind === 'message' && mentions.includes(account.toLowerCase()),
    source: m.source,
    reactions: (m.reactions ?? []).map((r) => ({
      emoji: r.emoji,
      count: r.users.length,
      users: r.users,
      me: r.users.some((u) => u.toLowerCase() === account.toLowerCase()),
    })),
    ...(m.reply ? { replyTo: m.reply } : {}),
    ...(m.edited !== undefined ? { edited: m.edited } : {}),
    ...(m.deleted ? { deleted: true } : {}),
  };
}
