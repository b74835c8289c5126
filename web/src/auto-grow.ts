/**
 * A composer's text box grows with its text (Shift+Enter lines, long lines wrapping), as
 * Discord's does, up to its CSS `max-height`; beyond that it scrolls.
 */
import { useEffect, useLayoutEffect, type RefObject } from 'react';

/** Sizes `box` to its text whenever `text` changes or the window's width does. */
export function useAutoGrow(box: RefObject<HTMLTextAreaElement | null>, text: string): void {
  useLayoutEffect(() => fit(box.current), [box, text]);
  useEffect(() => {
    const again = () => fit(box.current);
    window.addEventListener('resize', again);
    return () => window.removeEventListener('resize', again);
  }, [box]);
}

/** Its height set to what its text needs (border-box: the borders added to scrollHeight). */
function fit(el: HTMLTextAreaElement | null): void {
  if (!el) return;
  // Measuring at 'auto' scrolls it back to the start: the caret at the end (typing, a paste)
  // keeps the end in view, elsewhere the box keeps where it was.
  const top = el.scrollTop;
  const atEnd = el.ownerDocument.activeElement === el && el.selectionEnd === el.value.length;
  el.style.height = 'auto';
  el.style.height = `${el.scrollHeight + el.offsetHeight - el.clientHeight}px`;
  el.scrollTop = atEnd ? el.scrollHeight : top;
}
