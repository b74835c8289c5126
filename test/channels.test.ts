import fs from 'node:fs';
import path from 'node:path';
import { messageId } from '../src/shared/message-id.js';
import { describe, expect, it } from 'vitest';
import { collectEvents, createTestnet, signIn, waitFor, rawSession, signed } from './testnet.js';
import { parseRecord } from '../src/shared/connlog.js';
import type { ServerOptions } from '../src/server/server.js';

/** alice's channel on a testnet, and alice on a raw protocol link to the server. */
async function aliceOnRawLink(server: Partial<ServerOptions> = {}) {
  const net = await createTestnet({ peers: 1, server });
  await signIn(net.peers[0]!, 'alice');
  const id = (
    await net.peers[0]!.call('POST', '/api/channels', { name: 'x', allowVisitors: false })
  ).body.id as string;
  const raw = await net.rawLink();
  const alice = await rawSession(raw, { username: 'alice', password: 'alice-pw' });
  return { net, id, raw, alice };
}

describe('channels and messages', () => {
  it('creates, lists in the directory, joins, posts, and pushes live to every online member', async () => {
    const net = await createTestnet({ peers: 3 });
    const [a, b, c] = net.peers as [any, any, any];
    await signIn(a, 'alice');
    await signIn(b, 'bob');
    await signIn(c, 'carol');
    const created = await a.call('POST', '/api/channels', {
      name: 'general',
      allowVisitors: false,
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: 'general',
      owner: 'alice',
      allowVisitors: false,
      hosted: true,
      unread: 0,
    });
    const id = created.body.id;

    const dir = (await b.call('GET', '/api/directory')).body;
    expect(dir).toEqual([
      expect.objectContaining({ id, name: 'general', owner: 'alice', joined: false }),
    ]);
    expect((await b.call('POST', `/api/channels/${id}/join`)).body).toMatchObject({
      id,
      hosted: false,
    });
    await c.call('POST', `/api/channels/${id}/join`);

    const bobEvents = collectEvents(b.uiUrl);
    const carolEvents = collectEvents(c.uiUrl);
    await Promise.all([bobEvents.ready, carolEvents.ready]);

    const post = await a.call('POST', `/api/channels/${id}/messages`, { text: 'hello both' });
    expect(post).toMatchObject({ status: 201, body: { state: 'delivered' } });
    for (const ev of [bobEvents, carolEvents]) {
      const got = await waitFor(() => ev.events.find((e) => e.event === 'message'), 5000, 'push');
      expect(got.data).toMatchObject({
        channelId: id,
        message: { id: post.body.id, author: 'alice', text: 'hello both' },
      });
    }
    // The push was stored: readable without the server.
    await b.call('PUT', '/api/status', { status: 'offline' });
    const offline = (await b.call('GET', `/api/channels/${id}/messages`)).body;
    expect(offline.source).toBe('local');
    expect(offline.messages.map((m: any) => m.text)).toEqual(['hello both']);
    // Unread counts, cleared by reading.
    expect((await c.call('GET', '/api/channels')).body[0].unread).toBe(1);
    await c.call('GET', `/api/channels/${id}/messages`);
    expect((await c.call('GET', '/api/channels')).body[0].unread).toBe(0);

    const log = fs
      .readFileSync(path.join(c.dataDir, 'connections.log'), 'utf8')
      .trim()
      .split('\n')
      .map(parseRecord);
    expect(log).toContainEqual(
      // Alice hosts the channel and is online: the push came from her peer, not the server.
      expect.objectContaining({ ev: 'push', from: `host:alice@${a.p2p}`, msg: post.body.id }),
    );
    expect(log).toContainEqual(
      expect.objectContaining({ ev: 'fetch', from: `host:alice@${a.p2p}`, channel: id }),
    );
  });

  it("lists a channel's members with presence; offline and invisible members appear offline", async () => {
    const net = await createTestnet({ peers: 3 });
    const [a, b, c] = net.peers as [any, any, any];
    await signIn(a, 'alice');
    await signIn(b, 'bob');
    await signIn(c, 'carol');
    const id = (await a.call('POST', '/api/channels', { name: 'team', allowVisitors: false })).body
      .id;
    await b.call('POST', `/api/channels/${id}/join`);
    await c.call('POST', `/api/channels/${id}/join`);
    await b.call('PUT', '/api/status', { status: 'offline' });
    await c.call('PUT', '/api/status', { status: 'invisible' });
    await waitFor(async () => (await a.call('GET', '/api/peers')).body.length === 1);
    expect((await a.call('GET', `/api/channels/${id}/members`)).body).toEqual([
      { username: 'alice', status: 'online' },
      { username: 'bob', status: 'offline' },
      { username: 'carol', status: 'offline' },
    ]);
    // A user who did not join does not learn who is in a closed channel.
    const raw = await net.rawLink();
    await raw.request('register', { username: 'eve', password: 'eve-pw-1' });
    await rawSession(raw, { username: 'eve', password: 'eve-pw-1' });
    await expect(raw.request('members', { channelId: id })).rejects.toMatchObject({
      code: 'E_NOT_MEMBER',
    });
  });

  it('pages history newest first with a before cursor, each page in channel order', async () => {
    const net = await createTestnet({ peers: 2 });
    const [a, b] = net.peers as [any, any];
    await signIn(a, 'alice');
    await signIn(b, 'bob');
    const id = (await a.call('POST', '/api/channels', { name: 'log', allowVisitors: false })).body
      .id;
    await b.call('POST', `/api/channels/${id}/join`);
    for (let i = 0; i < 25; i++) {
      const who = i % 2 ? b : a;
      expect(
        (await who.call('POST', `/api/channels/${id}/messages`, { text: `m${i}` })).body.state,
      ).toBe('delivered');
    }
    const seen: string[] = [];
    let before: string | undefined;
    for (;;) {
      const q = before ? `?limit=10&before=${before}` : '?limit=10';
      const page = (await b.call('GET', `/api/channels/${id}/messages${q}`)).body;
      expect(page.source).toBe('host');
      seen.unshift(...page.messages.map((m: any) => m.text));
      if (!page.hasMore) break;
      before = page.messages[0].id;
    }
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => `m${i}`));
    // Both replicas show the same order.
    const fromA = (await a.call('GET', `/api/channels/${id}/messages?limit=100`)).body.messages.map(
      (m: any) => m.id,
    );
    const fromB = (await b.call('GET', `/api/channels/${id}/messages?limit=100`)).body.messages.map(
      (m: any) => m.id,
    );
    expect(fromA).toEqual(fromB);
  });

  it('refuses reads and posts by non-members, and bad input, with clear errors', async () => {
    const net = await createTestnet({ peers: 2 });
    const [a, b] = net.peers as [any, any];
    await signIn(a, 'alice');
    await signIn(b, 'bob');
    const id = (await a.call('POST', '/api/channels', { name: 'private', allowVisitors: false }))
      .body.id;
    expect((await b.call('GET', `/api/channels/${id}/messages`)).body.error.code).toBe(
      'E_NOT_MEMBER',
    );
    expect(
      (await b.call('POST', `/api/channels/${id}/messages`, { text: 'x' })).body.error.code,
    ).toBe('E_NOT_MEMBER');
    const raw = await net.rawLink();
    const bob = await rawSession(raw, { username: 'bob', password: 'bob-pw' });
    await expect(raw.request('history', { channelId: id, limit: 10 })).rejects.toMatchObject({
      code: 'E_NOT_MEMBER',
    });
    const message = signed(bob, {
      channelId: id,
      ts: 1,
      lc: 0,
      text: 'sneak',
    });
    await expect(raw.request('post', { message })).rejects.toMatchObject({ code: 'E_NOT_MEMBER' });
    expect((await a.call('POST', `/api/channels/${id}/messages`, { text: '   ' })).status).toBe(
      400,
    );
    expect(
      (await a.call('POST', `/api/channels/${id}/messages`, { text: 'x'.repeat(4001) })).status,
    ).toBe(400);
    expect((await a.call('POST', '/api/channels', { name: '', allowVisitors: true })).status).toBe(
      400,
    );
    expect((await a.call('GET', '/api/channels/not-a-uuid/messages')).status).toBe(400);
    expect((await a.call('GET', `/api/channels/${id}/messages?limit=0`)).status).toBe(400);
  });

  it('stores a resent message once: posts are idempotent by id', async () => {
    const { net, id, raw, alice } = await aliceOnRawLink();
    const fields = { channelId: id, ts: 5, lc: 0 };
    const message = signed(alice, { ...fields, text: 'once' });
    const first = await raw.request('post', { message });
    const again = await raw.request('post', { message });
    expect(first).toMatchObject({ duplicate: false, seq: 1 });
    expect(again).toMatchObject({ duplicate: true, seq: 1 });
    // Altered without the author's key: the signature no longer holds.
    await expect(
      raw.request('post', { message: { ...message, text: 'altered' } }),
    ).rejects.toMatchObject({ code: 'E_BAD_SIGNATURE' });
    // Re-signed by its author under the same id: the id is not the hash of the new content.
    await expect(
      raw.request('post', {
        message: signed(alice, { ...fields, id: message.id, text: 'altered' }),
      }),
    ).rejects.toMatchObject({ code: 'E_BAD_SIGNATURE', message: expect.stringContaining('id') });
    expect((await net.server.store.history(id, 10)).messages.map((m) => m.text)).toEqual(['once']);
  });

  it('checks signatures on worker threads when the server has a verify pool', async () => {
    const { net, id, raw, alice } = await aliceOnRawLink({ verifyThreads: 2 });
    const posts = Array.from({ length: 40 }, (_, i) =>
      signed(alice, {
        channelId: id,
        ts: 10 + i,
        lc: 0,
        text: `m${i}`,
      }),
    );
    // A burst (split across both threads), one forgery among them.
    const answers = await Promise.allSettled([
      ...posts.map((message) => raw.request('post', { message })),
      raw.request('post', {
        message: {
          ...posts[0]!,
          id: messageId({ ...posts[0]!, author: 'alice', text: 'forged' }),
          text: 'forged',
        },
      }),
    ]);
    expect(answers.slice(0, 40).every((a) => a.status === 'fulfilled')).toBe(true);
    expect(answers[40]).toMatchObject({ status: 'rejected', reason: { code: 'E_BAD_SIGNATURE' } });
    expect((await net.server.store.history(id, 100)).messages.map((m) => m.text).sort()).toEqual(
      posts.map((p) => p.text).sort(),
    );
  });

  it('pushes a burst from several posters once each, in order, never back to the posting session', async () => {
    const { net, id, raw, alice } = await aliceOnRawLink();
    await net.peers[0]!.call('PUT', '/api/status', { status: 'offline' }); // only raw links now
    const register = await net.rawLink();
    await register.request('register', { username: 'bob', password: 'bob-pw' });
    const bobLink = await net.rawLink();
    const bob = await rawSession(bobLink, { username: 'bob', password: 'bob-pw' });
    await bobLink.request('channel_join', { channelId: id });
    // alice's second session (another device) gets alice's messages; her posting one does not.
    const alice2Link = await net.rawLink();
    await rawSession(alice2Link, { username: 'alice', password: 'alice-pw' });
    await alice2Link.request('subscribe', { channelIds: [id] });
    await raw.request('subscribe', { channelIds: [id] });
    const pushed = (link: typeof raw) => {
      const got: Array<{ seq: number; author: string }> = [];
      link.on('event', (name: string, body: any) => {
        if (name === 'message') got.push({ seq: body.message.seq, author: body.message.author });
      });
      return got;
    };
    const [toAlice, toAlice2, toBob] = [pushed(raw), pushed(alice2Link), pushed(bobLink)];
    const post = (link: typeof raw, who: typeof alice, i: number) =>
      link.request('post', {
        message: signed(who, {
          channelId: id,
          ts: 100 + i,
          lc: 0,
          text: `${who.username} ${i}`,
        }),
      });
    // Both post without waiting, so turns hold messages of both.
    await Promise.all(
      Array.from({ length: 60 }, (_, i) => (i % 3 ? post(raw, alice, i) : post(bobLink, bob, i))),
    );
    await waitFor(() => toAlice2.length === 60 && toBob.length === 40, 5000, 'all pushes');
    await new Promise((r) => setTimeout(r, 200)); // nothing more arrives
    const seqs = (got: Array<{ seq: number }>) => got.map((m) => m.seq);
    expect(seqs(toAlice2)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(toBob.every((m) => m.author === 'alice')).toBe(true);
    expect(toAlice.every((m) => m.author === 'bob')).toBe(true);
    expect(toAlice).toHaveLength(20);
    for (const got of [toAlice, toBob])
      expect(seqs(got)).toEqual([...seqs(got)].sort((x, y) => x - y));
    expect(net.server.counts.pushed).toBe(60 + 40 + 20);
  });
});
