/**
 * The composer of a conversation: as the channel's (Enter sends, Shift+Enter starts a new line,
 * PageUp/PageDown scroll the messages), without files (DMs have no attachments yet) or typing
 * indicators. The text comes back if sending fails. Disabled (with the reason as placeholder)
 * in a 1:1 with a blocked user: the peer refuses to write to them.
 */
import { useState, type KeyboardEvent } from 'react';
import { ApiError } from './api.js';
import { TextCount } from './TextCount.js';

const MAX_TEXT = 4000;

export function DmComposer({
  title,
  disabled,
  onSend,
  onPage,
}: {
  /** The conversation's title, for the placeholder. */
  title: string;
  /** Why nothing can be written here now, if so. */
  disabled?: string;
  onSend: (text: string) => Promise<void>;
  onPage: (e: KeyboardEvent) => boolean;
}) {
  const [text, setText] = useState('');
  const [error, setError] = useState('');
  const canSend = !disabled && !!text.trim();

  async function send() {
    const t = text;
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
    if (onPage(e)) return;
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
      <textarea
        id="composer"
        aria-label="Message"
        placeholder={disabled ?? `Message ${title}`}
        disabled={!!disabled}
        value={text}
        onChange={(e) => setText(e.target.value.slice(0, MAX_TEXT))}
        onKeyDown={onKey}
        rows={1}
      />
      <TextCount length={text.length} max={MAX_TEXT} />
      <button className="primary" onClick={() => void send()} disabled={!canSend}>
        Send
      </button>
    </div>
  );
}
