/**
 * The member list: the open channel's members with their avatars and presence (in an open
 * conversation its members, as Discord shows a DM's; elsewhere on Home, who is online), each with
 * "Message" (a direct message) for a user. Offline or reconnecting it keeps
 * the last list it had, greyed, since presence is not known then. A member whose presence this
 * session may not know (a visitor's view: `unknown`) has no dot and reads "presence hidden". Below 900 px it is a panel
 * that the toggle in the chat opens over the page, and Escape or a press outside closes.
 */
import { useEffect, useRef, useState } from 'react';
import { api, ApiError, type Me, type Member as ChannelMember, type Peer } from './api.js';
import { Confirm } from './Confirm.js';
import { Avatar } from './Avatar.js';

/** A channel's member, or on Home a user online (a tracker entry's status). */
type Member = { username: string; status: ChannelMember['status'] | Peer['status'] };

export function MemberList({
  me,
  onMessage,
  channelId,
  dmMembers,
  paused = false,
  removable,
  link,
  peers,
  open,
  onClose,
}: {
  me: string;
  /** Starts or opens the 1:1 conversation with a member; absent for visitors (they have none). */
  onMessage?: (username: string) => Promise<void>;
  channelId: string | null;
  /** The open conversation's members (its own user among them), when one is open on Home. */
  dmMembers?: string[];
  /** The channel is being left or deleted: its members are not asked again meanwhile. */
  paused?: boolean;
  /** Set (to the owner's name) when the viewer owns the open channel: members can be removed. */
  removable: string | null;
  link: Me['connection'];
  peers: Peer[];
  open: boolean;
  onClose: () => void;
}) {
  const connected = link === 'connected';
  const [members, setMembers] = useState<Member[] | null>(null);
  const [removing, setRemoving] = useState<string | null>(null);
  const [error, setError] = useState('');
  const online = useRef<Member[]>([]);
  if (connected) online.current = [...new Map(peers.map((p) => [p.username, p])).values()];

  // The open channel's members, refreshed when presence or membership changes (`peers` is a
  // new array then). Offline the last answer stays.
  useEffect(() => {
    if (!channelId) return setMembers(null);
    if (!connected || paused) return;
    let stale = false;
    api.members(channelId).then(
      (m) => !stale && setMembers(m),
      () => undefined,
    );
    return () => {
      stale = true;
    };
  }, [channelId, connected, paused, peers]);
  useEffect(() => setMembers(null), [channelId]);

  // Opened over the page (below 900 px), the panel closes as a drawer does: Escape, or a press
  // outside it (the toggle that opened it closes it itself).
  const panel = useRef<HTMLElement>(null);
  useEffect(() => {
    if (!open) return;
    const key = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && !removing) onClose();
    };
    const press = (e: PointerEvent) => {
      const t = e.target as Element | null;
      if (!t || panel.current?.contains(t) || t.closest('.members-toggle, dialog')) return;
      onClose();
    };
    document.addEventListener('keydown', key);
    document.addEventListener('pointerdown', press);
    return () => {
      document.removeEventListener('keydown', key);
      document.removeEventListener('pointerdown', press);
    };
  }, [open, onClose, removing]);

  // A conversation's members: online when this session sees them in the tracker.
  const seen = new Set(online.current.map((p) => p.username.toLowerCase()));
  const list: Member[] = channelId
    ? (members ?? [])
    : dmMembers
      ? dmMembers.map((u) => ({
          username: u,
          status: seen.has(u.toLowerCase()) ? 'online' : 'offline',
        }))
      : online.current;
  // Channel members are users; on Home (who is online) visitors are among them.
  const visitors = new Set(peers.filter((p) => p.role === 'visitor').map((p) => p.username));
  async function message(username: string) {
    try {
      setError('');
      await onMessage?.(username);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  }
  return (
    <aside
      ref={panel}
      id="member-list"
      className={`members${open ? ' open' : ''}${connected ? '' : ' stale'}`}
      aria-label="Members"
    >
      <header className="sidebar-head">
        <h2>
          {channelId || dmMembers ? `Members — ${list.length}` : `Online — ${list.length}`}
          {!connected && list.length > 0 && <small> (last known)</small>}
        </h2>
        <button className="link close-members" onClick={onClose}>
          Close member list
        </button>
      </header>
      {error && (
        <p className="error member-error" role="alert">
          {error}
        </p>
      )}
      <ul>
        {list.map((p) => {
          const on = connected && p.status === 'online';
          // A visitor is not told members' presence (only the host's): no dot, nor "offline".
          const hidden = p.status === 'unknown';
          const presence = hidden
            ? 'presence hidden'
            : !connected
              ? 'presence unknown'
              : on
                ? 'online'
                : 'offline';
          const canMessage = !!onMessage && p.username !== me && !visitors.has(p.username);
          const canRemove = !!removable && !!channelId && p.username !== removable;
          return (
            <li key={p.username}>
              <span className="avatar-slot">
                <Avatar username={p.username} size={28} />
                {!hidden && (
                  <span className={`dot ${on ? 'online' : 'offline'}`} aria-hidden="true" />
                )}
              </span>
              <span className="member-name" title={p.username}>
                {p.username}
              </span>
              <span className="sr-only"> {presence}</span>
              {(canMessage || canRemove) && (
                <span className="member-actions">
                  {canMessage && (
                    <button
                      type="button"
                      className="link message-member"
                      aria-label={`Message ${p.username}`}
                      onClick={() => void message(p.username)}
                    >
                      Message
                    </button>
                  )}
                  {canRemove && (
                    <button
                      type="button"
                      className="link remove-member"
                      aria-label={`Remove ${p.username} from the channel`}
                      onClick={() => setRemoving(p.username)}
                    >
                      Remove
                    </button>
                  )}
                </span>
              )}
            </li>
          );
        })}
      </ul>
      {removing && channelId && (
        <Confirm
          title={`Remove ${removing}`}
          text={`Remove ${removing} from this channel? They can no longer read it, post in it or join it again.`}
          action="Remove"
          onAnswer={(yes) => {
            const who = removing;
            setRemoving(null);
            if (yes)
              void api.removeMember(channelId, who).then(
                () => setMembers((m) => m?.filter((x) => x.username !== who) ?? m),
                () => undefined,
              );
          }}
        />
      )}
    </aside>
  );
}
