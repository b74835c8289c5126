/** "Replying to bob" above the composer, with a button that cancels the reply. */
export function ReplyBar({ to, onCancel }: { to: { author: string }; onCancel: () => void }) {
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
