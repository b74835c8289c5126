// FINDING (server wedged by pipelined reads; no read budget, no bound on work per connection):
// a visitor (no account, no password) pipelines 300 `history {limit: 500}` requests (~22 KB sent)
// on a channel that allows visitors and holds 500 messages of ~8 KB, and does not read the
// answers. Observed (400 requests): the server's event loop was busy ~10.8 s of CPU, another
// user's `get_list` waited 12.5 s, RSS grew by ~250 MB, and the connection was closed only after
// the work was done. SECURITY.md: "bytes queued to a reader: 16 MiB ... a reader that does not
// read is closed (E_SLOW_CONSUMER)"; "nothing from the network ends a process"; SPEC §7: limits
// everywhere an attacker could spend others' resources.
import { test, expect, afterAll } from 'vitest';
import fs from 'node:fs';
import {
  startServer,
  registerLogin,
  serverHello,
  killAll,
  sleep,
  signMessage,
  uuid7,
  newKey,
} from './lib.js';

afterAll(killAll);

const rssMB = (pid: number) =>
  Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)![1]) / 1024;

test('a visitor pipelining history requests cannot stall the server or hold its memory', async () => {
  const srv = await startServer();
  const a = await registerLogin(srv, 'alice');
  const ch = uuid7();
  await a.c.req('channel_create', { id: ch, name: 'big', allowVisitors: true });
  const text = 'é'.repeat(3990);
  const posted = await Promise.all(
    Array.from({ length: 500 }, (_, i) =>
      a.c.req(
        'post',
        { message: signMessage(a.key, a.cert, ch, 'alice', text + i, Date.now(), i) },
        30000,
      ),
    ),
  );
  expect(posted.filter((r) => r.body).length).toBe(500);
  const rss0 = rssMB(srv.child.pid!);

  const { c } = await serverHello(srv);
  expect((await c.req('visitor', { name: 'reader', publicKey: newKey().pk })).body).toBeTruthy();
  c.sock.pause(); // never read
  for (let i = 0; i < 300; i++)
    c.send({ t: 'req', id: 1000 + i, op: 'history', body: { channelId: ch, limit: 500 } });

  let worst = 0;
  let peak = 0;
  for (let i = 0; i < 20; i++) {
    const t = Date.now();
    await a.c.req('get_list', {});
    worst = Math.max(worst, Date.now() - t);
    peak = Math.max(peak, rssMB(srv.child.pid!) - rss0);
    await sleep(200);
  }
  c.close();
  console.log('worst get_list latency', worst, 'ms; RSS growth', Math.round(peak), 'MB');
  // Observed ~9-12 s before the server bounded this; ~2.3 s at worst since, in CI's full run
  // on 2 busy cores, and 5.1 s once on a machine about half as fast (2026-12-06, whose stall
  // would be longer still): the bound tells a stall from a busy machine.
  expect(worst).toBeLessThan(8000);
  // Observed ~200-250 MB before the server bounded this; the first bound here (64 MB) was set over
  // plain TCP, and over TLS, which holds a queued answer twice for a while (clear until its
  // ciphertext is written, and the ciphertext), ~65-70 MB is observed. What matters is the bound:
  // far below what 300 pipelined 1 MiB answers would take.
  expect(peak).toBeLessThan(100);
}, 120000);
