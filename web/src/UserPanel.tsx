/**
 * The bottom of the sidebar: your avatar (a user's is the "Change avatar" button), your name,
 * notifications, the status menu (online, invisible, offline), a user's "Bots and tokens"
 * (BotsPanel.tsx) and Log out.
 */
import { useRef, useState } from 'react';
import { api, type Me } from './api.js';
import { Avatar } from './Avatar.js';
import { AvatarEditor, PICTURE_TYPES } from './AvatarEditor.js';
import { BotsPanel } from './BotsPanel.js';
import { NotifyBell } from './MentionAlerts.js';
import { usePeerReachable } from './peer-reach.js';
import { forgetDrafts } from './drafts.js';

export function UserPanel({
  me,
  refreshMe,
  onLeft,
}: {
  me: Me;
  refreshMe: () => Promise<void>;
  onLeft: () => void;
}) {
  const input = useRef<HTMLInputElement>(null);
  const [picked, setPicked] = useState<File | null>(null);
  const [botsOpen, setBotsOpen] = useState(false);
  // Your peer is not running: there is nobody to tell a new status to (Chat's banner says so).
  const reachable = usePeerReachable();
  // Green only while connected: offline or reconnecting, nobody sees you online.
  const dot =
    me.connection !== 'connected' || me.status === 'offline'
      ? 'offline'
      : me.status === 'online'
        ? 'online'
        : 'invisible';
  const face = (
    <>
      <Avatar username={me.username} size={32} />
      <span className={`dot ${dot}`} aria-hidden="true" />
    </>
  );
  return (
    <div className="user-panel">
      {me.role === 'user' ? (
        <>
          <button
            type="button"
            className="avatar-slot change-avatar"
            aria-label="Change avatar"
            title="Change avatar"
            onClick={() => input.current?.click()}
          >
            {face}
          </button>
          <input
            ref={input}
            type="file"
            accept={PICTURE_TYPES}
            hidden
            onChange={(e) => {
              const f = e.target.files?.[0];
              if (f) setPicked(f);
              e.target.value = ''; // the same file can be picked again
            }}
          />
        </>
      ) : (
        <span className="avatar-slot">{face}</span>
      )}
      <span className="me-name" title={me.username}>
        {me.username}
        {me.role === 'visitor' && <small> (visitor)</small>}
      </span>
      <label className="sr-only" htmlFor="status">
        Status
      </label>
      <NotifyBell />
      <select
        id="status"
        value={me.status}
        disabled={!reachable}
        onChange={async (e) => {
          await api.setStatus(e.target.value as Me['status']);
          await refreshMe();
        }}
      >
        <option value="online">Online</option>
        <option value="invisible">Invisible</option>
        <option value="offline">Offline</option>
      </select>
      {me.role === 'user' && (
        <button
          type="button"
          className="link"
          aria-haspopup="dialog"
          onClick={() => setBotsOpen(true)}
        >
          Bots and tokens
        </button>
      )}
      <button
        className="link"
        onClick={async () => {
          await api.logout();
          forgetDrafts();
          onLeft();
        }}
      >
        Log out
      </button>
      {botsOpen && <BotsPanel me={me.username} onClose={() => setBotsOpen(false)} />}
      {picked && (
        <AvatarEditor
          file={picked}
          connected={me.connection === 'connected'}
          onClose={() => setPicked(null)}
        />
      )}
    </div>
  );
}
