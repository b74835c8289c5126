/**
 * The message log of a channel: a virtual list (virtual-log.ts) of rows, each a message with,
 * before it, its day's separator and the "New messages" divider where they apply. Each message
 * says its place in the loaded list (aria-posinset) and the list's size (aria-setsize, -1 while
 * older pages remain), since most rows are not in the DOM. The log is one Tab stop for its
 * messages, Up and Down moving between them (roving-log.ts).
 */
import { useMemo, type ReactNode, type RefObject, type UIEvent } from 'react';
import type { Channel, Me, Message } from './api.js';
import { MessageItem } from './MessageItem.js';
import { day } from './dates.js';
import { rowPlace, type VirtualLog } from './virtual-log.js';
import { useRovingLog } from './roving-log.js';

export function MessageList({
  list,
  rows,
  vlog,
  messages,
  complete,
  me,
  channel,
  markerId,
  flashIds,
  editId,
  onScroll,
  onReply,
  onJump,
  onEditing,
  before,
  after,
}: {
  list: RefObject<HTMLDivElement | null>;
  rows: RefObject<HTMLDivElement | null>;
  vlog: VirtualLog;
  messages: Message[];
  /** No older page remains: the list holds the whole channel. */
  complete: boolean;
  me: Me;
  channel: Channel;
  markerId: string | null;
  /** Messages highlighted for a moment (just jumped to). */
  flashIds: ReadonlyArray<string | null | undefined>;
  /** The message whose text is being edited, if any. */
  editId: string | null;
  onScroll: (e: UIEvent<HTMLDivElement>) => void;
  onReply: (m: Message) => void;
  onJump: (id: string) => void;
  onEditing: (id: string | null) => void;
  /** Shown above the rows (the "Load older messages" button), and below them (an error). */
  before: ReactNode;
  after: ReactNode;
}) {
  const { v } = vlog;
  const roving = useRovingLog(
    useMemo(() => messages.map((m) => m.id), [messages]),
    (i) => v.scrollToIndex(i, { align: 'auto' }),
  );
  return (
    <div
      className="messages"
      ref={list}
      onScroll={onScroll}
      role="log"
      aria-live="polite"
      aria-label="Messages"
      tabIndex={0}
    >
      {before}
      <div
        className="rows"
        ref={rows}
        style={{ height: v.getTotalSize() }}
        onFocus={(e) => {
          vlog.focusHandlers.onFocus(e);
          roving.handlers.onFocus(e);
        }}
        onBlur={vlog.focusHandlers.onBlur}
        onKeyDown={roving.handlers.onKeyDown}
      >
        {v.getVirtualItems().map((item) => {
          const m = messages[item.index]!;
          const { newDay, head } = rowPlace(messages, item.index, markerId);
          return (
            <div
              key={item.key}
              className="row"
              data-index={item.index}
              ref={v.measureElement}
              style={{ transform: `translateY(${item.start - v.options.scrollMargin}px)` }}
            >
              {newDay && <div className="day">{day(m.ts)}</div>}
              {m.id === markerId && (
                <div className="new-marker" role="separator" aria-label="New messages">
                  New messages
                </div>
              )}
              <MessageItem
                m={m}
                head={head}
                me={me.username}
                user={me.role === 'user'}
                channelId={channel.id}
                channelOwner={channel.owner}
                flash={flashIds.includes(m.id)}
                editing={m.id === editId}
                tabbable={m.id === roving.stop}
                pos={item.index + 1}
                setSize={complete ? messages.length : -1}
                onReply={onReply}
                onJump={onJump}
                onEditing={onEditing}
              />
            </div>
          );
        })}
      </div>
      {after}
    </div>
  );
}
