/**
 * Presence's cache of users' channels (src/server/presence.ts) is bounded, and every session that
 * opens loads its user into it; a server that has seen more users than the bound forgets some.
 * It must never forget a user connected to it: what that user's sessions see, and who hears of
 * its entries, is decided from its channels, and a forgotten user counts as in no channel. Here
 * the bound is 2 and visitors (each a loaded user) push the co-members ann and ben out of a
 * FIFO cache before ben comes online: ann must still hear of him, and list him.
 */
import { describe, expect, it } from 'vitest';
import { createTestnet, rawSession, waitFor } from './testnet.js';

describe('presence cache', () => {
  it('a user connected here keeps its channels however many users the server has seen', async () => {
    const net = await createTestnet({ server: { presenceUsersCached: 2 } });
    const ann = await net.rawLink();
    const ben = await net.rawLink();
    for (const [link, name] of [
      [ann, 'ann'],
      [ben, 'ben'],
    ] as const)
      await link.request('register', { username: name, password: `${name}-pw` });
    await rawSession(ann, { username: 'ann', password: 'ann-pw' });
    await rawSession(ben, { username: 'ben', password: 'ben-pw' });
    const { id } = await ann.request('channel_create', {
      id: '01900000-0000-7000-8000-0000000ca0e1',
      name: 'pair',
      allowVisitors: false,
    });
    await ben.request('channel_join', { channelId: id });
    const heard: string[] = [];
    ann.on('event', (name: string, body: any) => heard.push(`${name}:${body.entry?.username}`));
    // Three more users (visitors) open sessions: more than the cache holds.
    for (const name of ['v1', 'v2', 'v3']) await rawSession(await net.rawLink(), { name });
    await ben.request('submit_info', {
      ip: '127.0.0.1',
      port: 40_001,
      udpPort: 40_001,
      hosts: [],
      live: [],
      status: 'online',
    });
    await waitFor(() => heard.includes('peer_joined:ben'), 3000, 'ann to hear that ben joined');
    const list = await ann.request('get_list', {});
    expect(list.peers.map((e) => e.username)).toEqual(['ben']);
  });
});
