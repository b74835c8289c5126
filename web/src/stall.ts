/**
 * A watched stream whose source stopped: the peer keeps listing it, but no frame comes. After
 * STALL_MS without a new frame the tile says it is interrupted; after END_MS it counts as ended.
 */
import { useEffect, useRef, useState } from 'react';

/** No new frame for this long: interrupted. */
export const STALL_MS = 3000;
/** No new frame for this long: ended (the tile closes). */
export const END_MS = 15_000;

export type Stall = { state: 'waiting' | 'playing' | 'interrupted'; forMs: number };

/** Follows a frame counter (sampled each second); calls `onEnded` once after END_MS of nothing. */
export function useStall(frames: number, onEnded: () => void): Stall {
  const last = useRef({ frames, at: Date.now(), seen: false });
  const ended = useRef(onEnded);
  ended.current = onEnded;
  const [now, setNow] = useState(Date.now());
  if (frames !== last.current.frames) last.current = { frames, at: Date.now(), seen: true };

  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  const forMs = now - last.current.at;
  useEffect(() => {
    if (forMs >= END_MS) ended.current();
  }, [forMs >= END_MS]);

  if (forMs < STALL_MS) return { state: last.current.seen ? 'playing' : 'waiting', forMs };
  return { state: 'interrupted', forMs };
}
