/**
 * Attack 8: the connection log's budget (PROTOCOL.md §6, SECURITY.md "The server's front door")
 * bounds what a party without a session writes, and a session's refused requests. But a stranger
 * gets a session for nothing: `visitor` needs no password. Then every read it makes of a channel
 * that allows visitors is "what it fetched", a record "always written" (§6), and one
 * `history` request costs the visitor a few bytes. SECURITY.md says a stranger MUST NOT "erase
 * the connection log": here it does, by reading, and the trail of who posted what from where is
 * gone. Written from the documents only; real `bin/hchat` processes on 127.0.0.1.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import {
  Raw,
  killAll,
  newKey,
  p2pConnect,
  registerLogin,
  serverHello,
  signMessage,
  startPeer,
  startServer,
  until,
  uuid7,
  logLines,
  stopGently as stop,
} from './attack8-lib.js';

afterAll(killAll);

/** SPEC §9: at 10,000 records a new file starts, the previous one kept as connections.log.1. */
const ROTATE = 10_000;

/** Every record of a data folder's connection log (the old file first), as key=value maps. */
function records(data: string): Record<string, string>[] {
  return logLines(data).map((line) => {
    const r: Record<string, string> = {};
    for (const kv of line.split(' ')) {
      const i = kv.indexOf('=');
      if (i > 0) r[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1));
    }
    return r;
  });
}

/** `n` requests made by `c`, 500 at a time (the server works on 16 at once anyway). */
async function flood(c: Raw, n: number, op: string, body: unknown): Promise<number> {
  let ok = 0;
  for (let done = 0; done < n; done += 500) {
    const answers = await Promise.all(
      Array.from({ length: Math.min(500, n - done) }, () => c.req(op, body, 30_000)),
    );
    ok += answers.filter((a) => a.body && !a.error).length;
  }
  return ok;
}

it('a visitor reading a public channel over and over cannot push a user’s post out of the server’s log', async () => {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'hc-a8log-'));
  const srv = await startServer([], { data });
  const alice = await registerLogin(srv, 'alice');
  const ch = uuid7();
  await alice.c.req('channel_create', { id: ch, name: 'lobby', allowVisitors: true });
  const msg = signMessage(alice.key, alice.cert, ch, 'alice', 'what alice said, and from where');
  expect((await alice.c.req('post', { message: msg })).body?.seq).toBeGreaterThan(0);
  // It is on disk before the stranger comes.
  await until(async () => records(data).some((r) => r.ev === 'post' && r.msg === msg.id));

  // The stranger: no account, a visitor's session, one channel viewed.
  const { c } = await serverHello(srv);
  const v = await c.req('visitor', { name: 'drifter', publicKey: newKey().pk });
  expect(v.body?.role).toBe('visitor');
  expect((await c.req('channel_join', { channelId: ch })).body?.id).toBe(ch);
  // Two rotations' worth of successful reads: each one a `fetch` record (PROTOCOL.md §6).
  const ok = await flood(c, 2 * ROTATE + 500, 'history', { channelId: ch, limit: 1 });
  expect(ok).toBe(2 * ROTATE + 500);
  c.close();
  alice.c.close();
  await stop(srv);

  const log = records(data);
  // The guarantee: alice's post (who, which channel, from which address) is still on disk.
  expect(
    log.find((r) => r.ev === 'post' && r.msg === msg.id),
    `records kept: ${log.length}, of which fetch: ${log.filter((r) => r.ev === 'fetch').length}`,
  ).toMatchObject({ peer: expect.stringMatching(/^peer:alice@127\.0\.0\.1:\d+$/), channel: ch });
}, 120_000);

it('a visitor reading a host’s public channel over P2P cannot push the host’s own records out of its log', async () => {
  const srv = await startServer();
  const host = await startPeer(srv);
  expect(
    (await host.api('POST', '/api/register', { username: 'hana', password: 'pw-hana-1' })).status,
  ).toBe(201);
  expect(
    (await host.api('POST', '/api/login', { username: 'hana', password: 'pw-hana-1' })).status,
  ).toBe(200);
  const created = await host.api('POST', '/api/channels', { name: 'open', allowVisitors: true });
  expect(created.status).toBe(201);
  const ch = created.body.id as string;
  // A member posts at the host over P2P: the host's `post` record names who and from where.
  const bob = await registerLogin(srv, 'bobby');
  expect((await bob.c.req('channel_join', { channelId: ch })).body?.id).toBe(ch);
  await until(
    async () =>
      (await bob.c.req('get_list', {})).body?.peers?.some((p: any) => p.hosts?.includes(ch)),
    15_000,
  );
  const link = await p2pConnect(host, bob);
  expect(link.ok).toBe(true);
  const msg = signMessage(bob.key, bob.cert, ch, 'bobby', 'bob was here, at the host');
  const posted = await link.c.req('post', { message: msg });
  expect(posted.body?.id ?? posted.error).toBe(msg.id);
  await until(async () => records(host.data).some((r) => r.ev === 'post' && r.msg === msg.id));
  link.c.close();

  // The stranger: a visitor session from the server, then the host's P2P port.
  const { c } = await serverHello(srv);
  const key = newKey();
  const v = await c.req('visitor', { name: 'drifter', publicKey: key.pk });
  expect(v.body?.role).toBe('visitor');
  await c.req('channel_join', { channelId: ch });
  const vlink = await p2pConnect(host, { cert: v.body.cert, key });
  expect(vlink.ok).toBe(true);
  const ok = await flood(vlink.c, 2 * ROTATE + 500, 'history', { channelId: ch, limit: 1 });
  expect(ok).toBe(2 * ROTATE + 500);
  vlink.c.close();
  c.close();
  bob.c.close();
  await stop(host);

  const log = records(host.data);
  expect(
    log.find((r) => r.ev === 'post' && r.msg === msg.id),
    `records kept: ${log.length}, of which fetch: ${log.filter((r) => r.ev === 'fetch').length}`,
  ).toMatchObject({ peer: expect.stringMatching(/^peer:bobby@127\.0\.0\.1:\d+$/) });
}, 120_000);
