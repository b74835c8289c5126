// FINDING (post rate limit bypassed through `forward`): any user can create a channel and is its
// host, and `forward` is exempt from the post budget (PROTOCOL §3.3 "forward is not limited this
// way"). So a user stores and broadcasts its own messages at any rate: observed 5,000 self-signed
// messages accepted in ~2 s (10 requests of 500), while `post` refuses past ~500 (burst). SECURITY
// says posts are limited per user at the server ("one user flooding").
//
// FINDING (low; host rewrites the displayed author): `forward` takes `author` from the host and
// the server stores it as given when it matches the certificate without regard to case: a host
// forwarding "MALLORY" (or a member's "bob" as "BOB") makes every server reader show that spelling.
import { test, expect, afterAll } from 'vitest';
import { startServer, registerLogin, killAll, signMessage, uuid7 } from './lib.js';

afterAll(killAll);

test('forward does not let a user exceed the post budget with its own messages', async () => {
  const srv = await startServer();
  const a = await registerLogin(srv, 'alice');
  const ch = uuid7();
  await a.c.req('channel_create', { id: ch, name: 'c1', allowVisitors: true });
  const reqs = [];
  for (let b = 0; b < 10; b++) {
    const msgs = [];
    for (let i = 0; i < 500; i++)
      msgs.push({
        ...signMessage(a.key, a.cert, ch, 'alice', `f${b}-${i}`, Date.now() - 1000, b * 500 + i),
        author: 'alice',
      });
    reqs.push(a.c.req('forward', { messages: msgs }, 30000));
  }
  const t0 = Date.now();
  const rs = await Promise.all(reqs);
  const stored = rs
    .flatMap((r) => r.body?.results ?? [])
    .filter((x: any) => x.seq && !x.duplicate).length;
  console.log('stored', stored, 'in', Date.now() - t0, 'ms');
  // burst 500 + 50/s: a few seconds can never hold 5,000. Observed: 5,000.
  expect(stored).toBeLessThanOrEqual(1000);
}, 60000);

test('the server stores the author as the certificate names it, not as the host spells it', async () => {
  const srv = await startServer();
  const m = await registerLogin(srv, 'mallory');
  const ch = uuid7();
  await m.c.req('channel_create', { id: ch, name: 'c', allowVisitors: true });
  const msg = signMessage(m.key, m.cert, ch, 'mallory', 'hi');
  await m.c.req('forward', { messages: [{ ...msg, author: 'MALLORY' }] });
  const s = await m.c.req('sync', { channelId: ch, since: 0, limit: 10 });
  // observed: 'MALLORY'
  expect(s.body.messages[0].author).toBe('mallory');
}, 30000);
