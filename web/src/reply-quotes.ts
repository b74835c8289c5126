/**
 * Reply quotes follow the message they quote: when a live event brings a message's new state
 * (edited, deleted), every reply shown that quotes it gets the quote the peer would give it now
 * (src/peer/message-view.ts `preview`): the new text, or "deleted" with no text at all. Without
 * this, a deleted message's text stayed quoted on every open page but the deleter's.
 */
import type { Message } from './api.js';

type Quote = NonNullable<Message['replyTo']>;

/** The quote of `m` as it is now. */
function quoteOf(m: Message): Quote {
  return m.deleted
    ? { id: m.id, author: m.author, deleted: true }
    : { id: m.id, author: m.author, text: m.text };
}

function same(a: Quote, b: Quote): boolean {
  return a.deleted === b.deleted && a.author === b.author && a.text === b.text;
}

/**
 * `messages` with the quotes of any of `changed` as they are now; the same array when no shown
 * reply quotes them (or its quote is already so).
 */
export function requote(messages: Message[], changed: readonly Message[]): Message[] {
  if (changed.length === 0) return messages;
  const now = new Map(changed.map((m) => [m.id, m]));
  let out: Message[] | null = null;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    const quoted = m.replyTo && now.get(m.replyTo.id);
    if (!m.replyTo || !quoted || quoted.channelId !== m.channelId) continue;
    const q = quoteOf(quoted);
    if (same(q, m.replyTo)) continue;
    out ??= [...messages];
    out[i] = { ...m, replyTo: q };
  }
  return out ?? messages;
}
