/**
 * "Direct Messages" on Home, as in Discord: each conversation with its members' avatars, its
 * title, a preview of the last message and its unread (or mention) count, newest first; and the
 * "New message" button that starts one.
 */
import { useId, useState } from 'react';
import { Avatar } from './Avatar.js';
import { ChannelBadges } from './MentionAlerts.js';
import { NewDmDialog } from './NewDmDialog.js';
import { oneLine } from './ReplyQuote.js';
import { others, writeOnOpen, type ApiDm } from './dm-api.js';
import './dm.css';

export function DmList({
  me,
  dms,
  openId,
  onOpen,
  online,
}: {
  me: string;
  dms: ApiDm[];
  openId: string | null;
  onOpen: (dm: ApiDm) => void;
  /** Who this session sees online (lower case), as the member list does; none while not connected. */
  online?: ReadonlySet<string>;
}) {
  const head = useId();
  const [starting, setStarting] = useState(false);
  return (
    <section className="dm-section" aria-labelledby={head}>
      <div className="dm-section-head">
        <h2 className="section" id={head}>
          Direct Messages
        </h2>
        <button type="button" className="link new-dm" onClick={() => setStarting(true)}>
          New message
        </button>
      </div>
      {dms.length === 0 ? (
        <p className="hint">No conversations yet: start one here or from the member list.</p>
      ) : (
        <ul className="dm-list">
          {dms.map((d) => {
            const open = d.id === openId;
            const names = others(d, me);
            const presence = presenceOf(names, online);
            return (
              <li key={d.id}>
                <button
                  type="button"
                  className={open ? 'dm-item active' : 'dm-item'}
                  aria-current={open || undefined}
                  onClick={() => onOpen(d)}
                >
                  <DmAvatars names={names} presence={presence} />
                  <span className="dm-text">
                    <span className="dm-title">{d.title}</span>
                    {presence && <span className="sr-only"> ({presence})</span>}
                    <span className="dm-preview">{preview(d, me)}</span>
                  </span>
                  {!open && <ChannelBadges unread={d.unread} mentions={d.mentions} />}
                </button>
              </li>
            );
          })}
        </ul>
      )}
      {starting && (
        <NewDmDialog
          onClose={() => setStarting(false)}
          onStarted={(d) => {
            setStarting(false);
            // Then write in it: its view takes the focus once it is shown (the dialog gives the
            // focus back to its opener as it closes, and the list may show it a moment later).
            writeOnOpen(d.id);
            onOpen(d);
          }}
        />
      )}
    </section>
  );
}

/**
 * The other user's presence in a 1:1 (`names`: the members but oneself), as Discord shows it in
 * its DM list and header: online when this session sees them online (`online`, lower case), else
 * offline; none for a group, or while this session sees nobody (not connected).
 */
export function presenceOf(
  names: string[],
  online: ReadonlySet<string> | undefined,
): 'online' | 'offline' | undefined {
  if (names.length !== 1 || !online) return undefined;
  return online.has(names[0]!.toLowerCase()) ? 'online' : 'offline';
}

/** One avatar for a 1:1 conversation (with its presence dot, when known); two, overlapping, for a group. */
export function DmAvatars({
  names,
  presence,
}: {
  names: string[];
  presence?: 'online' | 'offline';
}) {
  if (names.length <= 1)
    return (
      <span className="dm-avatars">
        {names[0] !== undefined && (
          <span className="avatar-slot">
            <Avatar username={names[0]} size={32} />
            {presence && <span className={`dot ${presence}`} aria-hidden="true" />}
          </span>
        )}
      </span>
    );
  return (
    <span className="dm-avatars group">
      <Avatar username={names[0]!} size={28} />
      <Avatar username={names[1]!} size={28} />
    </span>
  );
}

/** The last message in one line: "You: …", "bob: …" in a group, the text alone in a 1:1. */
function preview(d: ApiDm, me: string): string {
  if (!d.last) return 'No messages yet';
  const who = d.last.author === me ? 'You: ' : d.members.length > 2 ? `${d.last.author}: ` : '';
  // The markers of bold, italics, strike and code would show as they are typed: left out.
  return who + oneLine(d.last.text);
}
