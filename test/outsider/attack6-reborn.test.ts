// A deleted channel's id given to a new channel, attacked from docs/PROTOCOL.md §2.1 (an item's
// id and signature cover its `channelId`, nothing else of the channel), §2.2 (a deleted channel
// "is dropped with its items and members") and §3.3 (`channel_create` takes the id its caller
// chooses; `forward` takes any item its author signed for the channel, judged by the channel's
// present members). Real `bin/hchat server`, raw wire clients on 127.0.0.1.
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  killAll,
  newKey,
  registerLogin,
  serverHello,
  signMessage,
  startServer,
  uuid7,
} from './lib.js';
import { signChannelItem, startDeployment } from './botlife-lib.js';

type Srv = { host: string; port: number };
type User = Awaited<ReturnType<typeof registerLogin>>;
let srv: Srv;

beforeAll(async () => {
  srv = await startServer(['--max-registrations-per-address', '10000']);
});
afterAll(killAll);

let n = 0;
const uname = (p: string) => `${p}${process.pid % 1000}r${n++}`;

async function ok(u: User, op: string, body: unknown = {}) {
  const r = await u.c.req(op, body);
  if (!r.body) throw new Error(`${op}: ${JSON.stringify(r.error)}`);
  return r.body;
}

test("a deleted channel's id names no other channel: what its members signed there is never shown again, under a new owner or the old", async () => {
  const alice = await registerLogin(srv, uname('alice'));
  const bob = await registerLogin(srv, uname('bob'));
  const mallory = await registerLogin(srv, uname('mallory'));
  // Alice's private channel; bob and mallory are members, bob says something meant for it alone.
  const x = uuid7();
  await ok(alice, 'channel_create', { id: x, name: 'private', allowVisitors: false });
  await ok(bob, 'channel_join', { channelId: x });
  await ok(mallory, 'channel_join', { channelId: x });
  const words = 'bob, for this private channel only';
  await ok(bob, 'post', { message: signMessage(bob.key, bob.cert, x, bob.username, words) });
  await ok(alice, 'post', {
    message: signMessage(alice.key, alice.cert, x, alice.username, 'alice, private too'),
  });
  // Mallory, a member, holds every signed item of it, as every member's peer does.
  const held = (await ok(mallory, 'sync', { channelId: x, since: 0, limit: 500 })).messages;
  expect(held.map((m: any) => m.text)).toEqual([words, 'alice, private too']);

  // The owner deletes the channel (§2.2): dropped with its items and members.
  await ok(alice, 'post', {
    message: signChannelItem(alice.key, alice.cert, x, alice.username, { deleted: true }),
  });
  expect((await mallory.c.req('sync', { channelId: x, since: 0, limit: 1 })).error?.code).toBe(
    'E_CHANNEL_NOT_FOUND',
  );

  // Mallory makes a channel open to visitors under the deleted one's id, lures bob and alice
  // into it (its directory entry is all they see), and forwards what they signed in the old one.
  const reborn = await mallory.c.req('channel_create', {
    id: x,
    name: 'private',
    allowVisitors: true,
  });
  // The old owner cannot take the id back either: it would bring the old items back with it.
  const again = await alice.c.req('channel_create', { id: x, name: 'again', allowVisitors: true });
  if (reborn.body) {
    await bob.c.req('channel_join', { channelId: x });
    await alice.c.req('channel_join', { channelId: x });
    await mallory.c.req('forward', { messages: held });
  }
  // Whatever happened, anyone (a visitor here) reading that id finds nothing of the old channel.
  const { c: visitor } = await serverHello(srv);
  expect(
    (await visitor.req('visitor', { name: uname('v'), publicKey: newKey().pk })).body,
  ).toBeTruthy();
  const seen = await visitor.req('history', { channelId: x, limit: 500 });
  visitor.close();
  expect({
    reborn: reborn.error?.code ?? 'created',
    again: again.error?.code ?? 'created',
    oldItemsShown: JSON.stringify(seen.body ?? {}).includes(words),
  }).toEqual({ reborn: 'E_CHANNEL_EXISTS', again: 'E_CHANNEL_EXISTS', oldItemsShown: false });
}, 30_000);

test('several instances: an id deleted through one instance is refused by another, also when the creation races the deletion', async () => {
  const dep = await startDeployment(['--max-registrations-per-address', '10000']);
  try {
    const alice = await registerLogin(dep.at(0), uname('alice'));
    const mallory = await registerLogin(dep.at(1), uname('mallory'));
    const x = uuid7();
    const y = uuid7();
    for (const id of [x, y])
      await ok(alice, 'channel_create', { id, name: 'c', allowVisitors: false });
    const del = (id: string, lc: number) =>
      ok(alice, 'post', {
        message: signChannelItem(
          alice.key,
          alice.cert,
          id,
          alice.username,
          { deleted: true },
          Date.now(),
          lc,
        ),
      });
    await del(x, 0);
    const after = await mallory.c.req('channel_create', { id: x, name: 'x', allowVisitors: true });
    // Sent together: the creation may find the channel still there, never its id free.
    const [, raced] = await Promise.all([
      del(y, 1),
      (async () => {
        let r: any;
        do r = await mallory.c.req('channel_create', { id: y, name: 'y', allowVisitors: true });
        while (r.error?.code === 'E_CHANNEL_EXISTS' && !/deleted/.test(r.error.message));
        return r;
      })(),
    ]);
    expect({ after: after.error?.code, raced: raced.error?.code }).toEqual({
      after: 'E_CHANNEL_EXISTS',
      raced: 'E_CHANNEL_EXISTS',
    });
  } finally {
    await dep.stop();
  }
}, 60_000);
