/**
 * Attack 8: the REST gateway's resume buffers (docs/REST.md "Resume": a session outlives its
 * socket for 60 s, still subscribed, keeping its last 1,000 events; at most 4 sessions per
 * token, 50 live tokens per user). Each bound holds alone, but together one account holds
 * 50 × 4 = 200 detached sessions subscribed to a channel of its own, then posts long messages
 * there (within its post budget): every session keeps its own copy of every event. SPEC §7:
 * limits everywhere an attacker could spend others' resources; nothing from the network ends a
 * process. Here one registered account grows the server by about 1 GB in under a minute (a few
 * accounts end it). Written from the documents only; a real `bin/hchat server` on 127.0.0.1.
 */
import fs from 'node:fs';
import { afterAll, expect, it } from 'vitest';
import { killAll, registerLogin, signMessage, sleep, startServer, uuid7 } from './attack8-lib.js';
import { closeGateways, openGateway } from './botlife-lib.js';

afterAll(killAll);
afterAll(closeGateways);

const rssBytes = (pid: number) =>
  Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)![1]) * 1024;

it('one account’s detached gateway sessions cannot make the server hold a copy of each event per session', async () => {
  const srv = await startServer();
  const http = srv.ready.match(/http=(\S+)/)![1]!;
  const m = await registerLogin(srv, 'mallory');
  const ch = uuid7();
  await m.c.req('channel_create', { id: ch, name: 'busy', allowVisitors: false });
  const tokens: string[] = [];
  for (let i = 0; i < 50; i++) {
    const t = await m.c.req('token_create', { name: 't' + i, scopes: ['read'] });
    expect(t.body?.token, JSON.stringify(t)).toBeTruthy();
    tokens.push(t.body.token);
  }
  const gws = tokens.flatMap((t) => [0, 1, 2, 3].map(() => openGateway(http, t)));
  await Promise.all(gws.map((g) => g.ready));
  // The sockets go; the sessions stay, subscribed, for 60 s.
  for (const g of gws) g.close();
  await sleep(500);
  const before = rssBytes(srv.child.pid!);

  // 600 messages of 4,000 characters, within the post budget (bursts of 500, 50 a second).
  const text = (i: number) => String(i).padEnd(4000, '.');
  let posted = 0;
  for (let start = 0; start < 600; start += 100) {
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, j) =>
        m.c.req('post', { message: signMessage(m.key, m.cert, ch, 'mallory', text(start + j)) }),
      ),
    );
    posted += answers.filter((a) => a.body?.seq).length;
    if (answers.some((a) => a.error?.code === 'E_RATE_LIMITED')) await sleep(2000);
  }
  expect(posted).toBeGreaterThan(500);
  await sleep(1000);
  const grown = rssBytes(srv.child.pid!) - before;
  // 600 events of about 5 KB are 3 MB; kept once each (or cut by a budget) they are far below this.
  expect(grown, `the server grew by ${Math.round(grown / 2 ** 20)} MiB`).toBeLessThan(
    256 * 2 ** 20,
  );
}, 60_000);
