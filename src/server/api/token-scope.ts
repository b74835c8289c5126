/**
 * What a token limited to some channels may see of a tracker entry (docs/REST.md "Tokens": "the
 * token sees only these channels … presence shows only their members"): the entry of a member of
 * one of them, with the channels it hosts and streams in cut to the token's. The entry as the
 * account sees it named the account's other channels, which the token answers as not existing.
 */
import type { TrackerEntry } from '../../protocol/common.js';

/** `entry` as a token of `channels` (null: every channel of its account) may see it. */
export function scopedEntry<E extends Pick<TrackerEntry, 'hosts' | 'live'>>(
  entry: E,
  channels: readonly string[] | null,
): E {
  if (channels === null) return entry;
  return {
    ...entry,
    hosts: entry.hosts.filter((id) => channels.includes(id)),
    live: (entry.live ?? []).filter((l) => channels.includes(l.channelId)),
  };
}

/** An event's body with its `entry` (peer_joined, peer_left…) scoped; other bodies as they are. */
export function scopedEvent(data: unknown, channels: readonly string[] | null): unknown {
  if (channels === null || typeof data !== 'object' || data === null) return data;
  const entry = (data as { entry?: unknown }).entry;
  if (typeof entry !== 'object' || entry === null || !Array.isArray((entry as TrackerEntry).hosts))
    return data;
  return { ...data, entry: scopedEntry(entry as TrackerEntry, channels) };
}
