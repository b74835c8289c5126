/**
 * Jumping to a message (a reply's original): scrolled to and highlighted for a moment when it is
 * in the loaded list; otherwise the page around it (`?around=`) replaces the list, detached from
 * the present until "Jump to present" loads the newest page again. While detached, live events
 * only update messages already shown (new ones would leave a gap). The log is a virtual list: a
 * message out of view is not in the DOM until `reveal` scrolls to it.
 */
import { useCallback, useEffect, useLayoutEffect, useRef, useState, type RefObject } from 'react';
import { api, ApiError, type Message, type Page } from './api.js';

const FLASH_MS = 2000;

export function useJump({
  channelId,
  list,
  messages,
  reveal,
  atBottom,
  onPage,
  onError,
}: {
  channelId: string;
  list: RefObject<HTMLDivElement | null>;
  messages: Message[];
  /** Scrolls the virtual list to this message, so that its row is rendered. */
  reveal: (id: string) => boolean;
  atBottom: RefObject<boolean>;
  /** Replaces the loaded list with this page. */
  onPage: (page: Page) => void;
  onError: (message: string) => void;
}) {
  const [flashId, setFlashId] = useState<string | null>(null);
  const [detached, setDetached] = useState(false);
  const scrollTo = useRef<string | null>(null);
  /** The message `reveal` was asked for (once per jump). */
  const revealed = useRef<string | null>(null);
  const timer = useRef<ReturnType<typeof setTimeout>>(undefined);
  useEffect(() => () => clearTimeout(timer.current), []);

  const flash = useCallback((id: string) => {
    setFlashId(id);
    clearTimeout(timer.current);
    timer.current = setTimeout(() => setFlashId(null), FLASH_MS);
  }, []);

  // After the list rendered with the message: centre it and give it the focus.
  useLayoutEffect(() => {
    const id = scrollTo.current;
    const el = list.current;
    if (!id || !el) return;
    const target = document.getElementById(`msg-${id}`);
    if (!target) {
      // Not rendered (out of view): scroll the list to it; a later render finds it.
      if (revealed.current !== id && reveal(id)) revealed.current = id;
      return;
    }
    scrollTo.current = null;
    revealed.current = null;
    const t = target.getBoundingClientRect();
    const l = el.getBoundingClientRect();
    el.scrollTop += t.top - l.top - l.height / 2 + t.height / 2;
    target.focus({ preventScroll: true });
  });

  /** Jumps to message `id`; answers whether the page then shown reaches the newest message. */
  const jumpTo = useCallback(
    async (id: string): Promise<boolean> => {
      atBottom.current = false;
      if (messages.some((m) => m.id === id)) {
        scrollTo.current = id;
        flash(id);
        return !detached;
      }
      try {
        const page = await api.around(channelId, id);
        scrollTo.current = id;
        setDetached(page.hasNewer === true);
        onPage(page);
        flash(id);
        return page.hasNewer !== true;
      } catch (err) {
        onError(
          err instanceof ApiError && err.code === 'E_NOT_FOUND'
            ? 'The original message is not on this peer.'
            : err instanceof ApiError
              ? err.message
              : String(err),
        );
        return false;
      }
    },
    [channelId, messages, detached, atBottom, flash, onPage, onError],
  );

  const jumpToPresent = useCallback(async () => {
    try {
      const page = await api.messages(channelId);
      atBottom.current = true;
      setDetached(false);
      onPage(page);
    } catch (err) {
      onError(err instanceof ApiError ? err.message : String(err));
    }
  }, [channelId, atBottom, onPage, onError]);

  return { flashId, detached, jumpTo, jumpToPresent };
}
