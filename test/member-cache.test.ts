/**
 * The server's cache of a channel's members (ChannelService.members), which `post`, `history`
 * and presence check against: filled from the store on first use, then kept by the bus's
 * member_joined and member_left. A removal heard while the store was being read found no set to
 * change; the read then filled the cache with the member still in it (found in review), and the
 * removed member could post on that instance until it restarted.
 */
import { describe, expect, it } from 'vitest';
import { ChannelService } from '../src/server/channel-service.js';

describe('member cache', () => {
  it('a removal heard while the members are read from the store is not undone by the read', async () => {
    let inStore = ['alice', 'mallory'];
    let reads = 0;
    const channels = new ChannelService({
      store: {
        members: async () => {
          reads++;
          const names = inStore;
          await new Promise((r) => setTimeout(r, 20));
          return names;
        },
        getChannel: async () => undefined,
      },
      connsOf: () => [],
    } as never);
    const read = channels.members('X');
    await new Promise((r) => setTimeout(r, 5));
    // mallory is removed meanwhile: the store changes, then the bus event comes.
    inStore = ['alice'];
    channels.memberLeft({ kind: 'member_left', channelId: 'X', username: 'mallory' });
    expect([...(await read)]).toEqual(['alice']);
    expect([...channels.cachedMembers('X')]).toEqual(['alice']);
    expect(reads).toBe(2);
  });
});
