/**
 * Messages and channels as the local API shows them.
 */
import type { Channel, StoredMessage } from '../protocol/common.js';
import type { LocalMessage } from '../store/peer-store.js';

/** A message as the local API shows it. */
export interface ApiMessage {
  id: string;
  channelId: string;
  author: string;
  ts: number;
  lc: number;
  text: string;
  state: LocalMessage['state'];
  error?: string;
}

/** A channel as the local API shows it. */
export interface ApiChannel extends Channel {
  hosted: boolean;
  unread: number;
}

/** The fields of a message the API shows, without its state. */
export function apiMessageOf(m: Omit<StoredMessage, 'seq'>): Omit<ApiMessage, 'state'> {
  return { id: m.id, channelId: m.channelId, author: m.author, ts: m.ts, lc: m.lc, text: m.text };
}

/** A stored message as the API shows it. */
export function apiMessageOfLocal(m: LocalMessage): ApiMessage {
  const out: ApiMessage = { ...apiMessageOf(m), state: m.state };
  if (m.error) out.error = m.error;
  return out;
}
