/**
 * "New message": starts a conversation with one user (a DM) or up to nine (a group DM), named
 * by username, with or without the `@` the app writes names with. A name that cannot be a
 * username is said before anything is asked; what the peer refuses (an unknown user, yourself)
 * is said in the dialog, which stays open.
 */
import { useId, useState, type FormEvent } from 'react';
import { useModal } from './useModal.js';
import { ApiError } from './api.js';
import { dmApi, type ApiDm } from './dm-api.js';
import { DM_LIMITS } from '../../src/shared/limits.js';
import { USERNAME } from '../../src/shared/mention-syntax.js';

/** Other users a conversation may have (the own user is the last member). */
const MAX_OTHERS = DM_LIMITS.maxMembers - 1;

/**
 * The usernames typed (separated by commas or spaces, `@alice` as `alice`, each once), or what
 * is wrong with them, in words naming the names.
 */
export function typedMembers(text: string): { members: string[] } | { error: string } {
  const typed = text.split(/[\s,]+/).filter(Boolean);
  if (typed.length === 0) return { error: 'Name at least one user.' };
  const bad = typed.filter((t) => !USERNAME.test(t.replace(/^@/, '')));
  if (bad.length > 0) {
    const quoted = bad.map((b) => `“${b}”`).join(', ');
    const verb = bad.length === 1 ? 'is not a username' : 'are not usernames';
    return { error: `${quoted} ${verb}: a username is 2 to 32 letters, digits, _ . or -.` };
  }
  const seen = new Set<string>();
  const members = typed
    .map((t) => t.replace(/^@/, ''))
    .filter((n) => !seen.has(n.toLowerCase()) && seen.add(n.toLowerCase()));
  if (members.length > MAX_OTHERS)
    return { error: `A conversation has at most ${MAX_OTHERS} other members.` };
  return { members };
}

export function NewDmDialog({
  onClose,
  onStarted,
}: {
  onClose: () => void;
  onStarted: (dm: ApiDm) => void;
}) {
  const dialog = useModal();
  const id = useId();
  const [names, setNames] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  async function start(e: FormEvent) {
    e.preventDefault();
    const typed = typedMembers(names);
    if ('error' in typed) return setError(typed.error);
    setBusy(true);
    try {
      onStarted(await dmApi.start(typed.members));
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <dialog
      ref={dialog}
      className="confirm new-dm-dialog"
      aria-labelledby={`${id}-title`}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      <form onSubmit={start}>
        <h2 id={`${id}-title`}>New message</h2>
        <label htmlFor={`${id}-names`}>Usernames</label>
        <input
          id={`${id}-names`}
          value={names}
          autoFocus
          autoComplete="off"
          aria-describedby={`${id}-hint${error ? ` ${id}-error` : ''}`}
          aria-invalid={error ? true : undefined}
          onChange={(e) => {
            setNames(e.target.value);
            setError('');
          }}
        />
        <p className="hint" id={`${id}-hint`}>
          One name for a direct message (bob or @bob), up to {MAX_OTHERS} for a group, separated by
          commas or spaces.
        </p>
        {error && (
          <p className="error" id={`${id}-error`} role="alert">
            {error}
          </p>
        )}
        <div className="confirm-buttons">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary-fill" disabled={busy}>
            Start conversation
          </button>
        </div>
      </form>
    </dialog>
  );
}
