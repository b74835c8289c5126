/**
 * The page's one event stream (`/api/events`) for everything live: each event handed to the views
 * that show it (messages, files, avatars, direct messages, refusals), or the chat's lists read
 * again. When it is opened again (its handlers changed), it resumes after the last event seen:
 * none emitted in between is lost.
 */
import { useEffect, useRef, useState } from 'react';
import { api, type Avatar, type Me, type Message } from './api.js';
import type { Sync } from './Banner.js';
import type { ChatLists } from './useChatLists.js';
import { publishFileProgress, type FileProgress } from './file-events.js';
import { avatarChanged, refreshAvatars } from './avatars.js';
import { publishRefused } from './Undelivered.js';
import { publishDm, type DmEvent } from './dm-api.js';
import { publishLiveMessage, type LiveMessage } from './live-messages.js';
import { reopenWhenGivenUp, withKey } from './auth.js';
import { peerReachable, setPeerReachable } from './peer-reach.js';

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

/** The chat's lists the events read again (useChatLists.ts). */
export type LiveLists = Pick<
  ChatLists,
  'refreshChannels' | 'refreshPeers' | 'refreshStreams' | 'refreshPeersConnected'
>;

/** What else the event stream calls on. */
export interface LiveEventsOptions {
  /** Your username. */
  me: string;
  /** The channel open now (its new messages leave the channel list as it is). */
  openId: string | null;
  refreshMe: () => Promise<void>;
  /** True the first time a message is seen, when it is news (MentionAlerts.tsx). */
  firstSight: (m: Message) => boolean;
  /** True when a new message mentioning you was told of (MentionAlerts.tsx). */
  alertMention: (m: Message) => boolean;
  /** The connection as the latest event says. */
  setLink: (state: Me['connection']) => void;
}

/**
 * Listens to the peer's events while the chat is open. Returns the sync in progress and a tick
 * that grows when the open channel must be read again (from its new source, or after a lost
 * stream).
 */
export function useLiveEvents(
  lists: LiveLists,
  { me, openId, refreshMe, firstSight, alertMention, setLink }: LiveEventsOptions,
): { sync: Sync | null; sourceTick: number } {
  const { refreshChannels, refreshPeers, refreshStreams, refreshPeersConnected } = lists;
  const [sync, setSync] = useState<Sync | null>(null);
  const [sourceTick, setSourceTick] = useState(0);
  const current = useRef<string | null>(null);
  current.current = openId;

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
    const reload = async () => {
      // The session may have changed while the stream was away (the server ended it, or the
      // peer restarted without it): it is read first, and a page whose user is gone asks nothing
      // else of the peer.
      const now = await api.session().catch(() => undefined);
      if (now && now.me?.username !== me) return refreshMe();
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
      void reload();
    });
    for (const name of LIVE_EVENTS) es.addEventListener(name, seen);
    es.addEventListener('message', (e) => {
      const data = JSON.parse((e as MessageEvent).data) as LiveMessage;
      publishLiveMessage(data);
      if (data.channelId !== current.current) void refreshChannels();
      if (data.message.author === me) void refreshMe(); // the pending count changed
      // Edits, deletes and reactions come as the message's new state: only news alerts.
      if (!firstSight(data.message)) return;
      if (alertMention(data.message)) return;
      if (document.hidden && data.message.author !== me) notify(data.message);
    });
    es.addEventListener('presence', () => {
      void refreshPeers();
      void refreshStreams();
    });
    es.addEventListener('stream', () => void refreshStreams());
    // Someone joined a channel hosted here: the member list asks again (peers is a new array).
    es.addEventListener('members', () => void refreshPeers());
    // Created, joined (here, in another tab or on another device), renamed, a new topic, left,
    // removed or deleted: the channel list says how it is now.
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
        refreshPeersConnected();
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
      if ((e as MessageEvent).data) return void reload();
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
    me,
    refreshChannels,
    refreshMe,
    refreshPeers,
    refreshStreams,
    refreshPeersConnected,
    firstSight,
    alertMention,
    setLink,
  ]);
  return { sync, sourceTick };
}

function notify(m: Message) {
  if (typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
  new Notification(`${m.author}`, { body: m.text.slice(0, 200), tag: m.channelId });
}
