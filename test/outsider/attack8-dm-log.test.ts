/**
 * Attack 8: the connection log (PROTOCOL.md §6) again, through direct messages (§10). Any user
 * may leave envelopes in any device's mailbox (a device id is what `dm_devices` gives anyone;
 * sharing a channel is needed only for an address): the server writes one `dm_send` record per
 * envelope, and the receiving peer one `dm_refused` per envelope that does not decrypt (§10.6).
 * Junk costs the sender nothing but its sessions' budgets (1,000 at once and 100 a second each,
 * 10 sessions an account). SECURITY.md: a stranger (anyone who can register) MUST NOT be able to
 * erase the connection log; "one group writes at most 61 records a minute: pushing 10,000
 * earlier records out takes it over two and a half hours". Written from the documents only;
 * real processes on 127.0.0.1.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import {
  killAll,
  newKey,
  registerLogin,
  serverHello,
  signMessage,
  sleep,
  startPeer,
  startServer,
  until,
  uuid7,
  logLines,
  stopGently as stop,
} from './attack8-lib.js';
import { devicesOf, newDevice, publishBody, x25519, type Device } from './dm-lib.js';

afterAll(killAll);

const records = logLines;

/** `user`'s ten sessions, each on its own connection and bound to a device of its own. */
async function tenDevices(srv: { host: string; port: number }, user: string) {
  const first = await registerLogin(srv, user);
  const conns = [first.c];
  for (let i = 1; i < 10; i++) {
    const { c } = await serverHello(srv);
    const l = await c.req('login', {
      username: user,
      password: first.password,
      publicKey: newKey().pk,
    });
    expect(l.body?.username).toBe(user);
    conns.push(c);
  }
  const devices = conns.map(() => newDevice(1));
  for (const [i, c] of conns.entries())
    expect((await c.req('dm_publish', publishBody(devices[i]!))).body).toBeTruthy();
  return { first, conns, devices };
}

/** An envelope that opens nothing: a first message of a session, its ciphertext random. */
const junk = (from: Device, to: { username: string; deviceId: string }) => ({
  id: crypto.randomUUID(),
  to,
  body: {
    v: 1,
    prekey: { ik: from.ikPk.toString('base64url'), ek: x25519().pk.toString('base64url'), spk: 1 },
    dh: x25519().pk.toString('base64url'),
    pn: 0,
    n: 0,
    ct: crypto.randomBytes(24).toString('base64url'),
  },
});

/** Sends `n` envelopes from session `i` (to `to(i)`), within the documented budgets. */
async function sendJunk(
  c: { req(op: string, body?: unknown, ms?: number): Promise<any> },
  from: Device,
  to: { username: string; deviceId: string },
  n: number,
  until?: () => boolean,
): Promise<number> {
  let sent = 0;
  while (sent < n && !until?.()) {
    const batch = Array.from({ length: Math.min(50, n - sent) }, () => junk(from, to));
    const r = await c.req('dm_send', { envelopes: batch }, 30_000);
    if (r.error?.code === 'E_RATE_LIMITED') {
      await sleep(Math.min(r.error.retryAfterMs ?? 200, 2000));
      continue;
    }
    const ok = (r.body?.results ?? []).filter((x: any) => x.ok).length;
    if (ok < batch.length) await sleep(300);
    sent += ok;
  }
  return sent;
}

it('a user mailing junk to its own devices cannot push another user’s post out of the server’s log', async () => {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'hc-a8dm-'));
  const srv = await startServer([], { data });
  const alice = await registerLogin(srv, 'alice');
  const ch = uuid7();
  await alice.c.req('channel_create', { id: ch, name: 'audit', allowVisitors: false });
  const msg = signMessage(alice.key, alice.cert, ch, 'alice', 'what alice said');
  expect((await alice.c.req('post', { message: msg })).body?.seq).toBeGreaterThan(0);
  await until(async () => records(data).some((l) => l.includes('ev=post') && l.includes(msg.id)));

  // mallory mails her own devices: session i writes to device i+1's mailbox (10,000 room each).
  // 3,000 envelopes: unbudgeted, one dm_send record each, 10,000 rotate the log in about 10 s
  // (20,500 did twice in about 30 s). Budgeted, they write at most the account's 120 a minute and
  // a summary: rotating the log would take mallory over an hour.
  const m = await tenDevices(srv, 'mallory');
  const flood = 3_000;
  const sent = await Promise.all(
    m.conns.map((c, i) =>
      sendJunk(
        c,
        m.devices[i]!,
        { username: 'mallory', deviceId: m.devices[(i + 1) % 10]!.deviceId },
        flood / m.conns.length,
      ),
    ),
  );
  expect(sent.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(flood);
  alice.c.close();
  await stop(srv);

  const log = records(data);
  const dmSend = log.filter((l) => l.includes('ev=dm_send')).length;
  expect(
    log.some((l) => l.includes('ev=post') && l.includes(msg.id)),
    `the server's log holds ${log.length} records, ${dmSend} of them dm_send`,
  ).toBe(true);
  expect(dmSend, `${flood} envelopes wrote ${dmSend} dm_send records`).toBeLessThanOrEqual(
    120 + 10,
  );
}, 90_000);

it('a stranger’s undecryptable envelopes write a bounded number of records in the recipient peer’s log', async () => {
  const srv = await startServer();
  const alice = await startPeer(srv);
  expect(
    (await alice.api('POST', '/api/register', { username: 'alice', password: 'pw-alice-1' }))
      .status,
  ).toBe(201);
  expect(
    (await alice.api('POST', '/api/login', { username: 'alice', password: 'pw-alice-1' })).status,
  ).toBe(200);
  // mallory shares nothing with alice.
  const m = await tenDevices(srv, 'mallory');
  let target: any[] = [];
  await until(
    async () =>
      (target = await devicesOf({ c: m.first.c, username: 'mallory' }, 'alice')).length > 0,
    15_000,
  );
  const to = { username: 'alice', deviceId: target[0].deviceId };
  const theirs = () => records(alice.data).filter((l) => l.includes('from=mallory/')).length;

  // Sixty seconds of the documented budget for one address group is 61 records; give it two
  // windows' worth of slack. The flood runs 10 s (unbudgeted, 1,600 records came in 30 s).
  const end = Date.now() + 10_000;
  await Promise.all(
    m.conns.map((c, i) => sendJunk(c, m.devices[i]!, to, 1_000_000, () => Date.now() > end)),
  );
  await sleep(2000);
  const written = theirs();
  expect(
    written,
    `mallory's junk wrote ${written} records in alice's log in about 10 s (10,000 rotate it)`,
  ).toBeLessThanOrEqual(2 * 61 + 20);
}, 90_000);
