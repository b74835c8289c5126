/**
 * One message row: the quote of the message it answers, the author's avatar, name (a bot's
 * marked BOT) and time (first of a group), its markdown text or, while editing, a textarea
 * (Enter saves, Escape cancels), "(edited)", its files, its reactions, and the actions shown on
 * hover or focus. Mentions of me are highlighted.
 */
import { memo, useId, useState, type KeyboardEvent } from 'react';
import { api, ApiError, type Message } from './api.js';
import { ConfirmDelete, MessageActions } from './MessageActions.js';
import { MessageText } from './MessageText.js';
import { Reactions } from './Reactions.js';
import { ReplyQuote } from './ReplyQuote.js';
import { MessageFiles } from './MessageFiles.js';
import { Avatar } from './Avatar.js';
import { BotTag } from './BotTag.js';
import { full, time } from './dates.js';
import { useTextLimit } from './TextCount.js';
import './rich.css';

/**
 * One message row; rendered again only when one of its props changed (a burst re-renders the
 * log). Its props are values, not the session or channel objects, which each refresh replaces.
 */
export const MessageItem = memo(function MessageItem({
  m,
  head,
  me,
  user,
  channelId,
  channelOwner,
  flash,
  editing,
  tabbable = true,
  pos,
  setSize,
  onReply,
  onJump,
  onEditing,
}: {
  m: Message;
  /** First of a group: show author and time. */
  head: boolean;
  /** The reader's username, and whether they may write (a user, not a visitor). */
  me: string;
  user: boolean;
  channelId: string;
  channelOwner: string;
  /** Just jumped to: highlighted for a moment. */
  flash: boolean;
  /** Its text is being edited (held by the pane: Up in an empty composer starts it too). */
  editing: boolean;
  /** The log's one Tab stop among its messages (roving-log.ts); the others are reached by Up/Down. */
  tabbable?: boolean;
  /** Its place in the loaded list (1-based) and the list's size (-1: older ones not loaded). */
  pos?: number;
  setSize?: number;
  onReply: (m: Message) => void;
  onJump: (id: string) => void;
  /** Starts editing a message (its id) or ends it (null). */
  onEditing: (id: string | null) => void;
}) {
  const [error, setError] = useState('');
  const mine = m.author === me;
  const sent = m.state === 'delivered' || m.state === 'pending';

  async function act(what: () => Promise<unknown>) {
    try {
      await what();
      setError('');
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  }
  const react = (emoji: string, on: boolean) =>
    void act(() => api.react(channelId, m.id, emoji, on));

  const classes = ['message', m.state];
  if (m.mentionsMe) classes.push('mentioned');
  if (flash) classes.push('flash');
  return (
    <article
      id={`msg-${m.id}`}
      className={classes.join(' ')}
      aria-label={`${m.author}${m.bot ? ' (bot)' : ''}: ${m.text}${attached(m)}`}
      title={full(m.ts)}
      tabIndex={tabbable ? 0 : -1}
      aria-posinset={pos}
      aria-setsize={setSize}
    >
      {m.replyTo && <ReplyQuote replyTo={m.replyTo} onJump={onJump} />}
      {head || m.replyTo ? (
        <header>
          <Avatar username={m.author} size={40} className="message-avatar" />
          <span className="author">{m.author}</span>
          {m.bot && <BotTag />}
          <time dateTime={new Date(m.ts).toISOString()} title={full(m.ts)}>
            {time(m.ts)}
          </time>
        </header>
      ) : (
        <time className="hover-time" dateTime={new Date(m.ts).toISOString()} title={full(m.ts)}>
          {time(m.ts)}
        </time>
      )}
      {editing ? (
        <EditBox
          initial={m.text}
          onCancel={() => doneEditing(onEditing)}
          onSave={async (text) => {
            if (text.trim() && text !== m.text) await act(() => api.edit(channelId, m.id, text));
            doneEditing(onEditing);
          }}
          emptied={
            m.files?.length
              ? undefined
              : {
                  author: m.author,
                  remove: () => {
                    doneEditing(onEditing);
                    void act(() => api.remove(channelId, m.id));
                  },
                }
          }
        />
      ) : (
        (m.text || !m.files) && <MessageText text={m.text} />
      )}
      {m.files && <MessageFiles files={m.files} />}
      {m.editedAt !== undefined && !editing && (
        <span className="edited" title={`Edited ${full(m.editedAt)}`}>
          (edited)
        </span>
      )}
      {m.state !== 'delivered' && (
        <span className="state" title={m.error}>
          {m.state}
        </span>
      )}
      <Reactions reactions={m.reactions} canReact={user} onToggle={react} />
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {sent && !editing && (
        <MessageActions
          author={m.author}
          canReply={user}
          canEdit={mine && user}
          canDelete={user && (mine || channelOwner === me)}
          onReply={() => onReply(m)}
          onReact={(e) => react(e, !m.reactions.some((r) => r.emoji === e && r.me))}
          onEdit={() => onEditing(m.id)}
          onDelete={() => void act(() => api.remove(channelId, m.id))}
        />
      )}
    </article>
  );
});

/** Editing ends: the focus goes back to the composer (as in Discord), not to the page. */
export function doneEditing(onEditing: (id: string | null) => void) {
  onEditing(null);
  document.getElementById('composer')?.focus();
}

/** Deleting the message being edited, when its text is saved empty. */
export interface EmptiedEdit {
  author: string;
  /** Where it disappears, for the question: "the channel" unless said. */
  where?: string;
  remove: () => void;
}

/**
 * The text being edited: Enter saves, Shift+Enter a new line, Escape cancels; a text over the
 * limit is kept whole and not saved (the composer's TextCount says by how much). A text saved
 * empty asks whether to delete the message, as Discord does, when `emptied` says how (it was
 * left unchanged without a word); kept, the editing goes on.
 */
export function EditBox({
  initial,
  onSave,
  onCancel,
  emptied,
}: {
  initial: string;
  onSave: (text: string) => Promise<void>;
  onCancel: () => void;
  emptied?: EmptiedEdit;
}) {
  const [text, setText] = useState(initial);
  const [asking, setAsking] = useState(false);
  const hint = useId();
  const limit = useTextLimit(text);
  function save() {
    if (limit.over > 0) limit.refuse();
    else if (!text.trim() && emptied) setAsking(true);
    else void onSave(text);
  }
  function onKey(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      onCancel();
    } else if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      save();
    }
  }
  return (
    <div className="edit-box">
      <textarea
        aria-label="Edit message"
        aria-describedby={limit.over > 0 ? `${hint} ${limit.described['aria-describedby']}` : hint}
        aria-invalid={limit.over > 0 || undefined}
        value={text}
        autoFocus
        onFocus={(e) => e.currentTarget.setSelectionRange(text.length, text.length)}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={onKey}
        rows={Math.min(8, text.split('\n').length)}
      />
      <p className="edit-hint" id={hint}>
        Escape to{' '}
        <button type="button" className="link" onClick={onCancel}>
          cancel
        </button>{' '}
        • Enter to{' '}
        <button type="button" className="link" onClick={save}>
          save
        </button>
      </p>
      {limit.count}
      {limit.refusal}
      {asking && emptied && (
        <ConfirmDelete
          author={emptied.author}
          where={emptied.where ?? 'the channel'}
          onAnswer={(yes) => {
            setAsking(false);
            if (yes) emptied.remove();
          }}
        />
      )}
    </div>
  );
}

/** The names of a message's files, for its accessible name: " (files: a.png, b.zip)". */
function attached(m: Message): string {
  if (!m.files?.length) return '';
  return `${m.text ? ' ' : ''}(${m.files.length > 1 ? 'files' : 'file'}: ${m.files.map((f) => f.name).join(', ')})`;
}
