/**
 * The lists the chat shows, read from the local API: the channels you joined (with their unread
 * and mention counts), the peers you may see, and the live streams. The chat and its event stream
 * (useLiveEvents.ts) say when each is read again.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, ApiError, type Channel, type Peer, type Stream } from './api.js';
import { keepUnchanged } from './keep-unchanged.js';
import { peerReachable } from './peer-reach.js';

/** The chat's lists and how to read each again (useChatLists). */
export type ChatLists = ReturnType<typeof useChatLists>;

/**
 * The chat's lists and how to read each again. `connected`: the peer's link to the server is up
 * (else nobody is shown online); `onLeft`: the session is gone.
 */
export function useChatLists({ connected, onLeft }: { connected: boolean; onLeft: () => void }) {
  const [channels, setChannels] = useState<Channel[]>([]);
  const [peers, setPeers] = useState<Peer[]>([]);
  const [streams, setStreams] = useState<Stream[]>([]);

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

  // Read through a ref: one refreshPeers for the page's life. The chat's event stream is made
  // from these functions, and a new one at each change of the link reopened the stream and read
  // the channels again (after a session the server ended, a refused read: a 401 in the console).
  const isConnected = useRef(connected);
  isConnected.current = connected;
  const refreshPeers = useCallback(async () => {
    const n = ++peersRequest.current;
    if (!isConnected.current) return setPeers([]); // offline: nobody is known to be online
    let list: Awaited<ReturnType<typeof api.peers>> = [];
    try {
      list = await api.peers();
    } catch {
      // unknown: nobody shown online
    }
    if (n === peersRequest.current) setPeers(list);
  }, []);
  // The link came up or went down: who is online is read again (none while it is down).
  useEffect(() => {
    void refreshPeers();
  }, [connected, refreshPeers]);

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

  /**
   * The peers, asked at once when the link just came up (refreshPeers still sees the old state),
   * numbered with refreshPeers' requests.
   */
  const refreshPeersConnected = useCallback(() => {
    const n = ++peersRequest.current;
    const show = (list: Awaited<ReturnType<typeof api.peers>>) => {
      if (n === peersRequest.current) setPeers(list);
    };
    void api.peers().then(show, () => show([]));
  }, []);

  return {
    channels,
    peers,
    streams,
    refreshChannels,
    refreshPeers,
    refreshStreams,
    refreshPeersConnected,
  };
}
