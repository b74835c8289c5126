/**
 * The conversations part of a peer's `dms.db` (store/peer-dm-store.ts opens it): conversations
 * with their unread and mention counts, their messages and notices in the order this device
 * stored them, and the outbox of sealed envelopes of its own messages.
 */
import type Database from 'better-sqlite3';

export interface ConversationRow {
  id: string;
  members: string[];
  created: number;
  lastTs: number | null;
  unread: number;
  mentions: number;
}
export interface DmMessageRow {
  id: string;
  conversation: string;
  kind: 'message' | 'notice';
  author: string;
  ts: number;
  text: string;
  mentions: string[];
  state: 'pending' | 'delivered';
  source: 'peer' | 'server' | 'local';
}
export interface OutboxRow {
  envelopeId: string;
  messageId: string;
  toUser: string;
  toDevice: string;
  body: string;
}
interface RawMessage extends Omit<DmMessageRow, 'mentions'> {
  mentions: string;
}

export class DmConversationStore {
  private seq: number;

  constructor(readonly db: Database.Database) {
    this.seq =
      (this.db.prepare('SELECT max(seq) AS s FROM messages').get() as { s: number | null }).s ?? 0;
  }

  /** Runs `fn` in one transaction: all of it is stored, or none. */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  // ---- conversations and messages -------------------------------------------------------------

  conversation(account: string, id: string): ConversationRow | undefined {
    const r = this.db
      .prepare(
        'SELECT id, members, created, last_ts AS lastTs, unread, mentions FROM conversations WHERE account = ? AND id = ?',
      )
      .get(lc(account), id) as (Omit<ConversationRow, 'members'> & { members: string }) | undefined;
    return r && { ...r, members: JSON.parse(r.members) as string[] };
  }

  conversations(account: string): ConversationRow[] {
    const rows = this.db
      .prepare(
        'SELECT id, members, created, last_ts AS lastTs, unread, mentions FROM conversations WHERE account = ? ORDER BY coalesce(last_ts, created) DESC',
      )
      .all(lc(account)) as Array<Omit<ConversationRow, 'members'> & { members: string }>;
    return rows.map((r) => ({ ...r, members: JSON.parse(r.members) as string[] }));
  }

  /** Adds the conversation if it is new; answers whether it was. */
  addConversation(account: string, id: string, members: string[], created: number): boolean {
    return (
      this.db
        .prepare(
          'INSERT OR IGNORE INTO conversations (account, id, members, created) VALUES (?, ?, ?, ?)',
        )
        .run(lc(account), id, JSON.stringify(members), created).changes === 1
    );
  }

  markRead(account: string, id: string): void {
    this.db
      .prepare('UPDATE conversations SET unread = 0, mentions = 0 WHERE account = ? AND id = ?')
      .run(lc(account), id);
  }

  /** Adds a message (or notice) unless one with its id is held; answers whether it was new. */
  addMessage(
    account: string,
    m: DmMessageRow,
    opts: { unread: boolean; sealed?: boolean },
  ): boolean {
    const a = lc(account);
    const added =
      this.db
        .prepare(
          `INSERT OR IGNORE INTO messages (account, id, conversation, kind, author, ts, text, mentions, state, source, sealed, seq, author_lc)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          a,
          m.id,
          m.conversation,
          m.kind,
          m.author,
          m.ts,
          m.text,
          JSON.stringify(m.mentions),
          m.state,
          m.source,
          opts.sealed === false ? 0 : 1,
          this.seq + 1,
          lc(m.author),
        ).changes === 1;
    if (!added) return false;
    this.seq++;
    const mentioned = m.mentions.includes(a) ? 1 : 0;
    this.db
      .prepare(
        `UPDATE conversations SET last_ts = max(coalesce(last_ts, 0), ?),
           unread = unread + ?, mentions = mentions + ? WHERE account = ? AND id = ?`,
      )
      .run(m.ts, opts.unread ? 1 : 0, opts.unread ? mentioned : 0, a, m.conversation);
    return true;
  }

  /** A message by its id and author (ids are the author's: another may reuse one). */
  message(account: string, id: string, author: string): DmMessageRow | undefined {
    const r = this.db
      .prepare(
        'SELECT id, conversation, kind, author, ts, text, mentions, state, source FROM messages WHERE account = ? AND id = ? AND author_lc = ?',
      )
      .get(lc(account), id, lc(author)) as RawMessage | undefined;
    return r && decode(r);
  }

  /** The newest `limit` messages of a conversation before `before` (its id), oldest first. */
  messages(account: string, conversation: string, limit: number, before?: string): DmMessageRow[] {
    const a = lc(account);
    const cut = before
      ? (
          this.db
            .prepare('SELECT seq FROM messages WHERE account = ? AND id = ?')
            .get(a, before) as { seq: number } | undefined
        )?.seq
      : undefined;
    const rows = this.db
      .prepare(
        `SELECT id, conversation, kind, author, ts, text, mentions, state, source FROM messages
         WHERE account = ? AND conversation = ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
      )
      .all(a, conversation, cut ?? Number.MAX_SAFE_INTEGER, limit) as RawMessage[];
    return rows.reverse().map(decode);
  }

  lastMessage(account: string, conversation: string): DmMessageRow | undefined {
    return this.messages(account, conversation, 1).find((m) => m.kind === 'message');
  }

  /** Own messages whose envelopes are not sealed yet, oldest first. */
  unsealed(account: string): DmMessageRow[] {
    const rows = this.db
      .prepare(
        `SELECT id, conversation, kind, author, ts, text, mentions, state, source FROM messages
         WHERE account = ? AND sealed = 0 ORDER BY seq`,
      )
      .all(lc(account)) as RawMessage[];
    return rows.map(decode);
  }

  /** Marks an own message sealed. */
  markSealed(account: string, id: string): void {
    this.db
      .prepare('UPDATE messages SET sealed = 1 WHERE account = ? AND id = ? AND author_lc = ?')
      .run(lc(account), id, lc(account));
  }

  /** Marks an own message delivered; true when it was pending. */
  setDelivered(account: string, id: string): boolean {
    return (
      this.db
        .prepare(
          "UPDATE messages SET state = 'delivered' WHERE account = ? AND id = ? AND author_lc = ? AND state = 'pending'",
        )
        .run(lc(account), id, lc(account)).changes === 1
    );
  }

  pendingCount(account: string): number {
    return (
      this.db
        .prepare("SELECT count(*) AS n FROM messages WHERE account = ? AND state = 'pending'")
        .get(lc(account)) as { n: number }
    ).n;
  }

  // ---- outbox ---------------------------------------------------------------------------------

  addEnvelope(account: string, e: OutboxRow): void {
    this.db
      .prepare(
        'INSERT OR IGNORE INTO outbox (account, envelope_id, message_id, to_user, to_device, body) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(lc(account), e.envelopeId, e.messageId, e.toUser, e.toDevice, e.body);
  }

  outbox(account: string, limit = 500): OutboxRow[] {
    return this.db
      .prepare(
        `SELECT envelope_id AS envelopeId, message_id AS messageId, to_user AS toUser,
           to_device AS toDevice, body FROM outbox WHERE account = ? ORDER BY rowid LIMIT ?`,
      )
      .all(lc(account), limit) as OutboxRow[];
  }

  hasEnvelope(account: string, envelopeId: string): boolean {
    return !!this.db
      .prepare('SELECT 1 FROM outbox WHERE account = ? AND envelope_id = ?')
      .get(lc(account), envelopeId);
  }

  /** Drops a delivered envelope; answers the message's id when none of its envelopes is left. */
  dropEnvelope(account: string, envelopeId: string): string | undefined {
    const a = lc(account);
    const row = this.db
      .prepare('SELECT message_id AS m FROM outbox WHERE account = ? AND envelope_id = ?')
      .get(a, envelopeId) as { m: string } | undefined;
    if (!row) return undefined;
    this.db.prepare('DELETE FROM outbox WHERE account = ? AND envelope_id = ?').run(a, envelopeId);
    const left = this.db
      .prepare('SELECT 1 FROM outbox WHERE account = ? AND message_id = ? LIMIT 1')
      .get(a, row.m);
    return left ? undefined : row.m;
  }
}

export function lc(s: string): string {
  return s.toLowerCase();
}

function decode(r: RawMessage): DmMessageRow {
  return { ...r, mentions: JSON.parse(r.mentions) as string[] };
}
