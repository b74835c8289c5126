/**
 * The conversations part of a peer's `dms.db` (store/peer-dm-store.ts opens it): conversations
 * with their unread and mention counts, their messages and notices in the order this device
 * stored them, and the outbox of sealed envelopes of its own messages.
 */
import type Database from 'better-sqlite3';
import { foldReactions, quotePreview } from '../shared/item-rules.js';

export interface ConversationRow {
  id: string;
  members: string[];
  created: number;
  lastTs: number | null;
  unread: number;
  mentions: number;
}
/** A row of a conversation: a message or notice, or a change naming a message (`target`). */
export type DmKind = 'message' | 'notice' | 'edit' | 'delete' | 'react' | 'unreact';

export interface DmMessageRow {
  id: string;
  conversation: string;
  /**
   * `edit` and `delete`: its author's change to their message `target`; `react` and
   * `unreact`: its author's reaction (`emoji`) to any member's message `target`, by
   * `targetAuthor`.
   */
  kind: DmKind;
  author: string;
  ts: number;
  text: string;
  mentions: string[];
  state: 'pending' | 'delivered';
  source: 'peer' | 'server' | 'local';
  target?: string;
  targetAuthor?: string;
  emoji?: string;
  /** A reply: the message it answers. */
  replyTo?: { id: string; author: string };
}

/** A message as it reads now: its author's latest edit and deletion folded in, its reactions. */
export interface DmShownRow extends DmMessageRow {
  /** When its author last edited it (that edit's `ts`). */
  edited?: number;
  deleted?: boolean;
  /** Per emoji, in order of its earliest standing reaction: who reacted (none once deleted). */
  reactions?: Array<{ emoji: string; users: string[] }>;
  /** A reply's original as it reads here: its text when held and not deleted. */
  reply?: { id: string; author: string; text?: string; deleted?: true };
}
export interface OutboxRow {
  envelopeId: string;
  messageId: string;
  toUser: string;
  toDevice: string;
  body: string;
}
interface RawMessage extends Omit<
  DmMessageRow,
  'mentions' | 'target' | 'targetAuthor' | 'emoji' | 'replyTo'
> {
  mentions: string;
  target: string | null;
  targetAuthor: string | null;
  emoji: string | null;
  replyTo: string | null;
  replyAuthor: string | null;
}

const COLUMNS = `id, conversation, kind, author, ts, text, mentions, state, source, target,
  target_author AS targetAuthor, emoji, reply_to AS replyTo, reply_author AS replyAuthor`;
/** What a conversation shows: its messages and notices (changes fold into them). */
const SHOWN = "kind IN ('message', 'notice')";

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
      .prepare(
        'UPDATE conversations SET unread = 0, mentions = 0, read_seq = ? WHERE account = ? AND id = ?',
      )
      .run(this.seq, lc(account), id);
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
          `INSERT OR IGNORE INTO messages (account, id, conversation, kind, author, ts, text,
             mentions, state, source, sealed, seq, author_lc, target, target_author, emoji,
             reply_to, reply_author)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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
          m.target ?? null,
          m.targetAuthor ?? null,
          m.emoji ?? null,
          m.replyTo?.id ?? null,
          m.replyTo?.author ?? null,
        ).changes === 1;
    if (!added) return false;
    this.seq++;
    // A reaction changes a message: no new activity, nothing unread.
    if (m.kind === 'react' || m.kind === 'unreact') return true;
    // A change (or a message whose deletion came first) leaves nothing of a deleted text.
    const erased = this.eraseIfDeleted(a, m.conversation, lc(m.author), m.target ?? m.id);
    // A deletion takes back what its message counted as unread, if it was not read yet.
    if (m.kind === 'delete' && erased?.counted) this.uncount(a, m.conversation, erased.counted);
    // An edit or a deletion changes a message, and a notice is this device's own word: no new
    // activity (the list keeps its order and its preview), nothing unread; nor is a message
    // whose deletion came first (nobody can read it).
    if (m.kind === 'edit' || m.kind === 'delete' || m.kind === 'notice' || erased) return true;
    const mentioned = m.mentions.includes(a) ? 1 : 0;
    this.db
      .prepare(
        `UPDATE conversations SET last_ts = max(coalesce(last_ts, 0), ?),
           unread = unread + ?, mentions = mentions + ? WHERE account = ? AND id = ?`,
      )
      .run(m.ts, opts.unread ? 1 : 0, opts.unread ? mentioned : 0, a, m.conversation);
    return true;
  }

  /** A row by its id and author (ids are the author's: another may reuse one), of any kind. */
  item(account: string, id: string, author: string): DmMessageRow | undefined {
    const r = this.db
      .prepare(`SELECT ${COLUMNS} FROM messages WHERE account = ? AND id = ? AND author_lc = ?`)
      .get(lc(account), id, lc(author)) as RawMessage | undefined;
    return r && decode(r);
  }

  /** Whether a message `id` of the conversation is held from someone other than `author`. */
  heldByOthers(account: string, conversation: string, id: string, author: string): boolean {
    return !!this.db
      .prepare(
        `SELECT 1 FROM messages WHERE account = ? AND conversation = ? AND id = ?
           AND author_lc != ? AND kind = 'message'`,
      )
      .get(lc(account), conversation, id, lc(author));
  }

  /** A message or notice by its id and author, as it reads now (edits and deletion folded in). */
  message(account: string, id: string, author: string): DmShownRow | undefined {
    const r = this.db
      .prepare(
        `SELECT ${COLUMNS} FROM messages WHERE account = ? AND id = ? AND author_lc = ? AND ${SHOWN}`,
      )
      .get(lc(account), id, lc(author)) as RawMessage | undefined;
    return r && this.fold(account, [decode(r)])[0];
  }

  /** The `ts` of `account`'s newest reaction (or its taking back) `emoji` to `target`, or 0. */
  lastVote(
    account: string,
    conversation: string,
    target: { id: string; author: string },
    emoji: string,
  ): number {
    const r = this.db
      .prepare(
        `SELECT max(ts) AS ts FROM messages WHERE account = ? AND conversation = ? AND target = ?
           AND kind IN ('react', 'unreact') AND author_lc = ? AND lower(target_author) = ?
           AND emoji = ?`,
      )
      .get(lc(account), conversation, target.id, lc(account), lc(target.author), emoji) as {
      ts: number | null;
    };
    return r.ts ?? 0;
  }

  /**
   * The newest `limit` messages of a conversation before `before` (its id), oldest first: in
   * the order of their writers' clocks (`ts`, then id and author), the same on every device
   * whatever order they arrived in.
   */
  messages(account: string, conversation: string, limit: number, before?: string): DmShownRow[] {
    const a = lc(account);
    const cut = before
      ? (this.db
          .prepare(
            `SELECT ts, id, author_lc AS author FROM messages
             WHERE account = ? AND conversation = ? AND id = ?
             ORDER BY ts, author_lc LIMIT 1`,
          )
          .get(a, conversation, before) as { ts: number; id: string; author: string } | undefined)
      : undefined;
    const rows = (
      cut
        ? this.db
            .prepare(
              `SELECT ${COLUMNS} FROM messages
               WHERE account = ? AND conversation = ? AND ${SHOWN}
                 AND (ts, id, author_lc) < (?, ?, ?)
               ORDER BY ts DESC, id DESC, author_lc DESC LIMIT ?`,
            )
            .all(a, conversation, cut.ts, cut.id, cut.author, limit)
        : this.db
            .prepare(
              `SELECT ${COLUMNS} FROM messages WHERE account = ? AND conversation = ? AND ${SHOWN}
               ORDER BY ts DESC, id DESC, author_lc DESC LIMIT ?`,
            )
            .all(a, conversation, limit)
    ) as RawMessage[];
    return this.fold(account, rows.reverse().map(decode));
  }

  /** The conversation's last message among its newest 20 rows (notices and deleted ones skipped). */
  lastMessage(account: string, conversation: string): DmShownRow | undefined {
    return this.messages(account, conversation, 20)
      .reverse()
      .find((m) => m.kind === 'message' && !m.deleted);
  }

  /**
   * The conversation's message `id` as it reads now, whoever wrote it: the first stored when
   * members reused an id (the API names messages by id alone; a message is its author's).
   */
  find(account: string, conversation: string, id: string): DmShownRow | undefined {
    const r = this.db
      .prepare(
        `SELECT ${COLUMNS} FROM messages WHERE account = ? AND conversation = ? AND id = ?
           AND kind = 'message' ORDER BY seq LIMIT 1`,
      )
      .get(lc(account), conversation, id) as RawMessage | undefined;
    return r && this.fold(account, [decode(r)])[0];
  }

  /** Messages with what names them folded in (`changed`), and each reply's original. */
  private fold(account: string, rows: DmMessageRow[]): DmShownRow[] {
    const shown = this.changed(account, rows);
    const replies = shown.filter((m) => m.replyTo);
    if (replies.length === 0) return shown;
    const wanted = replies.map((m) => m.replyTo!);
    const originals = this.changed(
      account,
      (
        this.db
          .prepare(
            `SELECT ${COLUMNS} FROM messages WHERE account = ? AND conversation = ?
               AND id IN (SELECT value FROM json_each(?)) AND kind = 'message'`,
          )
          .all(
            lc(account),
            replies[0]!.conversation,
            JSON.stringify(wanted.map((w) => w.id)),
          ) as RawMessage[]
      ).map(decode),
    );
    const byKey = new Map(originals.map((o) => [`${lc(o.author)}/${o.id}`, o]));
    return shown.map((m) => {
      if (!m.replyTo) return m;
      const { id, author } = m.replyTo;
      const o = byKey.get(`${lc(author)}/${id}`);
      if (!o) return { ...m, reply: { id, author } };
      if (o.deleted) return { ...m, reply: { id, author: o.author, deleted: true } };
      return {
        ...m,
        reply: { id, author: o.author, text: quotePreview(o.text) },
      };
    });
  }

  /**
   * Each message with what names it folded in: deleted when its author deleted it (its text is
   * gone, and its reactions with it), else the text of its author's latest edit (by time, then
   * id), and the members' reactions (foldReactions). Another member's edit or deletion of it
   * never counts; a reaction counts for the message of the author it names.
   */
  private changed(account: string, rows: DmMessageRow[]): DmShownRow[] {
    const messages = rows.filter((m) => m.kind === 'message');
    if (messages.length === 0) return rows;
    const changes = this.db
      .prepare(
        `SELECT ${COLUMNS}, author_lc AS authorLc FROM messages
         WHERE account = ? AND conversation = ? AND target IN (SELECT value FROM json_each(?))
           AND kind IN ('edit', 'delete', 'react', 'unreact')`,
      )
      .all(
        lc(account),
        messages[0]!.conversation,
        JSON.stringify(messages.map((m) => m.id)),
      ) as Array<RawMessage & { authorLc: string }>;
    if (changes.length === 0) return rows;
    const byTarget = new Map<string, Array<RawMessage & { authorLc: string }>>();
    for (const c of changes) {
      // Whose message it names: an edit or deletion its own author's, a reaction the one named.
      const of = c.kind === 'react' || c.kind === 'unreact' ? lc(c.targetAuthor ?? '') : c.authorLc;
      const key = `${of}/${c.target}`;
      const list = byTarget.get(key);
      if (list) list.push(c);
      else byTarget.set(key, [c]);
    }
    return rows.map((m) => {
      const named = m.kind === 'message' ? byTarget.get(`${lc(m.author)}/${m.id}`) : undefined;
      if (!named) return m;
      if (named.some((c) => c.kind === 'delete'))
        return { ...m, text: '', mentions: [], deleted: true };
      const votes = named.flatMap((c) =>
        (c.kind === 'react' || c.kind === 'unreact') && c.emoji !== null
          ? [{ id: c.id, author: c.author, ts: c.ts, lc: 0, kind: c.kind, emoji: c.emoji }]
          : [],
      );
      const reactions = votes.length ? { reactions: foldReactions(votes) } : {};
      const edits = named.filter((c) => c.kind === 'edit');
      if (edits.length === 0) return { ...m, ...reactions };
      const last = edits.reduce((x, y) => (y.ts > x.ts || (y.ts === x.ts && y.id > x.id) ? y : x));
      return {
        ...m,
        ...reactions,
        text: last.text,
        mentions: JSON.parse(last.mentions) as string[],
        edited: last.ts,
      };
    });
  }

  /**
   * Erases the text of `authorLc`'s message `id` and of its edits once its author deleted it:
   * a deletion leaves nothing of what it deleted on this device. Answers undefined when it is
   * not deleted, else whether the message (held, someone else's) counted for this user.
   */
  private eraseIfDeleted(
    account: string,
    conversation: string,
    authorLc: string,
    id: string,
  ): { counted?: { seq: number; mentioned: boolean } } | undefined {
    const deleted = this.db
      .prepare(
        `SELECT 1 FROM messages WHERE account = ? AND conversation = ? AND author_lc = ?
           AND target = ? AND kind = 'delete'`,
      )
      .get(account, conversation, authorLc, id);
    if (!deleted) return undefined;
    // What the message was before it is erased: whether it counted as unread, and as a mention
    // (once: a second deletion of it finds it erased already).
    const was = this.db
      .prepare(
        `SELECT seq, mentions FROM messages WHERE account = ? AND conversation = ?
           AND author_lc = ? AND id = ? AND kind = 'message' AND text != ''`,
      )
      .get(account, conversation, authorLc, id) as { seq: number; mentions: string } | undefined;
    // Own edits not sent yet never will be: what they would say is gone.
    this.db
      .prepare(
        `DELETE FROM messages WHERE account = ? AND conversation = ? AND author_lc = ?
           AND target = ? AND kind = 'edit' AND sealed = 0`,
      )
      .run(account, conversation, authorLc, id);
    // An own message deleted before it was sealed (written offline, say) never leaves this
    // device, and neither does its deletion: nobody else has anything to delete.
    const unsent = this.db
      .prepare(
        `UPDATE messages SET sealed = 1, state = 'delivered'
         WHERE account = ? AND conversation = ? AND author_lc = ? AND id = ? AND kind = 'message'
           AND sealed = 0`,
      )
      .run(account, conversation, authorLc, id).changes;
    if (unsent)
      this.db
        .prepare(
          `UPDATE messages SET sealed = 1, state = 'delivered'
           WHERE account = ? AND conversation = ? AND author_lc = ? AND target = ?
             AND kind = 'delete' AND sealed = 0`,
        )
        .run(account, conversation, authorLc, id);
    this.db
      .prepare(
        `UPDATE messages SET text = '', mentions = '[]'
         WHERE account = ? AND conversation = ? AND author_lc = ?
           AND ((id = ? AND kind = 'message') OR (target = ? AND kind = 'edit'))`,
      )
      .run(account, conversation, authorLc, id, id);
    const counted =
      was && authorLc !== account
        ? { seq: was.seq, mentioned: (JSON.parse(was.mentions) as string[]).includes(account) }
        : undefined;
    return { counted };
  }

  /**
   * A message of someone else deleted: if it came after the conversation was last read, it no
   * longer counts as unread (nor as a mention).
   */
  private uncount(
    account: string,
    conversation: string,
    m: { seq: number; mentioned: boolean },
  ): void {
    this.db
      .prepare(
        `UPDATE conversations SET unread = max(unread - 1, 0),
           mentions = max(mentions - ?, 0)
         WHERE account = ? AND id = ? AND read_seq < ?`,
      )
      .run(m.mentioned ? 1 : 0, account, conversation, m.seq);
  }

  /** Own messages (and changes) whose envelopes are not sealed yet, oldest first. */
  unsealed(account: string): DmMessageRow[] {
    const rows = this.db
      .prepare(`SELECT ${COLUMNS} FROM messages WHERE account = ? AND sealed = 0 ORDER BY seq`)
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
  const { target, targetAuthor, emoji, replyTo, replyAuthor, ...rest } = r;
  return {
    ...rest,
    mentions: JSON.parse(r.mentions) as string[],
    ...(target !== null ? { target } : {}),
    ...(targetAuthor !== null ? { targetAuthor } : {}),
    ...(emoji !== null ? { emoji } : {}),
    ...(replyTo !== null && replyAuthor !== null
      ? { replyTo: { id: replyTo, author: replyAuthor } }
      : {}),
  };
}
