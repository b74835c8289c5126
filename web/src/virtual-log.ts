/**
 * The message log's virtualizer (@tanstack/react-virtual): only the rows in view, and a few
 * either side, are in the DOM, each measured as it renders (rows differ in height). As a chat
 * log: at the bottom it follows new messages (MessagePane pins it); scrolled up, older pages
 * loading above leave the rows in view where they are (`keepPlace`). The row holding the focus
 * stays rendered while scrolled out of view, so the focus (and an edit in progress) is kept.
 */
import {
  useCallback,
  useLayoutEffect,
  useMemo,
  useRef,
  useState,
  type FocusEvent,
  type RefObject,
} from 'react';
import { defaultRangeExtractor, useVirtualizer, type Range } from '@tanstack/react-virtual';
import type { Message } from './api.js';
import { sameDay } from './dates.js';

/** Within this many pixels of the bottom, the log counts as at the bottom (and follows). */
export const AT_BOTTOM_PX = 40;
/** Rows rendered beyond each edge of the view. */
const OVERSCAN = 12;
/** Estimated heights before a row is measured: the first of a group (author line), the others. */
const HEAD_ROW = 62;
const GROUPED_ROW = 26;
/** Within a group, messages of one author less than this far apart show no author line. */
const GROUP_MS = 5 * 60_000;

/**
 * Where row `i` stands: the first of its day, the first of a group (author and time shown). As in
 * Discord, the first message under the "New messages" divider (`markerId`) starts a group.
 */
export function rowPlace(
  messages: Message[],
  i: number,
  markerId: string | null = null,
): { newDay: boolean; head: boolean } {
  const m = messages[i]!;
  const prev = messages[i - 1];
  const newDay = !prev || !sameDay(prev.ts, m.ts);
  const head =
    newDay || !prev || m.id === markerId || prev.author !== m.author || m.ts - prev.ts > GROUP_MS;
  return { newDay, head };
}

export function useVirtualLog(
  list: RefObject<HTMLDivElement | null>,
  rows: RefObject<HTMLDivElement | null>,
  messages: Message[],
  /** The first unread message (the "New messages" divider), which starts a group. */
  markerId: string | null = null,
) {
  // The rows start below what comes first in the log (the "Load older messages" button).
  const [margin, setMargin] = useState(0);
  useLayoutEffect(() => {
    const el = list.current;
    const box = rows.current;
    if (!el || !box) return;
    const top = Math.round(
      box.getBoundingClientRect().top - el.getBoundingClientRect().top + el.scrollTop,
    );
    if (top !== margin) setMargin(top);
  });
  const focusedId = useRef<string | null>(null);
  const indexOf = useMemo(() => new Map(messages.map((m, i) => [m.id, i])), [messages]);
  const getItemKey = useCallback((i: number) => messages[i]!.id, [messages]);
  const estimateSize = useCallback(
    (i: number) => {
      const { newDay, head } = rowPlace(messages, i, markerId);
      return (head ? HEAD_ROW : GROUPED_ROW) + (newDay ? 34 : 0);
    },
    [messages, markerId],
  );
  const rangeExtractor = useCallback(
    (range: Range) => {
      const shown = defaultRangeExtractor(range);
      const f = focusedId.current === null ? undefined : indexOf.get(focusedId.current);
      if (f === undefined || shown.includes(f)) return shown;
      return [...shown, f].sort((a, b) => a - b);
    },
    [indexOf],
  );
  const v = useVirtualizer({
    count: messages.length,
    getScrollElement: () => list.current,
    estimateSize,
    getItemKey,
    rangeExtractor,
    overscan: OVERSCAN,
    scrollMargin: margin,
    // A scroll renders the pane in React's next batch, not synchronously inside the scroll event:
    // following a burst at the bottom, each scroll would otherwise render the whole pane again.
    useFlushSync: false,
  });

  /** Scrolls message `id` into view (rendering it); false when it is not in the list. */
  const reveal = useCallback(
    (id: string, align: 'start' | 'center' = 'center') => {
      const i = indexOf.get(id);
      if (i === undefined) return false;
      v.scrollToIndex(i, { align });
      return true;
    },
    [indexOf, v],
  );

  /** Where message `id` starts, in the log's scroll coordinates (undefined: not in the list). */
  const offsetOf = useCallback(
    (id: string) => {
      const i = indexOf.get(id);
      return i === undefined ? undefined : v.getOffsetForIndex(i, 'start')?.[0];
    },
    [indexOf, v],
  );

  /**
   * Before rows are added above: returns what, called after the render that added them, scrolls
   * by their height, so the rows in view stay where they are.
   */
  const keepPlace = useCallback(() => {
    const el = list.current;
    const first = messages[0]?.id;
    const before = first === undefined ? undefined : offsetOf(first);
    return (after: (id: string) => number | undefined) => {
      const now = first === undefined ? undefined : after(first);
      if (el && before !== undefined && now !== undefined) el.scrollTop += now - before;
    };
  }, [list, messages, offsetOf]);

  /** Focus moving inside the rows: the row that holds it stays rendered. */
  const focusHandlers = {
    onFocus: (e: FocusEvent<HTMLElement>) => {
      const row = (e.target as HTMLElement).closest<HTMLElement>('[data-index]');
      const i = row ? Number(row.dataset.index) : NaN;
      focusedId.current = messages[i]?.id ?? null;
    },
    onBlur: (e: FocusEvent<HTMLElement>) => {
      if (!e.currentTarget.contains(e.relatedTarget as Node | null)) focusedId.current = null;
    },
  };

  return { v, reveal, offsetOf, keepPlace, focusHandlers };
}

/** The virtual log of a channel's pane (what MessageList renders). */
export type VirtualLog = ReturnType<typeof useVirtualLog>;
