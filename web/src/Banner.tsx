/** The banner over the messages: peer stopped, offline, not connecting, reconnecting, syncing. */
import type { Me } from './api.js';

/** A channel's sync with its host or the server, as its `sync` events tell it. */
export type Sync = {
  channelId: string;
  received?: number;
  total?: number;
  done?: boolean;
  source?: string;
};

/** Your peer unreachable, offline (with pending count), reconnecting, or syncing with progress. */
export function Banner({ me, reachable, sync }: { me: Me; reachable: boolean; sync: Sync | null }) {
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
