/**
 * What was typed and not sent, kept per channel and per conversation (as Discord keeps a draft
 * per channel): a look at another channel or a DM unmounts the composer, and the text comes
 * back when it is opened again. Kept in the tab's sessionStorage (as the token is, auth.ts: per
 * origin, gone with the tab), so a reload keeps it too; Log out forgets every draft. Without
 * storage (a locked-down browser) drafts live as long as the page.
 */
import { useEffect, useState } from 'react';

const PREFIX = 'hchat_draft:';
/** Drafts kept in memory when the tab's storage refuses them (none, or full). */
const fallback = new Map<string, string>();

/** The draft of `key` (`<user>/channel/<id>`, `<user>/dm/<id>`), empty when none. */
function read(key: string): string {
  try {
    const kept = sessionStorage.getItem(PREFIX + key);
    if (kept !== null) return kept;
  } catch {
    // no storage: the page's memory below
  }
  return fallback.get(key) ?? '';
}

function write(key: string, text: string): void {
  fallback.delete(key);
  try {
    if (text) sessionStorage.setItem(PREFIX + key, text);
    else sessionStorage.removeItem(PREFIX + key);
    return;
  } catch {
    // no storage, or over its quota (a huge paste): kept in memory instead
  }
  if (text) fallback.set(key, text);
}

/**
 * A composer's text, kept as the draft of `key` while it changes; the composer is mounted once
 * per key (each channel's pane and each conversation are keyed by their id).
 */
export function useDraft(
  key: string,
): [string, (next: string | ((now: string) => string)) => void] {
  const [text, setText] = useState(() => read(key));
  useEffect(() => write(key, text), [key, text]);
  return [text, setText];
}

/** Forgets every draft of this tab (Log out). */
export function forgetDrafts(): void {
  fallback.clear();
  try {
    for (let i = sessionStorage.length - 1; i >= 0; i--) {
      const k = sessionStorage.key(i);
      if (k?.startsWith(PREFIX)) sessionStorage.removeItem(k);
    }
  } catch {
    // no storage
  }
}
