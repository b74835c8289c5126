/**
 * The app: the entry screen until a session exists, then the chat. It keeps one event stream
 * open and tells the parts what changed.
 */
import { useCallback, useEffect, useState } from 'react';
import { api, type Me } from './api.js';
import { Entry } from './Entry.js';
import { Chat } from './Chat.js';

export function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);

  const refreshMe = useCallback(async () => {
    setMe((await api.session()).me);
  }, []);

  useEffect(() => {
    void refreshMe();
  }, [refreshMe]);

  if (me === undefined) return <div className="splash">Hybrid Chat</div>;
  if (me === null) return <Entry onEntered={refreshMe} />;
  return <Chat me={me} refreshMe={refreshMe} onLeft={() => setMe(null)} />;
}
