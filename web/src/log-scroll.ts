/**
 * Scrolling the message log: kept at the newest message when the log's box shrinks (a stream
 * opening above it), and paged from the keyboard while the focus is in the composer; where its
 * "New messages" divider goes.
 */
import { useEffect, type KeyboardEvent, type RefObject } from 'react';

/**
 * While `atBottom` holds, a resize of the log (a stream opening above it) or of its content
 * (rows of the virtual list measured taller than estimated, an image loaded) keeps it at the
 * bottom. A log whose content all fits (nothing to scroll, so no scroll event to say so) is at
 * the bottom: it follows what comes next.
 */
export function usePinnedToBottom(
  list: RefObject<HTMLElement | null>,
  atBottom: RefObject<boolean>,
  content?: RefObject<HTMLElement | null>,
): void {
  useEffect(() => {
    const el = list.current;
    if (!el || typeof ResizeObserver === 'undefined') return;
    const ro = new ResizeObserver(() => {
      // Not an empty log (before its first page, as when it opens at a message found by a
      // search or a reply's quote: that jump must not turn into following the newest).
      if (
        !atBottom.current &&
        el.scrollHeight <= el.clientHeight + 1 &&
        el.querySelector('article')
      )
        atBottom.current = true;
      if (atBottom.current) el.scrollTop = el.scrollHeight;
    });
    ro.observe(el);
    if (content?.current) ro.observe(content.current);
    return () => ro.disconnect();
  }, [list, atBottom, content]);
}

/** PageUp/PageDown from the composer scroll the log (as in Discord); true when handled. */
export function pageLog(list: HTMLElement | null, e: KeyboardEvent): boolean {
  if (!list) return false;
  const page = Math.max(40, list.clientHeight - 40);
  if (e.key === 'PageUp') list.scrollBy({ top: -page });
  else if (e.key === 'PageDown') list.scrollBy({ top: page });
  else return false;
  e.preventDefault();
  return true;
}

/**
 * Where the "New messages" divider goes: the first of the last `unread` messages written by
 * others (`byOthers`), or the oldest of theirs loaded when fewer are.
 */
export function firstUnread<T>(
  messages: readonly T[],
  byOthers: (m: T) => boolean,
  unread: number,
): T | undefined {
  let seen = 0;
  for (let i = messages.length - 1; i >= 0; i--) {
    if (!byOthers(messages[i]!)) continue;
    if (++seen === unread) return messages[i];
  }
  return messages.find(byOthers);
}
