/** A modal confirmation (the browser's own focus trap and Escape): do it, or keep things. */
import { useId } from 'react';
import { useModal } from './useModal.js';

export function Confirm({
  title,
  text,
  action,
  onAnswer,
}: {
  title: string;
  text: string;
  /** The confirming button's label (e.g. "Delete"). */
  action: string;
  onAnswer: (yes: boolean) => void;
}) {
  const dialog = useModal();
  const titleId = useId();
  return (
    <dialog
      ref={dialog}
      className="confirm"
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        onAnswer(false);
      }}
    >
      <h2 id={titleId}>{title}</h2>
      <p>{text}</p>
      <div className="confirm-buttons">
        <button type="button" autoFocus onClick={() => onAnswer(false)}>
          Cancel
        </button>
        <button type="button" className="danger-fill" onClick={() => onAnswer(true)}>
          {action}
        </button>
      </div>
    </dialog>
  );
}
