/**
 * Where the toasts (mentions, direct messages) stand. With a channel or a conversation open:
 * at the top right of its messages, just below its header, so that they never cover the
 * header's controls (Channel settings, Leave channel, Safety number, Block); the open pane puts
 * a ToastSlot there. With none open: at the top right of the chat, below its search row. Never
 * over the composer, the Members button or the channel list (dm.css).
 */
import { useSyncExternalStore, type ReactNode } from 'react';
import { createPortal } from 'react-dom';

/** The open pane's slot (one pane is open at a time), and who waits to hear it changed. */
let slot: HTMLElement | null = null;
const listeners = new Set<() => void>();

function setSlot(el: HTMLElement | null) {
  slot = el;
  for (const l of listeners) l();
}

function subscribe(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

/** Put by a pane right below its header: the toasts stand there while it is open. */
export function ToastSlot() {
  return <div className="toast-slot" ref={setSlot} />;
}

/** The toasts, in the open pane's slot, else where they stand when nothing is open. */
export function ToastStack({ children }: { children: ReactNode }) {
  const target = useSyncExternalStore(subscribe, () => slot);
  const stack = <div className="toast-stack">{children}</div>;
  return target ? createPortal(stack, target) : stack;
}
