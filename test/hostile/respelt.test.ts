/**
 * One spelling for one string of bytes (PROTOCOL.md §1): a base64url member of fixed length whose
 * last character has unused bits (an Ed25519 signature's 86th character carries 2 bits of the
 * signature and 4 unused ones) has 4 or 16 spellings that a lenient decoder reads as the same
 * bytes. Only the canonical one, with the unused bits zero, is taken: written from the protocol
 * document, the hostile side sends the others.
 */
import fc from 'fast-check';
import path from 'node:path';
import Database from 'better-sqlite3';
import { v7 as uuidv7 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { createTestnet, rawHostLink, rawSession, signIn, waitFor } from '../testnet.js';
import { sign } from './kit.js';
import { newSessionKeys } from '../../src/shared/signing.js';
import { newKeyPair } from '../../src/shared/keygen.js';
import crypto from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** `s` with its last character's unused bits (`unused` of them) set to `bits` (not 0). */
function respelt(s: string, unused: number, bits: number): string {
  const v = ALPHABET.indexOf(s.at(-1)!);
  return s.slice(0, -1) + ALPHABET[(v & ~((1 << unused) - 1)) | bits];
}

describe('base64url members are taken in their canonical spelling only', () => {
  it('the same bytes are the same bytes however respelt (what makes a respelling dangerous)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        fc.integer({ min: 1, max: 15 }),
        (bytes, bits) => {
          const s = Buffer.from(bytes).toString('base64url');
          const other = respelt(s, 4, bits);
          expect(other).not.toBe(s);
          expect(Buffer.from(other, 'base64url').equals(Buffer.from(bytes))).toBe(true);
        },
      ),
    );
  });

  it('the server and a host refuse a post whose signature is respelt, naming sig; the canonical one is taken', async () => {
    const net = await createTestnet({ peers: 1 });
    const alice = net.peers[0]!;
    await signIn(alice, 'alice');
    const ch = (await alice.call('POST', '/api/channels', { name: 'hosted', allowVisitors: false }))
      .body.id as string;
    const raw = await net.rawLink();
    await raw.request('register', { username: 'bob', password: 'bob-pw-1' });
    const bob = await rawSession(raw, { username: 'bob', password: 'bob-pw-1' });
    await raw.request('channel_join', { channelId: ch });
    await waitFor(() => alice.node.store.isMember(ch, 'bob'));
    // A channel the server holds (bob's own, with no host online for it).
    const own = (
      await raw.request('channel_create', { id: uuidv7(), name: 'bobs', allowVisitors: false })
    ).id;
    const entry = (await raw.request('get_list', {})).peers.find((e) => e.username === 'alice')!;
    const host = rawHostLink(entry, bob);
    await host.start();

    for (const [where, channelId, send] of [
      ['server', own, (message: unknown) => raw.request('post', { message } as never)],
      ['host', ch, (message: unknown) => host.request('post', { message } as never)],
    ] as const) {
      for (let bits = 1; bits < 16; bits++) {
        const good = sign(bob, { channelId, text: `respelt ${bits}` });
        const bad = { ...good, sig: respelt(good.sig, 4, bits) };
        await expect(send(bad), `${where}, unused bits ${bits}`).rejects.toMatchObject({
          code: 'E_BAD_REQUEST',
          message: expect.stringContaining('sig'),
        });
        // Refused before it was stored: the canonical spelling is a new message, not a duplicate.
        expect(await send(good), `${where}, canonical`).toMatchObject({ duplicate: false });
      }
    }
  });

  it('a message stored with a respelt signature before the rule (a hostile client then) still reaches readers, canonically spelt', async () => {
    const net = await createTestnet({ peers: 1 });
    const alice = net.peers[0]!;
    await signIn(alice, 'alice');
    const hosted = (
      await alice.call('POST', '/api/channels', { name: 'old-hosted', allowVisitors: false })
    ).body.id as string;
    const raw = await net.rawLink();
    await raw.request('register', { username: 'dave', password: 'dave-pw-1' });
    const dave = await rawSession(raw, { username: 'dave', password: 'dave-pw-1' });
    const own = (
      await raw.request('channel_create', { id: uuidv7(), name: 'old', allowVisitors: false })
    ).id;
    const good = sign(dave, { channelId: own, text: 'from before the rule' });
    await raw.request('post', { message: good });
    const hostedGood = sign(dave, { channelId: hosted, text: 'hosted, from before the rule' });
    await raw.request('channel_join', { channelId: hosted });
    await waitFor(() => alice.node.store.isMember(hosted, 'dave'));
    const entry = (await raw.request('get_list', {})).peers.find((e) => e.username === 'alice')!;
    const host = rawHostLink(entry, dave);
    await host.start();
    await host.request('post', { message: hostedGood });
    // What an older version stored as it came: the same bytes, another spelling.
    const respell = (file: string, id: string, sig: string) => {
      const db = new Database(file);
      try {
        expect(db.prepare('UPDATE messages SET sig = ? WHERE id = ?').run(sig, id).changes).toBe(1);
      } finally {
        db.close();
      }
    };
    respell(path.join(net.dir, 'server', 'server.db'), good.id, respelt(good.sig, 4, 5));
    respell(path.join(alice.dataDir, 'peer.db'), hostedGood.id, respelt(hostedGood.sig, 4, 9));
    // The server's history and a host's history both answer it, as it was signed.
    const page = await raw.request('history', { channelId: own, limit: 10 });
    expect(page.messages.map((m) => [m.id, m.sig])).toEqual([[good.id, good.sig]]);
    const hostPage = await host.request('history', { channelId: hosted, limit: 10 });
    expect(hostPage.messages.map((m) => [m.id, m.sig])).toEqual([[hostedGood.id, hostedGood.sig]]);
  });

  it('an envelope left in a mailbox with respelt keys before the rule still reaches its device, canonically spelt', async () => {
    const net = await createTestnet({ peers: 0 });
    const b64u = (b: Buffer) => b.toString('base64url');
    const x25519 = () =>
      Buffer.from(
        (newKeyPair('x25519').publicKey.export({ format: 'jwk' }) as { x: string }).x,
        'base64url',
      );
    /** A user with a published device, as PROTOCOL.md §10.1 makes one. */
    const withDevice = async (username: string) => {
      const link = await net.rawLink();
      await link.request('register', { username, password: `${username}-pw-1` });
      await rawSession(link, { username, password: `${username}-pw-1` });
      const ik = newKeyPair('ed25519');
      const spk = x25519();
      const deviceId = b64u(crypto.randomBytes(16));
      await link.request('dm_publish', {
        deviceId,
        identityKey: (ik.publicKey.export({ format: 'jwk' }) as { x: string }).x,
        signedPrekey: {
          id: 1,
          key: b64u(spk),
          sig: b64u(
            crypto.sign(null, Buffer.concat([Buffer.from('hchat-dm-spk-v1'), spk]), ik.privateKey),
          ),
        },
        oneTimePrekeys: [],
      });
      return { link, username, deviceId };
    };
    const erin = await withDevice('erin');
    const mallory = await withDevice('mallory');
    const ik = newKeyPair('ed25519');
    const body = {
      v: 1 as const,
      prekey: {
        ik: (ik.publicKey.export({ format: 'jwk' }) as { x: string }).x,
        ek: b64u(x25519()),
        spk: 1,
      },
      dh: b64u(x25519()),
      pn: 0,
      n: 0,
      ct: b64u(crypto.randomBytes(64)),
    };
    const id = crypto.randomUUID();
    const sent = await mallory.link.request('dm_send', {
      envelopes: [{ id, to: { username: erin.username, deviceId: erin.deviceId }, body }],
    });
    expect(sent.results).toEqual([{ id, ok: true }]);
    // What an older version stored as it came: the same bytes, other spellings (a key's 43rd
    // character has 2 unused bits).
    const db = new Database(path.join(net.dir, 'server', 'dms.db'));
    try {
      const respeltBody = {
        ...body,
        prekey: {
          ...body.prekey,
          ik: respelt(body.prekey.ik, 2, 1),
          ek: respelt(body.prekey.ek, 2, 2),
        },
        dh: respelt(body.dh, 2, 3),
      };
      expect(
        db
          .prepare('UPDATE mailbox SET body = ?, from_device = ? WHERE envelope_id = ?')
          .run(JSON.stringify(respeltBody), respelt(mallory.deviceId, 4, 7), id).changes,
      ).toBe(1);
    } finally {
      db.close();
    }
    // The device's mailbox answers it, as it was sent: one such envelope does not stop the
    // device from reading its mailbox (and what came after it) for good.
    const page = await erin.link.request('dm_fetch', { after: 0 });
    expect(page.envelopes.map((e) => [e.id, e.from, e.body])).toEqual([
      [id, { username: 'mallory', deviceId: mallory.deviceId }, body],
    ]);
  });

  it("login refuses a session key whose spelling is not canonical (a key's 43rd character has 2 unused bits)", async () => {
    const net = await createTestnet({ peers: 0 });
    const raw = await net.rawLink();
    await raw.request('register', { username: 'carol', password: 'carol-pw-1' });
    const keys = newSessionKeys();
    for (let bits = 1; bits < 4; bits++) {
      await expect(
        raw.request('login', {
          username: 'carol',
          password: 'carol-pw-1',
          publicKey: respelt(keys.publicKey, 2, bits),
        }),
        `unused bits ${bits}`,
      ).rejects.toMatchObject({
        code: 'E_BAD_REQUEST',
        message: expect.stringContaining('publicKey'),
      });
    }
    const ok = await raw.request('login', {
      username: 'carol',
      password: 'carol-pw-1',
      publicKey: keys.publicKey,
    });
    expect(ok.cert).toBeTruthy();
  });
});
