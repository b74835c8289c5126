/**
 * What one can do to a message, shown while it is hovered or has the focus: Reply, React (a
 * small picker of common emoji, one open at a time: it closes when another message's actions
 * open, on Escape, and on a click outside), Edit (one's own), Delete (one's own, or any in one's own
 * channel; after a confirm dialog).
 */
import { useEffect, useRef, useState } from 'react';
import { Confirm } from './Confirm.js';

/** The picker's emoji, Discord's usual first row. */
export const QUICK_EMOJI = ['👍', '❤️', '😂', '🎉', '😮', '😢', '🙏', '👀'];

export function MessageActions({
  author,
  canReply,
  canEdit,
  canDelete,
  onReply,
  onReact,
  onEdit,
  onDelete,
}: {
  author: string;
  canReply: boolean;
  canEdit: boolean;
  canDelete: boolean;
  onReply: () => void;
  onReact: (emoji: string) => void;
  onEdit: () => void;
  onDelete: () => void;
}) {
  const [picking, setPicking] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const reactButton = useRef<HTMLButtonElement>(null);
  const bar = useRef<HTMLDivElement>(null);

  // One picker at a time, as in Discord: it closes when another message's actions open (the
  // pointer over another message, or the focus on it), on Escape, and on a click outside.
  useEffect(() => {
    if (!picking) return;
    const doc = bar.current?.ownerDocument;
    if (!doc) return;
    const own = bar.current?.closest('article') ?? null;
    const close = () => setPicking(false);
    const elsewhere = (e: Event) => {
      const other = (e.target as Element | null)?.closest?.('article');
      if (other && other !== own) close();
    };
    const outside = (e: Event) => {
      if (!bar.current?.contains(e.target as Node)) close();
    };
    const escape = (e: KeyboardEvent) => {
      if (e.key === 'Escape') close();
    };
    doc.addEventListener('pointerover', elsewhere);
    doc.addEventListener('focusin', elsewhere);
    doc.addEventListener('pointerdown', outside);
    doc.addEventListener('keydown', escape);
    return () => {
      doc.removeEventListener('pointerover', elsewhere);
      doc.removeEventListener('focusin', elsewhere);
      doc.removeEventListener('pointerdown', outside);
      doc.removeEventListener('keydown', escape);
    };
  }, [picking]);

  return (
    <div
      ref={bar}
      className={picking || confirming ? 'msg-actions open' : 'msg-actions'}
      role="toolbar"
      aria-label="Message actions"
    >
      {canReply && (
        <button type="button" onClick={onReply} aria-label={`Reply to ${author}`}>
          Reply
        </button>
      )}
      {canReply && (
        <button
          type="button"
          ref={reactButton}
          aria-expanded={picking}
          aria-haspopup="true"
          onClick={() => setPicking((p) => !p)}
        >
          React
        </button>
      )}
      {canEdit && (
        <button type="button" onClick={onEdit}>
          Edit
        </button>
      )}
      {canDelete && (
        <button type="button" className="danger" onClick={() => setConfirming(true)}>
          Delete
        </button>
      )}
      {picking && (
        <EmojiPicker
          onPick={(e) => {
            setPicking(false);
            onReact(e);
            reactButton.current?.focus();
          }}
          onClose={() => {
            setPicking(false);
            reactButton.current?.focus();
          }}
        />
      )}
      {confirming && (
        <ConfirmDelete
          author={author}
          onAnswer={(yes) => {
            setConfirming(false);
            if (yes) onDelete();
          }}
        />
      )}
    </div>
  );
}

/** Eight emoji in a row; arrow keys move between them, Escape closes. */
function EmojiPicker({ onPick, onClose }: { onPick: (e: string) => void; onClose: () => void }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    box.current?.querySelector('button')?.focus();
  }, []);
  function onKeyDown(e: React.KeyboardEvent) {
    const buttons = [...(box.current?.querySelectorAll('button') ?? [])];
    const i = buttons.indexOf(document.activeElement as HTMLButtonElement);
    if (e.key === 'Escape') {
      e.stopPropagation();
      onClose();
    } else if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
      e.preventDefault();
      const n = buttons.length;
      buttons[(i + (e.key === 'ArrowRight' ? 1 : n - 1)) % n]?.focus();
    }
  }
  return (
    <div
      className="emoji-picker"
      role="group"
      aria-label="Pick a reaction"
      ref={box}
      onKeyDown={onKeyDown}
    >
      {QUICK_EMOJI.map((e) => (
        <button key={e} type="button" aria-label={`React with ${e}`} onClick={() => onPick(e)}>
          {e}
        </button>
      ))}
    </div>
  );
}

/** Delete, or keep: asked before a message goes for everyone. */
function ConfirmDelete({ author, onAnswer }: { author: string; onAnswer: (yes: boolean) => void }) {
  return (
    <Confirm
      title="Delete message"
      text={`Delete this message by ${author}? It disappears for everyone in the channel; this cannot be undone.`}
      action="Delete"
      onAnswer={onAnswer}
    />
  );
}
