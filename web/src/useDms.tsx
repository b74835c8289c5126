/**
 * The user's direct messages as the chat needs them everywhere: the conversations (for Home and
 * the rail's badge), who is blocked, and the alerts of a new message in a conversation that is
 * not open (an in-page toast, one per conversation, which closes once that conversation is open
 * however it was opened, and a system notification when the user allowed them), as MentionAlerts
 * does for mentions in channels. Visitors have none: nothing is asked then.
 */
import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react';
import { ApiError } from './api.js';
import { dmApi, useDmEvents, type ApiDm, type ApiDmMessage } from './dm-api.js';
import { oneLine } from './ReplyQuote.js';

const TOAST_MS = 8000;
/** A message older than this when its event arrives is history catching up, not news. */
const FRESH_MS = 10 * 60_000;

interface Toast {
  id: string;
  text: string;
  dm: ApiDm;
  /** It says the user was mentioned: a plain message of its conversation does not replace it. */
  mention: boolean;
}

export interface Dms {
  list: ApiDm[];
  blocked: string[];
  unread: number;
  mentions: number;
  /** Asks the peer again (after a change made here). */
  refresh: () => Promise<void>;
  /** Puts a conversation just started or opened into the list before the peer says so. */
  add: (dm: ApiDm) => void;
  setBlocked: (blocked: string[]) => void;
  toasts: ReactNode;
}

export function useDms({
  me,
  enabled,
  openId,
  onOpen,
}: {
  me: string;
  /** False for visitors: they have no direct messages. */
  enabled: boolean;
  /** The conversation shown now, if any. */
  openId: string | null;
  onOpen: (dm: ApiDm) => void;
}): Dms {
  const [list, setList] = useState<ApiDm[]>([]);
  const [blocked, setBlocked] = useState<string[]>([]);
  const [toasts, setToasts] = useState<Toast[]>([]);
  const state = useRef({ list, openId, onOpen });
  state.current = { list, openId, onOpen };

  // Refreshes can overlap: only the latest request's answer may land.
  const asked = useRef(0);
  /** Asks for the list (and the blocked users); answers the list, or null if the peer did not. */
  const load = useCallback(async (): Promise<ApiDm[] | null> => {
    if (!enabled) return null;
    const n = ++asked.current;
    try {
      const [dms, blocks] = await Promise.all([dmApi.list(), dmApi.blocks()]);
      if (n === asked.current) {
        setList(dms);
        setBlocked(blocks.blocked);
      }
      return dms;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      return null; // the peer could not answer now: the last list stays until the next event
    }
  }, [enabled]);
  const refresh = useCallback(async () => void (await load()), [load]);

  useEffect(() => {
    if (enabled) void refresh();
    else setList([]);
  }, [enabled, refresh]);

  const add = useCallback((dm: ApiDm) => {
    setList((l) => (l.some((d) => d.id === dm.id) ? l : [dm, ...l]));
  }, []);

  const dismiss = useCallback((id: string) => setToasts((t) => t.filter((x) => x.id !== id)), []);

  // A toast's conversation opened by other means (the Direct Messages list, a member's
  // Message): the toast has said what it had to, and goes, as a mention toast does.
  useEffect(() => {
    if (openId !== null)
      setToasts((t) =>
        t.some((x) => x.dm.id === openId) ? t.filter((x) => x.dm.id !== openId) : t,
      );
  }, [openId]);

  const seen = useRef(new Set<string>());
  const alert = useCallback(
    (conversationId: string, m: ApiDmMessage, list: ApiDm[]) => {
      if (seen.current.has(m.id)) return;
      seen.current.add(m.id);
      if (seen.current.size > 5000) seen.current.clear();
      if (m.kind !== 'message' || m.author === me || Date.now() - m.ts > FRESH_MS) return;
      const { openId } = state.current;
      const open = conversationId === openId;
      if (open && !document.hidden) return; // read where it is shown
      const dm = list.find((d) => d.id === conversationId);
      const group = dm ? dm.members.length > 2 : false;
      const text = m.mentioned
        ? `${m.author} mentioned you${group && dm ? ` in ${dm.title}` : ''}`
        : group && dm
          ? `${m.author} wrote in ${dm.title}`
          : `${m.author} sent you a message`;
      if (!open && dm) {
        // One toast per conversation, saying its newest message (three lines from one writer
        // pushed the toast of a mention out), unless the one shown says you were mentioned.
        setToasts((t) => {
          const shown = t.find((x) => x.dm.id === conversationId);
          if (shown?.mention && !m.mentioned) return t;
          const others = t.filter((x) => x.dm.id !== conversationId);
          return [...others.slice(-2), { id: m.id, text, dm, mention: m.mentioned }];
        });
        setTimeout(() => dismiss(m.id), TOAST_MS);
      }
      if (typeof Notification !== 'undefined' && Notification.permission === 'granted') {
        const n = new Notification(text, { body: oneLine(m.text), tag: m.id });
        n.onclick = () => {
          window.focus();
          if (dm) state.current.onOpen(dm);
        };
      }
    },
    [me, dismiss],
  );

  useDmEvents((e) => {
    if (!enabled) return;
    if (e.type === 'dm') {
      // A conversation the list does not hold yet (a new one): the list first, then the alert.
      const { list } = state.current;
      const known = list.some((d) => d.id === e.conversationId);
      if (known) alert(e.conversationId, e.message, list);
      void load().then((fresh) => {
        if (!known) alert(e.conversationId, e.message, fresh ?? list);
      });
    } else if (e.type === 'dms' || e.type === 'resync') void refresh();
  });

  const node = (
    <div className="toasts dm-toasts" role="status" aria-live="polite">
      {toasts.map((t) => (
        <div className="toast" key={t.id}>
          <span>{t.text}</span>
          <button
            type="button"
            onClick={() => {
              dismiss(t.id);
              state.current.onOpen(t.dm);
            }}
            aria-label={`Open the conversation with ${t.dm.title}`}
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

  return {
    list,
    blocked,
    unread: list.reduce((n, d) => n + d.unread, 0),
    mentions: list.reduce((n, d) => n + d.mentions, 0),
    refresh,
    add,
    setBlocked,
    toasts: node,
  };
}
