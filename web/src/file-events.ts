/**
 * The `file` events of the event stream (a fetch or a backup upload progressing), handed from
 * the one EventSource (useLiveEvents.ts) to whichever attachment shows that file.
 */
import { useEffect, useState } from 'react';
import type { ChatFile } from './api.js';

/** The `file` event: how much of a file this peer holds now. */
export interface FileProgress {
  channelId: string;
  fileId: string;
  state: ChatFile['state'];
  have: number;
  size: number;
}

const bus = new EventTarget();

/** Passes a `file` event on to the views of that file. */
export function publishFileProgress(p: FileProgress): void {
  bus.dispatchEvent(new CustomEvent<FileProgress>(p.fileId, { detail: p }));
}

/** How much of `f` this peer holds: as the message said, then as the events tell. */
export function useFileState(f: ChatFile): Pick<ChatFile, 'state' | 'have'> {
  const [now, setNow] = useState({ state: f.state, have: f.have });
  useEffect(() => setNow({ state: f.state, have: f.have }), [f.state, f.have]);
  useEffect(() => {
    const on = (e: Event) => {
      const p = (e as CustomEvent<FileProgress>).detail;
      setNow({ state: p.state, have: p.have });
    };
    bus.addEventListener(f.id, on);
    return () => bus.removeEventListener(f.id, on);
  }, [f.id]);
  return now;
}
