/**
 * "New message": starts a conversation with one user (a DM) or up to nine (a group DM), named
 * by username. What the peer refuses (an unknown user, yourself, too many) is said in the
 * dialog, which stays open.
 */
import { useId, useState, type FormEvent } from 'react';
import { useModal } from './useModal.js';
import { ApiError } from './api.js';
import { dmApi, type ApiDm } from './dm-api.js';
import { DM_LIMITS } from '../../src/shared/limits.js';

/** Other users a conversation may have (the own user is the last member). */
const MAX_OTHERS = DM_LIMITS.maxMembers - 1;

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
    const members = names.split(/[\s,]+/).filter(Boolean);
    if (members.length === 0) return setError('Name at least one user.');
    if (members.length > MAX_OTHERS)
      return setError(`A conversation has at most ${MAX_OTHERS} other members.`);
    setBusy(true);
    try {
      onStarted(await dmApi.start(members));
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
          One name for a direct message, up to {MAX_OTHERS} for a group, separated by commas or
          spaces.
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
