/**
 * A channel's messages as the local API shows them (api-shapes.ts `Message`): each folded with
 * the edits, deletes and reactions naming it, with a preview of the message it answers.
 */
import type { FileRef } from '../protocol/common.js';
import type { LocalMessage } from '../store/peer-store.js';
import { messageState, quotePreview } from '../shared/item-rules.js';
import type { ApiFile, ApiMessage } from './api-shapes.js';

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
    if (m.replyTo) out.replyTo = preview(store, m.replyTo, m.channelId, owner);
    if (m.files && !s.deleted && store.fileView)
      out.files = m.files.map((f) => store.fileView!(m.channelId, f));
    return out;
  });
}

/**
 * The preview of the message a reply answers: only one of the reply's own channel. `replyTo` is
 * any id (PROTOCOL.md §2.2), and this copy may hold channels the viewer does not read (another
 * account's here): a reply naming one of their messages shows no more than an unknown id.
 */
function preview(
  store: ViewSource,
  id: string,
  channelId: string,
  owner: string,
): ApiMessage['replyTo'] {
  const t = store.getMessage(id);
  if (!t || t.channelId !== channelId || (t.kind ?? 'message') !== 'message') return { id };
  const s = messageState(t, store.related([id]), owner);
  if (s.deleted) return { id, author: t.author, deleted: true };
  return { id, author: t.author, text: quotePreview(s.text ?? '') };
}
