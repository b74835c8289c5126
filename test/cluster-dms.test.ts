/**
 * Direct messages across server instances (issue 16): two real `hchat server` processes on one
 * PostgreSQL database and one NATS. A device published on one instance is found, and its
 * mailbox filled, from the other; an envelope left while its receiver is offline is fetched
 * through a third connection on either instance; one sent while the receiver is bound on
 * another instance is pushed live; `dm_devices` on one instance gives the address of a device
 * whose session is on the other; an avatar set on one instance reaches a co-member on the other.
 */
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { waitFor } from './testnet.js';
import { startCluster } from './cluster-kit.js';
import { registerLogin } from './outsider/lib.js';
import {
  devicesOf,
  pairId,
  payload,
  publishBody,
  seal,
  sessionWith,
  withDevice,
} from './outsider/dm-lib.js';
import { signAvatar } from '../src/shared/avatar-sig.js';
import { png } from './pictures.js';
import type { SessionKeys } from '../src/shared/signing.js';

const RAISED = ['--max-registrations-per-address', '1000'];

describe('direct messages and avatars across two instances on PostgreSQL and NATS', () => {
  it('an envelope to a device published on the other instance waits in its mailbox, then goes live', async () => {
    const { at } = await startCluster(RAISED);
    // bob publishes his device on instance 1, then goes offline.
    const bob = await withDevice(await registerLogin(at(1), 'bob'));
    bob.c.close();
    // alice, on instance 0, finds his device and leaves him an envelope.
    const alice = await withDevice(await registerLogin(at(0), 'alice'));
    const devs = await devicesOf(alice, 'bob');
    expect(devs.map((d) => d.deviceId)).toEqual([bob.dev.deviceId]);
    const s = await sessionWith(alice, 'bob', bob.dev.deviceId);
    const to = { username: 'bob', deviceId: bob.dev.deviceId };
    const text = (t: string) =>
      seal(
        s,
        payload({ conversation: pairId('alice', 'bob'), members: ['alice', 'bob'], text: t }),
      );
    const first = crypto.randomUUID();
    const sent = await alice.c.req('dm_send', {
      envelopes: [{ id: first, to, body: text('one') }],
    });
    expect(sent.body?.results).toEqual([{ id: first, ok: true }]);

    // bob back, on instance 0 this time: his mailbox holds it.
    const back = await registerLogin(at(0), 'bob', bob.password);
    expect((await back.c.req('dm_publish', publishBody(bob.dev))).error).toBeUndefined();
    const box = (await back.c.req('dm_fetch', { after: 0 })).body.envelopes;
    expect(box.map((e: any) => [e.id, e.from.username])).toEqual([[first, 'alice']]);
    expect((await back.c.req('dm_ack', { upTo: box[0].seq })).error).toBeUndefined();

    // Live: bob bound on instance 1, alice sends through instance 0.
    const live = await registerLogin(at(1), 'bob', bob.password);
    expect((await live.c.req('dm_publish', publishBody(bob.dev))).error).toBeUndefined();
    const second = crypto.randomUUID();
    await alice.c.req('dm_send', { envelopes: [{ id: second, to, body: text('two') }] });
    await waitFor(
      () => live.c.events.some((e) => e.ev === 'dm' && e.body.id === second),
      5000,
      'the live dm push on the other instance',
    );
    expect(
      (await live.c.req('dm_fetch', { after: 0 })).body.envelopes.map((e: any) => e.id),
    ).toEqual([second]);
  }, 60_000);

  it('dm_devices on one instance gives the address of a device whose session is on the other', async () => {
    const { at } = await startCluster(RAISED);
    const carol = await withDevice(await registerLogin(at(1), 'carol'));
    await carol.c.req('submit_info', {
      ip: '10.3.3.3',
      port: 4000,
      udpPort: 4001,
      status: 'online',
    });
    const dave = await withDevice(await registerLogin(at(0), 'dave'));
    // carol asked for dave's devices: dave may see where she is (the lookup rule).
    await devicesOf(carol, 'dave');
    await waitFor(
      async () => (await devicesOf(dave, 'carol'))[0]?.entry?.ip === '10.3.3.3',
      5000,
      "carol's address through the other instance",
    );
    // Her connection gone, her address goes too.
    carol.c.close();
    await waitFor(
      async () => (await devicesOf(dave, 'carol'))[0]?.entry === undefined,
      5000,
      "carol's address gone",
    );
  }, 60_000);

  it('an avatar set on one instance is pushed to a co-member on the other, and read there', async () => {
    const { at } = await startCluster(RAISED);
    const erin = await registerLogin(at(0), 'erin');
    const finn = await registerLogin(at(1), 'finn');
    const ch = crypto.randomUUID();
    await erin.c.req('channel_create', { id: ch, name: 'g', allowVisitors: false });
    expect((await finn.c.req('channel_join', { channelId: ch })).error).toBeUndefined();
    await finn.c.req('subscribe', { channelIds: [ch] });
    const data = png(16, 16);
    const avatar = signAvatar(
      { username: 'erin', type: 'image/png', data, ts: Date.now() },
      erin.key as unknown as SessionKeys,
      erin.cert,
    );
    const set = await erin.c.req('avatar_set', { avatar });
    expect(set.error).toBeUndefined();
    await waitFor(
      () => finn.c.events.some((e) => e.ev === 'avatar' && e.body.hash === set.body.hash),
      5000,
      'the avatar push on the other instance',
    );
    expect((await finn.c.req('avatars', { usernames: ['erin'] })).body.avatars).toEqual([set.body]);
    const got = (await finn.c.req('avatar_get', { username: 'erin' })).body?.avatar;
    expect(Buffer.from(got.data, 'base64').equals(data)).toBe(true);
  }, 60_000);
});
