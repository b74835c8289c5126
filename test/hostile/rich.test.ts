/**
 * A hostile member against the rules of issue 13 (PROTOCOL.md §2.2): editing or deleting
 * someone else's message, reacting as someone else, a forged moderation item, and a removed
 * member reading or posting — each refused by the host, the server and the members alike.
 */
import { describe, expect, it } from 'vitest';
import { createTestnet, rawHostLink, rawSession, signIn, waitFor } from '../testnet.js';
import { sign } from './kit.js';
import { bodyDigest } from '../../src/shared/message-id.js';

/** alice hosts "general"; bob is a member on raw links (P2P to alice, and the server); carol a peer. */
async function setup() {
  const net = await createTestnet({ peers: 2 });
  const [alice, carol] = net.peers as [any, any];
  await signIn(alice, 'alice');
  await signIn(carol, 'carol');
  const ch = (await alice.call('POST', '/api/channels', { name: 'general', allowVisitors: true }))
    .body.id as string;
  await carol.call('POST', `/api/channels/${ch}/join`);
  const raw = await net.rawLink();
  await raw.request('register', { username: 'bob', password: 'bob-pw-1' });
  const bob = await rawSession(raw, { username: 'bob', password: 'bob-pw-1' });
  await raw.request('channel_join', { channelId: ch });
  await waitFor(() => alice.node.store.isMember(ch, 'bob'));
  const entry = (await raw.request('get_list', {})).peers.find((e) => e.username === 'alice')!;
  const p2p = rawHostLink(entry, bob);
  await p2p.start();
  const posted = await alice.call('POST', `/api/channels/${ch}/messages`, { text: 'by alice' });
  const aliceMsg = posted.body.id as string;
  await waitFor(
    async () => (await net.server.store.getItem(aliceMsg)) !== undefined,
    5000,
    'backup',
  );
  await waitFor(() => carol.node.store.getMessage(aliceMsg) !== undefined, 5000, 'carol has it');
  return { net, alice, carol, ch, raw, bob, p2p, aliceMsg };
}

describe('changes to messages obey their rules at every node', () => {
  it("a member cannot edit or delete someone else's message, at the host or the server", async () => {
    const { net, alice, ch, raw, bob, p2p, aliceMsg } = await setup();
    const edit = sign(bob, { channelId: ch, kind: 'edit', target: aliceMsg, text: 'pwned' });
    const del = sign(bob, { channelId: ch, kind: 'delete', target: aliceMsg });
    for (const [what, item] of [
      ['edit', edit],
      ['delete', del],
    ] as const) {
      await expect(p2p.request('post', { message: item }), `${what} at host`).rejects.toMatchObject(
        { code: 'E_FORBIDDEN' },
      );
      await expect(
        raw.request('post', { message: item }),
        `${what} at server`,
      ).rejects.toMatchObject({ code: 'E_FORBIDDEN' });
    }
    // A change to a message that is not there, or an item of a kind the channel's owner alone
    // may write (a forged moderation item), is refused too.
    const ghost = sign(bob, {
      channelId: ch,
      kind: 'delete',
      target: '019abcde-0000-7000-8000-000000000000',
    });
    await expect(raw.request('post', { message: ghost })).rejects.toMatchObject({
      code: 'E_NOT_FOUND',
    });
    for (const change of [{ name: 'bob rules' }, { remove: 'carol' }, { deleted: true as const }]) {
      const mod = sign(bob, { channelId: ch, kind: 'channel', change });
      await expect(p2p.request('post', { message: mod })).rejects.toMatchObject({
        code: 'E_FORBIDDEN',
      });
      await expect(raw.request('post', { message: mod })).rejects.toMatchObject({
        code: 'E_FORBIDDEN',
      });
    }
    // Nothing changed anywhere: alice's message keeps its text on host and server.
    const state = await alice.call('GET', `/api/channels/${ch}/messages`);
    expect(state.body.messages.map((m: any) => [m.text, m.deleted])).toEqual([
      ['by alice', undefined],
    ]);
    expect((await net.server.store.getItem(aliceMsg))!.text).toBe('by alice');
    expect((await net.server.store.getChannel(ch))!.name).toBe('general');
    expect(await net.server.store.isMember(ch, 'carol')).toBe(true);
  });

  it('a host that forwards a forged edit gets it refused by members, who keep the text', async () => {
    const { carol, ch, aliceMsg, bob, net } = await setup();
    // bob's forged edit of alice's message, as a (hostile) replica would pass it on: carol's
    // peer applies the rules itself, so the sync that carries it changes nothing she shows.
    const edit = sign(bob, { channelId: ch, kind: 'edit', target: aliceMsg, text: 'pwned' });
    carol.node['replication'].receive([{ ...edit, author: 'bob', seq: 99 }], 'push');
    expect(carol.node.store.getMessage(edit.id)).toBeUndefined();
    const page = await carol.call('GET', `/api/channels/${ch}/messages`);
    expect(page.body.messages.map((m: any) => m.text)).toContain('by alice');
    void net;
  });

  it("a tombstone enters only with the delete that erased it: a bare one, a stranger's delete, a forged one or a delete of something else is refused", async () => {
    const { net, alice, carol, ch, raw, bob, p2p, aliceMsg } = await setup();
    /** A message of bob's as a tombstone (its body replaced by its digest), and its delete. */
    const tombstone = (text: string) => {
      const { text: _t, ...rest } = sign(bob, { channelId: ch, text });
      const t = { ...rest, digest: bodyDigest({ text }) };
      return {
        t,
        del: { ...sign(bob, { channelId: ch, kind: 'delete', target: t.id }), author: 'bob' },
      };
    };
    // The server's `post` and the host's P2P `post` take the same body.
    const links: Array<[string, { request(op: 'post', body: unknown): Promise<unknown> }]> = [
      ['server', raw as any],
      ['host', p2p as any],
    ];
    for (const [where, link] of links) {
      const { t, del } = tombstone(`gone at the ${where}`);
      const other = {
        ...sign(bob, { channelId: ch, kind: 'delete', target: aliceMsg }),
        author: 'bob',
      };
      const forged = { ...del, sig: sign(bob, { channelId: ch, text: 'x' }).sig };
      const asAlice = {
        ...sign(bob, { channelId: ch, kind: 'delete', target: t.id }, { author: 'alice' }),
        author: 'alice',
      };
      const aMessage = { ...sign(bob, { channelId: ch, text: 'not a delete' }), author: 'bob' };
      const live = sign(bob, { channelId: ch, text: 'alive' });
      for (const [what, body, code] of [
        ['bare', { message: t }, 'E_BAD_REQUEST'],
        ['a delete of another message', { message: t, deletedBy: other }, 'E_FORBIDDEN'],
        ['a forged signature', { message: t, deletedBy: forged }, 'E_BAD_SIGNATURE'],
        [
          'signed by bob, claimed by alice (the owner)',
          { message: t, deletedBy: asAlice },
          'E_BAD_SIGNATURE',
        ],
        ['a message for a delete', { message: t, deletedBy: aMessage }, 'E_BAD_REQUEST'],
        ['a live message with a delete', { message: live, deletedBy: del }, 'E_BAD_REQUEST'],
      ] as const) {
        await expect(
          link.request('post', body as any),
          `${what} at the ${where}`,
        ).rejects.toMatchObject({
          code,
        });
      }
      // Nothing of them was stored anywhere.
      expect(await net.server.store.getItem(t.id)).toBeUndefined();
      expect(alice.node.store.getMessage(t.id)).toBeUndefined();
      expect(await net.server.store.getItem(live.id)).toBeUndefined();
      // With its own delete it enters, and every replica shows it deleted.
      expect(await link.request('post', { message: t, deletedBy: del })).toMatchObject({
        id: t.id,
        duplicate: false,
      });
      for (const p of [alice, carol])
        await waitFor(
          async () => {
            const page = await p.call('GET', `/api/channels/${ch}/messages`);
            return page.body.messages.find((m: any) => m.id === t.id)?.deleted === true;
          },
          5000,
          `${where}: deleted at ${p.dataDir.slice(-8)}`,
        );
      await waitFor(
        async () => (await net.server.store.getItem(del.id)) !== undefined,
        5000,
        'the delete at the server',
      );
    }
    // alice's message was never touched.
    expect((await net.server.store.getItem(aliceMsg))!.text).toBe('by alice');
  });

  it('reactions: a member reacts as itself only; a reaction signed for another author is refused', async () => {
    const { net, alice, carol, ch, raw, bob, aliceMsg } = await setup();
    const mine = sign(bob, { channelId: ch, kind: 'react', target: aliceMsg, emoji: '👍' });
    expect(await raw.request('post', { message: mine })).toMatchObject({ duplicate: false });
    const asCarol = sign(
      bob,
      { channelId: ch, kind: 'react', target: aliceMsg, emoji: '🎉' },
      { author: 'carol' },
    );
    await expect(raw.request('post', { message: asCarol })).rejects.toMatchObject({
      code: 'E_BAD_SIGNATURE',
    });
    await waitFor(
      async () => {
        const page = await carol.call('GET', `/api/channels/${ch}/messages`);
        const r = page.body.messages[0]?.reactions ?? [];
        return r.length === 1 && r[0].emoji === '👍' && r[0].users.join() === 'bob';
      },
      5000,
      'carol sees the one reaction',
    );
    void alice;
    void net;
  });

  it('a removed member can neither read nor post, at the host and the server, nor join again', async () => {
    const { net, alice, ch, raw, bob, p2p } = await setup();
    const r = await alice.call('DELETE', `/api/channels/${ch}/members/bob`);
    expect(r.status).toBe(200);
    await waitFor(
      async () => await net.server.store.isRemoved(ch, 'bob'),
      5000,
      'server applied the removal',
    );
    expect(await net.server.store.isMember(ch, 'bob')).toBe(false);
    expect(alice.node.store.isMember(ch, 'bob')).toBe(false);
    const post = sign(bob, { channelId: ch, text: 'still here?' });
    await expect(p2p.request('post', { message: post })).rejects.toMatchObject({
      code: 'E_NOT_MEMBER',
    });
    await expect(raw.request('post', { message: post })).rejects.toMatchObject({
      code: expect.stringMatching(/E_NOT_MEMBER|E_FORBIDDEN/),
    });
    // The channel allows visitors, yet the removed account reads nothing of it at the server.
    await expect(raw.request('history', { channelId: ch, limit: 10 })).rejects.toMatchObject({
      code: 'E_FORBIDDEN',
    });
    await expect(raw.request('channel_join', { channelId: ch })).rejects.toMatchObject({
      code: 'E_FORBIDDEN',
    });
  });
});
