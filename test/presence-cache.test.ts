/**
 * Presence's cache of users' channels (src/server/presence.ts) is bounded, and every session that
 * opens loads its user into it; a server that has seen more users than the bound forgets some.
 * It must never forget a user connected to it: what that user's sessions see, and who hears of
 * its entries, is decided from its channels, and a forgotten user counts as in no channel. Here
 * the bound is 2 and visitors (each a loaded user) push the co-members ann and ben out of a
 * FIFO cache before ben comes online: ann must still hear of him, and list him.
 */
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createTestnet, rawSession, tempDir, waitFor } from './testnet.js';
import { Presence } from '../src/server/presence.js';
import { TrackerList } from '../src/server/tracker.js';
import { SqliteServerStore } from '../src/store/sqlite-server-store.js';

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

  it('loads of one user asked for at once read the store once, and all see its channels', async () => {
    // Another instance's sessions of one user coming online arrive as a burst of tracker changes,
    // each loading that user's channels here (tracker-service.ts), side by side.
    const store = new SqliteServerStore(path.join(tempDir(), 'server.db'));
    onTestFinished(() => store.close());
    await store.createUser({ username: 'dee', passHash: 'unused' });
    const channel = {
      id: '01900000-0000-7000-8000-0000000ca0e2',
      name: 'dee-room',
      owner: 'dee',
      allowVisitors: false,
      createdAt: Date.now(),
    };
    await store.createChannel(channel);
    let reads = 0;
    const counted = new Proxy(store, {
      get(target, key, receiver) {
        if (key === 'channelsOf')
          return (username: string) => {
            reads++;
            return target.channelsOf(username);
          };
        const v = Reflect.get(target, key, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const presence = new Presence({
      store: counted,
      tracker: new TrackerList(),
      membersOf: () => new Set(),
      loadMembers: async () => undefined,
      channel: () => undefined,
      connsOf: () => [],
      conns: () => new Set(),
      pageEntries: 100,
    });
    await Promise.all(Array.from({ length: 20 }, () => presence.loadUser('Dee')));
    expect(reads).toBe(1);
    expect([...presence.channelsOf('dee')]).toEqual([channel.id]);
    await presence.loadUser('dee');
    expect(reads).toBe(1);
  });

  it('a membership that ends while the user is being loaded is not brought back by the load', async () => {
    // Found in review: the load read the store before the removal, and its answer overwrote it,
    // so the removed user kept seeing (and being seen by) the channel's members on this instance.
    const inStore = new Map([['mallory', ['X']]]);
    const members = new Map([['X', new Set(['alice', 'mallory'])]]);
    const tick = () => new Promise((r) => setTimeout(r, 20));
    const presence = new Presence({
      store: {
        channelsOf: async (u: string) => (inStore.get(u.toLowerCase()) ?? []).map((id) => ({ id })),
      } as never,
      tracker: new TrackerList(),
      membersOf: (id) => members.get(id) ?? new Set(),
      loadMembers: tick,
      channel: () => undefined,
      connsOf: () => [],
      conns: () => new Set(),
      pageEntries: 100,
    });
    const load = presence.loadUser('mallory'); // reads X, then loads X's members
    await new Promise((r) => setTimeout(r, 5));
    // Removed meanwhile: the store changes, then the bus event (ChannelService first).
    inStore.set('mallory', []);
    members.get('X')!.delete('mallory');
    presence.memberLeft('X', 'mallory');
    await load;
    expect([...presence.channelsOf('mallory')]).toEqual([]);
  });
});
