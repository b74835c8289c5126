/**
 * The app: the entry screen until a session exists, then the chat. It keeps one event stream
 * open and tells the parts what changed. Without the API token (the page was not opened at
 * the `ui=…?token=` URL its peer printed: auth.ts) it says how to open it instead.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, ApiError, type Me } from './api.js';
import type { Ended } from './Entry.js';
import { Entry } from './Entry.js';
import { Chat } from './Chat.js';
import { Locked } from './Locked.js';
import { E_PEER_UNREACHABLE } from './peer-reach.js';

export function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  /** Why the server ended the last session, when nobody is logged in because of it. */
  const [ended, setEnded] = useState<Ended | undefined>(undefined);
  const [locked, setLocked] = useState(false);

  // Answers can come back out of order (one asked before a change, one after): only the answer
  // to the newest question is shown, never an older one over it.
  const asked = useRef(0);
  const refreshMe = useCallback(async () => {
    const n = ++asked.current;
    try {
      const { me, ended } = await api.session();
      if (n === asked.current) {
        setMe(me);
        setEnded(ended);
      }
    } catch (err) {
      if (err instanceof ApiError && err.code === 'E_API_TOKEN') setLocked(true);
      // The peer is not running: the last session known stays, under the page's banner.
      else if (!(err instanceof ApiError && err.code === E_PEER_UNREACHABLE)) throw err;
    }
  }, []);

  useEffect(() => {
    void refreshMe();
  }, [refreshMe]);

  // Left (logged out here, or the session is gone): the session read says whether the server
  // ended it, and why. One function for the page's life: the chat's lists and its event stream
  // are made from it, and a new one at each answer about `me` (a status, the link going down)
  // read the channels again and reopened the stream, after the session had ended too.
  const onLeft = useCallback(() => {
    setMe(null);
    void refreshMe();
  }, [refreshMe]);

  if (locked) return <Locked />;
  if (me === undefined) return <div className="splash">Hybrid Chat</div>;
  if (me === null) return <Entry onEntered={refreshMe} ended={ended} />;
  return <Chat me={me} refreshMe={refreshMe} onLeft={onLeft} />;
}
