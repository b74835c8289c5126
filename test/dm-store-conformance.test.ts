/**
 * One suite, both DM stores (issue 16): devices, prekeys, mailboxes, blocks and lookups behave
 * alike on SQLite and on PostgreSQL (each PostgreSQL run in a database of its own, dropped
 * after); and on PostgreSQL two store objects (two server instances) asking at once hand out
 * each one-time prekey at most once, and keep a mailbox's cap.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DevicePublish, DmStore, MailIn } from '../src/store/dm-store.js';
import { SqliteDmStore } from '../src/store/sqlite-dm-store.js';
import { PostgresDmStore } from '../src/store/pg/pg-dm-store.js';
import { createTestDatabase } from './pg-kit.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-dm-conformance-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;

const STORES: [string, () => Promise<{ store: DmStore; done: () => Promise<void> }>][] = [
  [
    'sqlite',
    async () => {
      const d = path.join(dir, `s${n++}`);
      fs.mkdirSync(d);
      const store = new SqliteDmStore(d);
      return { store, done: () => store.close() };
    },
  ],
  [
    'postgres',
    async () => {
      const db = await createTestDatabase();
      const store = await PostgresDmStore.open(db.url);
      return {
        store,
        done: async () => {
          await store.close();
          await db.drop();
        },
      };
    },
  ],
];

const b64 = (len: number, fill: number) => Buffer.alloc(len, fill).toString('base64url');
const spk = (id = 1) => ({ id, key: b64(32, id), sig: b64(64, id) });

function device(deviceId: string, username: string, ik: number, prekeys: number[] = []) {
  return {
    deviceId,
    username,
    identityKey: b64(32, ik),
    signedPrekey: spk(),
    oneTimePrekeys: prekeys.map((id) => ({ id, key: b64(32, 100 + id) })),
  } satisfies DevicePublish;
}

const body = { v: 1 as const, dh: b64(32, 7), pn: 0, n: 0, ct: b64(48, 9) };

function mail(id: string, toDevice: string, toUser = 'Bob', fromUser = 'alice'): MailIn {
  return { id, toUser, toDevice, fromUser, fromDevice: 'A1', ts: 5, body };
}

describe.each(STORES)('DmStore conformance: %s', (_name, open) => {
  let store: DmStore;
  let done: () => Promise<void>;
  beforeEach(async () => {
    ({ store, done } = await open());
  });
  afterEach(async () => {
    await done();
  });

  it('publishes, refreshes and refuses devices; drops the longest-unseen past the cap', async () => {
    expect(await store.publish(device('B1', 'Bob', 1, [1, 2, 3]), 10, 2, 100)).toEqual({
      held: 3,
      dropped: [],
    });
    // Refresh: an id held keeps its first key; new ones are added.
    expect(await store.publish(device('B1', 'bob', 1, [3, 4]), 11, 2, 100)).toEqual({
      held: 4,
      dropped: [],
    });
    expect((await store.device('B1'))?.lastSeen).toBe(11);
    expect((await store.device('B1'))?.username).toBe('bob');
    expect(await store.publish(device('B1', 'carol', 1), 12, 2, 100)).toEqual({
      refused: 'other_user',
    });
    expect(await store.publish(device('B1', 'bob', 2), 12, 2, 100)).toEqual({
      refused: 'identity_changed',
    });
    expect(await store.publish(device('C1', 'carol', 1), 12, 2, 100)).toEqual({
      refused: 'identity_taken',
    });
    await store.publish(device('B2', 'bob', 2), 13, 2, 100);
    expect((await store.send([mail('e1', 'B1')], 10))[0]).toBeTypeOf('number');
    // A third device: B1 (seen at 11) goes, with its prekeys and mailbox.
    expect(await store.publish(device('B3', 'BOB', 3), 14, 2, 100)).toEqual({
      held: 0,
      dropped: ['B1'],
    });
    expect(await store.device('B1')).toBeUndefined();
    expect(await store.takePrekey('B1')).toBeUndefined();
    expect(await store.mail('B1', 0, 10)).toEqual([]);
    expect((await store.devicesOf('bob')).map((d) => d.deviceId)).toEqual(['B2', 'B3']);
    expect(await store.devicesOf('nobody')).toEqual([]);
    const d = await store.device('B2');
    expect(d).toEqual({
      deviceId: 'B2',
      username: 'bob',
      identityKey: b64(32, 2),
      signedPrekey: spk(),
      created: 13,
      lastSeen: 13,
    });
  });

  it('hands out prekeys oldest first, once, and keeps the newest maxHeld', async () => {
    await store.publish(device('B1', 'bob', 1, [5, 6, 7, 8]), 1, 5, 3);
    expect(await store.takePrekey('B1')).toEqual({ id: 6, key: b64(32, 106) });
    expect(await store.takePrekey('B1')).toEqual({ id: 7, key: b64(32, 107) });
    expect(await store.takePrekey('B1')).toEqual({ id: 8, key: b64(32, 108) });
    expect(await store.takePrekey('B1')).toBeUndefined();
    expect(await store.takePrekey('nope')).toBeUndefined();
  });

  it('keeps mailboxes: seqs in order, duplicates once, the cap, fetch pages and acks', async () => {
    await store.publish(device('B1', 'bob', 1), 1, 5, 10);
    await store.publish(device('B2', 'bob', 2), 1, 5, 10);
    const r = await store.send(
      [mail('e1', 'B1'), mail('e2', 'B1'), mail('e1', 'B1'), mail('e1', 'B2'), mail('e3', 'B1')],
      2,
    );
    expect(typeof r[0]).toBe('number');
    expect(r[1]! > r[0]!).toBe(true);
    expect(r.slice(2)).toEqual(['dup', expect.any(Number), 'full']);
    expect(await store.send([mail('e2', 'B1')], 2)).toEqual(['dup']);
    const box = await store.mail('B1', 0, 10);
    expect(box).toEqual([
      { seq: r[0], id: 'e1', from: { username: 'alice', deviceId: 'A1' }, ts: 5, body },
      { seq: r[1], id: 'e2', from: { username: 'alice', deviceId: 'A1' }, ts: 5, body },
    ]);
    expect(await store.mail('B1', 0, 1)).toEqual(box.slice(0, 1));
    expect(await store.mail('B1', r[0] as number, 10)).toEqual(box.slice(1));
    expect(await store.ack('B1', r[0] as number)).toBe(1);
    expect(await store.ack('B1', r[0] as number)).toBe(0);
    expect((await store.mail('B1', 0, 10)).map((m) => m.id)).toEqual(['e2']);
    expect(await store.send([], 2)).toEqual([]);
  });

  it('gives an envelope stored with respelt keys back in their canonical spelling', async () => {
    // What a server before the rule (PROTOCOL.md §1) took: a key's 43rd character, a device
    // id's 22nd, with unused bits set (the same bytes). dm_fetch's readers take only the canonical.
    const last = (s: string, c: string) => s.slice(0, -1) + c;
    const dh = b64(32, 7); // ...Bw: 2 unused bits
    const ik = b64(32, 3);
    const from = b64(16, 1); // ...AQ: 4 unused bits
    expect([dh.at(-1), ik.at(-1), from.at(-1)]).toEqual(['c', 'M', 'Q']);
    const stored = {
      v: 1 as const,
      prekey: { ik: last(ik, 'P'), ek: last(dh, 'f'), spk: 1 },
      dh: last(dh, 'd'),
      pn: 0,
      n: 0,
      ct: b64(48, 9),
    };
    await store.publish(device('B1', 'bob', 1), 1, 5, 10);
    await store.send([{ ...mail('e1', 'B1'), fromDevice: last(from, 'R'), body: stored }], 5);
    const [m] = await store.mail('B1', 0, 10);
    expect(m!.from.deviceId).toBe(from);
    expect(m!.body).toEqual({ ...stored, prekey: { ik, ek: dh, spk: 1 }, dh });
  });

  it('blocks: a cap, no duplicates, drops what the blocked left, and unblocks', async () => {
    await store.publish(device('B1', 'bob', 1), 1, 5, 10);
    await store.send([mail('e1', 'B1', 'bob', 'Mallory'), mail('e2', 'B1', 'bob', 'alice')], 10);
    expect(await store.setBlocked('Bob', 'mallory', true, 2)).toBe(true);
    expect((await store.mail('B1', 0, 10)).map((m) => m.id)).toEqual(['e2']);
    expect(await store.setBlocked('bob', 'Mallory', true, 2)).toBe(true);
    expect(await store.setBlocked('bob', 'zed', true, 2)).toBe(true);
    expect(await store.setBlocked('bob', 'eve', true, 2)).toBe(false);
    expect(await store.blocks('BOB')).toEqual(['mallory', 'zed']);
    expect(await store.isBlocked('bob', 'MALLORY')).toBe(true);
    expect(await store.isBlocked('mallory', 'bob')).toBe(false);
    expect(await store.setBlocked('bob', 'MALLORY', false, 2)).toBe(true);
    expect(await store.blocks('bob')).toEqual(['zed']);
    expect(await store.isBlocked('bob', 'mallory')).toBe(false);
  });

  it('records lookups, case-blind', async () => {
    expect(await store.hasLookedUp('alice', 'bob')).toBe(false);
    await store.recordLookup('Alice', 'Bob');
    await store.recordLookup('alice', 'bob');
    expect(await store.hasLookedUp('ALICE', 'bob')).toBe(true);
    expect(await store.hasLookedUp('bob', 'alice')).toBe(false);
  });

  it('binds sessions to devices: the newest instance holds a binding, only it forgets it', async () => {
    expect(await store.boundSessions('B1')).toEqual([]);
    await store.bind('B1', 's2', 'i1');
    await store.bind('B1', 's1', 'i1');
    await store.bind('B2', 's3', 'i1');
    expect(await store.boundSessions('B1')).toEqual(['s1', 's2']);
    // s1 moved to instance i2; the old instance's late unbind leaves the new binding alone.
    await store.bind('B1', 's1', 'i2');
    await store.unbind('B1', 's1', 'i1');
    expect(await store.boundSessions('B1')).toEqual(['s1', 's2']);
    await store.unbind('B1', 's1', 'i2');
    expect(await store.boundSessions('B1')).toEqual(['s2']);
    expect(await store.boundSessions('B2')).toEqual(['s3']);
  });
});

describe('PostgresDmStore: two instances at once', () => {
  let url: string;
  let drop: () => Promise<void>;
  let stores: PostgresDmStore[] = [];
  beforeEach(async () => {
    ({ url, drop } = await createTestDatabase());
    stores = await Promise.all([PostgresDmStore.open(url), PostgresDmStore.open(url)]);
  });
  afterEach(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await drop();
  });

  it('hands out each one-time prekey at most once, and every one while any is left', async () => {
    const [a, b] = stores as [PostgresDmStore, PostgresDmStore];
    const ids = Array.from({ length: 40 }, (_, i) => i + 1);
    await a.publish(device('B1', 'bob', 1, ids), 1, 5, 100);
    const asks = Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).takePrekey('B1'));
    const got = (await Promise.all(asks)).flatMap((k) => (k ? [k.id] : []));
    expect(got.length).toBe(40);
    expect(new Set(got).size).toBe(40);
  });

  it('keeps a mailbox’s cap, and its seqs in the order they commit', async () => {
    const [a, b] = stores as [PostgresDmStore, PostgresDmStore];
    await a.publish(device('B1', 'bob', 1), 1, 5, 10);
    const sends = Array.from({ length: 30 }, (_, i) =>
      (i % 2 ? a : b).send([mail(`e${i}`, 'B1')], 20),
    );
    const r = (await Promise.all(sends)).map((x) => x[0]);
    expect(r.filter((x) => x === 'full').length).toBe(10);
    expect((await a.mail('B1', 0, 100)).length).toBe(20);
  });
});
