/**
 * One channel: messages grouped by author and day, scrollback that loads older pages as you
 * scroll up and keeps your place, pinned to the bottom while you are at the bottom, `pending`
 * until delivered, where the channel is served from, and the composer.
 */
import {
  useCallback,
  useEffect,
  useLayoutEffect,
  useRef,
  useState,
  type KeyboardEvent,
} from 'react';
import {
  api,
  ApiError,
  byChannelOrder,
  type Channel,
  type Me,
  type Message,
  type Page,
  TYPING_EVERY_MS,
} from './api.js';
import type { LiveMessage } from './Chat.js';
import { MessageText } from './MessageText.js';
import { TypingLine } from './TypingLine.js';

const MAX_TEXT = 4000;
const SOURCE_LABEL: Record<Page['source'], string> = {
  host: 'P2P from its host',
  server: 'Central server',
  local: 'Local copy (offline)',
};

export function MessagePane({
  me,
  channel,
  live,
  sourceTick,
  onRead,
  focusId,
}: {
  me: Me;
  channel: Channel;
  live: LiveMessage | null;
  sourceTick: number;
  onRead: () => Promise<void>;
  /** Open at this message (a search result) instead of the newest. */
  focusId?: string;
}) {
  const [messages, setMessages] = useState<Message[]>([]);
  const [source, setSource] = useState<Page['source'] | null>(null);
  const [hasMore, setHasMore] = useState(false);
  const [loadingOlder, setLoadingOlder] = useState(false);
  const [error, setError] = useState('');
  /** Where the "New messages" divider goes: the first message the reader had not seen. */
  const [markerId, setMarkerId] = useState<string | null>(null);
  const unreadAtOpen = useRef(channel.unread ?? 0);
  const list = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const keepFrom = useRef<number | null>(null); // scrollHeight before older messages were added

  const focused = useRef(false);
  const loadNewest = useCallback(async () => {
    try {
      // Opened at a message: the page around it first, scrolled to it (once).
      if (focusId !== undefined && !focused.current) {
        const page = await api.around(channel.id, focusId);
        atBottom.current = false;
        setMessages((old) => merge(old, page.messages));
        setHasMore((h) => h || page.hasMore);
        setSource(page.source);
        return;
      }
      const page = await api.messages(channel.id);
      setMessages((old) => merge(old, page.messages));
      if (unreadAtOpen.current > 0) {
        setMarkerId(firstUnread(page.messages, me.username, unreadAtOpen.current));
        unreadAtOpen.current = 0;
      }
      setSource(page.source);
      setHasMore((h) => h || page.hasMore);
      setError('');
      void onRead();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  }, [channel.id, onRead, focusId]);

  useEffect(() => {
    void loadNewest();
  }, [loadNewest, sourceTick]);

  // Live messages of this channel: new ones, and state changes of ours (pending → delivered).
  useEffect(() => {
    if (live && live.channelId === channel.id) {
      setMessages((old) => merge(old, [live.message]));
      // Arrived while the reader is scrolled up: mark where the new ones start.
      if (!atBottom.current && live.message.author !== me.username)
        setMarkerId((id) => id ?? live.message.id);
      // Shown in the open channel: read (the unread counts of other channels come from the peer).
      if (live.message.author !== me.username)
        void api.read(channel.id).then(onRead, () => undefined);
    }
  }, [live, channel.id, me.username, onRead]);

  async function loadOlder() {
    if (loadingOlder || !hasMore || messages.length === 0) return;
    setLoadingOlder(true);
    try {
      const page = await api.messages(channel.id, messages[0]!.id);
      keepFrom.current = list.current?.scrollHeight ?? null;
      setMessages((old) => merge(old, page.messages));
      setHasMore(page.hasMore);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setLoadingOlder(false);
    }
  }

  // After a render: keep the reader's place when older messages came in above, or stay pinned.
  useLayoutEffect(() => {
    const el = list.current;
    if (!el) return;
    const target = focusId && !focused.current && document.getElementById(`m-${focusId}`);
    if (target) {
      focused.current = true;
      target.scrollIntoView({ block: 'center' });
    } else if (keepFrom.current !== null) {
      el.scrollTop += el.scrollHeight - keepFrom.current;
      keepFrom.current = null;
    } else if (atBottom.current) {
      el.scrollTop = el.scrollHeight;
    }
  }, [messages]);

  function onScroll() {
    const el = list.current;
    if (!el) return;
    atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    if (atBottom.current && markerId && messages[messages.length - 1]?.id !== markerId)
      void onRead();
    if (el.scrollTop < 80) void loadOlder();
  }

  return (
    <section className="pane" aria-label={`#${channel.name}`}>
      <header className="pane-head">
        <h2>
          <span className="hash">#</span>
          {channel.name}
        </h2>
        {source && (
          <span className={`source ${source}`} title="Where this channel is being served from">
            {source === 'host' && channel.owner === me.username
              ? 'Hosted on this peer'
              : SOURCE_LABEL[source]}
          </span>
        )}
      </header>
      <div
        className="messages"
        ref={list}
        onScroll={onScroll}
        role="log"
        aria-live="polite"
        aria-label="Messages"
      >
        {hasMore && (
          <button className="older" onClick={loadOlder} disabled={loadingOlder}>
            {loadingOlder ? 'Loading…' : 'Load older messages'}
          </button>
        )}
        {messages.map((m, i) => {
          const prev = messages[i - 1];
          const newDay = !prev || day(prev.ts) !== day(m.ts);
          const head = newDay || !prev || prev.author !== m.author || m.ts - prev.ts > 5 * 60_000;
          return (
            <div key={m.id}>
              {newDay && <div className="day">{day(m.ts)}</div>}
              {m.id === markerId && (
                <div className="new-marker" role="separator" aria-label="New messages">
                  New messages
                </div>
              )}
              <article
                id={`m-${m.id}`}
                className={`message ${m.state}${m.id === focusId ? ' focused' : ''}`}
                aria-label={`${m.author}: ${m.text}`}
              >
                {head && (
                  <header>
                    <span className="author">{m.author}</span>
                    <time dateTime={new Date(m.ts).toISOString()}>{time(m.ts)}</time>
                  </header>
                )}
                <MessageText text={m.text} />
                {m.state !== 'delivered' && (
                  <span className="state" title={m.error}>
                    {m.state}
                  </span>
                )}
              </article>
            </div>
          );
        })}
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
      </div>
      <TypingLine channelId={channel.id} me={me.username} />
      <Composer me={me} channel={channel} />
    </section>
  );
}

/** Enter sends, Shift+Enter starts a new line; the message itself arrives over the event stream. */
function Composer({ me, channel }: { me: Me; channel: Channel }) {
  const [text, setText] = useState('');
  const [error, setError] = useState('');
  const visitor = me.role === 'visitor';
  const lastTyping = useRef(0);

  /** Tells the channel we are typing, at most every TYPING_EVERY_MS (errors do not matter). */
  function typed(value: string) {
    if (!value.trim() || Date.now() - lastTyping.current < TYPING_EVERY_MS) return;
    lastTyping.current = Date.now();
    api.typing(channel.id).catch(() => undefined);
  }

  async function send() {
    const t = text;
    if (!t.trim()) return;
    setText('');
    lastTyping.current = 0;
    try {
      await api.post(channel.id, t);
      setError('');
    } catch (err) {
      setText(t);
      setError(err instanceof ApiError ? err.message : String(err));
    }
  }

  function onKey(e: KeyboardEvent<HTMLTextAreaElement>) {
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
        aria-label="Message"
        placeholder={visitor ? 'Visitors can read but not post' : `Message #${channel.name}`}
        value={text}
        onChange={(e) => {
          setText(e.target.value.slice(0, MAX_TEXT));
          typed(e.target.value);
        }}
        onKeyDown={onKey}
        disabled={visitor}
        rows={1}
      />
      <span className={text.length > MAX_TEXT - 200 ? 'count warn' : 'count'} aria-live="polite">
        {text.length}/{MAX_TEXT}
      </span>
      <button className="primary" onClick={() => void send()} disabled={visitor || !text.trim()}>
        Send
      </button>
    </div>
  );
}

/** The id of the first of the last `unread` messages written by others. */
function firstUnread(messages: Message[], me: string, unread: number): string | null {
  let seen = 0;
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]!.author === me) continue;
    if (++seen === unread) return messages[i]!.id;
  }
  return messages.find((m) => m.author !== me)?.id ?? null;
}

/** Merges by id (a later copy replaces an earlier one, except a delivered one is never undone). */
function merge(old: Message[], incoming: Message[]): Message[] {
  const byId = new Map(old.map((m) => [m.id, m]));
  for (const m of incoming) {
    const had = byId.get(m.id);
    byId.set(m.id, had && had.state === 'delivered' ? { ...m, state: 'delivered' } : m);
  }
  return [...byId.values()].sort(byChannelOrder);
}

function day(ts: number): string {
  return new Date(ts).toLocaleDateString(undefined, {
    year: 'numeric',
    month: 'long',
    day: 'numeric',
  });
}

function time(ts: number): string {
  return new Date(ts).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}
