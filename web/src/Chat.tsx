/**
 * The chat, laid out like Discord: a rail of "servers" (each owner's channels, your own first,
 * and Home for the directory), the channel list with unread badges, the message pane, the member
 * list with presence, and your name with a status menu at the bottom.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import {
  api,
  ApiError,
  type Avatar,
  type Channel,
  type Me,
  type Message,
  type Peer,
  type Stream,
} from './api.js';
import { MessagePane } from './MessagePane.js';
import { LiveStage } from './LiveStage.js';
import { MemberList } from './MemberList.js';
import { ChannelBadges, useFirstSight, useMentionAlerts } from './MentionAlerts.js';
import { Search } from './Search.js';
import { publishFileProgress, type FileProgress } from './file-events.js';
import { avatarChanged, refreshAvatars } from './avatars.js';
import { UserPanel } from './UserPanel.js';
import { Home } from './Home.js';
import { DmList } from './DmList.js';
import { DmView } from './DmView.js';
import { useDms } from './useDms.js';
import { publishRefused, Undelivered } from './Undelivered.js';
import { dmApi, publishDm, type ApiDm, type DmEvent } from './dm-api.js';
import { publishLiveMessage, type LiveMessage } from './live-messages.js';
import { keepUnchanged } from './keep-unchanged.js';
import { reopenWhenGivenUp, withKey } from './auth.js';
import { peerReachable, setPeerReachable, usePeerReachable } from './peer-reach.js';
import { ToastStack } from './ToastStack.js';

type Sync = {
  channelId: string;
  received?: number;
  total?: number;
  done?: boolean;
  source?: string;
};

/** The events this page's stream listens to (each one's id is where a reopened stream resumes). */
const LIVE_EVENTS = [
  'message',
  'presence',
  'stream',
  'members',
  'channel',
  'connection',
  'status',
  'file',
  'avatar',
  'sync',
  'dm',
  'dm_state',
  'dms',
  'refused',
] as const;

export function Chat({
  me: session,
  refreshMe,
  onLeft,
}: {
  me: Me;
  refreshMe: () => Promise<void>;
  onLeft: () => void;
}) {
  // While the page cannot reach its own peer (its process stopped), nothing it shows is live:
  // the views see you as offline (your dot grey, members greyed) under a banner that says why.
  const reachable = usePeerReachable();
  const me = useMemo<Me>(
    () => (reachable ? session : { ...session, connection: 'offline' }),
    [session, reachable],
  );
  const [channels, setChannels] = useState<Channel[]>([]);
  const [owner, setOwner] = useState<string | null>(null); // null: Home
  const [channelId, setChannelId] = useState<string | null>(null);
  /** The conversation open on Home, if any. */
  const [dmId, setDmId] = useState<string | null>(null);
  const [peers, setPeers] = useState<Peer[]>([]);
  const [streams, setStreams] = useState<Stream[]>([]);
  const [membersOpen, setMembersOpen] = useState(false);
  /**
   * On a phone (≤ 600 px) an open channel or conversation gets the height: the sidebar shrinks to
   * its heading and a toggle, which shows the channel list and the user panel again.
   */
  const [sidebarOpen, setSidebarOpen] = useState(false);
  // The connection as the latest event says (me.connection lags behind it by one request).
  const [link, setLink] = useState<Me['connection']>(me.connection);
  useEffect(() => setLink(me.connection), [me.connection]);
  const [sync, setSync] = useState<Sync | null>(null);
  const [sourceTick, setSourceTick] = useState(0);
  /** The channel this user is leaving or deleting, from its confirmation to the answer. */
  const [leaving, setLeaving] = useState<string | null>(null);
  /** A message to open the channel at (a search result), with a count so a repeat reopens. */
  const [focus, setFocus] = useState<{ id: string; n: number } | null>(null);
  const current = useRef<string | null>(null);
  current.current = channelId;
  const firstSight = useFirstSight();
  const mentionAlerts = useMentionAlerts({
    me: me.username,
    channels,
    openId: channelId,
    onOpen: (c) => open(c),
  });
  const alertMention = mentionAlerts.alert;
  const user = me.role === 'user';
  const dmOpenId = owner === null ? dmId : null;
  const dms = useDms({ me: me.username, enabled: user, openId: dmOpenId, onOpen: openDm });

  // Refreshes can overlap: only the latest request's answer may land, or a stale one wins.
  const channelsRequest = useRef(0);
  const peersRequest = useRef(0);
  const streamsRequest = useRef(0);
  const refreshChannels = useCallback(async () => {
    const n = ++channelsRequest.current;
    try {
      const list = await api.channels();
      if (n === channelsRequest.current)
        setChannels((old) => keepUnchanged(old, list, (c) => c.id));
    } catch (err) {
      if (err instanceof ApiError && err.code === 'E_AUTH_REQUIRED') onLeft();
    }
  }, [onLeft]);

  const connected = me.connection === 'connected';
  const refreshPeers = useCallback(async () => {
    const n = ++peersRequest.current;
    if (!connected) return setPeers([]); // offline: nobody is known to be online
    let list: Awaited<ReturnType<typeof api.peers>> = [];
    try {
      list = await api.peers();
    } catch {
      // unknown: nobody shown online
    }
    if (n === peersRequest.current) setPeers(list);
  }, [connected]);

  const refreshStreams = useCallback(async () => {
    if (!peerReachable()) return; // asked again once the event stream is back
    const n = ++streamsRequest.current;
    let list: Awaited<ReturnType<typeof api.streams>> = [];
    try {
      list = await api.streams();
    } catch {
      // unknown: none shown
    }
    if (n === streamsRequest.current) setStreams(list);
  }, []);

  useEffect(() => {
    void refreshChannels();
    void refreshPeers();
  }, [refreshChannels, refreshPeers]);

  // Live streams: on stream and presence events (a tracker entry's `live` changed), and every
  // few seconds for viewer counts.
  useEffect(() => {
    void refreshStreams();
    const t = setInterval(() => void refreshStreams(), 5000);
    return () => clearInterval(t);
  }, [refreshStreams]);

  // One event stream for everything live. When it is opened again (its handlers changed), it
  // resumes after the last event seen: none emitted in between is lost.
  const lastEvent = useRef('');
  // Opened again, with a new URL key, when the browser gave up on it (auth.ts: a refused key).
  const [streamTick, setStreamTick] = useState(0);
  // The stream was lost (the peer stopped, or restarted): once it is open again, what the page
  // shows is read again, since the events of that time may be gone (a restarted peer starts its
  // events anew) and a peer that was down missed nothing it can tell.
  const lost = useRef(false);
  useEffect(() => {
    const es = new EventSource(
      withKey(
        lastEvent.current
          ? `/api/events?since=${encodeURIComponent(lastEvent.current)}`
          : '/api/events',
      ),
    );
    const seen = (e: Event) => {
      const id = (e as MessageEvent).lastEventId;
      if (id) lastEvent.current = id;
    };
    /** Reads again all that events would have told: channels, counts, the open channel, … */
    const reload = () => {
      setSourceTick((t) => t + 1);
      publishDm({ type: 'resync' });
      void refreshChannels();
      void refreshMe();
      void refreshPeers();
      void refreshStreams();
      refreshAvatars();
      publishRefused();
    };
    es.addEventListener('open', () => {
      setPeerReachable(true);
      if (!lost.current) return;
      lost.current = false;
      reload();
    });
    for (const name of LIVE_EVENTS) es.addEventListener(name, seen);
    es.addEventListener('message', (e) => {
      const data = JSON.parse((e as MessageEvent).data) as LiveMessage;
      publishLiveMessage(data);
      if (data.channelId !== current.current) void refreshChannels();
      if (data.message.author === me.username) void refreshMe(); // the pending count changed
      // Edits, deletes and reactions come as the message's new state: only news alerts.
      if (!firstSight(data.message)) return;
      if (alertMention(data.message)) return;
      if (document.hidden && data.message.author !== me.username) notify(data.message);
    });
    es.addEventListener('presence', () => {
      void refreshPeers();
      void refreshStreams();
    });
    es.addEventListener('stream', () => void refreshStreams());
    // Someone joined a channel hosted here: the member list asks again (peers is a new array).
    es.addEventListener('members', () => void refreshPeers());
    // Renamed, a new topic, left, removed or deleted: the channel list says how it is now.
    es.addEventListener('channel', () => {
      void refreshChannels();
      void refreshPeers();
    });
    es.addEventListener('connection', (e) => {
      const { state } = JSON.parse((e as MessageEvent).data) as { state: Me['connection'] };
      setLink(state);
      void refreshMe();
      if (state === 'connected') {
        refreshAvatars(); // answered from the peer's cache while it was not connected
        // refreshPeers still sees the old state; this asks at once, in the same order.
        const n = ++peersRequest.current;
        const show = (list: Awaited<ReturnType<typeof api.peers>>) => {
          if (n === peersRequest.current) setPeers(list);
        };
        void api.peers().then(show, () => show([]));
      }
    });
    es.addEventListener('status', () => void refreshMe());
    // A message of yours refused for good: if its channel left your list, the notice shows it.
    es.addEventListener('refused', () => publishRefused());
    // A file being fetched to this peer (or backed up): its views show how far it is.
    es.addEventListener('file', (e) => {
      publishFileProgress(JSON.parse((e as MessageEvent).data) as FileProgress);
    });
    // A co-member's avatar changed (or yours, just set): its views show the new one.
    es.addEventListener('avatar', (e) => {
      avatarChanged(JSON.parse((e as MessageEvent).data) as Avatar);
    });
    // The peer ended the stream because this page fell behind (E_SLOW_CONSUMER): the browser
    // reconnects by itself; reload what the missed events would have told.
    // Otherwise the stream broke: the browser tries again (every 3 s) while the peer is gone, and
    // one request tells whether it is (api.ts marks it unreachable when nothing answers).
    es.addEventListener('error', (e) => {
      if ((e as MessageEvent).data) return reload();
      if (es.readyState === EventSource.OPEN) return;
      lost.current = true;
      if (peerReachable()) void api.session().catch(() => undefined);
    });
    const stopRetry = reopenWhenGivenUp(es, () => setStreamTick((t) => t + 1));
    // Direct messages: their views listen to these (dm-api.ts).
    for (const type of ['dm', 'dm_state', 'dms'] as const)
      es.addEventListener(type, (e) => {
        const data = JSON.parse((e as MessageEvent).data) as object;
        publishDm({ ...data, type } as DmEvent);
      });
    es.addEventListener('sync', (e) => {
      const s = JSON.parse((e as MessageEvent).data) as Sync & { phase?: string };
      // The open channel now reads from elsewhere (its host came or went): read it again there.
      if (s.phase === 'switch') {
        if (s.channelId === current.current) setSourceTick((t) => t + 1);
      } else setSync(s.done ? null : s);
    });
    return () => {
      stopRetry();
      es.close();
    };
  }, [
    streamTick,
    me.username,
    refreshChannels,
    refreshMe,
    refreshPeers,
    refreshStreams,
    firstSight,
    alertMention,
  ]);

  // Servers: each owner of a channel we joined; our own first.
  const owners = useMemo(() => {
    const set = [...new Set(channels.map((c) => c.owner))];
    set.sort((a, b) => (a === me.username ? -1 : b === me.username ? 1 : a.localeCompare(b)));
    return set;
  }, [channels, me.username]);
  const shown = channels.filter((c) => c.owner === owner);
  const selected = channels.find((c) => c.id === channelId) ?? null;
  const unreadTotal = channels.reduce((n, c) => n + (c.unread ?? 0), 0) + dms.unread;
  const openDmNow = dms.list.find((d) => d.id === dmOpenId) ?? null;

  useEffect(() => {
    document.title = unreadTotal > 0 ? `(${unreadTotal}) Hybrid Chat` : 'Hybrid Chat';
  }, [unreadTotal]);

  function open(c: Channel) {
    setOwner(c.owner);
    setChannelId(c.id);
    setDmId(null);
    setSidebarOpen(false);
    if (typeof Notification !== 'undefined' && Notification.permission === 'default')
      void Notification.requestPermission();
  }

  /** Opens a conversation on Home (from the list, a toast, or the member list). */
  function openDm(d: ApiDm) {
    dms.add(d);
    setOwner(null);
    setChannelId(null);
    setDmId(d.id);
    setSidebarOpen(false);
  }

  return (
    <div
      className={
        owner === null && !openDmNow ? 'chat at-home' : sidebarOpen ? 'chat sidebar-open' : 'chat'
      }
    >
      <SkipLink to={selected || openDmNow ? 'composer' : 'main'}>
        {selected || openDmNow ? 'Skip to message composer' : 'Skip to main content'}
      </SkipLink>
      <nav className="rail" aria-label="Servers">
        <button
          className={owner === null ? 'rail-item active' : 'rail-item'}
          onClick={() => {
            // Home leaves the channel, as in Discord: what arrives there is unread.
            setOwner(null);
            setChannelId(null);
            setDmId(null);
          }}
          title="Home"
        >
          <span aria-hidden="true">⌂</span>
          {/* Its name says the direct messages' unread count and mentions; the badge shows one. */}
          <span className="sr-only">{homeLabel(dms.unread, dms.mentions)}</span>
          {(dms.unread > 0 || dms.mentions > 0) && (
            <span
              className={`badge ${dms.mentions > 0 ? 'mention-badge' : 'unread-badge'}`}
              aria-hidden="true"
            >
              {dms.mentions > 0 ? dms.mentions : dms.unread}
            </span>
          )}
        </button>
        {owners.map((o) => {
          const mine = channels.filter((c) => c.owner === o);
          const unread = mine.reduce((n, c) => n + (c.unread ?? 0), 0);
          const mentions = mine.reduce((n, c) => n + (c.mentions ?? 0), 0);
          return (
            <button
              key={o}
              className={owner === o ? 'rail-item active' : 'rail-item'}
              onClick={() => {
                setOwner(o);
                const first = channels.find((c) => c.owner === o);
                if (first) open(first);
              }}
              title={o}
            >
              {/* Named by its content, so that the name holds the visible text (WCAG 2.5.3). */}
              {o.slice(0, 2).toUpperCase()}
              <span className="sr-only">
                , {o === me.username ? 'Your channels' : `${o}'s channels`}
                {(unread > 0 || mentions > 0) && ', '}
              </span>
              {unread > 0 && (
                <span className="badge unread-badge">
                  {unread}
                  <span className="sr-only"> unread{mentions > 0 && ','}</span>
                </span>
              )}
              {mentions > 0 && (
                <span className="badge mention-badge">
                  {mentions}
                  <span className="sr-only"> mention{mentions > 1 ? 's' : ''}</span>
                </span>
              )}
            </button>
          );
        })}
      </nav>

      <aside className="sidebar" id="sidebar" aria-label="Channels">
        <h1 className="sidebar-head">
          {owner === null
            ? 'Home'
            : owner === me.username
              ? 'Your channels'
              : `${owner}'s channels`}
        </h1>
        <button
          type="button"
          className="sidebar-toggle"
          aria-expanded={sidebarOpen}
          aria-controls="sidebar"
          onClick={() => setSidebarOpen((o) => !o)}
        >
          {owner === null ? 'Home' : 'Channels'}
        </button>
        {owner === null ? (
          <Home me={me} joined={channels} onOpen={open} onChanged={refreshChannels}>
            {user && <DmList me={me.username} dms={dms.list} openId={dmOpenId} onOpen={openDm} />}
          </Home>
        ) : (
          <ul className="channel-list">
            {shown.map((c) => (
              <li key={c.id}>
                <button
                  className={c.id === channelId ? 'channel active' : 'channel'}
                  onClick={() => open(c)}
                  aria-current={c.id === channelId}
                >
                  <span className="hash">#</span>
                  {c.name}
                  {streams.some((st) => st.channelId === c.id) && (
                    <span className="live-badge" aria-label="live now">
                      LIVE
                    </span>
                  )}
                  {c.id !== channelId && (
                    <ChannelBadges unread={c.unread ?? 0} mentions={c.mentions ?? 0} />
                  )}
                </button>
              </li>
            ))}
          </ul>
        )}
        <UserPanel me={me} refreshMe={refreshMe} onLeft={onLeft} />
      </aside>

      <main className="main" id="main" tabIndex={-1}>
        <button
          className="members-toggle"
          aria-expanded={membersOpen}
          aria-controls="member-list"
          onClick={() => setMembersOpen((o) => !o)}
        >
          Members
        </button>
        <Search
          onOpen={(cid, id) => {
            const c = channels.find((x) => x.id === cid);
            if (c) open(c);
            setFocus((f) => ({ id, n: (f?.n ?? 0) + 1 }));
          }}
        />
        <ToastStack>
          {mentionAlerts.toasts}
          {dms.toasts}
        </ToastStack>
        <Banner me={me} reachable={reachable} sync={sync} />
        <Undelivered channels={channels} />
        {selected && (
          <LiveStage
            key={`live-${selected.id}`}
            me={me}
            channel={selected}
            streams={streams}
            onChanged={() => void refreshStreams()}
          />
        )}
        {selected ? (
          <MessagePane
            key={`${selected.id}:${focus?.n ?? 0}`}
            focusId={focus?.id}
            me={me}
            channel={selected}
            sourceTick={sourceTick}
            onRead={refreshChannels}
            onGone={() => {
              // The answer may come after another channel was opened: that one stays open.
              const gone = selected.id;
              setChannelId((id) => (id === gone ? null : id));
              setLeaving((id) => (id === gone ? null : id));
              void refreshChannels();
            }}
            onLeaving={(yes) => setLeaving(yes ? selected.id : null)}
            leavingNow={leaving === selected.id}
          />
        ) : openDmNow ? (
          <DmView
            key={openDmNow.id}
            me={me}
            dm={openDmNow}
            blocked={dms.blocked}
            onBlocked={dms.setBlocked}
            onChanged={dms.refresh}
          />
        ) : (
          <div className="empty">
            <p>
              {channels.length
                ? 'Pick a channel.'
                : me.role === 'user'
                  ? 'Create a channel or join one from Home.'
                  : 'Join a channel from the directory in Home.'}
            </p>
          </div>
        )}
      </main>

      <MemberList
        me={me.username}
        onMessage={
          user
            ? async (username) => {
                openDm(await dmApi.start([username]));
                setMembersOpen(false);
              }
            : undefined
        }
        channelId={channelId}
        paused={leaving !== null && leaving === channelId}
        removable={selected && selected.owner === me.username ? me.username : null}
        link={reachable ? link : 'offline'}
        peers={peers}
        open={membersOpen}
        onClose={() => setMembersOpen(false)}
      />
    </div>
  );
}

/** The Home button's name: with the unread direct messages and mentions of you, if any. */
function homeLabel(unread: number, mentions: number): string {
  let label = 'Home';
  if (unread > 0) label += `, ${unread} unread`;
  if (mentions > 0) label += `, ${mentions} mention${mentions > 1 ? 's' : ''}`;
  return label;
}

function notify(m: Message) {
  if (typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
  new Notification(`${m.author}`, { body: m.text.slice(0, 200), tag: m.channelId });
}

/** Your peer unreachable, offline (with pending count), reconnecting, or syncing with progress. */
function Banner({ me, reachable, sync }: { me: Me; reachable: boolean; sync: Sync | null }) {
  if (!reachable) {
    return (
      <div className="banner unreachable" role="alert">
        Your peer is not running: nothing is sent or received. This page reconnects once it is back.
      </div>
    );
  }
  if (me.connection === 'offline') {
    return (
      <div className="banner offline" role="status">
        You are offline.{' '}
        {me.pending > 0
          ? `${me.pending} message${me.pending > 1 ? 's' : ''} waiting to be sent.`
          : 'What you write waits until you are back.'}
      </div>
    );
  }
  if (me.connection === 'connecting' && me.serverKeyError) {
    return (
      <div className="banner refused" role="alert">
        Not connecting: {me.serverKeyError}
      </div>
    );
  }
  if (me.connection === 'connecting') {
    return (
      <div className="banner reconnecting" role="status">
        Reconnecting to the central server…
      </div>
    );
  }
  if (sync && sync.total) {
    return (
      <div className="banner syncing" role="status">
        Syncing: {sync.received} of {sync.total}
      </div>
    );
  }
  return null;
}

/** The first thing Tab reaches: straight to the composer (or the main area on Home). */
function SkipLink({ to, children }: { to: string; children: string }) {
  return (
    <a
      className="skip-link"
      href={`#${to}`}
      onClick={(e) => {
        const el = document.getElementById(to);
        if (!el) return;
        e.preventDefault();
        el.focus();
      }}
    >
      {children}
    </a>
  );
}
