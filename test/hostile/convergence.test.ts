/**
 * Convergence when the server link fails at the worst moment (issue 11, "Convergence at scale"),
 * played deterministically with in-process peers on 127.0.0.1:
 * - a member whose link to the channel's host comes up while the server goes away still catches
 *   up from the host (random schedule 760 of seed -142747209 left it without server seq 2);
 * - a status chosen while the server is unreachable is kept and applied on reconnect: the user
 *   never shows online to anyone after the server is back;
 * - a removal a member got from the host is not undone by the channel list the server gave
 *   before it stored that removal (random schedule "restartServer, then removeCarol" of seed
 *   -1056220379, once the server's framed port opened later).
 */
import { describe, expect, it } from 'vitest';
import { HchatError } from '../../src/protocol/errors.js';
import { collectEvents, createTestnet, signIn, waitFor } from '../testnet.js';

describe('convergence when the server link fails mid-way', () => {
  it('a member whose host link comes up as the server restarts catches up from the host', async () => {
    const net = await createTestnet({ peers: 3 });
    const [alice, bob, carol] = net.peers as [any, any, any];
    await signIn(alice, 'alice');
    await signIn(bob, 'bob');
    await signIn(carol, 'carol');
    const ch = (await alice.call('POST', '/api/channels', { name: 'g', allowVisitors: false }))
      .body;
    await bob.call('POST', `/api/channels/${ch.id}/join`);
    await carol.call('POST', `/api/channels/${ch.id}/join`);

    // carol is away while bob writes: she must fetch both messages when she comes back.
    expect((await carol.call('PUT', '/api/status', { status: 'offline' })).status).toBe(200);
    for (const text of ['one', 'two'])
      expect((await bob.call('POST', `/api/channels/${ch.id}/messages`, { text })).status).toBe(
        201,
      );
    await waitFor(async () => (await net.server.store.history(ch.id, 10)).messages.length === 2);

    // The server goes away exactly when carol's host link is up and she tells the server to stop
    // pushing the channel (it is read from the host now): that request fails with the link.
    const link = carol.node.link;
    const request = link.request.bind(link);
    let dropped = 0;
    link.request = ((op: string, body: any, timeoutMs?: number) => {
      if (op === 'subscribe' && dropped === 0 && !body.channelIds.includes(ch.id)) {
        dropped++;
        return net.restartServer().then(() => {
          throw new HchatError('E_CONNECTION_CLOSED');
        });
      }
      return request(op as any, body, timeoutMs);
    }) as typeof link.request;

    expect((await carol.call('PUT', '/api/status', { status: 'online' })).status).toBe(200);
    await waitFor(() => dropped === 1, 10_000, 'the server to go away mid-way');
    const held = () => carol.node.store.page(ch.id, 10).messages.map((m: any) => m.text);
    // Unfixed: carol held 0 of the 2 for good (no catch-up from the host, no push from the server).
    await waitFor(
      () => held().length === 2,
      10_000,
      () => `carol to hold both messages (holds ${JSON.stringify(held())})`,
    );
    expect(held()).toEqual(['one', 'two']);
  }, 40_000);

  it('"invisible" chosen while the server is down answers 200 and is applied on reconnect', async () => {
    const net = await createTestnet({ peers: 2 });
    const [alice, carol] = net.peers as [any, any];
    await signIn(alice, 'alice');
    await signIn(carol, 'carol');
    // They share a channel: only then do they see each other in the tracker (PROTOCOL §3.5).
    const shared = await alice.call('POST', '/api/channels', {
      name: 'both',
      allowVisitors: false,
    });
    await carol.call('POST', `/api/channels/${shared.body.id}/join`);
    const seesCarol = async () =>
      ((await alice.call('GET', '/api/peers')).body as any[]).some((p) => p.username === 'carol');
    await waitFor(seesCarol, 10_000, 'alice to see carol online');
    const events = collectEvents(alice.uiUrl);
    await events.ready;

    // carol picks invisible; the server dies as her change is on its way (as a SIGKILL does
    // before her link notices): the server never answers it.
    const link = carol.node.link;
    const request = link.request.bind(link);
    let dropped = 0;
    link.request = ((op: string, body: any, timeoutMs?: number) => {
      if (op === 'submit_info' && dropped === 0) {
        dropped++;
        return net.server.close().then(() => request(op as any, body, timeoutMs));
      }
      return request(op as any, body, timeoutMs);
    }) as typeof link.request;
    // Unfixed: 503 E_CONNECTION_CLOSED, and carol showed online again once the server was back.
    const answer = await carol.call('PUT', '/api/status', { status: 'invisible' });
    expect(dropped).toBe(1);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ status: 'invisible' });
    expect((await carol.call('GET', '/api/me')).body.status).toBe('invisible');

    // From the restart on, the server's tracker never holds a public entry of carol's.
    const shown: string[] = [];
    const since = events.events.length;
    await net.restartServer();
    const upsert = net.server.tracker.upsert.bind(net.server.tracker);
    net.server.tracker.upsert = (e) => {
      if (e.username === 'carol') shown.push(e.status);
      return upsert(e);
    };

    // Both back and announced: carol's entry is on the tracker, as invisible. (Her announce may
    // come before the line above: the framed port listens before the server has finished
    // starting, so `shown` may miss it; the tracker's entry and alice's events below do not.)
    await waitFor(
      () => net.server.tracker.entriesOf('carol', 'user').length > 0,
      10_000,
      'carol to announce herself again',
    );
    await waitFor(
      async () => (await alice.call('GET', '/api/peers')).status === 200,
      10_000,
      'alice to be back',
    );
    expect(shown.every((s) => s === 'invisible')).toBe(true);
    expect(await seesCarol()).toBe(false);
    expect(
      net.server.tracker.entriesOf('carol', 'user').every((e) => e.status === 'invisible'),
    ).toBe(true);
    const joined = events.events
      .slice(since)
      .filter(
        (e) =>
          e.event === 'presence' && e.data.peer?.username === 'carol' && e.data.kind === 'joined',
      );
    expect(joined).toEqual([]);
  }, 40_000);

  it('a removal held from the host is not undone by a channel list read before the server had it', async () => {
    const net = await createTestnet({ peers: 2 });
    const [alice, carol] = net.peers as [any, any];
    await signIn(alice, 'alice');
    await signIn(carol, 'carol');
    const ch = (await alice.call('POST', '/api/channels', { name: 'g', allowVisitors: false }))
      .body;
    await carol.call('POST', `/api/channels/${ch.id}/join`);
    await waitFor(() => carol.node.sources.linkFor(ch.id), 10_000, "carol's link to the host");

    // carol's next channel list is read from the server at once, then held until the owner's
    // removal has reached her from the host: the list says she is a member, the item says not.
    const link = carol.node.link;
    const request = link.request.bind(link);
    let stale = 0;
    let removal: string | undefined;
    link.request = ((op: string, body: any, timeoutMs?: number) => {
      if (op !== 'my_channels' || stale > 0) return request(op as any, body, timeoutMs);
      stale++;
      return request(op as any, body, timeoutMs).then(async (list: any) => {
        expect(list.channels.map((c: any) => c.id)).toContain(ch.id);
        await waitFor(
          () => removal && carol.node.store.getMessage(removal),
          10_000,
          'the removal to reach carol from the host',
        );
        stale++;
        return list;
      });
    }) as typeof link.request;

    await net.restartServer(); // carol's session resumes: her channel list is read again
    await waitFor(() => stale === 1, 10_000, "carol's channel list read");
    const removed = await alice.call('DELETE', `/api/channels/${ch.id}/members/carol`);
    expect(removed.status).toBe(200);
    removal = removed.body.id;
    await waitFor(() => stale === 2, 10_000, 'the stale list handed back');
    const lists = async () =>
      ((await carol.call('GET', '/api/channels')).body as any[]).some((c) => c.id === ch.id);
    // Unfixed: the stale list brought the channel back, for good.
    await waitFor(async () => !(await lists()), 5000, 'carol no longer lists it');
    await new Promise((r) => setTimeout(r, 500));
    expect(await lists()).toBe(false);
  }, 40_000);
});
