/**
 * NAT signals across server instances (issue 18; docs/PROTOCOL.md §3.7, §3.9, §3.10): two real
 * `hchat server` processes on one PostgreSQL database and one NATS. A member on one instance
 * punches and relays to a host whose connection is on the other: the `punch` reaches it through
 * the bus, its answer comes back the same way, and the `relay` event names the asking instance's
 * relay, where both sides meet and their bytes pass.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { waitFor } from './testnet.js';
import { startCluster } from './cluster-kit.js';
import { registerLogin } from './outsider/lib.js';

const info = { ip: '10.1.1.1', port: 4000, udpPort: 4001, status: 'online' };
const evs = (c: { events: any[] }, ev: string) =>
  c.events.filter((f) => f.t === 'ev' && f.ev === ev).map((f) => f.body);

describe('NAT signals across two instances', () => {
  it('a punch and its answer, and a relay, between sessions on different instances', async () => {
    const { at } = await startCluster(['--max-registrations-per-address', '1000']);
    const alice = await registerLogin(at(0), 'alice');
    const bob = await registerLogin(at(1), 'bob');
    const carl = await registerLogin(at(1), 'carl');
    for (const u of [alice, bob, carl])
      expect((await u.c.req('submit_info', info)).error).toBeUndefined();
    const channelId = crypto.randomUUID();
    await alice.c.req('channel_create', { id: channelId, name: 'nat', allowVisitors: false });
    expect((await bob.c.req('channel_join', { channelId })).error).toBeUndefined();
    const to = (u: typeof bob) => ({ username: u.username, sessionId: u.sessionId });
    // The tracker entries crossed the bus: alice sees bob's, on the other instance.
    await waitFor(
      async () => {
        const r = await alice.c.req('get_list', {});
        return r.body?.peers?.some((e: any) => e.sessionId === bob.sessionId);
      },
      5000,
      'bob in alice’s list',
    );

    // A stranger on the other instance stays out of reach, as on one instance.
    const refused = await alice.c.req('punch', { to: to(carl), port: 40_000, id: 'to-stranger' });
    expect(refused.error).toMatchObject({ code: 'E_NOT_FOUND' });

    // alice punches bob: the event reaches bob through instance 1, with alice's address.
    expect(
      (await alice.c.req('punch', { to: to(bob), port: 40_000, id: 'cross-punch' })).error,
    ).toBeUndefined();
    await waitFor(() => evs(bob.c, 'punch').length === 1, 5000, 'the punch on instance 1');
    expect(evs(bob.c, 'punch')[0]).toEqual({
      from: { username: 'alice', role: 'user', sessionId: alice.sessionId },
      ip: '127.0.0.1',
      port: 40_000,
      id: 'cross-punch',
    });
    // bob answers, from his instance: alice hears it on hers.
    expect(
      (await bob.c.req('punch', { to: to(alice), port: 40_001, id: 'cross-punch' })).error,
    ).toBeUndefined();
    await waitFor(() => evs(alice.c, 'punch').length === 1, 5000, 'the answer on instance 0');
    expect(evs(alice.c, 'punch')[0]).toMatchObject({ from: { username: 'bob' }, port: 40_001 });

    // alice asks a relay to bob: instance 0's relay, which bob is told to come to.
    const r = await alice.c.req('relay', { to: to(bob), id: 'cross-relay' });
    expect(r.error).toBeUndefined();
    await waitFor(() => evs(bob.c, 'relay').length === 1, 5000, 'the relay offer on instance 1');
    const offer = evs(bob.c, 'relay')[0];
    expect(offer).toMatchObject({ port: r.body.port, ip: '127.0.0.1', id: 'cross-relay' });
    const header = (token: string) =>
      Buffer.concat([Buffer.from('HCRL'), Buffer.from([1]), Buffer.from(token, 'base64url')]);
    const got = { a: Buffer.alloc(0), b: Buffer.alloc(0) };
    const a = net.connect(r.body.port, '127.0.0.1', () => a.write(header(r.body.token)));
    const b = net.connect(offer.port, offer.ip, () => b.write(header(offer.token)));
    a.on('data', (d: Buffer) => (got.a = Buffer.concat([got.a, d])));
    b.on('data', (d: Buffer) => (got.b = Buffer.concat([got.b, d])));
    await waitFor(() => got.a.length === 1, 5000, 'paired');
    a.write('ClientHello, say');
    await waitFor(() => got.b.toString() === 'ClientHello, say', 5000, 'through the relay');
    a.destroy();
    b.destroy();
  });
});
