// FINDING (tracker entries are unbounded per session): one login, resumed on many connections,
// gets one tracker entry per connection, with any ip:port it likes; every other user sees them
// all (get_list, peer_joined). SPEC §7 asks for limits on "tracker entries"; SPEC §2 says entries
// are unique by (ip:port, user, session). Observed: 200 connections of one session -> 200 entries
// in another user's get_list.
//
// FINDING (presence churn amplification): set_status / submit_info are not rate-limited and each
// change is broadcast to every session of every other user. Observed: 2,000 set_status toggles
// (~140 KB sent) in ~1.2 s -> 2,000 events (~412 KB) to EACH other online session; with N sessions
// the server sends ~3·N bytes per attacker byte, and each victim peer's 1,000-event replay
// window (README, event streams) is flushed by presence noise.
import { test, expect, afterAll } from 'vitest';
import { startServer, registerLogin, serverHello, killAll, sleep, Raw } from './lib.js';

afterAll(killAll);

test('one session cannot fill the tracker with entries', async () => {
  const srv = await startServer();
  const m = await registerLogin(srv, 'mallory');
  const conns: Raw[] = [];
  for (let i = 0; i < 200; i++) {
    const { c } = await serverHello(srv);
    await c.req('resume', { token: m.token });
    conns.push(c);
  }
  await Promise.all(
    conns.map((c, i) =>
      c.req('submit_info', {
        ip: '127.0.0.1',
        port: 10000 + i,
        udpPort: 20000 + i,
        status: 'online',
      }),
    ),
  );
  const bob = await registerLogin(srv, 'bob');
  const list = await bob.c.req('get_list', {});
  const mine = list.body.peers.filter((p: any) => p.username === 'mallory');
  // observed: 200. One session should have a bounded number of entries (sessions cap is 10).
  expect(mine.length).toBeLessThanOrEqual(10);
  conns.forEach((c) => c.close());
}, 90000);

test('presence changes are rate-limited (no broadcast amplification)', async () => {
  const srv = await startServer();
  const m = await registerLogin(srv, 'mallory');
  const victim = await registerLogin(srv, 'victim');
  await m.c.req('submit_info', { ip: '127.0.0.1', port: 1000, udpPort: 1001, status: 'online' });
  await sleep(300);
  const before = victim.c.events.length;
  const rs = await Promise.all(
    Array.from({ length: 2000 }, (_, i) =>
      m.c.req('set_status', { status: i % 2 ? 'online' : 'invisible' }),
    ),
  );
  await sleep(500);
  const limited = rs.filter((r) => r.error?.code === 'E_RATE_LIMITED').length;
  const events = victim.c.events.length - before;
  console.log(
    'accepted',
    rs.length - limited,
    'events to one victim',
    events,
    'bytes',
    victim.c.bytesIn,
  );
  // observed: 0 limited, 2,000 peer_joined/peer_left events to every other session within ~1.2 s.
  expect(events).toBeLessThan(200);
}, 60000);
