/**
 * The chat, laid out like Discord: a rail of "servers" (each owner's channels, your own first,
 * and Home for the directory), the channel list with unread badges, the message pane, the member
 * list with presence, and your name with a status menu at the bottom. Its parts: the rail
 * (ServerRail.tsx), the banner (Banner.tsx), the lists it shows (useChatLists.ts) and the event
 * stream that keeps them live (useLiveEvents.ts).
 */
import { useEffect, useMemo, useRef, useState } from 'react';
import type { Channel, Me } from './api.js';
import { MessagePane } from './MessagePane.js';
import { LiveStage } from './LiveStage.js';
import { MemberList } from './MemberList.js';
import { ChannelBadges, useFirstSight, useMentionAlerts } from './MentionAlerts.js';
import { Search } from './Search.js';
import { UserPanel } from './UserPanel.js';
import { Home } from './Home.js';
import { DmList } from './DmList.js';
import { DmView } from './DmView.js';
import { useDms } from './useDms.js';
import { Undelivered } from './Undelivered.js';
import { dmApi, type ApiDm } from './dm-api.js';
import { usePeerReachable } from './peer-reach.js';
import { Banner } from './Banner.js';
import { SkipLink } from './SkipLink.js';
import { ServerRail } from './ServerRail.js';
import { useChatLists } from './useChatLists.js';
import { useLiveEvents } from './useLiveEvents.js';
import { ToastStack } from './ToastStack.js';
import { ChannelGone } from './ChannelGone.js';

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
  const connected = me.connection === 'connected';
  const lists = useChatLists({ connected, onLeft });
  const { channels, peers, streams, refreshChannels, refreshStreams } = lists;
  const [owner, setOwner] = useState<string | null>(null); // null: Home
  const [channelId, setChannelId] = useState<string | null>(null);
  /** The conversation open on Home, if any. */
  const [dmId, setDmId] = useState<string | null>(null);
  const [membersOpen, setMembersOpen] = useState(false);
  /**
   * On a phone (≤ 600 px) an open channel or conversation gets the height: the sidebar shrinks to
   * its heading and a toggle, which shows the channel list and the user panel again.
   */
  const [sidebarOpen, setSidebarOpen] = useState(false);
  // The connection as the latest event says (me.connection lags behind it by one request).
  const [link, setLink] = useState<Me['connection']>(me.connection);
  useEffect(() => setLink(me.connection), [me.connection]);
  /** Who this session sees online (lower case), while its link is up: the DMs' presence dots. */
  const onlineNames = useMemo(
    () =>
      reachable && link === 'connected'
        ? new Set(peers.filter((p) => p.status === 'online').map((p) => p.username.toLowerCase()))
        : undefined,
    [reachable, link, peers],
  );
  /** The channel this user is leaving or deleting, from its confirmation to the answer. */
  const [leaving, setLeaving] = useState<string | null>(null);
  /** A message to open the channel at (a search result), with a count so a repeat reopens. */
  const [focus, setFocus] = useState<{ id: string; n: number } | null>(null);
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

  // The peers are read by useChatLists itself, at first and whenever the link comes or goes.
  useEffect(() => {
    void refreshChannels();
  }, [refreshChannels]);

  // Live streams: on stream and presence events (a tracker entry's `live` changed), and every
  // few seconds for viewer counts.
  useEffect(() => {
    void refreshStreams();
    const t = setInterval(() => void refreshStreams(), 5000);
    return () => clearInterval(t);
  }, [refreshStreams]);

  const { sync, sourceTick } = useLiveEvents(lists, {
    me: me.username,
    openId: channelId,
    refreshMe,
    firstSight,
    alertMention,
    setLink,
  });

  // Servers: each owner of a channel we joined; our own first.
  const owners = useMemo(() => {
    const set = [...new Set(channels.map((c) => c.owner))];
    set.sort((a, b) => (a === me.username ? -1 : b === me.username ? 1 : a.localeCompare(b)));
    return set;
  }, [channels, me.username]);
  const shown = channels.filter((c) => c.owner === owner);
  const selected = channels.find((c) => c.id === channelId) ?? null;
  // The open channel as last listed: said by name if it leaves the list while open (ChannelGone).
  const lastOpen = useRef<Channel | null>(null);
  if (selected) lastOpen.current = selected;
  const gone =
    !selected && channelId !== null && lastOpen.current?.id === channelId && leaving !== channelId
      ? lastOpen.current
      : null;
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
      <ServerRail
        me={me.username}
        owner={owner}
        owners={owners}
        channels={channels}
        dmUnread={dms.unread}
        dmMentions={dms.mentions}
        onHome={() => {
          // Home leaves the channel, as in Discord: what arrives there is unread.
          setOwner(null);
          setChannelId(null);
          setDmId(null);
        }}
        onOwner={(o) => {
          setOwner(o);
          const first = channels.find((c) => c.owner === o);
          if (first) open(first);
        }}
      />

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
            {user && (
              <DmList
                me={me.username}
                dms={dms.list}
                openId={dmOpenId}
                onOpen={openDm}
                online={onlineNames}
              />
            )}
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
        ) : gone ? (
          <ChannelGone channel={gone} onClose={() => setChannelId(null)} />
        ) : openDmNow ? (
          <DmView
            key={openDmNow.id}
            me={me}
            dm={openDmNow}
            blocked={dms.blocked}
            onBlocked={dms.setBlocked}
            onChanged={dms.refresh}
            online={onlineNames}
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
        channelId={selected ? channelId : null}
        dmMembers={!selected && openDmNow ? openDmNow.members : undefined}
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
