/**
 * "bob is typing…" below a channel's messages (README "Local API": the `typing` event). Each
 * typist shows until the `expiresAt` of their latest typing event, or until a message of theirs
 * arrives. It listens on its own event stream so that it needs nothing from the rest of the chat.
 */
import { useEffect, useState } from 'react';
import type { Message, Typing } from './api.js';
import { reopenWhenGivenUp, withKey } from './auth.js';

export function TypingLine({ channelId, me }: { channelId: string; me: string }) {
  /** Typist → when their typing state ends (this machine's clock). */
  const [typists, setTypists] = useState<ReadonlyMap<string, number>>(new Map());

  // Opened again, with a new URL key, when the browser gave up on it (auth.ts: a refused key).
  const [streamTick, setStreamTick] = useState(0);
  useEffect(() => {
    setTypists(new Map());
    const es = new EventSource(withKey('/api/events'));
    const stopRetry = reopenWhenGivenUp(es, () => setStreamTick((t) => t + 1));
    es.addEventListener('typing', (e) => {
      const t = JSON.parse((e as MessageEvent).data) as Typing;
      // A replayed event (the stream resumed) may be over already.
      if (t.channelId !== channelId || t.username === me || t.expiresAt <= Date.now()) return;
      setTypists((old) => new Map(old).set(t.username, t.expiresAt));
    });
    es.addEventListener('message', (e) => {
      const { channelId: id, message } = JSON.parse((e as MessageEvent).data) as {
        channelId: string;
        message: Message;
      };
      if (id !== channelId) return;
      setTypists((old) => {
        if (!old.has(message.author)) return old;
        const next = new Map(old);
        next.delete(message.author);
        return next;
      });
    });
    return () => {
      stopRetry();
      es.close();
    };
  }, [channelId, me, streamTick]);

  // Wakes up when the first typing state ends, and drops every one that did.
  useEffect(() => {
    if (typists.size === 0) return;
    const first = Math.min(...typists.values());
    const t = setTimeout(
      () => setTypists((old) => new Map([...old].filter(([, end]) => end > Date.now()))),
      Math.max(0, first - Date.now()) + 20,
    );
    return () => clearTimeout(t);
  }, [typists]);

  return (
    <p className="typing" role="status" aria-live="polite">
      {describeTypists([...typists.keys()].sort())}
    </p>
  );
}

/** "bob is typing…", "bob and carol are typing…", "Several people are typing…", or nothing. */
export function describeTypists(names: readonly string[]): string {
  if (names.length === 0) return '';
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return 'Several people are typing…';
}
