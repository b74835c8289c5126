/**
 * The `message` events of the event stream, handed from the one EventSource (Chat.tsx) to the
 * open channel's pane. Every event reaches the pane: a burst (100 messages a second) arrives as
 * many events between two renders, and each one is passed on, never only the latest.
 */
import { useEffect, useRef } from 'react';
import type { Message } from './api.js';

/** What the event stream says about a message: new, or its new state (edit, delete, delivery). */
export interface LiveMessage {
  channelId: string;
  message: Message;
}

const bus = new EventTarget();

/** Passes a `message` event on to the views of its channel. */
export function publishLiveMessage(e: LiveMessage): void {
  bus.dispatchEvent(new CustomEvent<LiveMessage>(e.channelId, { detail: e }));
}

/** Calls `on` (its latest version) with every live message of `channelId` while mounted. */
export function useLiveMessages(channelId: string, on: (m: Message) => void): void {
  const latest = useRef(on);
  latest.current = on;
  useEffect(() => {
    const listener = (e: Event) => latest.current((e as CustomEvent<LiveMessage>).detail.message);
    bus.addEventListener(channelId, listener);
    return () => bus.removeEventListener(channelId, listener);
  }, [channelId]);
}
