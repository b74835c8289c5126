/**
 * Mentions of me, as Discord shows them: a red count on the channel and on its owner's rail
 * button, and, when a message mentioning me arrives for a channel that is not the open one (the
 * tab visible or not), an in-page toast "bob mentioned you in #general" plus a system
 * notification when the user allowed them (asked from the bell button, a user gesture). A toast
 * closes once its channel is open, however it was opened.
 */
import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react';
import type { Channel, Message } from './api.js';
import { oneLine } from './ReplyQuote.js';
import './rich.css';

const TOAST_MS = 8000;
/** A message older than this when its event arrives is history catching up, not news. */
const FRESH_MS = 10 * 60_000;

/**
 * Unread count, or the red mention count when some unread messages mention me. An image named
 * "2 unread": a plain span's label is not read, and the channel was heard as "# general 2".
 */
export function ChannelBadges({ unread, mentions }: { unread: number; mentions: number }) {
  if (mentions > 0)
    return (
      <span
        className="badge mention-badge"
        role="img"
        aria-label={`${mentions} mention${mentions > 1 ? 's' : ''}`}
      >
        {mentions}
      </span>
    );
  if (unread > 0)
    return (
      <span className="badge unread-badge" role="img" aria-label={`${unread} unread`}>
        {unread}
      </span>
    );
  return null;
}

/**
 * True the first time this page sees a message that was just written: not an edit, delete or
 * reaction of an older one (each event carries a message's whole current state).
 */
export function useFirstSight(): (m: Message) => boolean {
  const seen = useRef(new Set<string>());
  return useCallback((m: Message) => {
    if (seen.current.has(m.id)) return false;
    seen.current.add(m.id);
    if (seen.current.size > 5000) seen.current.clear();
    return (
      m.state === 'delivered' &&
      !m.deleted &&
      m.editedAt === undefined &&
      m.reactions.length === 0 &&
      Date.now() - m.ts < FRESH_MS
    );
  }, []);
}

interface Toast {
  id: string;
  text: string;
  channel: Channel;
}

/**
 * `alert(m)` tells of a new message mentioning me in a channel other than the open one (true
 * when it did); `toasts` is the live region that shows them.
 */
export function useMentionAlerts({
  me,
  channels,
  openId,
  onOpen,
}: {
  me: string;
  channels: Channel[];
  openId: string | null;
  onOpen: (c: Channel) => void;
}): { alert: (m: Message) => boolean; toasts: ReactNode } {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const state = useRef({ channels, openId, onOpen });
  state.current = { channels, openId, onOpen };

  const dismiss = useCallback((id: string) => setToasts((t) => t.filter((x) => x.id !== id)), []);

  // A toast's channel opened by other means (its name in the sidebar, a search result): the
  // toast has said what it had to, and goes.
  useEffect(() => {
    if (openId !== null)
      setToasts((t) =>
        t.some((x) => x.channel.id === openId) ? t.filter((x) => x.channel.id !== openId) : t,
      );
  }, [openId]);

  const alert = useCallback(
    (m: Message) => {
      const { channels, openId, onOpen } = state.current;
      if (!m.mentionsMe || m.author === me || m.channelId === openId) return false;
      const channel = channels.find((c) => c.id === m.channelId);
      if (!channel) return false;
      const text = `${m.author} mentioned you in #${channel.name}`;
      setToasts((t) => [...t.slice(-2), { id: m.id, text, channel }]);
      setTimeout(() => dismiss(m.id), TOAST_MS);
      if (typeof Notification !== 'undefined' && Notification.permission === 'granted') {
        const n = new Notification(text, { body: oneLine(m.text), tag: m.id });
        n.onclick = () => {
          window.focus();
          onOpen(channel);
        };
      }
      return true;
    },
    [me, dismiss],
  );

  const node = (
    <div className="toasts" role="status" aria-live="polite">
      {toasts.map((t) => (
        <div className="toast" key={t.id}>
          <span>{t.text}</span>
          <button
            type="button"
            onClick={() => {
              dismiss(t.id);
              state.current.onOpen(t.channel);
            }}
            aria-label={`Open #${t.channel.name}`}
          >
            Open
          </button>
          <button type="button" onClick={() => dismiss(t.id)} aria-label="Dismiss">
            ✕
          </button>
        </div>
      ))}
    </div>
  );
  return { alert, toasts: node };
}

/** Asks for system notifications (the browser wants a click for that), and says their state. */
export function NotifyBell() {
  const [permission, setPermission] = useState<NotificationPermission | 'unsupported'>(() =>
    typeof Notification === 'undefined' ? 'unsupported' : Notification.permission,
  );
  useEffect(() => {
    if (typeof Notification !== 'undefined') setPermission(Notification.permission);
  }, []);
  if (permission === 'unsupported') return null;
  const label =
    permission === 'granted'
      ? 'Notifications on'
      : permission === 'denied'
        ? 'Notifications blocked in the browser'
        : 'Enable notifications';
  return (
    <button
      type="button"
      className={`bell ${permission}`}
      aria-label={label}
      title={label}
      disabled={permission !== 'default'}
      onClick={async () => setPermission(await Notification.requestPermission())}
    >
      🔔
    </button>
  );
}
