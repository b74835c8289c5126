/**
 * Direct messages at the server (docs/PROTOCOL.md §10.1, §10.2), played from the hostile side: a
 * real `hchat server` process spoken to with raw framed TLS clients (test/outsider/lib.ts), keys
 * made here with node:crypto. Nothing of the server's own code signs or encodes for the client.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { DM_LIMITS } from '../src/shared/limits.js';
import {
  b64u,
  killAll,
  names,
  newKey,
  registerLogin,
  serverHello,
  sharedServer,
  sleep,
  startServer,
  uuid7,
} from './outsider/lib.js';
import { newKeyPair } from '../src/shared/keygen.js';

afterEach(killAll);

type Server = Awaited<ReturnType<typeof startServer>>;
type Client = Awaited<ReturnType<typeof registerLogin>>;

const SRV = ['--max-registrations-per-address', '1000'];

/**
 * The server the tests share that neither restart it, change its mailbox size nor read its whole
 * log: each names its users with a suffix of its own (`names`), so none meets another's devices,
 * mailboxes, blocks or budgets. A visitor's per-address budget is raised as they add up.
 */
const server = sharedServer([...SRV, '--max-visitors-per-address', '1000']);
afterAll(server.end);
const SPK_CONTEXT = Buffer.from('hchat-dm-spk-v1');

/** A device's keys, made the way PROTOCOL.md §10.1 says. */
function newDevice() {
  const ik = newKeyPair('ed25519');
  const x = () => {
    const k = newKeyPair('x25519');
    return Buffer.from((k.publicKey.export({ format: 'jwk' }) as { x: string }).x, 'base64url');
  };
  const spk = x();
  return {
    deviceId: b64u(crypto.randomBytes(16)),
    ik,
    identityKey: (ik.publicKey.export({ format: 'jwk' }) as { x: string }).x,
    spk: {
      id: 1,
      key: b64u(spk),
      sig: b64u(crypto.sign(null, Buffer.concat([SPK_CONTEXT, spk]), ik.privateKey)),
    },
    /** `n` one-time prekeys with ids from `from`. */
    otks: (n: number, from = 0) =>
      Array.from({ length: n }, (_, i) => ({ id: from + i, key: b64u(x()) })),
  };
}
type Dev = ReturnType<typeof newDevice>;

function publishBody(d: Dev, oneTimePrekeys: Array<{ id: number; key: string }> = []) {
  return {
    deviceId: d.deviceId,
    identityKey: d.identityKey,
    signedPrekey: d.spk,
    oneTimePrekeys,
  };
}

/** A logged-in user with a published device. */
async function userWithDevice(srv: Server, name: string, otks = 0) {
  const u = await registerLogin(srv, name);
  const dev = newDevice();
  const r = await u.c.req('dm_publish', publishBody(dev, dev.otks(otks)));
  expect(r.body).toEqual({ oneTimePrekeys: otks });
  return { ...u, dev };
}

function cipher(ct = b64u(crypto.randomBytes(64))) {
  return { v: 1, dh: b64u(crypto.randomBytes(32)), pn: 0, n: 0, ct };
}

function envelopeTo(u: { username: string; dev: Dev }, ct?: string) {
  return {
    id: crypto.randomUUID(),
    to: { username: u.username, deviceId: u.dev.deviceId },
    body: cipher(ct),
  };
}

async function online(u: Client, port: number, status: 'online' | 'invisible' = 'online') {
  const r = await u.c.req('submit_info', { ip: '127.0.0.1', port, udpPort: port, status });
  expect(r.body?.entry?.status).toBe(status);
}

async function devicesOf(asker: Client, username: string) {
  const r = await asker.c.req('dm_devices', { usernames: [username] });
  expect(r.error).toBeUndefined();
  return r.body.users as Array<{
    username: string;
    devices: Array<{ deviceId: string; entry?: any }>;
  }>;
}

describe('devices and prekeys (§10.1)', () => {
  test('a visitor is refused every DM operation, and a connection without a session too', async () => {
    const srv = await server.get();
    const n = names();
    const bob = await userWithDevice(srv, n('bob'), 5);
    const { c } = await serverHello(srv);
    const dev = newDevice();
    const bodies: Record<string, unknown> = {
      dm_publish: publishBody(dev, dev.otks(3)),
      dm_devices: { usernames: [n('bob')] },
      dm_bundles: { devices: [{ username: n('bob'), deviceId: bob.dev.deviceId }] },
      dm_send: { envelopes: [envelopeTo(bob)] },
      dm_fetch: {},
      dm_ack: { upTo: 1 },
      dm_block: { username: n('bob'), blocked: true },
      dm_blocks: {},
    };
    for (const [op, body] of Object.entries(bodies))
      expect((await c.req(op, body)).error?.code, op).toBe('E_AUTH_REQUIRED');
    expect((await c.req('visitor', { name: n('vic'), publicKey: newKey().pk })).body).toBeTruthy();
    for (const [op, body] of Object.entries(bodies))
      expect((await c.req(op, body)).error?.code, op).toBe('E_VISITOR_READ_ONLY');
    // Nothing was spent or stored: bob's prekeys are all there, his mailbox is empty.
    expect((await bob.c.req('dm_publish', publishBody(bob.dev))).body).toEqual({
      oneTimePrekeys: 5,
    });
    expect((await bob.c.req('dm_fetch', {})).body).toEqual({ envelopes: [], more: false });
  });

  test('a bad prekey signature, a changed identity key and another user’s device id are refused', async () => {
    const srv = await server.get();
    const n = names();
    const alice = await registerLogin(srv, n('alice'));
    const dev = newDevice();
    const forged = {
      ...publishBody(dev),
      signedPrekey: { ...dev.spk, key: b64u(crypto.randomBytes(32)) },
    };
    const bad = await alice.c.req('dm_publish', forged);
    expect(bad.error?.code).toBe('E_BAD_SIGNATURE');
    // Signed by another key than the identity key it names.
    const other = newDevice();
    const swapped = { ...publishBody(dev), signedPrekey: other.spk };
    expect((await alice.c.req('dm_publish', swapped)).error?.code).toBe('E_BAD_SIGNATURE');
    expect((await alice.c.req('dm_publish', publishBody(dev))).body).toEqual({ oneTimePrekeys: 0 });
    // The same device id with another identity key (validly self-signed): never.
    const thief = newDevice();
    const changed = { ...publishBody(thief), deviceId: dev.deviceId };
    const r = await alice.c.req('dm_publish', changed);
    expect(r.error?.code).toBe('E_FORBIDDEN');
    expect(r.error?.message).toMatch(/identity key never changes/);
    // Another user claiming alice's device id, with her keys or its own: never.
    const mallory = await registerLogin(srv, n('mallory'));
    expect((await mallory.c.req('dm_publish', publishBody(dev))).error?.code).toBe('E_FORBIDDEN');
    expect((await mallory.c.req('dm_publish', changed)).error?.code).toBe('E_FORBIDDEN');
    // Nor alice's identity key (and her signed prekey) under a device id of mallory's own.
    const copy = await mallory.c.req('dm_publish', {
      ...publishBody(dev),
      deviceId: b64u(crypto.randomBytes(16)),
    });
    expect(copy.error?.code).toBe('E_FORBIDDEN');
    expect(copy.error?.message).toMatch(/identity key/);
    expect(await devicesOf(mallory, n('mallory'))).toEqual([
      { username: n('mallory'), devices: [] },
    ]);
    const listed = await devicesOf(mallory, n('alice'));
    expect(listed).toEqual([
      { username: n('alice'), devices: [{ deviceId: dev.deviceId, identityKey: dev.identityKey }] },
    ]);
  });

  test('one-time prekeys: first key of an id wins, at most 200 held (oldest dropped first)', async () => {
    const srv = await server.get();
    const n = names();
    const bob = await userWithDevice(srv, n('bob'));
    const first = bob.dev.otks(100, 0);
    expect((await bob.c.req('dm_publish', publishBody(bob.dev, first))).body.oneTimePrekeys).toBe(
      100,
    );
    // Same ids with other keys replace nothing; 50 new ones are added.
    const again = [...bob.dev.otks(50, 0), ...bob.dev.otks(50, 100)];
    expect((await bob.c.req('dm_publish', publishBody(bob.dev, again))).body.oneTimePrekeys).toBe(
      150,
    );
    expect(
      (await bob.c.req('dm_publish', publishBody(bob.dev, bob.dev.otks(100, 150)))).body
        .oneTimePrekeys,
    ).toBe(200);
    const alice = await registerLogin(srv, n('alice'));
    const addr = { username: n('bob'), deviceId: bob.dev.deviceId };
    const b = await alice.c.req('dm_bundles', { devices: [addr] });
    // ids 0–49 were the oldest: dropped to stay at 200; id 50 is now the oldest, with its first key.
    expect(b.body.bundles[0].oneTimePrekey).toEqual(first[50]);
    expect(b.body.bundles[0]).toMatchObject({
      ...addr,
      identityKey: bob.dev.identityKey,
      signedPrekey: bob.dev.spk,
    });
    // Unknown devices, and devices named under the wrong user, are left out.
    const none = await alice.c.req('dm_bundles', {
      devices: [
        { username: n('alice'), deviceId: bob.dev.deviceId },
        { username: n('bob'), deviceId: b64u(crypto.randomBytes(16)) },
      ],
    });
    expect(none.body).toEqual({ bundles: [] });
  });

  test('a one-time prekey is handed out exactly once, however many ask at once', async () => {
    const srv = await server.get();
    const n = names();
    const bob = await userWithDevice(srv, n('bob'), 20);
    const addr = { username: n('bob'), deviceId: bob.dev.deviceId };
    const askers: Client[] = [];
    for (let i = 0; i < 8; i++) askers.push(await registerLogin(srv, n(`asker${i}`)));
    // Every asker fires 4 requests at once, each naming bob's device twice.
    const answers = await Promise.all(
      askers.flatMap((a) =>
        Array.from({ length: 4 }, () => a.c.req('dm_bundles', { devices: [addr, addr] })),
      ),
    );
    const handed = answers.flatMap((r) =>
      r.body.bundles.map((b: any) => b.oneTimePrekey).filter(Boolean),
    );
    const ids = handed.map((k: any) => k.id);
    expect(new Set(ids).size).toBe(ids.length); // never the same one twice
    expect(ids.sort((a: number, b: number) => a - b)).toEqual([...Array(20).keys()]); // all of them, once
    expect((await bob.c.req('dm_publish', publishBody(bob.dev))).body.oneTimePrekeys).toBe(0);
  });

  test('one user cannot drain a device: past a few, its bundles come without a one-time prekey', async () => {
    const srv = await server.get();
    const n = names();
    const bob = await userWithDevice(srv, n('bob'), 100);
    const mallory = await registerLogin(srv, n('mallory'));
    const addr = { username: n('bob'), deviceId: bob.dev.deviceId };
    const r = await mallory.c.req('dm_bundles', { devices: Array(20).fill(addr) });
    const got = r.body.bundles.filter((b: any) => b.oneTimePrekey).length;
    expect(r.body.bundles).toHaveLength(20);
    expect(got).toBeLessThanOrEqual(3);
    let asked = 20;
    for (;;) {
      const more = await mallory.c.req('dm_bundles', { devices: Array(20).fill(addr) });
      if (more.error) {
        expect(more.error.code).toBe('E_RATE_LIMITED');
        expect(more.error.retryAfterMs).toBeGreaterThan(0);
        break;
      }
      asked += 20;
      expect(more.body.bundles.filter((b: any) => b.oneTimePrekey)).toEqual([]);
    }
    expect(asked).toBeLessThanOrEqual(140);
    expect((await bob.c.req('dm_publish', publishBody(bob.dev))).body.oneTimePrekeys).toBe(
      100 - got,
    );
  });

  test('an eleventh device drops the longest-unseen other one, with its mailbox', async () => {
    const srv = await server.get();
    const n = names();
    const alice = await userWithDevice(srv, n('alice'));
    const bob = await registerLogin(srv, n('bob'));
    const devs = [newDevice()];
    expect((await bob.c.req('dm_publish', publishBody(devs[0]!))).body).toBeTruthy();
    const first = { username: n('bob'), dev: devs[0]! };
    expect(
      (await alice.c.req('dm_send', { envelopes: [envelopeTo(first)] })).body.results[0].ok,
    ).toBe(true);
    for (let i = 1; i < 10; i++) {
      devs.push(newDevice());
      await sleep(2);
      expect((await bob.c.req('dm_publish', publishBody(devs[i]!))).error).toBeUndefined();
    }
    expect((await devicesOf(alice, n('bob')))[0]!.devices).toHaveLength(10);
    // The first is refreshed (seen now): the second is the longest unseen.
    const bobAgain = await serverHello(srv);
    await bobAgain.c.req('login', {
      username: n('bob'),
      password: bob.password,
      publicKey: newKey().pk,
    });
    expect((await bobAgain.c.req('dm_publish', publishBody(devs[0]!))).error).toBeUndefined();
    const eleventh = newDevice();
    expect((await bob.c.req('dm_publish', publishBody(eleventh))).error).toBeUndefined();
    const now = (await devicesOf(alice, n('bob')))[0]!.devices.map((d) => d.deviceId);
    expect(now).toHaveLength(10);
    expect(now).toContain(devs[0]!.deviceId);
    expect(now).not.toContain(devs[1]!.deviceId);
    expect(now).toContain(eleventh.deviceId);
    // The dropped device's mailbox went with it; the kept one still has its envelope.
    expect((await bobAgain.c.req('dm_fetch', {})).body.envelopes).toHaveLength(1);
    const gone = await alice.c.req('dm_send', {
      envelopes: [envelopeTo({ username: n('bob'), dev: devs[1]! })],
    });
    expect(gone.body.results[0].error.code).toBe('E_NOT_FOUND');
  });
});

describe('the mailbox (§10.2)', () => {
  test('`from` is the sending session’s user and device, whatever the request says', async () => {
    const srv = await server.get();
    const n = names();
    const alice = await userWithDevice(srv, n('alice'));
    const bob = await userWithDevice(srv, n('bob'));
    const mallory = await userWithDevice(srv, n('mallory'));
    const env = {
      ...envelopeTo(bob),
      from: { username: n('alice'), deviceId: alice.dev.deviceId },
    };
    const r = await mallory.c.req('dm_send', {
      envelopes: [env],
      from: { username: n('alice'), deviceId: alice.dev.deviceId },
      fromDevice: alice.dev.deviceId,
    });
    expect(r.body.results).toEqual([{ id: env.id, ok: true }]);
    const got = (await bob.c.req('dm_fetch', {})).body.envelopes;
    expect(got).toHaveLength(1);
    expect(got[0].from).toEqual({ username: n('mallory'), deviceId: mallory.dev.deviceId });
    expect(got[0].body).toEqual(env.body);
  });

  test('sending needs a published device; unknown devices are refused per envelope', async () => {
    const srv = await server.get();
    const n = names();
    const bob = await userWithDevice(srv, n('bob'));
    const alice = await registerLogin(srv, n('alice'));
    const r = await alice.c.req('dm_send', { envelopes: [envelopeTo(bob)] });
    expect(r.error?.code).toBe('E_BAD_REQUEST');
    expect(r.error?.message).toMatch(/publish your device first \(dm_publish\)/);
    expect((await alice.c.req('dm_fetch', {})).error?.code).toBe('E_BAD_REQUEST');
    expect((await alice.c.req('dm_ack', { upTo: 10 })).error?.code).toBe('E_BAD_REQUEST');
    await alice.c.req('dm_publish', publishBody(newDevice()));
    const good = envelopeTo(bob);
    const unknown = envelopeTo({ username: n('bob'), dev: newDevice() });
    const wrongUser = envelopeTo({ username: n('alice'), dev: bob.dev });
    const res = await alice.c.req('dm_send', { envelopes: [good, unknown, wrongUser] });
    expect(res.body.results[0]).toEqual({ id: good.id, ok: true });
    expect(res.body.results[1].error.code).toBe('E_NOT_FOUND');
    expect(res.body.results[2].error.code).toBe('E_NOT_FOUND');
    expect((await bob.c.req('dm_fetch', {})).body.envelopes.map((e: any) => e.id)).toEqual([
      good.id,
    ]);
  });

  test('an oversize ciphertext is refused with a message naming `ct`', async () => {
    const srv = await server.get();
    const n = names();
    const bob = await userWithDevice(srv, n('bob'));
    const alice = await userWithDevice(srv, n('alice'));
    const r = await alice.c.req('dm_send', {
      envelopes: [envelopeTo(bob, 'A'.repeat(DM_LIMITS.maxCipherChars + 1))],
    });
    expect(r.error?.code).toBe('E_BAD_REQUEST');
    expect(r.error?.message).toMatch(/\bct\b/);
    const fits = await alice.c.req('dm_send', {
      envelopes: [envelopeTo(bob, 'A'.repeat(DM_LIMITS.maxCipherChars))],
    });
    expect(fits.body.results[0].ok).toBe(true);
  });

  test('nobody fetches or acks another device’s mailbox', async () => {
    const srv = await server.get();
    const n = names();
    const bob = await userWithDevice(srv, n('bob'));
    const alice = await userWithDevice(srv, n('alice'));
    const mallory = await userWithDevice(srv, n('mallory'));
    for (let i = 0; i < 3; i++) await alice.c.req('dm_send', { envelopes: [envelopeTo(bob)] });
    expect((await mallory.c.req('dm_fetch', {})).body).toEqual({ envelopes: [], more: false });
    expect((await mallory.c.req('dm_ack', { upTo: 1_000_000 })).body).toEqual({});
    // Binding to bob's device is impossible (it is bob's, and its identity key is his).
    expect((await mallory.c.req('dm_publish', publishBody(bob.dev))).error?.code).toBe(
      'E_FORBIDDEN',
    );
    expect((await mallory.c.req('dm_fetch', {})).body.envelopes).toEqual([]);
    const mine = (await bob.c.req('dm_fetch', {})).body.envelopes;
    expect(mine).toHaveLength(3);
    // bob's own ack drops up to the seq it names, no further.
    await bob.c.req('dm_ack', { upTo: mine[1].seq });
    expect((await bob.c.req('dm_fetch', {})).body.envelopes.map((e: any) => e.seq)).toEqual([
      mine[2].seq,
    ]);
    expect((await bob.c.req('dm_fetch', { after: mine[2].seq })).body.envelopes).toEqual([]);
  });

  test('a full mailbox refuses more (E_QUOTA_EXCEEDED); a repeated envelope is one row', async () => {
    const srv = await startServer([...SRV, '--dm-mailbox', '5']);
    const bob = await userWithDevice(srv, 'bob');
    const alice = await userWithDevice(srv, 'alice');
    const envs = Array.from({ length: 7 }, () => envelopeTo(bob));
    const r = await alice.c.req('dm_send', { envelopes: [...envs.slice(0, 3), envs[0], envs[1]] });
    expect(r.body.results.every((x: any) => x.ok)).toBe(true);
    const r2 = await alice.c.req('dm_send', { envelopes: envs.slice(2) });
    expect(r2.body.results.map((x: any) => x.ok ?? x.error.code)).toEqual([
      true, // a retry of a stored one
      true,
      true,
      'E_QUOTA_EXCEEDED',
      'E_QUOTA_EXCEEDED',
    ]);
    const got = (await bob.c.req('dm_fetch', {})).body.envelopes;
    expect(got.map((e: any) => e.id)).toEqual(envs.slice(0, 5).map((e) => e.id));
    await bob.c.req('dm_ack', { upTo: got[1].seq });
    const r3 = await alice.c.req('dm_send', { envelopes: envs.slice(5) });
    expect(r3.body.results.every((x: any) => x.ok)).toBe(true);
  });

  test('a fetch is cut to the receiver’s frame and says there is more', async () => {
    const srv = await server.get();
    const n = names();
    const alice = await userWithDevice(srv, n('alice'));
    const small = await serverHello(srv, 64 * 1024);
    await small.c.req('register', { username: n('bob'), password: 'pw-bob' });
    await small.c.req('login', { username: n('bob'), password: 'pw-bob', publicKey: newKey().pk });
    const dev = newDevice();
    await small.c.req('dm_publish', publishBody(dev));
    const bob = { username: n('bob'), dev };
    const envs = Array.from({ length: 6 }, () => envelopeTo(bob, b64u(crypto.randomBytes(24_000))));
    await alice.c.req('dm_send', { envelopes: envs });
    const seen: string[] = [];
    let after = 0;
    let pages = 0;
    for (;;) {
      const r = await small.c.req('dm_fetch', { after });
      pages++;
      seen.push(...r.body.envelopes.map((e: any) => e.id));
      if (!r.body.more) break;
      after = r.body.envelopes.at(-1).seq;
    }
    expect(seen).toEqual(envs.map((e) => e.id));
    expect(pages).toBeGreaterThan(2);
  });

  test('a blocked sender’s envelopes vanish, its bundles are anyone’s (nothing tells it is blocked), and it is not told', async () => {
    const srv = await server.get();
    const n = names();
    const bob = await userWithDevice(srv, n('bob'), 10);
    const mallory = await userWithDevice(srv, n('mallory'));
    const early = envelopeTo(bob);
    await mallory.c.req('dm_send', { envelopes: [early] });
    expect((await bob.c.req('dm_block', { username: n('bob'), blocked: true })).error?.code).toBe(
      'E_BAD_REQUEST',
    );
    expect((await bob.c.req('dm_block', { username: 'nobody', blocked: true })).error?.code).toBe(
      'E_NOT_FOUND',
    );
    expect((await bob.c.req('dm_block', { username: n('MALLORY'), blocked: true })).body).toEqual({
      blocked: [n('mallory')],
    });
    expect((await bob.c.req('dm_blocks', {})).body).toEqual({ blocked: [n('mallory')] });
    const late = envelopeTo(bob);
    expect((await mallory.c.req('dm_send', { envelopes: [late] })).body.results).toEqual([
      { id: late.id, ok: true },
    ]);
    // Neither what was waiting nor what came after reaches bob.
    expect((await bob.c.req('dm_fetch', {})).body.envelopes).toEqual([]);
    const b = await mallory.c.req('dm_bundles', {
      devices: [{ username: n('bob'), deviceId: bob.dev.deviceId }],
    });
    // A bundle as anyone gets it (the per-pair budget bounds what a blocked user can spend).
    expect(b.body.bundles[0].oneTimePrekey).toBeDefined();
    expect((await bob.c.req('dm_publish', publishBody(bob.dev))).body.oneTimePrekeys).toBe(9);
    // Unblocked: envelopes reach bob again.
    expect((await bob.c.req('dm_block', { username: n('mallory'), blocked: false })).body).toEqual({
      blocked: [],
    });
    const after = envelopeTo(bob);
    await mallory.c.req('dm_send', { envelopes: [after] });
    expect((await bob.c.req('dm_fetch', {})).body.envelopes.map((e: any) => e.id)).toEqual([
      after.id,
    ]);
  });

  test('an envelope is pushed (`dm`) to the connections of its online device', async () => {
    const srv = await server.get();
    const n = names();
    const bob = await userWithDevice(srv, n('bob'));
    const alice = await userWithDevice(srv, n('alice'));
    // bob's second device, on another connection: it hears nothing of the first one's mail.
    const other = await serverHello(srv);
    await other.c.req('login', {
      username: n('bob'),
      password: bob.password,
      publicKey: newKey().pk,
    });
    await other.c.req('dm_publish', publishBody(newDevice()));
    const env = envelopeTo(bob);
    const pushed = new Promise<any>((resolve) => {
      bob.c.onEvent = (f) => f.ev === 'dm' && resolve(f.body);
    });
    const r = await alice.c.req('dm_send', { envelopes: [env] });
    expect(r.body.results[0].ok).toBe(true);
    const body = await pushed;
    expect(body).toMatchObject({
      id: env.id,
      from: { username: n('alice'), deviceId: alice.dev.deviceId },
      body: env.body,
    });
    expect(body.seq).toBeGreaterThan(0);
    expect(Math.abs(body.ts - Date.now())).toBeLessThan(5000);
    await sleep(200);
    expect(other.c.events.filter((e: any) => e.ev === 'dm')).toEqual([]);
    expect(alice.c.events.filter((e: any) => e.ev === 'dm')).toEqual([]);
  });

  test('a SIGKILL of the server between send and fetch loses nothing', async () => {
    const srv = await startServer(SRV);
    const alice = await userWithDevice(srv, 'alice');
    const bob = await userWithDevice(srv, 'bob');
    const envs = Array.from({ length: 20 }, () => envelopeTo(bob));
    for (let i = 0; i < envs.length; i += 5) {
      const r = await alice.c.req('dm_send', { envelopes: envs.slice(i, i + 5) });
      expect(r.body.results.every((x: any) => x.ok)).toBe(true);
    }
    await srv.kill(); // SIGKILL, right after the last answer
    const again = await startServer(SRV, { data: srv.data });
    const { c } = await serverHello(again);
    expect((await c.req('resume', { token: bob.token })).body?.username).toBe('bob');
    expect((await c.req('dm_publish', publishBody(bob.dev))).error).toBeUndefined();
    const got = (await c.req('dm_fetch', {})).body;
    expect(got.envelopes.map((e: any) => e.id)).toEqual(envs.map((e) => e.id));
    expect(got.envelopes.every((e: any) => e.from.username === 'alice')).toBe(true);
  });
});

describe('who may see a device’s address (§10.1 dm_devices)', () => {
  test('a stranger gets no entry until the target looked it up; never when invisible or blocked', async () => {
    const srv = await server.get();
    const n = names();
    const alice = await userWithDevice(srv, n('alice'));
    const bob = await userWithDevice(srv, n('bob'));
    await online(bob, 40001);
    await online(alice, 40002);
    const entryOfBob = async () => (await devicesOf(alice, n('bob')))[0]!.devices[0]!.entry;
    expect(await devicesOf(alice, n('bob'))).toEqual([
      {
        username: n('bob'),
        devices: [{ deviceId: bob.dev.deviceId, identityKey: bob.dev.identityKey }],
      },
    ]);
    // Unknown users are left out; alice sees her own device with its entry.
    const mine = await alice.c.req('dm_devices', { usernames: ['nobody', n('Alice')] });
    expect(mine.body.users).toHaveLength(1);
    expect(mine.body.users[0].devices[0].entry).toMatchObject({
      username: n('alice'),
      port: 40002,
    });
    // bob looks alice up: from then on alice may see where bob is (he is talking to her). alice
    // asked for bob first, so bob sees her at once.
    expect((await devicesOf(bob, n('alice')))[0]!.devices[0]!.entry).toMatchObject({ port: 40002 });
    expect(await entryOfBob()).toMatchObject({
      username: n('bob'),
      ip: '127.0.0.1',
      port: 40001,
      status: 'online',
    });
    // Invisible: no entry for anyone else; bob's own devices still show it to him.
    expect((await bob.c.req('set_status', { status: 'invisible' })).body.status).toBe('invisible');
    expect(await entryOfBob()).toBeUndefined();
    expect((await devicesOf(bob, n('bob')))[0]!.devices[0]!.entry).toMatchObject({
      status: 'invisible',
    });
    await bob.c.req('set_status', { status: 'online' });
    expect(await entryOfBob()).toBeDefined();
    // A user who blocks the asker is never located by it.
    await bob.c.req('dm_block', { username: n('alice'), blocked: true });
    expect(await entryOfBob()).toBeUndefined();
  });

  test('a co-member sees the entry without any lookup (the tracker’s rule)', async () => {
    const srv = await server.get();
    const n = names();
    const bob = await userWithDevice(srv, n('bob'));
    const carol = await userWithDevice(srv, n('carol'));
    const dave = await userWithDevice(srv, n('dave'));
    await online(bob, 40011);
    const ch = await carol.c.req('channel_create', {
      id: uuid7(),
      name: 'club',
      allowVisitors: false,
    });
    expect((await bob.c.req('channel_join', { channelId: ch.body.id })).error).toBeUndefined();
    expect((await devicesOf(carol, n('bob')))[0]!.devices[0]!.entry).toMatchObject({ port: 40011 });
    expect((await devicesOf(dave, n('bob')))[0]!.devices[0]!.entry).toBeUndefined();
  });
});

test('the connection log records DM operations by sizes and ids, never contents', async () => {
  const srv = await startServer(SRV);
  const alice = await userWithDevice(srv, 'alice');
  const bob = await userWithDevice(srv, 'bob');
  const secret = b64u(Buffer.from('the ciphertext must never be logged, not even once'));
  const env = envelopeTo(bob, secret);
  await alice.c.req('dm_send', { envelopes: [env] });
  const got = (await bob.c.req('dm_fetch', {})).body.envelopes;
  await bob.c.req('dm_ack', { upTo: got[0].seq });
  await sleep(100);
  const log = fs.readFileSync(path.join(srv.data, 'connections.log'), 'utf8');
  const lines = log.split('\n');
  const line = (ev: string) => lines.find((l) => l.includes(` ev=${ev} `)) ?? '';
  expect(line('dm_publish')).toMatch(
    / peer=peer:alice@127\.0\.0\.1:\d+ device=\S+ prekeys=0 held=0/,
  );
  expect(line('dm_send')).toContain(`from=alice/${alice.dev.deviceId}`);
  expect(line('dm_send')).toContain(`to=bob/${bob.dev.deviceId}`);
  expect(line('dm_send')).toContain(`env=${env.id}`);
  expect(line('dm_send')).toMatch(/ bytes=\d+/);
  expect(line('dm_fetch')).toContain('count=1');
  expect(line('dm_ack')).toContain(`upTo=${got[0].seq}`);
  expect(log).not.toContain(secret);
  expect(log).not.toContain(env.body.dh);
});
