/**
 * What one can do to a message, shown while it is hovered or has the focus: Reply, React (a
 * small picker of common emoji, one open at a time: it closes when another message's actions
 * open, on Escape, and on a click outside), Edit (one's own), Delete (one's own, or any in one's own
 * channel; after a confirm dialog).
 */
import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import { findEmoji } from './emoji-find.js';
import { Confirm } from './Confirm.js';

/** The picker's emoji, Discord's usual first row. */
export const QUICK_EMOJI = ['👍', '❤️', '😂', '🎉', '😮', '😢', '🙏', '👀'];

export function MessageActions({
  author,
  where = 'the channel',
  canReply,
  canEdit,
  canDelete,
  onReply,
  onReact,
  onEdit,
  onDelete,
}: {
  author: string;
  /** Where a deleted message disappears, for the confirm dialog: "the channel" unless said. */
  where?: string;
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

  // Nothing this reader may do (a visitor): no empty toolbar for a screen reader to announce.
  if (!canReply && !canEdit && !canDelete) return null;
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
          up={roomBelow(bar.current) < PICKER_HEIGHT}
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
          where={where}
          onAnswer={(yes) => {
            setConfirming(false);
            if (yes) onDelete();
          }}
        />
      )}
    </div>
  );
}

/** Emoji found by name, at most this many at once. */
const FOUND = 24;

/** About the picker's height with its search and three rows found (px). */
const PICKER_HEIGHT = 190;

/** Pixels between `el` and the bottom of the message log it is in (the page's, outside one). */
function roomBelow(el: HTMLElement | null): number {
  if (!el) return Infinity;
  const log = el.closest('[role="log"]') ?? el.ownerDocument.documentElement;
  return log.getBoundingClientRect().bottom - el.getBoundingClientRect().bottom;
}

/**
 * Eight emoji in a row, and a search over every emoji by its short name (`heart` finds 😍
 * heart_eyes…). It opens with the focus in the search, as Discord's: typing searches, Enter
 * picks the first found. Up goes to the row of eight, Down to what was found (and back); the
 * left and right arrows move between the emoji; Escape closes.
 */
function EmojiPicker({
  up,
  onPick,
  onClose,
}: {
  /** Opens above the actions (no room below them in the log). */
  up: boolean;
  onPick: (e: string) => void;
  onClose: () => void;
}) {
  const box = useRef<HTMLDivElement>(null);
  const [query, setQuery] = useState('');
  const q = query.trim().toLowerCase().replace(/^:|:$/g, '');
  const found = q ? findEmoji(q, FOUND) : [];
  const search = useRef<HTMLInputElement>(null);
  // The focus starts in the search (before the first key can be typed: a layout effect).
  useLayoutEffect(() => search.current?.focus({ preventScroll: true }), []);
  function onKeyDown(e: React.KeyboardEvent) {
    const buttons = [...(box.current?.querySelectorAll('button') ?? [])];
    const i = buttons.indexOf(document.activeElement as HTMLButtonElement);
    const inSearch = e.target === search.current;
    const row = (document.activeElement as Element | null)?.closest('.quick, .found');
    if (e.key === 'Escape') {
      e.stopPropagation();
      onClose();
    } else if (e.key === 'Enter' && inSearch) {
      e.preventDefault();
      if (found[0]) onPick(found[0].emoji);
    } else if (inSearch && (e.key === 'ArrowUp' || e.key === 'ArrowDown')) {
      const to = box.current?.querySelector<HTMLButtonElement>(
        e.key === 'ArrowUp' ? '.quick button' : '.found button',
      );
      if (to) {
        e.preventDefault();
        to.focus();
      }
    } else if (
      (row?.classList.contains('quick') && e.key === 'ArrowDown') ||
      (row?.classList.contains('found') && e.key === 'ArrowUp')
    ) {
      e.preventDefault();
      search.current?.focus();
    } else if (i >= 0 && (e.key === 'ArrowRight' || e.key === 'ArrowLeft')) {
      e.preventDefault();
      const n = buttons.length;
      buttons[(i + (e.key === 'ArrowRight' ? 1 : n - 1)) % n]?.focus();
    }
  }
  return (
    <div
      className={up ? 'emoji-picker up' : 'emoji-picker'}
      role="group"
      aria-label="Pick a reaction"
      ref={box}
      onKeyDown={onKeyDown}
    >
      <div className="quick">
        {QUICK_EMOJI.map((e) => (
          <button key={e} type="button" aria-label={`React with ${e}`} onClick={() => onPick(e)}>
            {e}
          </button>
        ))}
      </div>
      <input
        ref={search}
        type="search"
        aria-label="Search emoji"
        placeholder="Search emoji"
        value={query}
        maxLength={32}
        onChange={(e) => setQuery(e.target.value)}
      />
      {q && (
        <div className="found" role="group" aria-label={`${found.length} emoji found`}>
          {found.map((f) => (
            <button
              key={f.name}
              type="button"
              aria-label={`React with ${f.emoji} ${f.name.replace(/_/g, ' ')}`}
              title={`:${f.name}:`}
              onClick={() => onPick(f.emoji)}
            >
              {f.emoji}
            </button>
          ))}
          {found.length === 0 && <span className="none">No emoji named so</span>}
        </div>
      )}
    </div>
  );
}

/** Delete, or keep: asked before a message goes for everyone. */
export function ConfirmDelete({
  author,
  where,
  onAnswer,
}: {
  author: string;
  where: string;
  onAnswer: (yes: boolean) => void;
}) {
  return (
    <Confirm
      title="Delete message"
      text={`Delete this message by ${author}? It disappears for everyone in ${where}; this cannot be undone.`}
      action="Delete"
      onAnswer={onAnswer}
    />
  );
}
