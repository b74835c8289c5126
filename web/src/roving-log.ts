/**
 * One Tab stop for a whole message log, as Discord's: of its messages only one (the last one
 * focused, else the newest) is in the Tab order, and Up/Down (Home/End) move the focus from
 * message to message. Every message had been a Tab stop of its own, so that the keyboard crossed
 * fifty of them to reach the composer. The message in focus still opens its actions (Tab goes on
 * into them, as their bar shows while it has the focus).
 */
import { useState, type KeyboardEvent } from 'react';

/**
 * For a log of `ids` (oldest first) whose rows carry `data-index`: which message is the Tab stop,
 * and the key and focus handlers of the element around the rows. `show(i)` brings row `i` into
 * the DOM (a virtual list scrolls to it) when it is not there yet.
 */
export function useRovingLog(ids: readonly string[], show?: (i: number) => void) {
  const [active, setActive] = useState<string | null>(null);
  const stop = active !== null && ids.includes(active) ? active : (ids[ids.length - 1] ?? null);

  function focusRow(root: HTMLElement, i: number, tries = 10) {
    const art = root.querySelector<HTMLElement>(`[data-index="${i}"] article`);
    if (art) {
      art.focus({ preventScroll: true });
      art.scrollIntoView({ block: 'nearest' });
      return;
    }
    if (tries === 10) show?.(i);
    if (tries > 0) requestAnimationFrame(() => focusRow(root, i, tries - 1));
  }

  const handlers = {
    onFocus: (e: { target: EventTarget }) => {
      const art = (e.target as HTMLElement).closest?.('article');
      const row = art?.closest<HTMLElement>('[data-index]');
      const id = row ? ids[Number(row.dataset.index)] : undefined;
      if (id !== undefined) setActive(id);
    },
    onKeyDown: (e: KeyboardEvent<HTMLElement>) => {
      const art = e.target as HTMLElement;
      // On the message itself only: its buttons, an edit box and a picker keep their keys.
      if (art.tagName !== 'ARTICLE' || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
      const row = art.closest<HTMLElement>('[data-index]');
      if (!row) return;
      const i = Number(row.dataset.index);
      const to =
        e.key === 'ArrowUp'
          ? i - 1
          : e.key === 'ArrowDown'
            ? i + 1
            : e.key === 'Home'
              ? 0
              : e.key === 'End'
                ? ids.length - 1
                : undefined;
      if (to === undefined || to < 0 || to >= ids.length) return;
      e.preventDefault();
      setActive(ids[to]!);
      focusRow(e.currentTarget, to);
    },
  };
  return { stop, handlers };
}
