/** "Replying to bob" above the composer, with a button that cancels the reply. */
import type { Message } from './api.js';

export function ReplyBar({ to, onCancel }: { to: Message; onCancel: () => void }) {
  return (
    <div className="reply-bar">
      <span>
        Replying to <strong>{to.author}</strong>
      </span>
      <button type="button" className="reply-cancel" onClick={onCancel} aria-label="Cancel reply">
        ✕
      </button>
    </div>
  );
}
