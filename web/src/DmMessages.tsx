/**
 * The messages of a conversation, with the look of a channel's (MessageItem): grouped by author
 * and day, the avatar and name at a group's start, markdown text, `pending` until every device
 * got it, mentions of the viewer highlighted. A notice (a safety number changed) is a system
 * line with a warning sign.
 */
import { Avatar } from './Avatar.js';
import { MessageText } from './MessageText.js';
import type { ApiDmMessage } from './dm-api.js';
import { day, full, sameDay, time } from './dates.js';
import './rich.css';

/** A new group starts after this long without a message from the same author. */
const GROUP_MS = 5 * 60_000;

export function DmMessages({ messages }: { messages: ApiDmMessage[] }) {
  return (
    <>
      {messages.map((m, i) => {
        const prev = messages[i - 1];
        const newDay = !prev || !sameDay(prev.ts, m.ts);
        const head =
          newDay ||
          !prev ||
          prev.kind !== 'message' ||
          prev.author !== m.author ||
          m.ts - prev.ts > GROUP_MS;
        return (
          <div key={dmKey(m)}>
            {newDay && <div className="day">{day(m.ts)}</div>}
            {m.kind === 'notice' ? <Notice m={m} /> : <DmMessage m={m} head={head} />}
          </div>
        );
      })}
    </>
  );
}

function DmMessage({ m, head }: { m: ApiDmMessage; head: boolean }) {
  const classes = ['message', m.state];
  if (m.mentioned) classes.push('mentioned');
  return (
    <article
      id={`dm-${m.author}-${m.id}`}
      className={classes.join(' ')}
      aria-label={`${m.author}: ${m.text}`}
      title={full(m.ts)}
      tabIndex={0}
    >
      {head ? (
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
      <MessageText text={m.text} />
      {m.state !== 'delivered' && (
        <span className="state" title="Not every device of the conversation has it yet">
          {m.state}
        </span>
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
