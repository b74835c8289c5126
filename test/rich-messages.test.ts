/**
 * Rich messages end to end (issue 13 items 1-3, 7) through the local API of real peers: replies
 * with their preview and the page around the original, mentions with their badge, edits,
 * deletes (the text erased on every replica, the server's backup included), reactions, and the
 * channel's management by its owner; every replica shows the same state.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTestnet, collectEvents, signIn, waitFor, type TestPeer } from './testnet.js';

type Net = Awaited<ReturnType<typeof createTestnet>>;

/** alice hosts "general" (visitors allowed); bob and carol are members. */
async function general(): Promise<{
  net: Net;
  alice: TestPeer;
  bob: TestPeer;
  carol: TestPeer;
  ch: string;
}> {
  const net = await createTestnet({ peers: 3 });
  const [alice, bob, carol] = net.peers as [TestPeer, TestPeer, TestPeer];
  for (const [p, n] of [
    [alice, 'alice'],
    [bob, 'bob'],
    [carol, 'carol'],
  ] as const)
    await signIn(p, n);
  const ch = (await alice.call('POST', '/api/channels', { name: 'general', allowVisitors: true }))
    .body.id as string;
  for (const p of [bob, carol])
    expect((await p.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
  return { net, alice, bob, carol, ch };
}

const page = async (p: TestPeer, ch: string) =>
  (await p.call('GET', `/api/channels/${ch}/messages?limit=100`)).body.messages as any[];

/** What a page shows, without local delivery states: every replica must agree on it. */
const shown = (ms: any[]) =>
  ms.map((m) => ({
    id: m.id,
    text: m.text,
    deleted: m.deleted ?? false,
    editedAt: m.editedAt ?? null,
    reactions: m.reactions.map((r: any) => `${r.emoji}:${r.users.join('+')}`),
    replyTo: m.replyTo?.id ?? null,
  }));

describe('rich messages', () => {
  it('reply, mention, edit, react and delete: every peer and the server show the same, and the text is gone everywhere', async () => {
    const { net, alice, bob, carol, ch } = await general();
    const bobEvents = collectEvents(bob.uiUrl);
    await bobEvents.ready;
    const first = (
      await alice.call('POST', `/api/channels/${ch}/messages`, { text: 'first **one**' })
    ).body.id;
    // carol replies, mentions bob (a member) and dave (nobody here): only bob is mentioned.
    const reply = await carol.call('POST', `/api/channels/${ch}/messages`, {
      text: 'hey @bob and @dave, see this',
      replyTo: first,
    });
    expect(reply.status).toBe(201);
    // bob has not opened the channel: a mention badge on it (and the unread count).
    await waitFor(() => bob.node.store.getMessage(reply.body.id), 5000, 'bob has the reply');
    const chans = (await bob.call('GET', '/api/channels')).body as any[];
    expect(chans.find((c) => c.id === ch)).toMatchObject({ unread: 2, mentions: 1 });
    const r = (await page(bob, ch)).find((m) => m.id === reply.body.id);
    expect(r).toMatchObject({
      replyTo: { id: first, author: 'alice', text: 'first **one**' },
      mentions: ['bob'],
      mentionsMe: true,
    });
    // Read: the badge goes.
    const read = (await bob.call('GET', '/api/channels')).body as any[];
    expect(read.find((c) => c.id === ch)).toMatchObject({ unread: 0, mentions: 0 });

    // carol edits her reply; bob reacts to it twice over (one reaction per user and emoji).
    expect(
      (
        await carol.call('PATCH', `/api/channels/${ch}/messages/${reply.body.id}`, {
          text: 'hey @bob, see this',
        })
      ).status,
    ).toBe(200);
    for (const emoji of ['👍', '👍', '🎉'])
      await bob.call(
        'PUT',
        `/api/channels/${ch}/messages/${reply.body.id}/reactions/${encodeURIComponent(emoji)}`,
      );
    await bob.call(
      'DELETE',
      `/api/channels/${ch}/messages/${reply.body.id}/reactions/${encodeURIComponent('🎉')}`,
    );
    // bob may not edit carol's message.
    const foreign = await bob.call('PATCH', `/api/channels/${ch}/messages/${reply.body.id}`, {
      text: 'x',
    });
    expect(foreign.status).toBe(403);

    const expected = async () => shown(await page(alice, ch));
    await waitFor(
      async () => {
        const a = await expected();
        const rr = a.find((m) => m.id === reply.body.id);
        return rr?.text === 'hey @bob, see this' && rr.reactions.join() === '👍:bob';
      },
      5000,
      'the host shows the edit and one reaction',
    );
    for (const p of [bob, carol])
      await waitFor(
        async () => JSON.stringify(shown(await page(p, ch))) === JSON.stringify(await expected()),
        5000,
        `${p.dataDir.slice(-12)} agrees`,
      );
    // The live event carried the new state (the UI replaces the message by id).
    await waitFor(
      () =>
        bobEvents.events.some(
          (e) =>
            e.event === 'message' && e.data.message.id === reply.body.id && e.data.message.editedAt,
        ),
      5000,
      'an event with the edit',
    );

    // The page around a message (a reply's jump): the original in the middle.
    const around = await bob.call('GET', `/api/channels/${ch}/messages?around=${first}&limit=10`);
    expect(around.body.messages.map((m: any) => m.id)).toEqual([first, reply.body.id]);
    expect(around.body).toMatchObject({ hasMore: false, hasNewer: false });

    // The channel's owner deletes carol's reply (as moderator): gone on every replica, and the
    // text is erased from every store, the server's backup included (tombstones remain).
    expect(
      (await alice.call('DELETE', `/api/channels/${ch}/messages/${reply.body.id}`)).status,
    ).toBe(200);
    for (const p of [alice, bob, carol])
      await waitFor(
        async () => (await page(p, ch)).find((m) => m.id === reply.body.id)?.deleted === true,
        5000,
        `${p.dataDir.slice(-12)} sees the delete`,
      );
    await waitFor(
      async () => (await net.server.store.getItem(reply.body.id))?.digest !== undefined,
      5000,
      'server erased it',
    );
    const secret = /dave|see this/;
    for (const p of [alice, bob, carol]) {
      const m = p.node.store.getMessage(reply.body.id)!;
      expect(m.text, p.dataDir).toBeUndefined();
      for (const rel of p.node.store.related([reply.body.id]))
        expect(rel.text ?? '', p.dataDir).not.toMatch(secret);
    }
    for (const rel of await net.server.store.related([reply.body.id]))
      expect(rel.text ?? '').not.toMatch(secret);
    // The first message's preview in later replies says the original was deleted.
    const again = await bob.call('POST', `/api/channels/${ch}/messages`, {
      text: 'what was it?',
      replyTo: reply.body.id,
    });
    const last = (await page(bob, ch)).find((m) => m.id === again.body.id);
    expect(last.replyTo).toEqual({ id: reply.body.id, author: 'carol', deleted: true });
  });

  it('written, edited and deleted while offline: only tombstones leave the device, with their delete, and every replica shows them deleted', async () => {
    const { net, alice, bob, carol, ch } = await general();
    const post = async (text: string) =>
      (await bob.call('POST', `/api/channels/${ch}/messages`, { text })).body.id as string;
    const sent = await post('said before going away');
    await waitFor(() => carol.node.store.getMessage(sent), 5000, 'carol has it');
    const all = [alice, bob, carol];
    const everywhere = async (ids: string[], why: string) => {
      for (const p of all)
        await waitFor(
          async () => {
            const ms = await page(p, ch);
            return ids.every((id) => ms.find((m) => m.id === id)?.deleted);
          },
          8000,
          `${p.dataDir.slice(-12)}: ${why}`,
        );
      await waitFor(
        async () => {
          for (const id of ids)
            if ((await net.server.store.getItem(id))?.digest === undefined) return false;
          return true;
        },
        8000,
        `the server: ${why}`,
      );
    };
    // Nothing of the text reached another replica: not one byte of it in their files.
    // (A marker no schema holds: "secret" is a column name of tokens.db, `secret_hash`.)
    const neverLeft = (secret: string) => {
      const dirs = [alice.dataDir, carol.dataDir, path.join(net.dir, 'server')];
      for (const dir of dirs)
        for (const f of fs.readdirSync(dir).filter((f) => /\.db(-wal)?$/.test(f)))
          expect(fs.readFileSync(path.join(dir, f)).includes(secret), `${dir}/${f}`).toBe(false);
    };

    // The host is up: bob, offline, writes one, edits the one he had sent, and deletes both.
    await bob.call('PUT', '/api/status', { status: 'offline' });
    const unsent = await post('xyzzy one');
    expect(
      (await bob.call('PATCH', `/api/channels/${ch}/messages/${sent}`, { text: 'xyzzy edit' }))
        .status,
    ).toBe(200);
    for (const id of [unsent, sent])
      expect((await bob.call('DELETE', `/api/channels/${ch}/messages/${id}`)).status).toBe(200);
    await bob.call('PUT', '/api/status', { status: 'online' });
    await everywhere([unsent, sent], 'deleted, through the host');
    await waitFor(
      async () => (await bob.call('GET', '/api/me')).body.pending === 0,
      8000,
      'bob has nothing pending',
    );
    // Delivered, not refused: the tombstones and their deletes are in the log of every replica.
    const states = (await page(bob, ch)).map((m) => m.state);
    expect(
      states.every((s) => s === 'delivered'),
      JSON.stringify(states),
    ).toBe(true);
    neverLeft('xyzzy');

    // The host is away: bob's next one goes to the server, which takes the tombstone too, and
    // the host learns it when it comes back.
    await alice.call('PUT', '/api/status', { status: 'offline' });
    await bob.call('PUT', '/api/status', { status: 'offline' });
    const unsent2 = await post('hidden two');
    expect((await bob.call('DELETE', `/api/channels/${ch}/messages/${unsent2}`)).status).toBe(200);
    await bob.call('PUT', '/api/status', { status: 'online' });
    await waitFor(
      async () => (await net.server.store.getItem(unsent2))?.digest !== undefined,
      8000,
      'the server holds the tombstone',
    );
    await alice.call('PUT', '/api/status', { status: 'online' });
    await everywhere([unsent2], 'deleted, through the server');
    neverLeft('hidden');
  });

  it('the owner renames, sets a topic, removes a member and deletes the channel: every replica follows', async () => {
    const { net, alice, bob, carol, ch } = await general();
    await alice.call('POST', `/api/channels/${ch}/messages`, { text: 'hello' });
    expect((await bob.call('PATCH', `/api/channels/${ch}`, { name: 'mine' })).status).toBe(403);
    const r = await alice.call('PATCH', `/api/channels/${ch}`, {
      name: 'lobby',
      topic: 'say hi',
      allowVisitors: false,
    });
    expect(r.status).toBe(200);
    for (const p of [alice, bob, carol])
      await waitFor(
        async () => {
          const c = ((await p.call('GET', '/api/channels')).body as any[]).find((x) => x.id === ch);
          return c?.name === 'lobby' && c.topic === 'say hi' && c.allowVisitors === false;
        },
        5000,
        `${p.dataDir.slice(-12)} sees the new settings`,
      );
    await waitFor(
      async () => (await net.server.store.getChannel(ch))?.name === 'lobby',
      5000,
      'the directory has it',
    );
    expect(await net.server.store.getChannel(ch)).toMatchObject({
      topic: 'say hi',
      allowVisitors: false,
    });

    // carol leaves; alice removes bob: neither lists the channel, bob cannot join again.
    expect((await carol.call('POST', `/api/channels/${ch}/leave`)).status).toBe(204);
    expect(
      ((await carol.call('GET', '/api/channels')).body as any[]).some((c) => c.id === ch),
    ).toBe(false);
    expect((await alice.call('DELETE', `/api/channels/${ch}/members/bob`)).status).toBe(200);
    await waitFor(
      async () =>
        !((await bob.call('GET', '/api/channels')).body as any[]).some((c) => c.id === ch),
      5000,
      'bob no longer lists it',
    );
    expect((await bob.call('POST', `/api/channels/${ch}/join`)).status).toBe(403);
    const members = (await alice.call('GET', `/api/channels/${ch}/members`)).body.map(
      (m: any) => m.username,
    );
    expect(members).toEqual(['alice']);

    // carol joins again and sees it; then alice deletes the channel: gone from every list, the
    // server and the directory.
    expect((await carol.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
    expect((await alice.call('DELETE', `/api/channels/${ch}`)).status).toBe(200);
    for (const p of [alice, carol])
      await waitFor(
        async () =>
          !((await p.call('GET', '/api/channels')).body as any[]).some((c) => c.id === ch),
        5000,
        `${p.dataDir.slice(-12)} drops it`,
      );
    await waitFor(
      async () => (await net.server.store.getChannel(ch)) === undefined,
      5000,
      'the server drops it',
    );
    expect(await net.server.store.since(ch, 0, 10)).toEqual([]);
    await waitFor(
      () => alice.node.store.page(ch, 10).messages.length === 0,
      5000,
      'the host purges it',
    );
    expect(carol.node.store.page(ch, 10).messages).toEqual([]);
  });
});
