/**
 * One conversation (issue 15): its header (members, title, verified, "Safety number", and
 * Block/Unblock for a 1:1), a banner while a member's safety number changed unverified, the
 * messages as a channel shows them (grouped by author, markdown, `pending` until every device
 * got them, replies and reactions) with notices as system lines, and the composer (with the
 * message being answered above it). Opening it marks it read, and so does every message that
 * arrives while it is open.
 */
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { ApiError, type Me } from './api.js';
import { Confirm } from './Confirm.js';
import { DmAvatars, presenceOf } from './DmList.js';
import { DmComposer } from './DmComposer.js';
import { DmMessages, dmKey, mergeDm } from './DmMessages.js';
import { ToastSlot } from './ToastStack.js';
import { SafetyDialog } from './SafetyDialog.js';
import { firstUnread, pageLog, usePinnedToBottom } from './log-scroll.js';
import {
  DM_PAGE,
  dmApi,
  others,
  takeWriteOnOpen,
  useDmEvents,
  type ApiDm,
  type ApiDmMessage,
} from './dm-api.js';
import './dm.css';

export function DmView({
  me,
  dm,
  blocked,
  onBlocked,
  onChanged,
  online,
}: {
  me: Me;
  dm: ApiDm;
  /** Who this session sees online (lower case); none while not connected (DmList's `online`). */
  online?: ReadonlySet<string>;
  /** Who this user blocked. */
  blocked: string[];
  onBlocked: (blocked: string[]) => void;
  /** Read, or verified: the list's counts and flags changed. */
  onChanged: () => void;
}) {
  const [messages, setMessages] = useState<ApiDmMessage[]>([]);
  const [hasMore, setHasMore] = useState(false);
  const [error, setError] = useState('');
  const [safetyOpen, setSafetyOpen] = useState(false);
  const [asking, setAsking] = useState<'block' | 'unblock' | null>(null);
  const [reply, setReply] = useState<ApiDmMessage | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  /** Unread when it opened: the "New messages" divider goes before the first of them. */
  const unreadAtOpen = useRef(dm.unread);
  const [marker, setMarker] = useState<string | null>(null);
  const [flash, setFlash] = useState<string | null>(null);
  const flashTimer = useRef<ReturnType<typeof setTimeout>>(undefined);
  useEffect(() => () => clearTimeout(flashTimer.current), []);
  const list = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const keepFrom = useRef<number | null>(null);
  usePinnedToBottom(list, atBottom);
  const other = others(dm, me.username);
  const presence = presenceOf(other, online);
  const single = other.length === 1 ? other[0]! : null;
  const isBlocked = single !== null && blocked.includes(single);

  const fail = (err: unknown) => setError(err instanceof ApiError ? err.message : String(err));
  const changed = useRef(onChanged);
  changed.current = onChanged;
  const read = useCallback(() => {
    dmApi.read(dm.id).then(
      () => changed.current(),
      () => undefined,
    );
  }, [dm.id]);

  const loadNewest = useCallback(async () => {
    try {
      const page = await dmApi.messages(dm.id);
      if (unreadAtOpen.current > 0) {
        const first = firstUnread(
          page.messages,
          (m) => m.kind === 'message' && m.author.toLowerCase() !== me.username.toLowerCase(),
          unreadAtOpen.current,
        );
        setMarker(first ? dmKey(first) : null);
        unreadAtOpen.current = 0;
      }
      setMessages((old) => mergeDm(old, page.messages));
      setHasMore((h) => h || page.messages.length >= DM_PAGE);
      setError('');
      read();
    } catch (err) {
      fail(err);
    }
  }, [dm.id, read]);
  useEffect(() => void loadNewest(), [loadNewest]);
  useEffect(() => {
    if (takeWriteOnOpen(dm.id)) document.getElementById('composer')?.focus();
  }, [dm.id]);

  useDmEvents((e) => {
    if (e.type === 'resync') return void loadNewest();
    if (e.type === 'dm' && e.conversationId === dm.id) {
      setMessages((old) => mergeDm(old, [e.message]));
      if (e.message.author !== me.username && e.message.kind === 'message') read();
    } else if (e.type === 'dm_state' && e.conversationId === dm.id) {
      // Only one's own messages change state (and are pending before they do).
      setMessages((old) =>
        old.map((m) => (m.id === e.id && m.state === 'pending' ? { ...m, state: e.state } : m)),
      );
    }
  });

  const loadingOlder = useRef(false);
  async function loadOlder() {
    const first = messages[0];
    if (!hasMore || !first || loadingOlder.current) return;
    loadingOlder.current = true;
    try {
      const page = await dmApi.messages(dm.id, first.id);
      keepFrom.current = list.current?.scrollHeight ?? null;
      setMessages((old) => mergeDm(old, page.messages));
      setHasMore(page.messages.length >= DM_PAGE);
    } catch (err) {
      fail(err);
    } finally {
      loadingOlder.current = false;
    }
  }

  // After a render: keep the reader's place when older messages came in above, or stay pinned.
  useLayoutEffect(() => {
    const el = list.current;
    if (!el) return;
    if (keepFrom.current !== null) {
      el.scrollTop += el.scrollHeight - keepFrom.current;
      keepFrom.current = null;
    } else if (atBottom.current) el.scrollTop = el.scrollHeight;
  }, [messages]);

  async function send(text: string) {
    const answering = reply;
    const sent = await dmApi.post(dm.id, text, answering?.id);
    setReply(null);
    // Shown at once; the `dm` event of it (same id) brings the peer's own copy.
    const mine: ApiDmMessage = {
      id: sent.id,
      kind: 'message',
      author: me.username,
      ts: Date.now(),
      text,
      state: sent.state,
      mentions: [],
      mentioned: false,
      source: 'local',
      reactions: [],
      ...(answering
        ? { replyTo: { id: answering.id, author: answering.author, text: answering.text } }
        : {}),
    };
    atBottom.current = true;
    setMessages((old) => (old.some((m) => m.id === sent.id) ? old : mergeDm(old, [mine])));
  }

  /** Up in an empty composer: one's newest message, edited in place (as in Discord). */
  function editLast(): boolean {
    const mine = [...messages]
      .reverse()
      .find(
        (m) =>
          m.kind === 'message' &&
          !m.deleted &&
          m.author.toLowerCase() === me.username.toLowerCase(),
      );
    if (!mine) return false;
    setEditing(dmKey(mine));
    document.getElementById(`dm-${mine.author}-${mine.id}`)?.scrollIntoView({ block: 'nearest' });
    return true;
  }

  /** A reply's original: scrolled to and highlighted for a moment, when it is loaded. */
  function jump(id: string, author: string) {
    const key = `${author.toLowerCase()}/${id}`;
    const m = messages.find((x) => dmKey(x) === key && !x.deleted);
    const el = m && document.getElementById(`dm-${m.author}-${m.id}`);
    if (!el) return setError('The original message is not loaded: scroll up to find it.');
    el.scrollIntoView({ block: 'center' });
    el.focus({ preventScroll: true });
    setFlash(key);
    clearTimeout(flashTimer.current);
    flashTimer.current = setTimeout(() => setFlash(null), 2000);
  }

  async function setBlock(on: boolean) {
    if (!single) return;
    try {
      const r = on ? await dmApi.block(single) : await dmApi.unblock(single);
      onBlocked(r.blocked);
      setError('');
    } catch (err) {
      fail(err);
    }
  }

  return (
    <section className="pane dm-pane" aria-label={`Conversation with ${dm.title}`}>
      <header className="pane-head dm-pane-head">
        <DmAvatars names={other} presence={presence} />
        <h2>{dm.title}</h2>
        {presence && <span className="sr-only">{presence}</span>}
        {dm.verified && (
          <span className="dm-verified" title="Every member's safety number is verified">
            ✓ Verified
          </span>
        )}
        <div className="channel-actions">
          <button type="button" className="link" onClick={() => setSafetyOpen(true)}>
            Safety number
          </button>
          {single && (
            <button
              type="button"
              className="link"
              onClick={() => setAsking(isBlocked ? 'unblock' : 'block')}
            >
              {isBlocked ? 'Unblock' : 'Block'}
            </button>
          )}
        </div>
      </header>
      {dm.keyChanged && <KeyChangedBanner dm={dm} onVerify={() => setSafetyOpen(true)} />}
      <ToastSlot />
      <div
        className="messages"
        ref={list}
        onScroll={() => {
          const el = list.current;
          if (!el) return;
          atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
          if (el.scrollTop < 80) void loadOlder();
        }}
        role="log"
        aria-live="polite"
        aria-label="Messages"
        tabIndex={0}
      >
        {hasMore && (
          <button className="older" onClick={() => void loadOlder()}>
            Load older messages
          </button>
        )}
        {messages.length === 0 && !hasMore && (
          <p className="dm-start">
            The beginning of your conversation with {dm.title}. Messages are end-to-end encrypted:
            only its members' devices can read them.
          </p>
        )}
        <DmMessages
          messages={messages}
          me={me.username}
          flash={flash}
          marker={marker}
          editing={editing}
          onEditing={setEditing}
          onReply={(m) => {
            setReply(m);
            document.getElementById('composer')?.focus();
          }}
          onReact={(m, emoji, on) => {
            dmApi.react(dm.id, m.id, emoji, on).catch(fail);
          }}
          onJump={jump}
          onEdit={async (m, text) => {
            try {
              await dmApi.edit(dm.id, m.id, text);
            } catch (err) {
              fail(err);
            }
          }}
          onDelete={(m) => {
            dmApi.remove(dm.id, m.id).catch(fail);
          }}
        />
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
      </div>
      {isBlocked && (
        <p className="dm-blocked" role="status">
          You blocked {single}: nothing they send reaches you.
        </p>
      )}
      <DmComposer
        draft={`${me.username}/dm/${dm.id}`}
        title={dm.title}
        disabled={isBlocked ? `You blocked ${single}: unblock them to write` : undefined}
        reply={reply}
        onReplyDone={() => setReply(null)}
        onEditLast={editLast}
        onSend={send}
        onPage={(e) => pageLog(list.current, e)}
      />
      {safetyOpen && (
        <SafetyDialog dm={dm} onClose={() => setSafetyOpen(false)} onChanged={onChanged} />
      )}
      {asking && single && (
        <Confirm
          title={`${asking === 'block' ? 'Block' : 'Unblock'} ${single}`}
          text={
            asking === 'block'
              ? `Block ${single}? Nothing they send reaches you any more, on any of your devices, and you cannot write to them until you unblock them. The conversation stays listed.`
              : `Unblock ${single}? What they send reaches you again (not what they sent while blocked).`
          }
          action={asking === 'block' ? 'Block' : 'Unblock'}
          onAnswer={(yes) => {
            const what = asking;
            setAsking(null);
            if (yes) void setBlock(what === 'block');
          }}
        />
      )}
    </section>
  );
}

/** "bob's safety number changed. Verify it.", with the button to the safety numbers. */
function KeyChangedBanner({ dm, onVerify }: { dm: ApiDm; onVerify: () => void }) {
  const [changed, setChanged] = useState<string[]>([]);
  useEffect(() => {
    let stale = false;
    dmApi.safety(dm.id).then(
      (s) => !stale && setChanged(s.members.filter((m) => m.changed).map((m) => m.username)),
      () => undefined,
    );
    return () => {
      stale = true;
    };
  }, [dm.id, dm.keyChanged]);
  const text =
    changed.length === 0
      ? "A member's safety number changed. Verify it."
      : changed.length === 1
        ? `${changed[0]}'s safety number changed. Verify it.`
        : `${changed.join(', ')}: their safety numbers changed. Verify them.`;
  return (
    <div className="banner dm-key-changed" role="status">
      <span aria-hidden="true">⚠ </span>
      {text}{' '}
      <button type="button" onClick={onVerify}>
        Verify safety number
      </button>
    </div>
  );
}
