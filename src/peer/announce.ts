/**
 * Tells the UI (event `message`) what changed when items reach this peer's store: for a message,
 * the message; for an edit, delete or reaction, the message it names, in its new state
 * (api-shapes.ts). The UI replaces a message by id. A channel item (renamed, member removed,
 * deleted) emits `channel`: the UI reads its channels again.
 */
import type { EventHub } from './event-hub.js';
import type { PeerStore } from '../store/peer-store.js';
import { apiMessages, type CertReader } from './message-view.js';

/** An item just stored, sent or refused. */
interface Touched {
  id: string;
  channelId: string;
  kind?: string;
  target?: string;
}

/** Emits one `message` event per message these items show or change. */
export function announce(
  store: PeerStore,
  certs: CertReader,
  events: EventHub,
  viewer: string,
  items: readonly Touched[],
): void {
  const ids = new Set<string>();
  const channels = new Set<string>();
  for (const i of items) {
    const kind = i.kind ?? 'message';
    if (kind === 'message') ids.add(i.id);
    else if (kind === 'channel') channels.add(i.channelId);
    else if (i.target !== undefined) ids.add(i.target);
  }
  for (const channelId of channels) events.emit('channel', { channelId });
  const messages = [...ids].flatMap((id) => {
    const m = store.getMessage(id);
    return m && (m.kind ?? 'message') === 'message' ? [m] : [];
  });
  for (const message of apiMessages(store, messages, viewer, certs))
    events.emit('message', { channelId: message.channelId, message });
}
