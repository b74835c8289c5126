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
  registerLogin,
  signMessage,
  sleep,
  startPeer,
  startServer,
  uuid7,
  type Proc,
} from './lib.js';

afterAll(killAll);

/** Every record of a data folder's connection log, the old file first. */
function records(data: string): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (const f of ['connections.log.1', 'connections.log']) {
    const file = path.join(data, f);
    if (!fs.existsSync(file)) continue;
    for (const l of fs.readFileSync(file, 'latin1').split('\n')) if (l) out.push(parseRecord(l));
  }
  return out;
}

/** Stops a process the way an operator does (SIGINT: a clean close, its log flushed). */
async function stop(p: Proc): Promise<void> {
  if (p.child.exitCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGINT');
  await exited;
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
