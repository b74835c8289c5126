/**
 * A composer's text box grows with its text (Shift+Enter lines, long lines wrapping), as
 * Discord's does, up to its CSS `max-height`; beyond that it scrolls.
 */
import { useEffect, useLayoutEffect, type RefObject } from 'react';

/**
 * Sizes `box` to its text whenever `text` changes or the box's width does (the window's, or a
 * notice beside it that came and went: a box sized while squeezed stayed five lines tall).
 */
export function useAutoGrow(box: RefObject<HTMLTextAreaElement | null>, text: string): void {
  useLayoutEffect(() => fit(box.current), [box, text]);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    let width = el.clientWidth;
    // Its own height changes too (fit): only a new width asks for a new height.
    const watch = new ResizeObserver(() => {
      if (el.clientWidth === width) return;
      width = el.clientWidth;
      fit(el);
    });
    watch.observe(el);
    return () => watch.disconnect();
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
