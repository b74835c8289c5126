/**
 * Opening a channel or a conversation puts the caret in its message box, as Discord does, so
 * that what is typed next goes there (it went nowhere, and Enter pressed the button that opened
 * the conversation again). Not on a touch screen, where the keyboard would cover what opened,
 * and not while a dialog holds the focus.
 */
import { useLayoutEffect, type RefObject } from 'react';

/** Focuses `box` when `opened` (a channel's or conversation's id) changes, and at first. */
export function useFocusOnOpen(box: RefObject<HTMLTextAreaElement | null>, opened: string): void {
  // Before the box is painted: a key pressed as soon as it shows goes to it, not to the button.
  useLayoutEffect(() => {
    if (!window.matchMedia('(hover: hover) and (pointer: fine)').matches) return;
    if (document.activeElement?.closest('dialog, [role="dialog"]')) return;
    box.current?.focus({ preventScroll: true });
  }, [box, opened]);
}
