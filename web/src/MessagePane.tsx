/**
 * One channel: messages grouped by author and day in a virtual list (MessageList.tsx), scrollback
 * that loads older pages as you scroll up and keeps your place, pinned to the bottom while you
 * are at the bottom, `pending` until delivered, where the channel is served from, and the
 * composer, which takes the files dropped anywhere on the channel.
 */
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import {
  api,
  ApiError,
  byChannelOrder,
  type Channel,
  type Me,
  type Message,
  type Page,
} from './api.js';
import { useLiveMessages } from './live-messages.js';
import { requote } from './reply-quotes.js';
import { MessageList } from './MessageList.js';
import { AT_BOTTOM_PX, useVirtualLog, type VirtualLog } from './virtual-log.js';
import { Composer } from './Composer.js';
import { useAttachments, useDropZone } from './Attachments.js';
import { TypingLine } from './TypingLine.js';
import { ToastSlot } from './ToastStack.js';
import { ChannelActions } from './ChannelSettings.js';
import { firstUnread, pageLog, usePinnedToBottom } from './log-scroll.js';
import { useJump } from './useJump.js';
import { usePeerReachable } from './peer-reach.js';

/** While messages keep coming into the open channel, it is marked read at most this often. */
const READ_GAP_MS = 500;
/** Older pages loaded at most, when opening, to reach the first unread message. */
const MAX_UNREAD_PAGES = 20;
const SOURCE_LABEL: Record<Page['source'], string> = {
  host: 'P2P from its host',
  server: 'Central server',
  local: 'Local copy (offline)',
};
/** How the link to another peer's host was made, after "P2P from its host" (NAT traversal). */
const LINK_LABEL: Record<NonNullable<Page['link']>, string> = {
  direct: '',
  punched: ' · through both routers',
  relay: ' · relayed by the server',
};
const LINK_TITLE: Record<NonNullable<Page['link']>, string> = {
  direct: 'Connected straight to the host',
  punched: 'Connected to the host through a hole punched in both home routers',
  relay: 'No direct path to the host: the server relays the encrypted link (it cannot read it)',
};

export function MessagePane({
  me,
  channel,
  sourceTick,
  onRead,
  onGone,
  onLeaving,
  leavingNow = false,
  focusId,
}: {
  me: Me;
  channel: Channel;
  sourceTick: number;
  onRead: () => Promise<void>;
  /** The channel left this user's list (left or deleted from its header). */
  onGone: () => void;
  /** The user confirmed leaving or deleting it (true), or that failed (false). */
  onLeaving: (leaving: boolean) => void;
  /** Opened again (a search result) while the user leaves or deletes it: paused from the start. */
  leavingNow?: boolean;
  /** Open at this message (a search result) instead of the newest. */
  focusId?: string;
}) {
  const [messages, setMessages] = useState<Message[]>([]);
  const [source, setSource] = useState<Page['source'] | null>(null);
  const [link, setLink] = useState<Page['link']>(undefined);
  const [hasMore, setHasMore] = useState(false);
  const [loadingOlder, setLoadingOlder] = useState(false);
  const [error, setError] = useState('');
  // Your peer stopped: the channel is served from nowhere until it is back (Chat's banner).
  const reachable = usePeerReachable();
  /** Where the "New messages" divider goes: the first message the reader had not seen. */
  const [markerId, setMarkerId] = useState<string | null>(null);
  const unreadAtOpen = useRef(channel.unread ?? 0);
  const list = useRef<HTMLDivElement>(null);
  const rows = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  /** Set while older messages are being added above: keeps the rows in view in place. */
  const keepPlace = useRef<ReturnType<VirtualLog['keepPlace']> | null>(null);
  /** Once, after opening with unread messages: show the first unread one instead of the newest. */
  const showMarker = useRef(false);
  const [markerAbove, setMarkerAbove] = useState(false);
  /** New messages by others that came while the reader was scrolled up (the bar below). */
  const [newBelow, setNewBelow] = useState(0);
  /** The log's scrollTop at the last scroll event: a scroll up leaves the bottom, others do not. */
  const lastTop = useRef(0);
  usePinnedToBottom(list, atBottom, rows);
  const [replyTo, setReplyTo] = useState<Message | null>(null);
  /** The message whose text is being edited (its Edit action, or Up in an empty composer). */
  const [editId, setEditId] = useState<string | null>(null);
  /**
   * Set while this user leaves or deletes the channel: its reads stop, since the peer refuses
   * them once the channel is out of its list, and the pane closes when the answer comes.
   */
  const leaving = useRef(leavingNow);
  /** A read held back meanwhile: done once a leave that failed leaves the channel open. */
  const missed = useRef(false);
  const attachments = useAttachments(channel.id);
  const drop = useDropZone(attachments.add, me.role === 'user');
  const shown = useRef(messages);
  shown.current = messages;
  const onPage = useCallback((page: Page) => {
    setMessages(merge([], page.messages));
    setHasMore(page.hasMore);
  }, []);
  const vlog = useVirtualLog(list, rows, messages, markerId);
  const jump = useJump({
    channelId: channel.id,
    list,
    messages,
    reveal: vlog.reveal,
    atBottom,
    onPage,
    onError: setError,
  });

  const focused = useRef(false);
  const jumpNow = useRef(jump.jumpTo);
  jumpNow.current = jump.jumpTo;
  const loadNewest = useCallback(async () => {
    if (leaving.current) {
      missed.current = true;
      return;
    }
    try {
      // Opened at a message (a search result): the page around it, centred on it (once).
      if (focusId !== undefined && !focused.current) {
        focused.current = true;
        // A page that reaches the newest message shows everything unread: the channel is read.
        if (await jumpNow.current(focusId))
          await api.read(channel.id).then(onRead, () => undefined);
        return;
      }
      const page = await api.messages(channel.id);
      let got = page.messages;
      let more = page.hasMore;
      const unread = unreadAtOpen.current;
      if (unread > 0) {
        // More unread than a page: load older pages until the first unread one is here.
        for (let n = 0; n < MAX_UNREAD_PAGES && more && byOthers(got, me.username) < unread; n++) {
          const older = await api.messages(channel.id, got[0]!.id);
          got = [...older.messages, ...got];
          more = older.hasMore;
        }
        setMarkerId(firstUnread(got, (m) => m.author !== me.username, unread)?.id ?? null);
        unreadAtOpen.current = 0;
        showMarker.current = true;
      }
      // Read again after a while away (the peer was down): a newest page that does not reach
      // what is shown replaces it, or the log would hide a gap between them.
      setMessages((old) => (more && after(got[0], old.at(-1)) ? got : merge(old, got)));
      setSource(page.source);
      setLink(page.link);
      setHasMore((h) => h || more);
      setError('');
      void onRead();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  }, [channel.id, me.username, onRead, focusId]);

  // (Away from the present after a jump, the newest page would leave a gap: not merged then.)
  useEffect(() => {
    if (!jump.detached) void loadNewest();
  }, [loadNewest, sourceTick]);

  // Marking the channel read: one request at a time, at most one per READ_GAP_MS, and one more
  // if messages came meanwhile (a burst of 100 a second asks twice a second, not 100 times; each
  // answer refreshes the channel list).
  const readState = useRef<'idle' | 'busy' | 'again'>('idle');
  const readTimer = useRef<ReturnType<typeof setTimeout>>(undefined);
  useEffect(() => () => clearTimeout(readTimer.current), []);
  const markRead = useCallback(() => {
    if (leaving.current) {
      missed.current = true;
      return;
    }
    if (readState.current !== 'idle') {
      readState.current = 'again';
      return;
    }
    readState.current = 'busy';
    const started = performance.now();
    void api
      .read(channel.id)
      .then(onRead, () => undefined)
      .finally(() => {
        if (readState.current !== 'again') {
          readState.current = 'idle';
          return;
        }
        readTimer.current = setTimeout(
          () => {
            readState.current = 'idle';
            markRead();
          },
          Math.max(0, started + READ_GAP_MS - performance.now()),
        );
      });
  }, [channel.id, onRead]);

  // Live messages of this channel: new ones, and state changes of ours (pending → delivered),
  // a batch at a time (live-messages.ts), merged by one state update.
  useLiveMessages(channel.id, (batch) => {
    const ids = new Set(shown.current.map((s) => s.id));
    // An event carries a message's whole state: a change to one shown replaces it by id.
    // Away from the present (a jump), a new one would leave a gap: "Jump to present" loads it.
    const taken = jump.detached ? batch.filter((m) => ids.has(m.id)) : batch;
    // Replies shown quote the batch's messages as they are now (an edit, a delete).
    setMessages((old) => requote(taken.length > 0 ? merge(old, taken) : old, batch));
    if (taken.length === 0) return;
    // One count a message: a batch may carry a new one and a change to it (its last state counts).
    const last = new Map(taken.map((m) => [m.id, m]));
    const news = [...last.values()].filter(
      (m) => !ids.has(m.id) && !m.deleted && m.author !== me.username,
    );
    if (news.length === 0) return;
    // Arrived while the reader is scrolled up: mark where the new ones start, and say so below.
    if (!atBottom.current) {
      setMarkerId((id) => id ?? news[0]!.id);
      setNewBelow((n) => n + news.length);
    }
    // Shown in the open channel: read (the unread counts of other channels come from the peer).
    markRead();
  });

  async function loadOlder() {
    if (loadingOlder || !hasMore || messages.length === 0 || leaving.current) return;
    setLoadingOlder(true);
    try {
      const page = await api.messages(channel.id, messages[0]!.id);
      keepPlace.current = vlog.keepPlace();
      setMessages((old) => merge(old, page.messages));
      setHasMore(page.hasMore);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setLoadingOlder(false);
    }
  }

  // After a render: once, when opened with unread messages, show the first unread one; keep the
  // reader's place when older messages came in above; or stay pinned to the bottom.
  useLayoutEffect(() => {
    const el = list.current;
    if (!el) return;
    if (showMarker.current && markerId && vlog.reveal(markerId, 'start')) {
      showMarker.current = false;
      atBottom.current = false;
    } else if (keepPlace.current) {
      keepPlace.current(vlog.offsetOf);
      keepPlace.current = null;
    } else if (atBottom.current) {
      el.scrollTop = el.scrollHeight;
    }
  }, [messages]);

  function onScroll() {
    const el = list.current;
    if (!el) return;
    // At the bottom within AT_BOTTOM_PX; following, only a scroll up leaves it (rows measured
    // taller, an image loaded, or the virtualizer's own adjustments move the bottom away without
    // the reader scrolling: the pin brings it back).
    const up = el.scrollTop < lastTop.current - 1;
    lastTop.current = el.scrollTop;
    atBottom.current =
      el.scrollHeight - el.scrollTop - el.clientHeight < AT_BOTTOM_PX || (atBottom.current && !up);
    if (atBottom.current && newBelow > 0) setNewBelow(0);
    const markerAt = markerId ? vlog.offsetOf(markerId) : undefined;
    setMarkerAbove(markerAt !== undefined && markerAt < el.scrollTop - 8);
    if (atBottom.current && markerId && messages[messages.length - 1]?.id !== markerId)
      void onRead();
    if (el.scrollTop < 80) void loadOlder();
  }

  const onJump = useCallback((id: string) => void jumpNow.current(id), []);

  /** To the newest message, following from there (the bar below, and one's own send). */
  const toNewest = useCallback(() => {
    const el = list.current;
    atBottom.current = true;
    setNewBelow(0);
    if (jump.detached) {
      void jump.jumpToPresent();
      return;
    }
    if (el) el.scrollTop = el.scrollHeight;
  }, [jump]);

  /**
   * Up in an empty composer edits your newest message, as in Discord: false when there is none
   * here to edit (a visitor; viewing older messages after a jump), and the key does what it does.
   */
  const editLast = useCallback(() => {
    if (me.role !== 'user' || jump.detached) return false;
    let m: Message | undefined;
    for (let i = messages.length - 1; i >= 0 && !m; i--) {
      const x = messages[i]!;
      if (x.author === me.username && isSent(x) && !x.deleted) m = x;
    }
    if (!m) return false;
    setEditId(m.id);
    vlog.reveal(m.id);
    return true;
  }, [messages, me, jump.detached, vlog]);

  return (
    <section className="pane" aria-label={`#${channel.name}`} {...drop.handlers}>
      {drop.dragging && (
        <div className="drop-zone">
          <p>Drop files to attach them to #{channel.name}</p>
        </div>
      )}
      <header className="pane-head">
        <h2>
          <span className="hash">#</span>
          {channel.name}
        </h2>
        {channel.topic && <p className="topic">{channel.topic}</p>}
        <ChannelActions
          me={me}
          channel={channel}
          onGone={onGone}
          onLeaving={(yes) => {
            leaving.current = yes;
            onLeaving(yes);
            // Refused: the channel stays open, and what came meanwhile is read now.
            if (!yes && missed.current) {
              missed.current = false;
              if (jump.detached) markRead();
              else void loadNewest();
            }
          }}
        />
        {source && reachable && (
          <span
            className={`source ${source}${link ? ` via-${link}` : ''}`}
            title={
              source === 'host' && link
                ? LINK_TITLE[link]
                : 'Where this channel is being served from'
            }
          >
            {source === 'host' && channel.owner === me.username
              ? 'Hosted on this peer'
              : SOURCE_LABEL[source] + (source === 'host' && link ? LINK_LABEL[link] : '')}
          </span>
        )}
      </header>
      <ToastSlot />
      {markerAbove && (
        <button
          className="unread-bar"
          onClick={() => {
            if (markerId) vlog.reveal(markerId, 'start');
          }}
        >
          New messages above · Jump to first unread
        </button>
      )}
      <MessageList
        list={list}
        rows={rows}
        vlog={vlog}
        messages={messages}
        complete={!hasMore}
        me={me}
        channel={channel}
        markerId={markerId}
        flashIds={[jump.flashId, focusId]}
        editId={editId}
        onScroll={onScroll}
        onReply={setReplyTo}
        onJump={onJump}
        onEditing={setEditId}
        before={
          hasMore && (
            <button className="older" onClick={loadOlder} disabled={loadingOlder}>
              {loadingOlder ? 'Loading…' : 'Load older messages'}
            </button>
          )
        }
        after={
          error && (
            <p className="error" role="alert">
              {error}
            </p>
          )
        }
      />
      {newBelow > 0 && !jump.detached && (
        <button className="new-below-bar" onClick={toNewest}>
          {newBelow === 1 ? '1 new message' : `${newBelow} new messages`} below · Jump to newest
        </button>
      )}
      {jump.detached && (
        <button className="jump-present" onClick={() => void jump.jumpToPresent()}>
          You are viewing older messages — Jump to present
        </button>
      )}
      <TypingLine channelId={channel.id} me={me.username} />
      <Composer
        me={me}
        channel={channel}
        reply={replyTo}
        attachments={attachments}
        onReplyDone={() => setReplyTo(null)}
        onSend={toNewest}
        onPage={(e) => pageLog(list.current, e)}
        onEditLast={editLast}
      />
    </section>
  );
}

/** Sent by this peer or delivered: a message that may be edited (not one that failed). */
function isSent(m: Message): boolean {
  return m.state === 'delivered' || m.state === 'pending';
}

/** Whether `a` comes after `b` in the channel (false when either is missing). */
function after(a: Message | undefined, b: Message | undefined): boolean {
  return !!a && !!b && byChannelOrder(a, b) > 0;
}

/** How many of `messages` others wrote. */
function byOthers(messages: Message[], me: string): number {
  return messages.reduce((n, m) => n + (m.author === me ? 0 : 1), 0);
}

/**
 * Merges by id (a later copy replaces an earlier one, except a delivered one is never undone);
 * a deleted message is dropped.
 */
function merge(old: Message[], incoming: Message[]): Message[] {
  if (appendable(old, incoming)) return [...old, ...incoming];
  const byId = new Map(old.map((m) => [m.id, m]));
  for (const m of incoming) {
    const had = byId.get(m.id);
    if (m.deleted) byId.delete(m.id);
    else byId.set(m.id, had && had.state === 'delivered' ? { ...m, state: 'delivered' } : m);
  }
  return [...byId.values()].sort(byChannelOrder);
}

/**
 * The common case, new messages after the newest shown and in order (a live batch): appended
 * without sorting them all.
 */
function appendable(old: Message[], incoming: Message[]): boolean {
  let prev = old[old.length - 1];
  for (const m of incoming) {
    if (m.deleted || (prev && byChannelOrder(prev, m) >= 0)) return false;
    prev = m;
  }
  return !incoming.some((m) => old.some((o) => o.id === m.id));
}
