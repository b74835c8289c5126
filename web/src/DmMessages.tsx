/**
 * The messages of a conversation, with the look of a channel's (MessageItem): grouped by author
 * and day, the avatar and name at a group's start, markdown text, `pending` until every device
 * got it, mentions of the viewer highlighted, "(edited)" after an edited one, a reply's quote of
 * its original (a click jumps to it when it is loaded) and the reactions under it (a click
 * toggles one's own). Any message can be answered and reacted to; one's own can be edited in
 * place and deleted (after a confirm dialog), as in a channel; a deleted message is gone from
 * the list, as in Discord. A notice (a safety number changed) is a system line with a warning
 * sign.
 */
import { Avatar } from './Avatar.js';
import { MessageActions } from './MessageActions.js';
import { EditBox, doneEditing } from './MessageItem.js';
import { MessageText } from './MessageText.js';
import { Reactions } from './Reactions.js';
import { ReplyQuote } from './ReplyQuote.js';
import type { ApiDmMessage } from './dm-api.js';
import { day, full, sameDay, time } from './dates.js';
import { useRovingLog } from './roving-log.js';
import './rich.css';

/** A new group starts after this long without a message from the same author. */
const GROUP_MS = 5 * 60_000;

export function DmMessages({
  messages: all,
  me,
  flash,
  marker,
  editing,
  onEditing,
  onEdit,
  onDelete,
  onReply,
  onReact,
  onJump,
}: {
  messages: ApiDmMessage[];
  /** The viewer: their own messages can be edited and deleted. */
  me: string;
  /** The message (dmKey) jumped to, highlighted for a moment. */
  flash: string | null;
  /** The first message (dmKey) unread when the conversation opened: "New messages" above it. */
  marker: string | null;
  /** The message (dmKey) being edited in place, if any. */
  editing: string | null;
  onEditing: (key: string | null) => void;
  onEdit: (m: ApiDmMessage, text: string) => Promise<void>;
  onDelete: (m: ApiDmMessage) => void;
  onReply: (m: ApiDmMessage) => void;
  onReact: (m: ApiDmMessage, emoji: string, on: boolean) => void;
  /** A reply's quote was clicked: its original, by id and author. */
  onJump: (id: string, author: string) => void;
}) {
  const messages = all.filter((m) => !m.deleted);
  // One Tab stop for the conversation's messages, Up and Down between them (roving-log.ts).
  const said = messages.filter((m) => m.kind !== 'notice');
  const keys = said.map(dmKey);
  const place = new Map(keys.map((k, i) => [k, i]));
  const roving = useRovingLog(keys);
  return (
    <div
      className="dm-rows"
      onFocus={roving.handlers.onFocus}
      onKeyDown={roving.handlers.onKeyDown}
    >
      {messages.map((m, i) => {
        const prev = messages[i - 1];
        const newDay = !prev || !sameDay(prev.ts, m.ts);
        const head =
          newDay ||
          dmKey(m) === marker ||
          !prev ||
          prev.kind !== 'message' ||
          prev.author !== m.author ||
          m.ts - prev.ts > GROUP_MS;
        const key = dmKey(m);
        return (
          <div key={key} data-index={place.get(key)}>
            {newDay && <div className="day">{day(m.ts)}</div>}
            {key === marker && (
              <div className="new-marker" role="separator" aria-label="New messages">
                New messages
              </div>
            )}
            {m.kind === 'notice' ? (
              <Notice m={m} />
            ) : (
              <DmMessage
                m={m}
                head={head}
                mine={m.author.toLowerCase() === me.toLowerCase()}
                flash={flash === key}
                tabbable={roving.stop === key}
                editing={editing === key}
                onEditing={(on) => onEditing(on ? key : null)}
                onEdit={(text) => onEdit(m, text)}
                onDelete={() => onDelete(m)}
                onReply={() => onReply(m)}
                onReact={(emoji, on) => onReact(m, emoji, on)}
                onJump={onJump}
              />
            )}
          </div>
        );
      })}
    </div>
  );
}

function DmMessage({
  m,
  head,
  mine,
  flash,
  tabbable,
  editing,
  onEditing,
  onEdit,
  onDelete,
  onReply,
  onReact,
  onJump,
}: {
  m: ApiDmMessage;
  head: boolean;
  mine: boolean;
  flash: boolean;
  /** The conversation's one Tab stop among its messages. */
  tabbable: boolean;
  editing: boolean;
  onEditing: (on: boolean) => void;
  onEdit: (text: string) => Promise<void>;
  onDelete: () => void;
  onReply: () => void;
  onReact: (emoji: string, on: boolean) => void;
  onJump: (id: string, author: string) => void;
}) {
  const classes = ['message', m.state];
  if (m.mentioned) classes.push('mentioned');
  if (flash) classes.push('flash');
  const reply = m.replyTo;
  return (
    <article
      id={`dm-${m.author}-${m.id}`}
      className={classes.join(' ')}
      aria-label={`${m.author}: ${m.text}${m.edited !== undefined ? ' (edited)' : ''}`}
      title={full(m.ts)}
      tabIndex={tabbable ? 0 : -1}
    >
      {reply && <ReplyQuote replyTo={reply} onJump={(id) => onJump(id, reply.author)} />}
      {head || reply ? (
        <header>
          <Avatar username={m.author} size={40} className="message-avatar" />
          <span className="author">{m.author}</span>
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
          onCancel={() => doneEditing(() => onEditing(false))}
          onSave={async (text) => {
            if (text.trim() && text !== m.text) await onEdit(text);
            doneEditing(() => onEditing(false));
          }}
          emptied={{
            author: m.author,
            where: 'the conversation',
            remove: () => {
              doneEditing(() => onEditing(false));
              onDelete();
            },
          }}
        />
      ) : (
        <MessageText text={m.text} />
      )}
      {m.edited !== undefined && !editing && (
        <span className="edited" title={`Edited ${full(m.edited)}`}>
          (edited)
        </span>
      )}
      {m.state !== 'delivered' && (
        <span className="state" title="Not every device of the conversation has it yet">
          {m.state}
        </span>
      )}
      <Reactions reactions={m.reactions} canReact onToggle={onReact} />
      {!editing && (
        <MessageActions
          author={m.author}
          where="the conversation"
          canReply
          canEdit={mine}
          canDelete={mine}
          onReply={onReply}
          onReact={(e) => onReact(e, !m.reactions.some((r) => r.emoji === e && r.me))}
          onEdit={() => onEditing(true)}
          onDelete={onDelete}
        />
      )}
    </article>
  );
}

function Notice({ m }: { m: ApiDmMessage }) {
  return (
    <p className="dm-notice" title={full(m.ts)}>
      <span className="dm-notice-icon" aria-hidden="true">
        ⚠
      </span>
      <span className="sr-only">Notice: </span>
      {m.text} <time dateTime={new Date(m.ts).toISOString()}>{time(m.ts)}</time>
    </p>
  );
}

/**
 * Merges by author and id (a later copy replaces an earlier one, except that a delivered message
 * is never made pending again), oldest → newest.
 */
export function mergeDm(old: ApiDmMessage[], incoming: ApiDmMessage[]): ApiDmMessage[] {
  const byId = new Map(old.map((m) => [dmKey(m), m]));
  for (const m of incoming) {
    const had = byId.get(dmKey(m));
    byId.set(dmKey(m), had?.state === 'delivered' ? { ...m, state: 'delivered' } : m);
  }
  return [...byId.values()].sort((a, b) => a.ts - b.ts || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** A message is its author's (PROTOCOL.md §10.4): another member may reuse its id. */
export function dmKey(m: ApiDmMessage): string {
  return `${m.author.toLowerCase()}/${m.id}`;
}
