/**
 * Every modal dialog of the UI (a `<dialog>` shown while its component is mounted): the
 * browser's own focus trap and Escape (its `cancel` event), and, when the dialog goes, however
 * it was closed (Escape, Cancel, its action done), the focus back on the control that opened it
 * (WCAG 2.4.3), not on the page's <body>, from where the next Tab would start again at the top.
 */
import { useLayoutEffect, useRef, type RefObject } from 'react';

/** The ref to put on the component's `<dialog>`: shown modal on mount, its opener refocused after. */
export function useModal(): RefObject<HTMLDialogElement | null> {
  const dialog = useRef<HTMLDialogElement>(null);
  // Layout effects: the opener is read before anything else of the commit moves the focus, and
  // given back while the dialog is still in the page, before a dialog opened in its place (the
  // channel settings' "Delete channel") reads its own opener.
  useLayoutEffect(() => {
    const d = dialog.current;
    if (!d) return;
    const active = document.activeElement;
    const opener = active instanceof HTMLElement && !d.contains(active) ? active : null;
    if (!d.open) d.showModal();
    return () => {
      const focus = document.activeElement;
      const inside = !focus || focus === document.body || d.contains(focus);
      // Closed first: what lies under a modal dialog is inert and cannot take the focus.
      if (d.open) d.close();
      // Unless something else took the focus meanwhile (the focus was moved on purpose).
      if (inside && opener?.isConnected) opener.focus();
    };
  }, []);
  return dialog;
}
