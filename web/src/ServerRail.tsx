/**
 * The rail of "servers", as in Discord: Home (the directory and your direct messages) and each
 * owner of a channel you joined, with their unread and mention counts, said to screen readers too.
 */
import type { Channel } from './api.js';

/** The rail; `owner` is the one open (null: Home). */
export function ServerRail({
  me,
  owner,
  owners,
  channels,
  dmUnread,
  dmMentions,
  onHome,
  onOwner,
}: {
  me: string;
  owner: string | null;
  /** Each owner of a channel you joined, in the rail's order. */
  owners: string[];
  channels: Channel[];
  dmUnread: number;
  dmMentions: number;
  onHome: () => void;
  onOwner: (owner: string) => void;
}) {
  return (
    <nav className="rail" aria-label="Servers">
      <button
        className={owner === null ? 'rail-item active' : 'rail-item'}
        onClick={onHome}
        title="Home"
      >
        <span aria-hidden="true">⌂</span>
        {/* Its name says the direct messages' unread count and mentions; the badge shows one. */}
        <span className="sr-only">{homeLabel(dmUnread, dmMentions)}</span>
        {(dmUnread > 0 || dmMentions > 0) && (
          <span
            className={`badge ${dmMentions > 0 ? 'mention-badge' : 'unread-badge'}`}
            aria-hidden="true"
          >
            {dmMentions > 0 ? dmMentions : dmUnread}
          </span>
        )}
      </button>
      {owners.map((o) => {
        const mine = channels.filter((c) => c.owner === o);
        const unread = mine.reduce((n, c) => n + (c.unread ?? 0), 0);
        const mentions = mine.reduce((n, c) => n + (c.mentions ?? 0), 0);
        return (
          <button
            key={o}
            className={owner === o ? 'rail-item active' : 'rail-item'}
            onClick={() => onOwner(o)}
            title={o}
          >
            {/* Named by its content, so that the name holds the visible text (WCAG 2.5.3). */}
            {o.slice(0, 2).toUpperCase()}
            <span className="sr-only">
              , {o === me ? 'Your channels' : `${o}'s channels`}
              {(unread > 0 || mentions > 0) && ', '}
            </span>
            {unread > 0 && (
              <span className="badge unread-badge">
                {unread}
                <span className="sr-only"> unread{mentions > 0 && ','}</span>
              </span>
            )}
            {mentions > 0 && (
              <span className="badge mention-badge">
                {mentions}
                <span className="sr-only"> mention{mentions > 1 ? 's' : ''}</span>
              </span>
            )}
          </button>
        );
      })}
    </nav>
  );
}

/** The Home button's name: with the unread direct messages and mentions of you, if any. */
function homeLabel(unread: number, mentions: number): string {
  let label = 'Home';
  if (unread > 0) label += `, ${unread} unread`;
  if (mentions > 0) label += `, ${mentions} mention${mentions > 1 ? 's' : ''}`;
  return label;
}
