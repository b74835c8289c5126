/**
 * Messages and channels as the local API shows them (README "Local API"); the web UI imports
 * these types (web/src/api.ts).
 */
import type { Channel, FileRef } from '../protocol/common.js';
import type { LocalMessage } from '../store/peer-store.js';
import { messageState } from '../shared/item-rules.js';

/** A reaction on a message: who reacted with this emoji, and whether the viewer did. */
export interface ApiReaction {
  emoji: string;
  count: number;
  users: string[];
  me: boolean;
}

/** A message as the local API shows it: its current state after edits, deletes and reactions. */
export interface ApiMessage {
  id: string;
  channelId: string;
  author: string;
  ts: number;
  lc: number;
  /** The text shown: the newest edit's ('' once deleted). */
  text: string;
  state: LocalMessage['state'];
  error?: string;
  /** The message this one answers, with a preview when this peer holds it. */
  replyTo?: { id: string; author?: string; text?: string; deleted?: boolean };
  /** Users mentioned (lower case), or `here`. */
  mentions?: string[];
  /** True when it mentions the viewer (by name, or `here`). */
  mentionsMe?: boolean;
  /** When it was last edited. */
  editedAt?: number;
  /** Set once deleted (by its author or the channel's owner); the text is gone. */
  deleted?: true;
  reactions: ApiReaction[];
  /** Its files (absent when none, and once deleted). */
  files?: ApiFile[];
  /** Its author is a bot: its key certificate says so (PROTOCOL.md §2.1; absent for a person). */
  bot?: true;
}

/** A channel as the local API shows it. */
export interface ApiChannel extends Channel {
  hosted: boolean;
  unread: number;
  /** Unread messages that mention this user. */
  mentions: number;
}

/** A file as the local API shows it: the message's reference and what this peer holds of it. */
export interface ApiFile extends FileRef {
  channelId: string;
  /** GET it for the bytes (fetched from peers or the server first when not held here). */
  url: string;
  state: 'complete' | 'partial' | 'missing';
  /** Bytes held here. */
  have: number;
}

/** What the view of a message needs from the peer's store. */
export interface ViewSource {
  getMessage(id: string): LocalMessage | undefined;
  related(ids: readonly string[]): LocalMessage[];
  channelOwner(channelId: string): string;
  /** A file of a message as shown, with what this peer holds of it. */
  fileView?(channelId: string, ref: FileRef): ApiFile;
}

/**
 * Reads the claims of a certificate the server signed (MessageVerifier.certClaims, which
 * remembers those it checked when the message arrived), or undefined when it cannot tell.
 */
export interface CertReader {
  certClaims(cert: string): { bot?: true } | undefined;
}

/** A preview's length: enough for one line of a quote. */
const PREVIEW = 200;

/**
 * Messages (kind `message`) as `viewer` sees them, each folded with the items naming it; `certs`
 * tells which authors' certificates are bots'.
 */
export function apiMessages(
  store: ViewSource,
  messages: readonly LocalMessage[],
  viewer: string,
  certs: CertReader,
): ApiMessage[] {
  const related = store.related(messages.map((m) => m.id));
  const byTarget = new Map<string, LocalMessage[]>();
  for (const r of related) {
    const list = byTarget.get(r.target!) ?? [];
    list.push(r);
    byTarget.set(r.target!, list);
  }
  const me = viewer.toLowerCase();
  return messages.map((m) => {
    const owner = store.channelOwner(m.channelId);
    const s = messageState(m, byTarget.get(m.id) ?? [], owner);
    const out: ApiMessage = {
      id: m.id,
      channelId: m.channelId,
      author: m.author,
      ts: m.ts,
      lc: m.lc,
      text: s.text ?? '',
      state: m.state,
      reactions: s.reactions.map((r) => ({
        emoji: r.emoji,
        count: r.users.length,
        users: r.users,
        me: r.users.some((u) => u.toLowerCase() === me),
      })),
    };
    if (m.error) out.error = m.error;
    if (certs.certClaims(m.cert)?.bot === true) out.bot = true;
    if (s.deleted) out.deleted = true;
    if (s.editedAt !== undefined) out.editedAt = s.editedAt;
    if (s.mentions) {
      out.mentions = [...s.mentions];
      out.mentionsMe = s.mentions.includes(me) || s.mentions.includes('here');
    }
    if (m.replyTo) out.replyTo = preview(store, m.replyTo, owner);
    if (m.files && !s.deleted && store.fileView)
      out.files = m.files.map((f) => store.fileView!(m.channelId, f));
    return out;
  });
}

function preview(store: ViewSource, id: string, owner: string): ApiMessage['replyTo'] {
  const t = store.getMessage(id);
  if (!t || (t.kind ?? 'message') !== 'message') return { id };
  const s = messageState(t, store.related([id]), owner);
  if (s.deleted) return { id, author: t.author, deleted: true };
  return { id, author: t.author, text: [...(s.text ?? '')].slice(0, PREVIEW).join('') };
}

/** A direct-message conversation as the local API shows it (README "Direct messages"). */
export interface ApiDm {
  id: string;
  /** Every member, the own user included, sorted. */
  members: string[];
  /** The other members' names, comma-separated. */
  title: string;
  /** Messages from others after the last read. */
  unread: number;
  /** Of those, how many mention the own user. */
  mentions: number;
  /** When the newest message was written (ms), or null. */
  lastTs: number | null;
  last?: { author: string; text: string; ts: number };
  /** Every other member's keys are marked verified, and unchanged since. */
  verified: boolean;
  /** Some other member's safety number changed and was not verified again. */
  keyChanged: boolean;
}

/** A message, or a notice, of a conversation. */
export interface ApiDmMessage {
  id: string;
  kind: 'message' | 'notice';
  /** For a notice: the user it concerns. */
  author: string;
  ts: number;
  text: string;
  /** Own messages: pending until every device got it; others': delivered. */
  state: 'pending' | 'delivered';
  mentions: string[];
  mentioned: boolean;
  /** Where it came from: P2P from the sender's device, the server's mailbox, or written here. */
  source: 'peer' | 'server' | 'local';
}

/** The safety numbers of a conversation's other members. */
export interface ApiSafety {
  members: Array<{
    username: string;
    /** 60 digits in 12 groups of 5. */
    safetyNumber: string;
    verified: boolean;
    changed: boolean;
    devices: number;
  }>;
}
