/**
 * The composer: Enter sends, Shift+Enter starts a new line (the box grows with its lines);
 * files come from the attach button, a drop on the channel (MessagePane) or a paste, and go with
 * the text (or alone). The message itself arrives over the event stream. What is typed stays
 * the channel's draft until sent (drafts.ts); a text over the limit is kept whole and not sent.
 */
import { useEffect, useRef, useState, type ClipboardEvent, type KeyboardEvent } from 'react';
import { api, ApiError, type Channel, type Me, type Message, TYPING_EVERY_MS } from './api.js';
import { ReplyBar } from './ReplyBar.js';
import { AttachButton, AttachmentChips, type Attachments } from './Attachments.js';
import { flushSync } from 'react-dom';
import { useMentionSuggest } from './MentionSuggest.js';
import { E_PEER_UNREACHABLE, usePeerReachable } from './peer-reach.js';
import './files.css';
import { useTextLimit } from './TextCount.js';
import { useDraft } from './drafts.js';
import { useAutoGrow } from './auto-grow.js';
import { useFocusOnOpen } from './focus-on-open.js';

export function Composer({
  me,
  channel,
  reply,
  attachments,
  onReplyDone,
  onSend,
  onPage,
  onEditLast,
}: {
  me: Me;
  channel: Channel;
  reply: Message | null;
  attachments: Attachments;
  onReplyDone: () => void;
  /** A message is being sent: the log goes to the newest message and follows (as Discord). */
  onSend?: () => void;
  onPage: (e: KeyboardEvent) => boolean;
  /** Up in the empty composer: edits your newest message; false when there is none. */
  onEditLast?: () => boolean;
}) {
  const [text, setText] = useDraft(`${me.username}/channel/${channel.id}`);
  const box = useRef<HTMLTextAreaElement>(null);
  useAutoGrow(box, text);
  useFocusOnOpen(box, channel.id);
  const limit = useTextLimit(text);
  useEffect(() => {
    if (reply) box.current?.focus();
  }, [reply]);
  const [error, setError] = useState('');
  /** The last send failed because the peer did not answer: said until it is back. */
  const [unsent, setUnsent] = useState(false);
  const reachable = usePeerReachable();
  useEffect(() => {
    if (reachable && unsent) {
      setUnsent(false);
      setError('');
    }
  }, [reachable, unsent]);
  const visitor = me.role === 'visitor';
  const lastTyping = useRef(0);
  const files = attachments.ready;
  const waiting = attachments.items.length > 0 && files === null;
  const canSend =
    !visitor && files !== null && limit.over === 0 && (!!text.trim() || files.length > 0);
  // A name picked from the suggestions: the text is rendered at once, then the caret goes after
  // the name (also when the text came out the same).
  const suggest = useMentionSuggest(channel.id, me.username, box, (value, caret) => {
    flushSync(() => setText(value));
    box.current?.setSelectionRange(caret, caret);
  });

  /** Tells the channel we are typing, at most every TYPING_EVERY_MS (errors do not matter). */
  function typed(value: string) {
    if (!value.trim() || Date.now() - lastTyping.current < TYPING_EVERY_MS) return;
    lastTyping.current = Date.now();
    api.typing(channel.id).catch(() => undefined);
  }

  async function send() {
    const t = text;
    if (limit.over > 0) limit.refuse();
    if (!canSend || files === null) return;
    setText('');
    lastTyping.current = 0;
    onSend?.();
    try {
      await api.post(channel.id, {
        ...(t.trim() ? { text: t } : {}),
        ...(reply ? { replyTo: reply.id } : {}),
        ...(files.length > 0 ? { files } : {}),
      });
      attachments.clear(files);
      onReplyDone();
      setError('');
    } catch (err) {
      setText((now) => now || t); // kept (unless something new was typed meanwhile)
      const gone = err instanceof ApiError && err.code === E_PEER_UNREACHABLE;
      setUnsent(gone);
      setError(
        gone
          ? 'Your peer is not running; the message was not sent (it is kept here).'
          : err instanceof ApiError
            ? err.message
            : String(err),
      );
    }
  }

  function onKey(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (suggest.key(e)) return;
    // Up in an empty composer edits your newest message (as in Discord).
    const plain = !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey;
    if (e.key === 'ArrowUp' && plain && text === '' && onEditLast?.()) {
      e.preventDefault();
      return;
    }
    if (e.key === 'Escape' && reply) onReplyDone();
    if (onPage(e)) return;
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      void send();
    }
  }

  /** A pasted file (a screenshot, an image copied from a page) is attached, not typed. */
  function onPaste(e: ClipboardEvent<HTMLTextAreaElement>) {
    const pasted = [...e.clipboardData.files];
    if (pasted.length === 0 || visitor) return;
    e.preventDefault();
    attachments.add(pasted);
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
      {suggest.list}
      <AttachmentChips attachments={attachments} />
      <AttachButton onFiles={attachments.add} disabled={visitor} />
      <textarea
        id="composer"
        ref={box}
        aria-label="Message"
        placeholder={visitor ? 'Visitors can read but not post' : `Message #${channel.name}`}
        value={text}
        onChange={(e) => {
          setText(e.target.value);
          typed(e.target.value);
          void suggest.look(e.target.value, e.target.selectionStart);
        }}
        onSelect={(e) => void suggest.look(e.currentTarget.value, e.currentTarget.selectionStart)}
        onBlur={suggest.close}
        {...suggest.boxProps}
        onKeyDown={onKey}
        onPaste={onPaste}
        disabled={visitor}
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
        title={
          limit.reason ??
          (waiting ? 'Waiting for the attachments (remove any that failed)' : undefined)
        }
      >
        Send
      </button>
    </div>
  );
}
