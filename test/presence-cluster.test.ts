/**
 * Presence across server instances (PROTOCOL.md §3.5 "Tracker visibility", §3.7): a member who
 * comes online on one instance is announced to its co-members on every instance, also on an
 * instance where no session of its user ever was (which must learn the user's channels before it
 * can tell who shares one). Two real `bin/hchat server` processes on one PostgreSQL database
 * and one NATS; raw clients count what each session hears.
 */
import { describe, expect, it } from 'vitest';
import { registerLogin, sleep, uuid7 } from './outsider/lib.js';
import { startCluster } from './cluster-kit.js';

describe('presence over two instances', () => {
  it('a member coming online is announced to its co-members on both instances, once each', async () => {
    const { at } = await startCluster(['--max-registrations-per-address', '100'], 2);
    const [a, b] = [at(0), at(1)];
    // ann and cat on A, ben and dan on B: one channel, everyone a member before anyone is online.
    const names = ['ann', 'ben', 'cat', 'dan'];
    const home = [a, b, a, b];
    const s = [];
    for (const [i, n] of names.entries()) s.push(await registerLogin(home[i]!, n));
    const channelId = uuid7();
    const made = await s[0]!.c.req('channel_create', {
      id: channelId,
      name: 'x',
      allowVisitors: false,
    });
    expect(made.error).toBeUndefined();
    for (const x of s.slice(1))
      expect((await x.c.req('channel_join', { channelId })).error).toBeUndefined();
    await sleep(500);
    for (const x of s) x.c.events.length = 0;
    // Online one after the other: each session hears of the three others, wherever they are.
    for (const [i, x] of s.entries()) {
      const r = await x.c.req('submit_info', {
        ip: '127.0.0.1',
        port: 30_000 + i,
        udpPort: 30_000 + i,
        status: 'online',
      });
      expect(r.error).toBeUndefined();
      await sleep(300);
    }
    await sleep(700);
    for (const [i, x] of s.entries()) {
      const heard = x.c.events.map((f: any) => `${f.ev}:${f.body.entry?.username}`);
      expect(heard, names[i]).toEqual(
        names.filter((n) => n !== names[i]).map((n) => `peer_joined:${n}`),
      );
    }
    // And the list agrees, on both instances.
    for (const x of s) {
      const l = await x.c.req('get_list', {});
      expect(l.body.peers.map((e: { username: string }) => e.username).sort()).toEqual(names);
    }
    for (const x of s) x.c.close();
  }, 60_000);
});
