/**
 * The embedded server store: SQLite in `<data>/server.db`, for one server process. Its driver is
 * synchronous, so each method does its work at once and answers a settled promise; a batch of
 * posts is one IMMEDIATE transaction.
 */
import type Database from 'better-sqlite3';
import { HchatError } from '../protocol/errors.js';
import type { Channel, Role, StoredMessage } from '../protocol/common.js';
import { openDatabase } from './sqlite.js';
import { SearchIndex } from './search-index.js';
import { ftsMatch } from '../shared/search-text.js';
import { lookAlikeKeys } from '../shared/look-alike.js';
import { channelSettings, itemRefusal } from '../shared/item-rules.js';
import { erasedByDelete, erasedOnArrival, type ItemLookup } from './item-effects.js';
import { itemColumns, itemOfColumns, sameItem, tombstoneColumns } from './item-columns.js';
import { SERVER_MIGRATIONS } from './sqlite-server-schema.js';
import { SqliteLimits } from './sqlite-limits.js';
import type {
  LimitSweep,
  LoginBackoff,
  LoginBudget,
  LoginCharge,
  RegistrationTicket,
} from './limit-rows.js';
import { serverQueries, type ServerQueries } from './sqlite-server-queries.js';
import { toChannel, toMessage, toSession, type MessageRow } from './sqlite-server-rows.js';
import {
  channelCapError,
  deletedChannelIdError,
  lookAlikeTaken,
  revokedPoster,
  type ChannelCaps,
  type ChannelPage,
  type HistoryPage,
  type InsertResult,
  type MessageInsert,
  type ServerStore,
  type SessionRecord,
  type UserRecord,
  type VisitorNameHeld,
  type VisitorNameLease,
} from './server-store.js';
import { MemoryVisitorNames } from './visitor-names.js';

/** The embedded SQLite store, in `<data>/server.db`. */
export class SqliteServerStore implements ServerStore {
  private readonly db: Database.Database;
  private readonly q: ServerQueries;
  private readonly index: SearchIndex;
  private readonly limits: SqliteLimits;
  /** One process owns the file: its visitors are the deployment's (visitor-names.ts). */
  private readonly visitorNames = new MemoryVisitorNames();
  private readonly insertTx: Database.Transaction<
    (batch: readonly MessageInsert[], now: number) => (InsertResult | HchatError)[]
  >;

  constructor(file: string) {
    this.db = openDatabase(file, SERVER_MIGRATIONS);
    const db = this.db;
    this.q = serverQueries(db);
    this.index = new SearchIndex(db);
    this.limits = new SqliteLimits(db);
    this.insertTx = db.transaction((batch: readonly MessageInsert[], now: number) =>
      this.insertBatch(batch, now),
    );
  }

  async createUser(user: UserRecord): Promise<void> {
    this.db.transaction(() => {
      try {
        this.q.insertUser.run(user.username, user.passHash, Date.now());
      } catch (err) {
        if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
          throw new HchatError('E_USERNAME_TAKEN');
        }
        throw err;
      }
      try {
        for (const k of lookAlikeKeys(user.username)) this.q.insertNameKey.run(k, user.username);
      } catch (err) {
        if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY')
          throw lookAlikeTaken();
        throw err;
      }
    })();
  }

  async getUser(username: string): Promise<UserRecord | undefined> {
    const r = this.q.getUser.get(username);
    return r && { username: r.username, passHash: r.pass_hash };
  }

  async usernames(): Promise<string[]> {
    return this.db
      .prepare<[], { username: string }>('SELECT username FROM users')
      .all()
      .map((r) => r.username);
  }

  async createSession(s: Omit<SessionRecord, 'revoked'>): Promise<void> {
    this.q.insertSession.run(s.sessionId, s.username, s.role, s.createdAt, s.publicKey);
  }

  async getSession(sessionId: string): Promise<SessionRecord | undefined> {
    const r = this.q.getSession.get(sessionId);
    return r && toSession(r);
  }

  async liveSessions(username: string, role: Role): Promise<SessionRecord[]> {
    return this.q.liveSessions.all(username, role).map(toSession);
  }

  async memberships(username: string): Promise<number> {
    return this.q.memberships.get(username)?.n ?? 0;
  }

  async ownedChannels(username: string): Promise<number> {
    return this.q.ownedChannels.get(username)?.n ?? 0;
  }

  async revokeSession(sessionId: string): Promise<void> {
    this.q.revokeSession.run(Date.now(), sessionId);
  }

  async createChannel(c: Channel, caps?: ChannelCaps): Promise<void> {
    this.db.transaction(() => {
      // Counted and inserted in one synchronous transaction: nothing comes between.
      if (caps) {
        const owned = this.q.ownedChannels.get(c.owner)?.n ?? 0;
        const joined = this.q.memberships.get(c.owner)?.n ?? 0;
        if (owned >= caps.owned || joined >= caps.memberships)
          throw channelCapError('own', caps.owned);
      }
      // A deleted channel's id is never given to another channel (PROTOCOL.md §2.2).
      if (this.q.isDeletedChannel.get(c.id)) throw deletedChannelIdError();
      try {
        this.q.insertChannel.run(c.id, c.name, c.owner, c.allowVisitors ? 1 : 0, c.createdAt);
      } catch (err) {
        if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
          throw new HchatError('E_CHANNEL_EXISTS');
        }
        throw err;
      }
      this.q.addMember.run(c.id, c.owner, c.createdAt);
    })();
  }

  async getChannel(id: string): Promise<Channel | undefined> {
    return this.channel(id);
  }

  private channel(id: string): Channel | undefined {
    const r = this.q.getChannel.get(id);
    return r && toChannel(r);
  }

  async listChannels(o: ChannelPage): Promise<Channel[]> {
    const t = o.after?.createdAt ?? Number.MIN_SAFE_INTEGER;
    const id = o.after?.id ?? '';
    // removed.username is NOCASE: the names match in any case.
    const removedOf = JSON.stringify(o.removedOf ?? []);
    return this.q.listChannels
      .all(t, t, id, o.visitorsOnly ? 1 : 0, removedOf, o.limit)
      .map(toChannel);
  }

  async channelsOf(username: string): Promise<Channel[]> {
    return this.q.channelsOf.all(username).map(toChannel);
  }

  async addMember(channelId: string, username: string, maxMemberships?: number): Promise<void> {
    this.db.transaction(() => {
      if (maxMemberships !== undefined && !this.q.isMember.get(channelId, username)) {
        if ((this.q.memberships.get(username)?.n ?? 0) >= maxMemberships)
          throw channelCapError('join', maxMemberships);
      }
      this.q.addMember.run(channelId, username, Date.now());
    })();
  }

  async isMember(channelId: string, username: string): Promise<boolean> {
    return this.q.isMember.get(channelId, username) !== undefined;
  }

  async members(channelId: string): Promise<string[]> {
    return this.q.members.all(channelId).map((r) => r.username);
  }

  async insertMessages(batch: readonly MessageInsert[]): Promise<(InsertResult | HchatError)[]> {
    // IMMEDIATE: the write lock is taken before last_seq is read, so that another process on
    // the same file can never hand out the same numbers.
    const out = this.insertTx.immediate(batch, Date.now());
    this.index.written();
    return out;
  }

  /**
   * One transaction per batch. Sequence numbers are counted in memory inside it and written
   * back once per channel; a message whose id is already stored is found by the insert's
   * conflict (no lookup before each insert) and answered as a duplicate, without a number.
   */
  private insertBatch(batch: readonly MessageInsert[], now: number): (InsertResult | HchatError)[] {
    const next = new Map<string, number>();
    // Read in this transaction: a logout stored before it is seen, whichever process made it.
    const revoked = new Set<string>();
    for (const sid of new Set(batch.flatMap((i) => (i.session === undefined ? [] : [i.session]))))
      if (this.q.getSession.get(sid)?.revoked) revoked.add(sid);
    const out = batch.map(({ message: m, author, session, leavers }): InsertResult | HchatError => {
      if (session !== undefined && revoked.has(session)) return revokedPoster();
      let last = next.get(m.channelId);
      if (last === undefined) {
        const row = this.q.lastSeq.get(m.channelId);
        if (!row) return new HchatError('E_CHANNEL_NOT_FOUND');
        last = row.last_seq;
      }
      const seq = last + 1;
      const item = { ...m, author };
      // Whether it may change what it names is decided here, in batch order: an edit posted
      // right after its message (pipelined) finds it. A message needs no rule (nor a lookup);
      // a change already stored is a duplicate, answered below.
      if ((m.kind ?? 'message') !== 'message' && !this.q.getMessage.get(m.id)) {
        const target = m.target === undefined ? undefined : this.item(m.target);
        const owner = this.channel(m.channelId)?.owner ?? '';
        const refused = itemRefusal(item, owner, target, true);
        if (refused) return refused;
      }
      const c = this.erasedHere(item) ? tombstoneColumns(m) : itemColumns(m);
      const { changes } = this.q.insertMessage.run(
        m.id,
        m.channelId,
        seq,
        author,
        m.ts,
        m.lc,
        c.text,
        m.sig,
        m.cert,
        c.kind,
        c.target,
        c.ext,
        now,
      );
      if (changes === 1) {
        next.set(m.channelId, seq);
        // As stored (a tombstone if its delete was here first); a delete erases others only.
        const stored = { id: m.id, channelId: m.channelId, seq, author, ts: m.ts, lc: m.lc };
        this.applyDelete(item);
        this.applyChannelChange(item, leavers);
        // A deleted channel takes no more items, in this batch or after.
        if (item.kind === 'channel' && item.change?.deleted) next.delete(m.channelId);
        return {
          seq,
          duplicate: false,
          stored: { ...stored, ...itemOfColumns(c), sig: m.sig, cert: m.cert },
        };
      }
      const existing = this.q.getMessage.get(m.id)!;
      if (!sameItem(toMessage(existing), item)) return new HchatError('E_MESSAGE_CONFLICT');
      return { seq: existing.seq, duplicate: true, stored: toMessage(existing) };
    });
    for (const [channelId, seq] of next) this.q.setLastSeq.run(seq, channelId);
    return out;
  }

  async history(channelId: string, limit: number, before?: string): Promise<HistoryPage> {
    let rows: MessageRow[];
    if (before === undefined) {
      rows = this.q.newest.all(channelId, limit + 1);
    } else {
      const b = this.q.getMessage.get(before);
      // PROTOCOL.md §3.3: `before` names a message of this channel, not any other item.
      if (!b || b.channel_id !== channelId || b.kind !== 'message')
        throw new HchatError('E_NOT_FOUND', 'no such message');
      rows = this.q.olderThan.all(channelId, b.ts, b.lc, b.id, limit + 1);
    }
    const hasMore = rows.length > limit;
    if (hasMore) rows.pop();
    const messages = rows.reverse().map(toMessage);
    return { messages, hasMore, related: await this.related(messages.map((m) => m.id)) };
  }

  async since(channelId: string, since: number, limit: number): Promise<StoredMessage[]> {
    return this.q.since.all(channelId, since, limit).map(toMessage);
  }

  async lastSeq(channelId: string): Promise<number> {
    return this.q.lastSeq.get(channelId)?.last_seq ?? 0;
  }

  async getItem(id: string): Promise<StoredMessage | undefined> {
    return this.item(id);
  }

  private item(id: string): StoredMessage | undefined {
    const r = this.q.getMessage.get(id);
    return r && toMessage(r);
  }

  async related(ids: readonly string[]): Promise<StoredMessage[]> {
    return ids.flatMap((id) => this.q.related.all(id).map(toMessage));
  }

  async search(
    words: readonly string[],
    channelIds: readonly string[],
    limit: number,
    before?: string,
  ): Promise<StoredMessage[]> {
    const match = ftsMatch(words);
    if (match === undefined) return [];
    return this.index.hits(match, channelIds, limit, before).flatMap((h) => {
      const r = this.q.getMessage.get(h.id);
      return r ? [toMessage(r)] : [];
    });
  }

  /** How the erasure rules (item-effects.ts) find items here. */
  private readonly lookup: ItemLookup<StoredMessage> = {
    getItem: (id) => this.item(id),
    related: (id) => this.q.related.all(id).map(toMessage),
    owner: (channelId) => this.channel(channelId)?.owner ?? '',
  };

  private erasedHere(m: Omit<StoredMessage, 'seq'>): boolean {
    return erasedOnArrival(m, this.lookup);
  }

  async isRemoved(channelId: string, username: string): Promise<boolean> {
    return this.q.isRemoved.get(channelId, username) !== undefined;
  }

  async removeMember(channelId: string, username: string): Promise<void> {
    this.q.removeMember.run(channelId, username);
  }

  /**
   * After the owner's channel item is stored: the directory takes its settings (per field the
   * newest), a removed member loses membership for good, and a deleted channel is dropped with
   * everything in it.
   */
  private applyChannelChange(
    item: Omit<StoredMessage, 'seq'>,
    leavers: readonly string[] = [],
  ): void {
    if (item.kind !== 'channel' || !item.change) return;
    const c = this.channel(item.channelId);
    if (!c) return;
    if (item.change.deleted) {
      this.q.dropMessages.run(c.id);
      this.q.dropMembers.run(c.id);
      this.q.dropChannel.run(c.id);
      this.q.addDeletedChannel.run(c.id, Date.now());
      return;
    }
    const s = channelSettings(this.q.channelItems.all(c.id).map(toMessage), c.owner);
    this.q.setChannel.run(
      s.name ?? c.name,
      s.topic ?? c.topic ?? '',
      (s.allowVisitors ?? c.allowVisitors) ? 1 : 0,
      c.id,
    );
    const gone = item.change.remove;
    if (gone && gone.toLowerCase() !== c.owner.toLowerCase()) {
      this.q.removeMember.run(c.id, gone);
      this.q.addRemoved.run(c.id, gone);
      // The accounts that leave with it (its bots), in the same transaction; never the owner.
      for (const u of leavers)
        if (u.toLowerCase() !== c.owner.toLowerCase()) this.q.removeMember.run(c.id, u);
    }
  }

  /** After a delete is stored: its message and that message's edits lose their text. */
  private applyDelete(d: Omit<StoredMessage, 'seq'>): void {
    for (const m of erasedByDelete(d, this.lookup)) {
      const t = tombstoneColumns(m);
      this.q.erase.run(t.text, t.ext, m.id);
    }
  }

  async loginBudgets(keys: readonly string[], now: number, forgetAfterMs: number) {
    return this.limits.loginBudgets(keys, now, forgetAfterMs);
  }

  async addLoginFailures(
    charges: readonly LoginCharge[],
    now: number,
    o: LoginBackoff,
  ): Promise<LoginBudget[]> {
    return this.limits.addLoginFailures(charges, now, o);
  }

  async clearLoginBudget(key: string): Promise<void> {
    this.limits.clearLoginBudget(key);
  }

  async knownLoginPrefixes(account: string) {
    return this.limits.knownLoginPrefixes(account);
  }

  async rememberLoginPrefix(account: string, prefix: string, now: number, keep: number) {
    this.limits.rememberLoginPrefix(account, prefix, now, keep);
  }

  async takeRegistration(
    prefix: string,
    now: number,
    limit: number,
    windowMs: number,
  ): Promise<RegistrationTicket> {
    return this.limits.takeRegistration(prefix, now, limit, windowMs);
  }

  async releaseRegistration(id: string): Promise<void> {
    this.limits.releaseRegistration(id);
  }

  async sweepLimits(now: number, o: LimitSweep): Promise<number> {
    return this.limits.sweepLimits(now, o);
  }

  async claimVisitorName(lease: VisitorNameLease, now: number): Promise<boolean> {
    return this.visitorNames.claim(lease, now);
  }

  async renewVisitorNames(
    instance: string,
    leases: readonly VisitorNameHeld[],
    now: number,
    expiresAt: number,
  ): Promise<string[]> {
    return this.visitorNames.renew(instance, leases, now, expiresAt);
  }

  async releaseVisitorName(sessionId: string, instance: string): Promise<void> {
    this.visitorNames.release(sessionId, instance);
  }

  async visitorNameHolder(sessionId: string, now: number): Promise<string | undefined> {
    return this.visitorNames.holder(sessionId, now);
  }

  async unheldVisitorSessions(now: number, max: number): Promise<string[]> {
    const held = this.visitorNames.heldSessions(now);
    const out: string[] = [];
    for (const { session_id: id } of this.q.liveVisitorSessions.iterate()) {
      if (out.length >= max) break;
      if (!held.has(id)) out.push(id);
    }
    return out;
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    this.index.close();
    if (this.db.open) this.db.close();
  }
}
