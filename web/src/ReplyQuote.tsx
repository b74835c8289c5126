/**
 * The one-line quote above a reply ("bob: text…", or that the original was deleted); a button
 * that jumps to the original message when this peer holds it.
 */
import { emojify } from 'node-emoji';
import type { Message } from './api.js';

export function ReplyQuote({
  replyTo,
  onJump,
}: {
  replyTo: NonNullable<Message['replyTo']>;
  onJump: (id: string) => void;
}) {
  const line = replyTo.deleted
    ? 'Original message was deleted'
    : replyTo.text !== undefined
      ? oneLine(replyTo.text)
      : 'Original message not loaded';
  const inner = (
    <>
      <span className="reply-curve" aria-hidden="true" />
      <span className="sr-only">Replying to </span>
      {replyTo.author && !replyTo.deleted && (
        <span className="reply-author">@{replyTo.author}</span>
      )}
      <span className={replyTo.deleted ? 'reply-text gone' : 'reply-text'}>{line}</span>
    </>
  );
  // Not held here (no preview: of another channel, or no message at all, as `replyTo` may name
  // any id): there is nothing to jump to, and asking for the page around it is refused.
  if (replyTo.text === undefined && !replyTo.deleted)
    return <span className="reply-quote unloaded">{inner}</span>;
  return (
    <button
      type="button"
      className="reply-quote"
      onClick={() => onJump(replyTo.id)}
      title="Jump to the original message"
    >
      {inner}
    </button>
  );
}

/**
 * The first line of a text, without markdown's leading marks nor its bold, underline, strike
 * and code marks (a quote shows "the release notes", not "the **release** notes"), with its
 * `:shortcode:` emoji drawn as the message draws them (MessageText), shortened to one line.
 */
export function oneLine(text: string): string {
  const first = text.split('\n').find((l) => l.trim()) ?? '';
  const plain = emojify(
    first
      .replace(/^\s*(?:[>#*-]+\s*)+/, '')
      .replace(/\*\*|__|~~|`/g, '')
      .trim(),
  );
  return [...plain].length > 100 ? `${[...plain].slice(0, 100).join('')}…` : plain;
}
