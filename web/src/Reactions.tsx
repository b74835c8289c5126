/**
 * Reactions under a message: a chip per emoji with its count ("👍 2"), highlighted when I
 * reacted; a click toggles mine. Its title names who reacted.
 */
import type { Message } from './api.js';

export function Reactions({
  reactions,
  canReact,
  onToggle,
}: {
  reactions: Message['reactions'];
  canReact: boolean;
  onToggle: (emoji: string, on: boolean) => void;
}) {
  if (reactions.length === 0) return null;
  return (
    <ul className="reactions" aria-label="Reactions">
      {reactions.map((r) => {
        const who = r.users.join(', ');
        return (
          <li key={r.emoji}>
            <button
              type="button"
              className={r.me ? 'reaction me' : 'reaction'}
              aria-pressed={r.me}
              aria-label={`${r.emoji} ${r.count}, reacted by ${who}`}
              title={`${who} reacted with ${r.emoji}`}
              disabled={!canReact}
              onClick={() => onToggle(r.emoji, !r.me)}
            >
              <span className="reaction-emoji">{r.emoji}</span>{' '}
              <span className="reaction-count">{r.count}</span>
            </button>
          </li>
        );
      })}
    </ul>
  );
}
