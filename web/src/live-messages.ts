/**
 * The `message` events of the event stream, handed from the one EventSource (useLiveEvents.ts) to
 * the open channel's pane. Every event reaches the pane, never only the latest; a burst (100
 * messages a second) is handed on in batches, at most one per BATCH_MS, so the log renders a few
 * times a second rather than once a message (each render of a long log costs milliseconds: one per
 * event made the page's long tasks). A message after a quiet moment is handed on at once.
 */
import { useEffect, useRef } from 'react';
import type { Message } from './api.js';

/** What the event stream says about a message: new, or its new state (edit, delete, delivery). */
export interface LiveMessage {
  channelId: string;
  message: Message;
}

/** At most one batch of live messages per this many milliseconds. */
export const BATCH_MS = 100;

const bus = new EventTarget();

/** Passes a `message` event on to the views of its channel. */
export function publishLiveMessage(e: LiveMessage): void {
  bus.dispatchEvent(new CustomEvent<LiveMessage>(e.channelId, { detail: e }));
}

/**
 * Calls `on` (its latest version) with the live messages of `channelId` while mounted, in the
 * order they came, a batch at a time.
 */
export function useLiveMessages(channelId: string, on: (batch: Message[]) => void): void {
  const latest = useRef(on);
  latest.current = on;
  useEffect(() => {
    let queue: Message[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    let last = -Infinity;
    const flush = () => {
      timer = undefined;
      last = performance.now();
      const batch = queue;
      queue = [];
      latest.current(batch);
    };
    const listener = (e: Event) => {
      queue.push((e as CustomEvent<LiveMessage>).detail.message);
      if (timer === undefined)
        timer = setTimeout(flush, Math.max(0, last + BATCH_MS - performance.now()));
    };
    bus.addEventListener(channelId, listener);
    return () => {
      bus.removeEventListener(channelId, listener);
      clearTimeout(timer);
    };
  }, [channelId]);
}
