/**
 * The app: the entry screen until a session exists, then the chat. It keeps one event stream
 * open and tells the parts what changed. Without the API's cookie (the page was not opened at
 * the `ui=…?token=` URL its peer printed) it says how to open it instead.
 */
import { useCallback, useEffect, useState } from 'react';
import { api, ApiError, type Me } from './api.js';
import { Entry } from './Entry.js';
import { Chat } from './Chat.js';
import { Locked } from './Locked.js';

export function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [locked, setLocked] = useState(false);

  const refreshMe = useCallback(async () => {
    try {
      setMe((await api.session()).me);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'E_API_TOKEN') setLocked(true);
      else throw err;
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
