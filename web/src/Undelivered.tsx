/**
 * Your messages refused for good in a channel that is no longer in your list (you wrote them
 * offline, and meanwhile the owner removed you or deleted the channel: README "Written offline,
 * refused on return"). That channel's page is gone, so they are listed here, each with why,
 * until dismissed; never dropped silently. Failed messages of a channel still listed show there.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, ApiError, type Channel, type Message } from './api.js';

const bus = new EventTarget();

/** Passes on a `refused` event (or a reload): the notice reads the outbox again. */
export function publishRefused(): void {
  bus.dispatchEvent(new Event('refused'));
}

/** The names of the channels this page has listed, kept after they leave the list. */
const names = new Map<string, string>();

/** A message's text is shown up to this many characters. */
const SHOWN_CHARS = 80;

/** The notice: the messages not delivered in channels you no longer read, with Dismiss. */
export function Undelivered({ channels }: { channels: Channel[] }) {
  for (const c of channels) names.set(c.id, c.name);
  const [gone, setGone] = useState<Message[]>([]);
  const [dismissing, setDismissing] = useState<ReadonlySet<string>>(new Set());
  const [error, setError] = useState('');
  const request = useRef(0);

  // The outbox and the channel list are read together, so a message is never judged against a
  // list older (or newer) than itself: one in a channel still listed shows in that channel.
  const refresh = useCallback(async () => {
    const n = ++request.current;
    try {
      const [outbox, listed] = await Promise.all([api.outbox(), api.channels()]);
      const ids = new Set(listed.map((c) => c.id));
      if (n === request.current)
        setGone(outbox.filter((m) => m.state === 'failed' && !ids.has(m.channelId)));
    } catch {
      // not known now (the peer is not answering): the notice stays as it was
    }
  }, []);

  const channelIds = channels.map((c) => c.id).join(',');
  useEffect(() => void refresh(), [refresh, channelIds]);
  useEffect(() => {
    const on = () => void refresh();
    bus.addEventListener('refused', on);
    return () => bus.removeEventListener('refused', on);
  }, [refresh]);

  async function dismiss(id: string) {
    setDismissing((s) => new Set(s).add(id));
    try {
      await api.dismiss(id);
      setGone((list) => list.filter((m) => m.id !== id));
      setError('');
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setDismissing((s) => {
        const next = new Set(s);
        next.delete(id);
        return next;
      });
      void refresh();
    }
  }

  if (gone.length === 0) return null;
  return (
    <section
      className="banner refused undelivered"
      aria-labelledby="undelivered-head"
      aria-live="polite"
    >
      <h2 id="undelivered-head">
        {gone.length === 1 ? 'A message was' : `${gone.length} messages were`} not delivered
      </h2>
      <ul>
        {gone.map((m) => {
          const text = shorten(m);
          const name = names.get(m.channelId);
          return (
            <li key={m.id}>
              <span>
                <q>{text}</q> {name ? `in #${name}` : 'in a channel you no longer read'}:{' '}
                {reason(m.error)}.
              </span>
              <button
                type="button"
                disabled={dismissing.has(m.id)}
                aria-label={`Dismiss “${text}”`}
                onClick={() => void dismiss(m.id)}
              >
                Dismiss
              </button>
            </li>
          );
        })}
      </ul>
      {error && <p role="alert">{error}</p>}
    </section>
  );
}

/** The message's text, cut to SHOWN_CHARS (its files named when it has no text). */
function shorten(m: Message): string {
  const text = m.text.trim();
  if (!text) return m.files?.length ? `${m.files.length} file(s)` : '(no text)';
  return text.length > SHOWN_CHARS ? `${text.slice(0, SHOWN_CHARS - 1)}…` : text;
}

/** Why a replica refused it (`error` is `CODE: message`), in plain words. */
function reason(error = ''): string {
  const at = error.indexOf(': ');
  const code = at < 0 ? error : error.slice(0, at);
  const said = at < 0 ? '' : error.slice(at + 2);
  if (code === 'E_CHANNEL_NOT_FOUND') return 'the channel was deleted';
  if (code === 'E_NOT_MEMBER')
    return /removed/.test(said)
      ? 'the owner removed you from the channel'
      : 'you are no longer a member of the channel';
  return said || error || 'refused';
}
