/**
 * Whether this page reaches its own peer, the process that serves it and its local API. The peer
 * can stop while the page stays open (closed, crashed, restarted): then nothing the page asks is
 * answered, and what it shows is the last it knew. The event stream (useLiveEvents.ts) says when it
 * is lost and when it is back; a request that gets no answer at all (`api.ts`) says it too, and one
 * that gets any answer says the peer is there. The views read it with `usePeerReachable`: the
 * banner, your own dot (grey), the member list (greyed), the composer's error.
 */
import { useSyncExternalStore } from 'react';

let reachable = true;
const listeners = new Set<() => void>();

/** Records whether the peer answers; the views that read it render again when it changes. */
export function setPeerReachable(now: boolean): void {
  if (now === reachable) return;
  reachable = now;
  for (const l of listeners) l();
}

/** Whether the peer answered last time the page asked (or its event stream is open). */
export function peerReachable(): boolean {
  return reachable;
}

function subscribe(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

/** `peerReachable()`, as React state. */
export function usePeerReachable(): boolean {
  return useSyncExternalStore(subscribe, peerReachable, peerReachable);
}

/** The page's own error code for a request its peer did not answer at all (no peer sends it). */
export const E_PEER_UNREACHABLE = 'E_PEER_UNREACHABLE';
