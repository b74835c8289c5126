/**
 * A message deleted before its reader read it counts no more as unread, in a channel and in a
 * direct message (README: the web UI leaves deleted messages out; Discord drops them from
 * unread): an outside new user found the badge staying for a message nobody can see. One deleted
 * after it was read changes nothing, and what else is unread stays.
 */
import { describe, expect, it } from 'vitest';
import { createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';
import { shown, startDm } from './dm-views.js';

const unreadOf = async (p: TestPeer, id: string) =>
  ((await p.call('GET', '/api/channels')).body as any[]).find((c) => c.id === id)?.unread;
const dmOf = async (p: TestPeer, id: string) =>
  ((await p.call('GET', '/api/dms')).body as any[]).find((c) => c.id === id);

describe('unread counts and deletions', () => {
  it('a channel message deleted before it was read is not unread; another still is', async () => {
    const net = await createTestnet({ peers: 2 });
    const [alice, bob] = net.peers as [TestPeer, TestPeer];
    await signIn(alice, 'alice');
    await signIn(bob, 'bob');
    const ch = (await alice.call('POST', '/api/channels', { name: 'talk', allowVisitors: false }))
      .body.id as string;
    expect((await bob.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
    await bob.call('POST', `/api/channels/${ch}/read`);
    const keep = await alice.call('POST', `/api/channels/${ch}/messages`, { text: 'keep me' });
    const oops = await alice.call('POST', `/api/channels/${ch}/messages`, {
      text: 'oops @bob, wrong channel',
    });
    // Read from bob's store: reading the channel's newest page through the API marks it read.
    const held = async (id: string) => {
      const m = bob.node.store.getMessage(id);
      return m && { deleted: m.digest !== undefined };
    };
    await waitFor(async () => (await held(oops.body.id)) !== undefined, 10_000, 'bob holds both');
    expect(await unreadOf(bob, ch)).toBe(2);
    expect(
      (await alice.call('DELETE', `/api/channels/${ch}/messages/${oops.body.id}`)).status,
    ).toBe(200);
    await waitFor(async () => (await held(oops.body.id))?.deleted === true, 10_000, 'deleted');
    expect(await unreadOf(bob, ch)).toBe(1);
    const listed = ((await bob.call('GET', '/api/channels')).body as any[]).find(
      (c) => c.id === ch,
    );
    expect(listed.mentions ?? 0).toBe(0);
    // Read, then deleted: nothing changes.
    await bob.call('POST', `/api/channels/${ch}/read`);
    expect(
      (await alice.call('DELETE', `/api/channels/${ch}/messages/${keep.body.id}`)).status,
    ).toBe(200);
    await waitFor(async () => (await held(keep.body.id))?.deleted === true, 10_000, 'deleted');
    expect(await unreadOf(bob, ch)).toBe(0);
  });

  it('a direct message deleted before it was read is neither unread nor a mention; one read before stays read', async () => {
    const net = await createTestnet({ peers: 2 });
    const [alice, bob] = net.peers as [TestPeer, TestPeer];
    await signIn(alice, 'alice');
    await signIn(bob, 'bob');
    const dm = await startDm((m, r, b) => alice.call(m, r, b), ['bob']);
    const send = async (text: string) => {
      const r = await alice.call('POST', `/api/dms/${dm.id}/messages`, { text });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body.id as string;
    };
    const atBob = (id: string) => async () =>
      (await shown((r) => bob.call('GET', r), dm.id)).get(id);
    const read = await send('read before it goes');
    await waitFor(atBob(read), 15_000, 'the first message at bob');
    expect((await bob.call('POST', `/api/dms/${dm.id}/read`)).status).toBe(204);
    const keep = await send('keep me');
    const oops = await send('oops @bob, wrong chat');
    await waitFor(atBob(oops), 15_000, 'both at bob');
    expect(await dmOf(bob, dm.id)).toMatchObject({ unread: 2, mentions: 1 });
    expect((await alice.call('DELETE', `/api/dms/${dm.id}/messages/${oops}`)).status).toBe(200);
    await waitFor(async () => (await atBob(oops)())?.deleted === true, 15_000, 'deleted at bob');
    expect(await dmOf(bob, dm.id)).toMatchObject({ unread: 1, mentions: 0 });
    // One read before its deletion takes nothing from what is unread now.
    expect((await alice.call('DELETE', `/api/dms/${dm.id}/messages/${read}`)).status).toBe(200);
    await waitFor(async () => (await atBob(read)())?.deleted === true, 15_000, 'deleted at bob');
    expect(await dmOf(bob, dm.id)).toMatchObject({ unread: 1, mentions: 0 });
    expect((await atBob(keep)())?.text).toBe('keep me');
  });
});
