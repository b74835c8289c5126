/**
 * The composer of a conversation: as the channel's (Enter sends, Shift+Enter starts a new line
 * and the box grows with its lines, PageUp/PageDown scroll the messages, a draft kept per
 * conversation, a text over the limit kept whole and not sent, "Replying to bob" above it while
 * answering a message: Escape or its ✕ cancels), without files (DMs have no attachments yet) or
 * typing indicators. The text comes back if sending fails. Disabled (with the reason as
 * placeholder) in a 1:1 with a blocked user: the peer refuses to write to them.
 */
import { useRef, useState, type KeyboardEvent } from 'react';
import { ApiError } from './api.js';
import { useTextLimit } from './TextCount.js';
import { useDraft } from './drafts.js';
import { useAutoGrow } from './auto-grow.js';
import { useFocusOnOpen } from './focus-on-open.js';
import { ReplyBar } from './ReplyBar.js';

export function DmComposer({
  draft,
  title,
  disabled,
  reply,
  onReplyDone,
  onEditLast,
  onSend,
  onPage,
}: {
  /** Whose draft the text is: `<user>/dm/<conversation id>` (drafts.ts). */
  draft: string;
  /** The conversation's title, for the placeholder. */
  title: string;
  /** Why nothing can be written here now, if so. */
  disabled?: string;
  /** The message being answered, if any. */
  reply: { author: string } | null;
  onReplyDone: () => void;
  /** Up in the empty box: edit one's newest message; false when there is none. */
  onEditLast: () => boolean;
  onSend: (text: string) => Promise<void>;
  onPage: (e: KeyboardEvent) => boolean;
}) {
  const [text, setText] = useDraft(draft);
  const [error, setError] = useState('');
  const box = useRef<HTMLTextAreaElement>(null);
  useAutoGrow(box, text);
  useFocusOnOpen(box, draft);
  const limit = useTextLimit(text);
  const canSend = !disabled && !!text.trim() && limit.over === 0;

  async function send() {
    const t = text;
    if (limit.over > 0) limit.refuse();
    if (!canSend) return;
    setText('');
    try {
      await onSend(t);
      setError('');
    } catch (err) {
      setText(t);
      setError(err instanceof ApiError ? err.message : String(err));
    }
  }

  function onKey(e: KeyboardEvent<HTMLTextAreaElement>) {
    // Up in an empty composer edits your newest message (as in Discord, and in a channel).
    const plain = !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey;
    if (e.key === 'ArrowUp' && plain && text === '' && onEditLast()) return e.preventDefault();
    if (onPage(e)) return;
    if (e.key === 'Escape' && reply) return onReplyDone();
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      void send();
    }
  }

  return (
    <div className="composer">
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {limit.refusal}
      {reply && <ReplyBar to={reply} onCancel={onReplyDone} />}
      <textarea
        id="composer"
        ref={box}
        aria-label="Message"
        placeholder={disabled ?? `Message ${title}`}
        disabled={!!disabled}
        value={text}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={onKey}
        aria-invalid={limit.over > 0 || undefined}
        {...limit.described}
        rows={1}
      />
      {limit.count}
      <button
        className="primary"
        onClick={() => void send()}
        disabled={!canSend}
        {...limit.described}
        title={limit.reason}
      >
        Send
      </button>
    </div>
  );
}
