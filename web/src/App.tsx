/**
 * The app: the entry screen until a session exists, then the chat. It keeps one event stream
 * open and tells the parts what changed. Without the API token (the page was not opened at
 * the `ui=…?token=` URL its peer printed: auth.ts) it says how to open it instead.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, ApiError, type Me } from './api.js';
import { Entry } from './Entry.js';
import { Chat } from './Chat.js';
import { Locked } from './Locked.js';
import { E_PEER_UNREACHABLE } from './peer-reach.js';

export function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [locked, setLocked] = useState(false);

  // Answers can come back out of order (one asked before a change, one after): only the answer
  // to the newest question is shown, never an older one over it.
  const asked = useRef(0);
  const refreshMe = useCallback(async () => {
    const n = ++asked.current;
    try {
      const { me } = await api.session();
      if (n === asked.current) setMe(me);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'E_API_TOKEN') setLocked(true);
      // The peer is not running: the last session known stays, under the page's banner.
      else if (!(err instanceof ApiError && err.code === E_PEER_UNREACHABLE)) throw err;
    }
  }, []);

  useEffect(() => {
    void refreshMe();
  }, [refreshMe]);

  if (locked) return <Locked />;
  if (me === undefined) return <div className="splash">Hybrid Chat</div>;
  if (me === null) return <Entry onEntered={refreshMe} />;
  return <Chat me={me} refreshMe={refreshMe} onLeft={() => setMe(null)} />;
}
