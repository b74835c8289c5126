/**
 * A composer's limit on its text. The count shows only once the text nears the limit (as Discord
 * does): the text box keeps the width on a phone, and a screen reader is not told a number per
 * key. The live region stays in the page (empty and out of the flow meanwhile), so that its first
 * number is announced. A text over the limit is kept whole (a paste is never cut): the count says
 * by how much it is over, Send is disabled with that reason, and Enter says it instead of sending.
 */
import { useId, useState, type ReactNode } from 'react';

/** The most characters a message's text may have (the local API's `MessageText`). */
export const MAX_TEXT = 4000;
const NEAR = 200;

export function TextCount({ id, length, max }: { id?: string; length: number; max: number }) {
  const over = length - max;
  const near = length > max - NEAR;
  return (
    <span
      id={id}
      className={over > 0 ? 'count over' : near ? 'count warn' : 'count idle'}
      aria-live="polite"
    >
      {over > 0 ? (
        <>
          <span aria-hidden="true">{`${length}/${max} · ${over.toLocaleString('en')} over`}</span>
          <span className="sr-only">{tooLong(over, max)}</span>
        </>
      ) : near ? (
        `${length}/${max}`
      ) : (
        ''
      )}
    </span>
  );
}

/** "110 characters over the 4,000-character limit". */
function tooLong(over: number, max: number): string {
  const n = over.toLocaleString('en');
  return `${n} ${over === 1 ? 'character' : 'characters'} over the ${max.toLocaleString('en')}-character limit`;
}

/** What a composer shows and does about its text's limit. */
export interface TextLimit {
  /** Characters over the limit (0 when the text fits). */
  over: number;
  /** The count, beside the text box. */
  count: ReactNode;
  /** Why it cannot be sent, once Enter was pressed over the limit (an alert), else null. */
  refusal: ReactNode;
  /** Enter was pressed over the limit: say why nothing is sent. */
  refuse: () => void;
  /** For the text box and Send: described by the count while over the limit. */
  described: { 'aria-describedby'?: string };
  /** The reason Send is disabled (its tooltip), while over the limit. */
  reason?: string;
}

/** The limit of a composer whose text is `text`. */
export function useTextLimit(text: string, max = MAX_TEXT): TextLimit {
  const id = useId();
  const over = Math.max(0, text.length - max);
  const [refused, setRefused] = useState(false);
  // Once the text fits, the next time it is over is not yet refused.
  if (refused && over === 0) setRefused(false);
  const reason = over > 0 ? `Too long to send: ${tooLong(over, max)}` : undefined;
  return {
    over,
    count: <TextCount id={id} length={text.length} max={max} />,
    refusal:
      refused && reason ? (
        <p className="error" role="alert">
          {reason}. Shorten it to send.
        </p>
      ) : null,
    refuse: () => setRefused(true),
    described: over > 0 ? { 'aria-describedby': id } : {},
    reason,
  };
}
