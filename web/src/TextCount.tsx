/**
 * A composer's character count, shown only once the text nears its limit (as Discord does): the
 * text box keeps the width on a phone, and a screen reader is not told a number per key. The live
 * region stays in the page (empty and out of the flow meanwhile), so that its first number is
 * announced.
 */
const NEAR = 200;

export function TextCount({ length, max }: { length: number; max: number }) {
  const near = length > max - NEAR;
  return (
    <span className={near ? 'count warn' : 'count idle'} aria-live="polite">
      {near ? `${length}/${max}` : ''}
    </span>
  );
}
