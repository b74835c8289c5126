// FINDING (audit erasure by flooding): the connection log (SPEC §9, PROTOCOL.md §6) keeps one old
// file, and a stranger who never logs in could make a process write records without bound:
// requests refused before a login, connections opened and closed on bad frames, failed TLS
// handshakes (about 10,050 records in 1.5 s from one address). Two rotations later every earlier
// record (who posted what, from where) is gone: an attacker erases the trail of what they did.
// Records a party without a session causes are now bounded per address group (§6 `suppressed`).
// Real `bin/hchat` processes on 127.0.0.1; the flood is a bounded number of attempts.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, expect, test } from 'vitest';
import { LOG_ROTATE_RECORDS, parseRecord } from '../../src/shared/connlog.js';
import {
  Raw,
  frame,
  killAll,
  newKey,
  p2pConnect,
  registerLogin,
  serverHello,
  signMessage,
  sleep,
  startPeer,
  startServer,
  uuid7,
  logLines,
  stopGently as stop,
} from './lib.js';

afterAll(killAll);

/** Every record of a data folder's connection log, the old file first. */
function records(data: string): Record<string, string>[] {
  return logLines(data).map(parseRecord);
}

/** Settles when `s` closes. */
const closed = (s: net.Socket) => new Promise<void>((r) => s.once('close', () => r()));

test('a stranger flooding refusals from one address cannot push a logged-in post out of the server log', async () => {
  // The log of an earlier run is almost full: the post below is among the last records of its
  // file, so one rotation moves it to connections.log.1 and one more would erase it.
  const data = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'hc-logflood-'));
  const filler = Array.from(
    { length: LOG_ROTATE_RECORDS - 20 },
    (_, i) => `t=2024-01-01T00:00:00.000Z ev=status status=online n=${i}`,
  );
  fs.writeFileSync(path.join(data, 'connections.log'), filler.join('\n') + '\n', { mode: 0o600 });
  const srv = await startServer([], { data });

  const alice = await registerLogin(srv, 'alice');
  const ch = uuid7();
  await alice.c.req('channel_create', { id: ch, name: 'audit', allowVisitors: false });
  const msg = signMessage(alice.key, alice.cert, ch, 'alice', 'what alice said');
  const posted = await alice.c.req('post', { message: msg });
  expect(posted.body?.seq).toBeGreaterThan(0);

  // The flood: 180 connections from 127.0.0.1, 12 at a time. Each says hello, sends 60 requests
  // that need a session (each refused), then a frame that is no JSON (the link is closed), so
  // each writes open, 60 refuse and close: over 11,000 records without a session.
  let refused = 0;
  for (let batch = 0; batch < 15; batch++) {
    await Promise.all(
      Array.from({ length: 12 }, async () => {
        const c = new Raw(srv.host, srv.port);
        await c.connected();
        c.send({ t: 'hello', v: 4, role: 'peer', agent: 'flood' });
        await c.nextFrame();
        const answers = await Promise.all(
          Array.from({ length: 60 }, () => c.req('get_list', {}, 20_000)),
        );
        refused += answers.filter((a) => a.error?.code === 'E_AUTH_REQUIRED').length;
        c.sock.write(Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.from('{{{')]));
        await c.closeP;
      }),
    );
  }
  // And failed TLS handshakes: plaintext at the TLS port.
  for (let i = 0; i < 20; i++) {
    const s = net.connect(srv.port, srv.host);
    s.on('error', () => {});
    s.write(frame({ t: 'hello', v: 4, role: 'peer' }));
    await closed(s);
  }
  expect(refused).toBe(180 * 60);
  alice.c.close();
  await stop(srv);

  const log = records(data);
  // Alice's post is still there, naming her and where she posted from.
  expect(log.find((r) => r.ev === 'post' && r.msg === msg.id)).toMatchObject({
    peer: expect.stringMatching(/^peer:alice@127\.0\.0\.1:\d+$/),
    channel: ch,
  });
  expect(log.some((r) => r.ev === 'auth' && r.peer?.startsWith('peer:alice@'))).toBe(true);
  // What was left out is said: how many, and from which address group.
  const suppressed = log.filter((r) => r.ev === 'suppressed' && r.group === '127.0.0.0/24');
  expect(suppressed.length).toBeGreaterThan(0);
  const left = suppressed.reduce((n, r) => n + Number(r.suppressed), 0);
  const kept = log.filter(
    (r) =>
      (r.ev === 'refuse' && r.peer?.startsWith('peer:-@')) ||
      (['open', 'close'].includes(r.ev!) && r.peer?.startsWith('peer:-@')) ||
      r.ev === 'tls_error',
  ).length;
  // Every record the flood caused was either written or counted as left out.
  expect(left + kept).toBeGreaterThanOrEqual(180 * 62 + 20);
}, 120_000);

test('an account flooding refused requests cannot push another user’s post out of the server log', async () => {
  // Logged in, mallory's requests are refused at no cost to her (a channel she is not in), each
  // a `refuse` record: bounded per account, as a stranger's are per address group.
  const data = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'hc-logflood-'));
  const srv = await startServer([], { data });
  const alice = await registerLogin(srv, 'alice');
  const ch = uuid7();
  await alice.c.req('channel_create', { id: ch, name: 'audit', allowVisitors: false });
  const msg = signMessage(alice.key, alice.cert, ch, 'alice', 'what alice said');
  expect((await alice.c.req('post', { message: msg })).body?.seq).toBeGreaterThan(0);
  const mallory = await registerLogin(srv, 'mallory');
  let refused = 0;
  for (let batch = 0; batch < 21; batch++) {
    const answers = await Promise.all(
      Array.from({ length: 1000 }, () =>
        mallory.c.req('history', { channelId: ch, limit: 1 }, 20_000),
      ),
    );
    refused += answers.filter((a) => a.error?.code === 'E_NOT_MEMBER').length;
  }
  expect(refused).toBe(21_000);
  alice.c.close();
  mallory.c.close();
  await stop(srv);
  const log = records(data);
  expect(log.find((r) => r.ev === 'post' && r.msg === msg.id)).toMatchObject({
    peer: expect.stringMatching(/^peer:alice@/),
  });
  const said = log.filter((r) => r.ev === 'suppressed' && r.group === 'user:mallory');
  const kept = log.filter((r) => r.ev === 'refuse' && r.peer?.startsWith('peer:mallory@'));
  expect(kept.length).toBeGreaterThan(0);
  expect(kept.length + said.reduce((n, r) => n + Number(r.suppressed), 0)).toBe(21_000);
}, 120_000);

/** A data folder whose connection log is 20 records short of its rotation (an earlier run's). */
function almostFull(): string {
  const data = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'hc-logflood-'));
  const filler = Array.from(
    { length: LOG_ROTATE_RECORDS - 20 },
    (_, i) => `t=2024-01-01T00:00:00.000Z ev=status status=online n=${i}`,
  );
  fs.writeFileSync(path.join(data, 'connections.log'), filler.join('\n') + '\n', { mode: 0o600 });
  return data;
}

/** Sends `n` requests built by `req(i)` on `c`, 1000 at a time; the answers without an error. */
async function flood(c: Raw, n: number, req: (i: number) => [string, unknown]): Promise<number> {
  let ok = 0;
  for (let done = 0; done < n; done += 1000) {
    const answers = await Promise.all(
      Array.from({ length: Math.min(1000, n - done) }, (_, i) => c.req(...req(done + i), 20_000)),
    );
    ok += answers.filter((a) => a.body && !a.error).length;
  }
  return ok;
}

test('a reader flooding accepted reads cannot push where stored messages came from out of the server log', async () => {
  // Reads a session may make (sync and history pages of a channel it can read) are answered and
  // logged; unbounded, 21,000 of them rotated the log twice, and with it the record of who
  // posted what from where. They count against the reader's share (`reads:<name>`).
  const data = almostFull();
  const srv = await startServer([], { data });
  const alice = await registerLogin(srv, 'alice');
  const ch = uuid7();
  await alice.c.req('channel_create', { id: ch, name: 'open', allowVisitors: true });
  const msg = signMessage(alice.key, alice.cert, ch, 'alice', 'what alice said');
  expect((await alice.c.req('post', { message: msg })).body?.seq).toBeGreaterThan(0);

  const mallory = await registerLogin(srv, 'mallory');
  expect((await mallory.c.req('channel_join', { channelId: ch })).body?.id).toBe(ch);
  const read = await flood(mallory.c, 21_000, (i) =>
    i % 2
      ? ['sync', { channelId: ch, since: 0, limit: 1 }]
      : ['history', { channelId: ch, limit: 1 }],
  );
  expect(read).toBe(21_000);
  // A visitor's reads count against its address group's visitors.
  const { c: guest } = await serverHello(srv);
  expect(
    (await guest.req('visitor', { name: 'Lurker', publicKey: newKey().pk })).body,
  ).toBeTruthy();
  expect(await flood(guest, 300, () => ['sync', { channelId: ch, since: 0, limit: 1 }])).toBe(300);
  alice.c.close();
  mallory.c.close();
  guest.close();
  await stop(srv);

  const log = records(data);
  // Where alice's message came from is still there, and so are the older records.
  expect(log.find((r) => r.ev === 'post' && r.msg === msg.id)).toMatchObject({
    peer: expect.stringMatching(/^peer:alice@127\.0\.0\.1:\d+$/),
    channel: ch,
  });
  expect(log.some((r) => r.ev === 'status' && r.n === String(LOG_ROTATE_RECORDS - 21))).toBe(true);
  // What was left out is said, per reader: how many, and which reads.
  const reads = (peer: RegExp) =>
    log.filter((r) => (r.ev === 'sync' || r.ev === 'fetch') && peer.test(r.peer ?? '')).length;
  const said = (group: string) =>
    log
      .filter((r) => r.ev === 'suppressed' && r.group === group)
      .reduce((n, r) => n + Number(r.suppressed), 0);
  expect(reads(/^peer:mallory@/)).toBeGreaterThan(0);
  expect(reads(/^peer:mallory@/) + said('reads:mallory')).toBe(21_000);
  expect(
    log
      .find((r) => r.ev === 'suppressed' && r.group === 'reads:mallory')
      ?.events?.split(',')
      .sort(),
  ).toEqual(['fetch', 'sync']);
  expect(said('reads:visitors@127.0.0.0/24')).toBeGreaterThan(0);
  expect(reads(/^peer:Lurker@/) + said('reads:visitors@127.0.0.0/24')).toBe(300);
}, 180_000);

test("a member flooding a host with accepted reads cannot push where its messages came from out of the host's log", async () => {
  const srv = await startServer();
  const data = almostFull();
  const host = await startPeer(srv, [], { data });
  await host.api('POST', '/api/register', { username: 'hostess', password: 'pw-hostess' });
  expect(
    (await host.api('POST', '/api/login', { username: 'hostess', password: 'pw-hostess' })).status,
  ).toBe(200);
  const ch = (await host.api('POST', '/api/channels', { name: 'open', allowVisitors: true })).body
    .id as string;

  // carol posts through the host: its `post` record says the message came from her.
  const carol = await registerLogin(srv, 'carol');
  expect((await carol.c.req('channel_join', { channelId: ch })).body?.id).toBe(ch);
  const cl = await p2pConnect(host, carol);
  expect(cl.ok).toBe(true);
  const msg = signMessage(carol.key, carol.cert, ch, 'carol', 'what carol said');
  let posted: any;
  for (let i = 0; i < 50; i++) {
    posted = await cl.c.req('post', { message: msg });
    if (posted.body) break;
    await sleep(100); // the host learns of her joining from the server
  }
  expect(posted.body?.seq).toBeGreaterThan(0);

  // mallory, no member, reads the open channel over P2P, 21,000 times.
  const mallory = await registerLogin(srv, 'mallory');
  const ml = await p2pConnect(host, mallory);
  expect(ml.ok).toBe(true);
  const read = await flood(ml.c, 21_000, (i) =>
    i % 2
      ? ['sync', { channelId: ch, since: 0, limit: 1 }]
      : ['history', { channelId: ch, limit: 1 }],
  );
  expect(read).toBe(21_000);
  cl.c.close();
  ml.c.close();
  await stop(host);

  const log = records(data);
  expect(log.find((r) => r.ev === 'post' && r.msg === msg.id)).toMatchObject({
    peer: expect.stringMatching(/^peer:carol@127\.0\.0\.1:\d+$/),
    channel: ch,
  });
  expect(log.some((r) => r.ev === 'status' && r.n === String(LOG_ROTATE_RECORDS - 21))).toBe(true);
  const kept = log.filter(
    (r) => (r.ev === 'sync' || r.ev === 'fetch') && r.peer?.startsWith('peer:mallory@'),
  ).length;
  const said = log
    .filter((r) => r.ev === 'suppressed' && r.group === 'reads:mallory')
    .reduce((n, r) => n + Number(r.suppressed), 0);
  expect(kept).toBeGreaterThan(0);
  expect(said).toBeGreaterThan(0);
  expect(kept + said).toBe(21_000);
}, 180_000);

test("a stranger at a peer's P2P port gets a bounded share of the peer's log", async () => {
  const srv = await startServer();
  const peer = await startPeer(srv);
  await peer.api('POST', '/api/register', { username: 'hostess', password: 'pw-hostess' });
  expect(
    (await peer.api('POST', '/api/login', { username: 'hostess', password: 'pw-hostess' })).status,
  ).toBe(200);

  // 300 connections to the P2P port, 20 at a time: half a TLS handshake then a frame that is no
  // hello (open + close each), half plaintext (tls_error each).
  for (let batch = 0; batch < 15; batch++) {
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        if (i % 2 === 0) {
          const s = tls.connect({
            host: '127.0.0.1',
            port: peer.p2pPort,
            rejectUnauthorized: false,
          });
          s.on('error', () => {});
          s.on('data', () => {});
          s.once('secureConnect', () => s.write(frame({ t: 'req', id: 1, op: 'history' })));
          await closed(s);
        } else {
          const s = net.connect(peer.p2pPort, '127.0.0.1');
          s.on('error', () => {});
          s.write(frame({ t: 'hello', v: 4, role: 'peer' }));
          await closed(s);
        }
      }),
    );
  }
  await sleep(200);
  await stop(peer);

  const log = records(peer.data);
  expect(log.some((r) => r.ev === 'auth' && r.peer === 'server')).toBe(true);
  const suppressed = log.filter((r) => r.ev === 'suppressed' && r.group === '127.0.0.0/24');
  expect(suppressed.length).toBeGreaterThan(0);
  const kept = log.filter(
    (r) =>
      r.ev === 'tls_error' || (['open', 'close'].includes(r.ev!) && r.peer?.startsWith('peer:-@')),
  ).length;
  const left = suppressed.reduce((n, r) => n + Number(r.suppressed), 0);
  expect(left + kept).toBeGreaterThanOrEqual(150 * 2 + 150);
  expect(kept).toBeLessThan(150 * 2 + 150);
}, 120_000);
