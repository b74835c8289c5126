/**
 * The server's cache of channels and their members: the store answers
 * asynchronously, so `channel` and `members` load them once and presence, typing and the checks
 * of posts and forwards read the cache in one turn. The bus's member_joined, member_left and
 * channel_changed keep it up to date (channel-membership.ts).
 */
import type { Channel } from '../protocol/common.js';
import type { ServerStore } from '../store/server-store.js';

const NO_MEMBERS: ReadonlySet<string> = new Set();
/** Channels kept in the cache at most (the oldest found goes first). */
const CHANNEL_CACHE_MAX = 10_000;

/** Channels and members of one server instance, as last read from its store. */
export class ChannelCache {
  readonly memberCache = new Map<string, Set<string>>();
  /** Channels whose members are being read from the store, and the joins and leaves meanwhile. */
  readonly membersReading = new Map<string, { reads: number; changes: number }>();
  /** Channels found are kept until their owner changes them (channel_changed). */
  readonly channelCache = new Map<string, Channel>();

  constructor(private readonly d: { readonly store: ServerStore }) {}

  /** The channel with this id, from the cache or the store. */
  async channel(id: string): Promise<Channel | undefined> {
    const cached = this.channelCache.get(id);
    if (cached) return cached;
    const c = await this.d.store.getChannel(id);
    if (c && !this.channelCache.has(id)) {
      if (this.channelCache.size >= CHANNEL_CACHE_MAX)
        this.channelCache.delete(this.channelCache.keys().next().value!);
      this.channelCache.set(id, c);
    }
    return this.channelCache.get(id) ?? c;
  }

  /** The channel if it is cached (it was read for a request or a push): presence's view. */
  cachedChannel(id: string): Channel | undefined {
    return this.channelCache.get(id);
  }

  /**
   * The users (lower-case) of a channel, owner included: cached, kept up to date by the bus's
   * member_joined and member_left.
   */
  async members(channelId: string): Promise<ReadonlySet<string>> {
    const cached = this.memberCache.get(channelId);
    if (cached) return cached;
    let reading = this.membersReading.get(channelId);
    if (!reading) this.membersReading.set(channelId, (reading = { reads: 0, changes: 0 }));
    reading.reads++;
    try {
      let names: string[];
      // A join or leave heard during the read may be missing from what it read (the bus event
      // found no set to change): read again, a few times at most.
      for (let tries = 0; ; tries++) {
        const changes = reading.changes;
        names = await this.d.store.members(channelId);
        if (reading.changes === changes || tries === 2) break;
      }
      // A set another read made meanwhile, kept up to date since, wins.
      let set = this.memberCache.get(channelId);
      if (!set) this.memberCache.set(channelId, (set = new Set(names.map((u) => u.toLowerCase()))));
      return set;
    } finally {
      if (--reading.reads === 0) this.membersReading.delete(channelId);
    }
  }

  /** The cached members of a channel (empty when not loaded): presence and typing's view. */
  cachedMembers(channelId: string): ReadonlySet<string> {
    return this.memberCache.get(channelId) ?? NO_MEMBERS;
  }
}
