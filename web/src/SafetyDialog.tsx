/**
 * The safety numbers of a conversation (docs/SECURITY.md "Direct messages"): for each other
 * member, the 60 digits both sides compute from their identity keys, in 12 groups of 5, to
 * compare in person or over another channel; then "Mark as verified" (which also acknowledges a
 * changed number) or "Clear verification".
 */
import { useEffect, useId, useState } from 'react';
import { useModal } from './useModal.js';
import { ApiError } from './api.js';
import { dmApi, type ApiDm, type ApiSafety } from './dm-api.js';

type Member = ApiSafety['members'][number];

export function SafetyDialog({
  dm,
  onClose,
  onChanged,
}: {
  dm: ApiDm;
  onClose: () => void;
  /** A verification changed: the conversation's `verified`/`keyChanged` did too. */
  onChanged: () => void;
}) {
  const dialog = useModal();
  const id = useId();
  const [safety, setSafety] = useState<ApiSafety | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    let stale = false;
    dmApi.safety(dm.id).then(
      (s) => !stale && setSafety(s),
      (err: unknown) => !stale && setError(err instanceof ApiError ? err.message : String(err)),
    );
    return () => {
      stale = true;
    };
  }, [dm.id]);

  async function toggle(m: Member) {
    try {
      setSafety(await dmApi.verify(dm.id, m.username, !m.verified));
      setError('');
      onChanged();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  }

  return (
    <dialog
      ref={dialog}
      className="confirm safety-dialog"
      aria-labelledby={`${id}-title`}
      aria-describedby={`${id}-how`}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      <h2 id={`${id}-title`}>Safety number</h2>
      <p className="hint" id={`${id}-how`}>
        Compare these numbers with {dm.members.length > 2 ? 'each member' : 'them'} in person or
        over a call. If they match, nobody stands between you: mark them verified.
      </p>
      {!safety && !error && <p className="hint">Loading…</p>}
      {safety?.members.map((m) => (
        <SafetyMember key={m.username} m={m} onToggle={() => void toggle(m)} />
      ))}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <div className="confirm-buttons">
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </dialog>
  );
}

function SafetyMember({ m, onToggle }: { m: Member; onToggle: () => void }) {
  const head = useId();
  const groups = m.safetyNumber.split(/\s+/).filter(Boolean);
  return (
    <div className="safety-member" role="group" aria-labelledby={head}>
      <h3 id={head}>{m.username}</h3>
      <p className="safety-state">
        {m.verified ? (
          <span className="verified">✓ Verified</span>
        ) : m.changed ? (
          <span className="changed">⚠ Changed: not verified</span>
        ) : (
          <span>Not verified</span>
        )}
        <span>
          {' '}
          · {m.devices} device{m.devices === 1 ? '' : 's'}
        </span>
      </p>
      <p className="safety-number">
        {groups.flatMap((g, i) => [i > 0 ? ' ' : '', <span key={i}>{g}</span>])}
      </p>
      <button type="button" className="verify" onClick={onToggle}>
        {m.verified ? 'Clear verification' : 'Mark as verified'}
      </button>
    </div>
  );
}
