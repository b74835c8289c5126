/**
 * Presence across server instances (PROTOCOL.md §3.5 "Tracker visibility", §3.7): a member who
 * comes online on one instance is announced to its co-members on every instance, also on an
 * instance where no session of its user ever was (which must learn the user's channels before it
 * can tell who shares one). Two real `bin/hchat server` processes on one PostgreSQL database
 * and one NATS; raw clients count what each session hears. Memberships that begin or end while
 * NATS is down are told when it is back (§3.7: catch-up after a bus outage).
 */
import { describe, expect, it } from 'vitest';
import { waitFor } from './testnet.js';
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

  it('a membership begun or ended while NATS was down is told on the other instance once it is back', async () => {
    const { at, nats } = await startCluster(['--max-registrations-per-address', '100'], 2);
    const [a, b] = [at(0), at(1)];
    // ann on A owns two channels; ben on B is in none of them: they see nothing of each other.
    const ann = await registerLogin(a, 'ann');
    const ben = await registerLogin(b, 'ben');
    const [x, y] = [uuid7(), uuid7()];
    for (const id of [x, y]) {
      const r = await ann.c.req('channel_create', { id, name: 'x', allowVisitors: false });
      expect(r.error).toBeUndefined();
    }
    for (const [i, s] of [ann, ben].entries()) {
      const r = await s.c.req('submit_info', {
        ip: '127.0.0.1',
        port: 31_000 + i,
        udpPort: 31_000 + i,
        status: 'online',
      });
      expect(r.error).toBeUndefined();
    }
    // Both entries reached both instances (each list shows only its own user so far).
    await waitFor(
      async () => (await ann.c.req('get_list', {})).body?.peers?.length === 1,
      10_000,
      'ann listed',
    );
    await sleep(500);
    const heard = (s: typeof ann) =>
      s.c.events
        .filter((f: any) => f.ev === 'peer_joined' || f.ev === 'peer_left')
        .map((f: any) => `${f.ev}:${f.body.entry?.username}`);
    expect(heard(ann)).toEqual([]);

    // NATS goes down; ben joins x through B meanwhile: B tells him of ann at once, A cannot
    // tell ann (the join never crossed).
    await nats.kill();
    await sleep(500);
    expect((await ben.c.req('channel_join', { channelId: x })).error).toBeUndefined();
    await waitFor(async () => heard(ben).includes('peer_joined:ann'), 10_000, 'ben hears of ann');
    await sleep(500);
    expect(heard(ann)).toEqual([]);

    // Back: A catches up and tells ann of ben, once.
    await nats.restart();
    await waitFor(
      async () => heard(ann).includes('peer_joined:ben'),
      20_000,
      'ann told of ben after the outage',
    );
    const list = await ann.c.req('get_list', {});
    expect(list.body.peers.map((e: { username: string }) => e.username).sort()).toEqual([
      'ann',
      'ben',
    ]);

    // Down again; ben leaves x through B: after the outage A tells ann he is gone.
    await sleep(1000);
    await nats.kill();
    await sleep(500);
    expect((await ben.c.req('channel_leave', { channelId: x })).error).toBeUndefined();
    await nats.restart();
    await waitFor(
      async () => heard(ann).includes('peer_left:ben'),
      20_000,
      'ann told ben left after the outage',
    );
    expect(heard(ann)).toEqual(['peer_joined:ben', 'peer_left:ben']);
    ann.c.close();
    ben.c.close();
  }, 90_000);
});
