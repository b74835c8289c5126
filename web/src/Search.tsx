/**
 * Search (README "Search"): a box in the top bar; its results, newest first, each with the
 * channel, the author (a bot's marked BOT) and the shown text around the match, the words found
 * marked (`<mark>`) from the ranges the peer sends (never from markup in a message). Choosing
 * one opens its channel at that message.
 */
import { useRef, useState, type FormEvent } from 'react';
import { api, ApiError, type SearchAnswer } from './api.js';
import { BotTag } from './BotTag.js';

export function Search({
  onOpen,
}: {
  /** Opens a channel at a message. */
  onOpen: (channelId: string, messageId: string) => void;
}) {
  const [q, setQ] = useState('');
  const [answer, setAnswer] = useState<SearchAnswer | null>(null);
  const [error, setError] = useState('');
  const latest = useRef(0);

  async function run(e: FormEvent) {
    e.preventDefault();
    if (!q.trim()) return setAnswer(null);
    const n = ++latest.current;
    try {
      const a = await api.search(q);
      if (n !== latest.current) return;
      setAnswer(a);
      setError('');
    } catch (err) {
      if (n === latest.current) setError(err instanceof ApiError ? err.message : String(err));
    }
  }

  const close = () => {
    setAnswer(null);
    setError('');
  };

  return (
    <div className="search">
      <form role="search" onSubmit={run}>
        <input
          type="search"
          aria-label="Search messages"
          placeholder="Search"
          value={q}
          maxLength={200}
          onChange={(e) => setQ(e.target.value)}
          onKeyDown={(e) => e.key === 'Escape' && close()}
        />
      </form>
      {(answer || error) && (
        <section className="search-results" aria-label="Search results">
          <header>
            {error ? (
              <span role="alert">{error}</span>
            ) : (
              <span>
                {answer!.results.length === 0
                  ? 'No messages found'
                  : `${answer!.results.length}${answer!.hasMore ? '+' : ''} found`}
              </span>
            )}
            <button className="link" onClick={close} aria-label="Close search results">
              ✕
            </button>
          </header>
          <ul>
            {answer?.results.map((r) => (
              <li key={r.message.id}>
                <button
                  className="search-result"
                  onClick={() => {
                    close();
                    onOpen(r.channelId, r.message.id);
                  }}
                >
                  <span className="where">
                    # {r.channelName || 'channel'} · <b>{r.message.author}</b>
                    {r.message.bot && (
                      <>
                        {' '}
                        <BotTag />
                      </>
                    )}{' '}
                    ·{' '}
                    <time dateTime={new Date(r.message.ts).toISOString()}>
                      {new Date(r.message.ts).toLocaleString()}
                    </time>
                  </span>
                  <span className="snippet">
                    {r.snippet.map((p, i) => (p.match ? <mark key={i}>{p.text}</mark> : p.text))}
                  </span>
                </button>
              </li>
            ))}
          </ul>
        </section>
      )}
    </div>
  );
}
