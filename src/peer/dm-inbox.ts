/**
 * Receiving direct messages (docs/PROTOCOL.md §10.6): an envelope comes from a device itself
 * over P2P (`dm_deliver`) or from this device's mailbox at the server (`dm_fetch`, after a `dm`
 * push). Each is taken once: its id is remembered in the same transaction that stores the
 * message and advances the ratchet, and the mailbox is acknowledged only after that commit, so
 * a crash at any point neither loses nor doubles a message.
 *
 * Checks, in order: the sender is not blocked (then the envelope vanishes, unanswered by any
 * sign); a session's first message names the identity key the server lists for that device
 * (asked again once when it does not); the ciphertext opens; the payload is well formed, names
 * the sender and this user among its members, a 1:1 conversation has its derived id, and a
 * known conversation keeps its members.
 */
import { LONE_SURROGATE, holdsLoneSurrogate } from '../protocol/frame.js';
import { HchatError } from '../protocol/errors.js';
import { DmPayload, type DmCipher, type DeviceAddress, type MailEnvelope } from '../protocol/dm.js';
import { describeIssues } from '../protocol/rpc.js';
import { directConversationId, isDirectId, sortedMembers } from '../shared/dm-ids.js';
import { MESSAGE_LIMITS } from '../shared/limits.js';
import { namedMentions } from '../shared/mention-syntax.js';
import { OneAtATime } from '../shared/one-at-a-time.js';
import type { ConnectionLog } from '../shared/connlog.js';
import type { DmMessageRow, PeerDmStore } from '../store/peer-dm-store.js';
import type { DmDirectory } from './dm-directory.js';
import type { DmKeys } from './dm-keys.js';
import type { DmSessions } from './dm-sessions.js';
import type { DmTrust } from './dm-trust.js';
import type { ServerLink } from './server-link.js';

export interface DmInboxDeps {
  store: PeerDmStore;
  log: ConnectionLog;
  keys: DmKeys;
  sessions: DmSessions;
  trust: DmTrust;
  directory: DmDirectory;
  account(): string | undefined;
  /** The server link while it is bound to this account's device (dm_publish), else undefined. */
  server(account: string): ServerLink | undefined;
  closed(): boolean;
  /** A message (or a conversation) was stored. */
  received(conversationId: string, id: string, author: string): void;
  /** This device used one of its one-time prekeys: top the server's stock up. */
  prekeyUsed(): void;
}

/**
 * Where an envelope came from, as the connection log names it; for the mailbox, the senders
 * whose keys this pull round asked the server for already.
 */
export type DmSource = { kind: 'peer'; name: string } | { kind: 'server'; asked: Set<string> };

/** How soon a pull that had to stop (the server could not check a key) is tried again. */
const PULL_RETRY_MS = 5000;

/** How often a sender's device keys are asked again for envelopes it hands over itself. */
const P2P_RECHECK_MS = 5000;

export class DmInbox {
  private readonly puller = new OneAtATime(
    () => this.pullOnce(),
    () => this.d.closed(),
  );

  private retry: NodeJS.Timeout | undefined;

  constructor(private readonly d: DmInboxDeps) {}

  /** Empties this device's mailbox at the server, oldest first, acknowledging what was stored. */
  async pull(): Promise<void> {
    return this.puller.run();
  }

  private async pullOnce(): Promise<void> {
    // One account's mailbox: the run ends when its session is not the one bound any more.
    const account = this.d.account();
    if (!account) return;
    const source: DmSource = { kind: 'server', asked: new Set() };
    for (;;) {
      const server = this.d.server(account);
      if (!server || this.d.closed()) return;
      const { envelopes, more } = await server.request('dm_fetch', { after: 0 });
      if (envelopes.length === 0) return;
      let upTo = 0;
      for (const e of envelopes) {
        try {
          await this.take(account, e.from, e.id, e.body, source);
        } catch (err) {
          if (!(err instanceof HchatError)) throw err;
          // Not now (the server could not answer a key check): keep it, and what follows.
          if (err.code === 'E_OFFLINE') {
            if (upTo) await server.request('dm_ack', { upTo });
            this.retryLater();
            return;
          }
          this.refused(e, err, 'server');
        }
        upTo = e.seq;
      }
      if (this.d.server(account) !== server) return;
      await server.request('dm_ack', { upTo });
      if (!more) return;
    }
  }

  private retryLater(): void {
    if (this.retry || this.d.closed()) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      void this.pull().catch(() => undefined);
    }, PULL_RETRY_MS);
    this.retry.unref();
  }

  close(): void {
    clearTimeout(this.retry);
  }

  /**
   * Takes one envelope; resolves when it is stored (or was before, or vanished as blocked).
   * Throws the reason it was refused.
   */
  async take(
    account: string,
    from: DeviceAddress,
    envelopeId: string,
    body: DmCipher,
    source: DmSource,
  ): Promise<void> {
    const { store } = this.d;
    if (store.seen(account, envelopeId)) return;
    // The server keeps blocked users' envelopes out of the mailbox; over P2P this device
    // decides, on the server's current list (another device of its user may have changed it).
    // A blocked sender's envelope is checked and answered as any other, then dropped: the
    // answer never tells it is blocked.
    const blocked = source.kind === 'peer' && (await this.blocks(account, from.username));
    if (body.prekey) await this.checkIdentity(account, from, body.prekey.ik, source);
    const own = this.d.keys.own(account);
    const opened = this.d.sessions.open(account, own, from.username, from.deviceId, body);
    if (body.prekey) this.d.prekeyUsed();
    let payload: DmPayload;
    try {
      const text = opened.plaintext.toString('utf8');
      const parsed: unknown = JSON.parse(text);
      // Stored, a lone surrogate would come back as U+FFFD: the two copies would differ.
      if (holdsLoneSurrogate(parsed, text)) throw new Error(LONE_SURROGATE);
      payload = DmPayload.parse(parsed);
    } catch (err) {
      // It decrypted, so the session moved on: keep that, drop the message.
      store.tx(() => {
        opened.commit();
        store.markSeen(account, envelopeId);
      });
      const why =
        err instanceof Error && 'issues' in err
          ? describeIssues(err as never)
          : err instanceof Error && err.message === LONE_SURROGATE
            ? LONE_SURROGATE
            : 'not JSON';
      throw new HchatError('E_BAD_REQUEST', `dm payload: ${why}`);
    }
    const problem = this.payloadProblem(account, from.username, payload);
    if (problem) {
      store.tx(() => {
        opened.commit();
        store.markSeen(account, envelopeId);
      });
      throw new HchatError('E_FORBIDDEN', problem);
    }
    if (blocked) {
      store.tx(() => {
        opened.commit();
        store.markSeen(account, envelopeId);
      });
      this.d.log.dm(from.username, 'dm_blocked', { peer: peerName(source), from: from.username });
      return;
    }
    const mine = from.username.toLowerCase() === account.toLowerCase();
    let added = false;
    store.tx(() => {
      opened.commit();
      store.markSeen(account, envelopeId);
      store.addConversation(
        account,
        payload.conversation,
        this.spelt(account, payload.members),
        payload.ts,
      );
      added = store.addMessage(
        account,
        rowOf(payload, mine ? account : from.username, source.kind),
        { unread: !mine && payload.t === 'msg' },
      );
    });
    this.d.log.dm(from.username, 'dm_in', {
      peer: peerName(source),
      from: `${from.username}/${from.deviceId}`,
      envelope: envelopeId,
      id: payload.id,
      kind: payload.t === 'msg' ? undefined : payload.t,
      target: payload.t === 'msg' ? undefined : payload.target,
      duplicate: added ? undefined : 'yes',
    });
    // A change is told as the message it changed, when that is here.
    if (!added) return;
    const author = mine ? account : from.username;
    if (payload.t === 'msg') this.d.received(payload.conversation, payload.id, author);
    else if (payload.t === 'react' || payload.t === 'unreact')
      this.d.received(payload.conversation, payload.target, payload.targetAuthor);
    else this.d.received(payload.conversation, payload.target, author);
  }

  /** Whether the account blocks `user`, as the server says now (asked when the list says so). */
  private async blocks(account: string, user: string): Promise<boolean> {
    if (!this.d.store.blocked(account).includes(user.toLowerCase())) return false;
    const server = this.d.server(account);
    if (!server)
      throw new HchatError('E_OFFLINE', 'cannot check the block list without the server');
    const { blocked } = await server.request('dm_blocks', {});
    this.d.store.setBlocked(account, blocked);
    return blocked.some((b) => b.toLowerCase() === user.toLowerCase());
  }

  /**
   * The sender device must show the identity key its user published. When it does not, the
   * server is asked again — once per sender in each pull of the mailbox (a device sends only
   * after it was published), and at most every 5 s for envelopes handed over directly — so junk
   * from one sender costs this user's session one question, not one per envelope. Asking is a
   * check, not a lookup (PROTOCOL.md §10.1); when it cannot be asked, the envelope waits.
   */
  private async checkIdentity(
    account: string,
    from: DeviceAddress,
    ik: string,
    source: DmSource,
  ): Promise<void> {
    if (this.d.trust.knownKey(account, from.username, from.deviceId) === ik) return;
    const user = from.username.toLowerCase();
    let ask: boolean;
    let askAgainInMs = 0;
    if (source.kind === 'server') {
      ask = !source.asked.has(user);
      source.asked.add(user);
    } else {
      const at = this.d.directory.askedAt(account, from.username);
      ask = at === undefined || Date.now() - at > P2P_RECHECK_MS;
      if (at !== undefined) askAgainInMs = Math.max(0, at + P2P_RECHECK_MS - Date.now());
    }
    if (ask) {
      const server = this.d.server(account);
      try {
        if (!server) throw new HchatError('E_OFFLINE');
        await this.d.directory.refresh(server, account, [from.username], true);
      } catch (err) {
        if (!(err instanceof HchatError)) throw err;
        // Whatever kept the server from answering, the envelope waits (never dropped for it).
        throw new HchatError('E_OFFLINE', "cannot check a new sender device's key now", {
          retryAfterMs: PULL_RETRY_MS,
        });
      }
    }
    const known = this.d.trust.knownKey(account, from.username, from.deviceId);
    // Handed over directly by a device not heard of yet, while the server may not be asked
    // again so soon (published after the last answer, most likely): not now (§10.6: E_OFFLINE,
    // the sender leaves it in the mailbox), rather than a bad key. From the mailbox the server
    // was asked in this pull.
    if (known === undefined && !ask && source.kind === 'peer')
      throw new HchatError('E_OFFLINE', "cannot check a new sender device's key now", {
        retryAfterMs: askAgainInMs,
      });
    if (known !== ik)
      throw new HchatError(
        'E_BAD_SIGNATURE',
        `${from.username}/${from.deviceId}: identity key is not the one its user published`,
      );
  }

  private payloadProblem(account: string, sender: string, p: DmPayload): string | undefined {
    const lower = p.members.map((m) => m.toLowerCase());
    if (new Set(lower).size !== lower.length) return 'dm: members are distinct users';
    if (!lower.includes(account.toLowerCase())) return 'dm: this user is not among its members';
    if (!lower.includes(sender.toLowerCase())) return 'dm: its sender is not among its members';
    if (p.members.length === 2 && p.conversation !== directConversationId(lower[0]!, lower[1]!))
      return 'dm: a conversation of two has the id derived from their names';
    // A derived id belongs to a pair: a group under one would stand in for that pair's DM.
    if (p.members.length > 2 && isDirectId(p.conversation))
      return "dm: a group's id is random, never a pair's derived id";
    if ((p.t === 'msg' || p.t === 'edit') && p.mentions?.some((m) => !lower.includes(m)))
      return 'dm: mentions name members only';
    if (p.ts > Date.now() + MESSAGE_LIMITS.maxClockSkewMs)
      return 'dm: written more than a minute ahead of this clock';
    // The same users, however the sender spells them (§10.4: names compare without case; the
    // order of a list sorted as spelt may change with the spelling).
    const held = this.d.store.conversation(account, p.conversation);
    if (held && !sameUsers(held.members, lower)) return 'dm: a conversation keeps its members';
    // A reply or a reaction names a member's message of this conversation (held, or still on
    // its way: it is known by its id and its author, so one not here yet names nothing else).
    const named =
      p.t === 'msg'
        ? p.replyTo
        : p.t === 'react' || p.t === 'unreact'
          ? { id: p.target, author: p.targetAuthor }
          : undefined;
    if (named) {
      const what = p.t === 'msg' ? 'a reply' : p.t;
      if (!lower.includes(named.author.toLowerCase()))
        return `dm: ${what} names a message of a member`;
      const target = this.d.store.item(account, named.id, named.author);
      if (target && (target.kind !== 'message' || target.conversation !== p.conversation))
        return `dm: ${what} names a message of its conversation`;
    } else if (p.t !== 'msg') {
      // Its author's own message (held, or still on its way: a change only ever applies to the
      // message of its own sender, so one that comes first waits harmlessly).
      const target = this.d.store.item(account, p.target, sender);
      if (target && (target.kind !== 'message' || target.conversation !== p.conversation))
        return `dm: ${p.t} names a message of its conversation`;
      if (!target && this.d.store.heldByOthers(account, p.conversation, p.target, sender))
        return `dm: only its author may ${p.t} a message`;
    }
    return undefined;
  }

  /**
   * A new conversation's members as this device keeps them: each as the server spells the user
   * (this user's own name, and any user it has looked up), else as the sender spelt it (§10.4).
   */
  private spelt(account: string, members: readonly string[]): string[] {
    return sortedMembers(
      members.map((m) =>
        m.toLowerCase() === account.toLowerCase() ? account : (this.d.directory.canonical(m) ?? m),
      ),
    );
  }

  /** Logs an envelope refused (§10.4: `dm_refused`, one per envelope), from the mailbox or P2P. */
  refused(e: Pick<MailEnvelope, 'id' | 'from'>, err: HchatError, via: string): void {
    this.d.log.dm(e.from.username, 'dm_refused', {
      peer: via,
      from: `${e.from.username}/${e.from.deviceId}`,
      envelope: e.id,
      code: err.code,
      why: err.message.slice(0, 160),
    });
  }
}

/** True when two member lists name the same users, case ignored. */
function sameUsers(a: readonly string[], lower: readonly string[]): boolean {
  if (a.length !== lower.length) return false;
  const want = new Set(lower);
  return a.every((m) => want.has(m.toLowerCase()));
}

function peerName(s: DmSource): string {
  return s.kind === 'server' ? 'server' : s.name;
}

/** The row a received payload is stored as. */
function rowOf(p: DmPayload, author: string, source: DmMessageRow['source']): DmMessageRow {
  const head = {
    id: p.id,
    conversation: p.conversation,
    author,
    ts: p.ts,
    state: 'delivered' as const,
    source,
  };
  switch (p.t) {
    case 'msg':
      // Only the mentions its text names count, in the unread badge and the view (§10.4).
      return {
        ...head,
        kind: 'message',
        text: p.text,
        mentions: namedMentions(p.text, p.mentions),
        ...(p.replyTo ? { replyTo: p.replyTo } : {}),
      };
    case 'edit':
      return {
        ...head,
        kind: 'edit',
        text: p.text,
        mentions: namedMentions(p.text, p.mentions),
        target: p.target,
      };
    case 'delete':
      return { ...head, kind: 'delete', text: '', mentions: [], target: p.target };
    default:
      return {
        ...head,
        kind: p.t,
        text: '',
        mentions: [],
        target: p.target,
        targetAuthor: p.targetAuthor,
        emoji: p.emoji,
      };
  }
}
