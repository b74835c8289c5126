/**
 * Channel hosting beyond the five scenarios: forged and altered messages are refused by members
 * and by the server; the host checks visitors and non-members itself; an invisible host's
 * channels are served through the server without revealing it.
 */
import { describe, expect, it } from 'vitest';
import {
  createTestnet,
  rawHostLink,
  rawSession,
  signIn,
  signed,
  waitFor,
  peerLog as log,
  type TestPeer,
} from './testnet.js';
import { messageId } from '../src/shared/message-id.js';
import type { StoredMessage } from '../src/protocol/common.js';

async function texts(p: TestPeer, ch: string) {
  const r = (await p.call('GET', `/api/channels/${ch}/messages`)).body;
  return { texts: r.messages.map((m: any) => m.text), source: r.source };
}

/** alice hosts a channel that bob joined; bob reads it from alice's peer. */
async function hosted(allowVisitors = false) {
  const net = await createTestnet({ peers: 3 });
  const [alice, bob] = net.peers as [TestPeer, TestPeer, TestPeer];
  await signIn(alice, 'alice');
  await signIn(bob, 'bob');
  const ch = (await alice.call('POST', '/api/channels', { name: 'general', allowVisitors })).body
    .id as string;
  await bob.call('POST', `/api/channels/${ch}/join`);
  await waitFor(async () => (await texts(bob, ch)).source === 'host');
  return { net, alice, bob, third: net.peers[2]!, ch };
}

describe('forgery', () => {
  it('members refuse a message the host altered or invented, and log why', async () => {
    const { alice, bob, ch } = await hosted();
    const publish = alice.node.hostService.publish.bind(alice.node.hostService);
    // A tampering host: alters what it relays, and invents a message "from" bob.
    // It even recomputes the content-derived ids, so that only the signatures can give it away.
    alice.node.hostService.publish = (m: StoredMessage, except?: any) => {
      const altered = { ...m, text: `${m.text} (edited by the host)` };
      publish({ ...altered, id: messageId(altered) }, except);
      const invented = { ...m, author: 'bob', text: 'bob never said this' };
      publish({ ...invented, id: messageId(invented) }, except);
    };
    await alice.call('POST', `/api/channels/${ch}/messages`, { text: 'hello' });
    await waitFor(() => log(bob).filter((r) => r.ev === 'refused').length >= 2);
    const refused = log(bob).filter((r) => r.ev === 'refused');
    expect(
      refused.every((r) => r.code === 'E_BAD_SIGNATURE' && r.from === `host:alice@${alice.p2p}`),
    ).toBe(true);
    expect(refused.map((r) => r.reason)).toEqual(
      expect.arrayContaining([
        expect.stringContaining('signature does not match'),
        expect.stringContaining("alice's, message claims bob"),
      ]),
    );
    const seen = (await texts(bob, ch)).texts;
    expect(seen).not.toContain('hello (edited by the host)');
    expect(seen).not.toContain('bob never said this');
  });

  it("the server refuses forwarded messages that the host altered or wrote in a member's name", async () => {
    const { net, bob, ch } = await hosted();
    const raw = await net.rawLink();
    const alice = await rawSession(raw, { username: 'alice', password: 'alice-pw' });
    const bobRaw = await net.rawLink();
    const bobSession = await rawSession(bobRaw, { username: 'bob', password: 'bob-pw' });
    const genuine = signed(bobSession, {
      channelId: ch,
      ts: 10,
      lc: 0,
      text: 'genuine',
    });
    const invented = signed(alice, {
      channelId: ch,
      ts: 11,
      lc: 0,
      text: "in bob's name",
    });
    const { results } = await raw.request('forward', {
      messages: [
        { ...genuine, author: 'bob', text: 'altered' },
        { ...invented, author: 'bob' },
        { ...genuine, author: 'bob' },
      ],
    });
    expect(results[0]).toMatchObject({ error: { code: 'E_BAD_SIGNATURE' } });
    expect(results[1]).toMatchObject({ error: { code: 'E_BAD_SIGNATURE' } });
    expect(results[2]).toMatchObject({ seq: expect.any(Number), duplicate: false });
    expect((await net.server.store.history(ch, 10)).messages.map((m) => m.text)).toEqual([
      'genuine',
    ]);
    // Only the channel's owner may forward at all.
    await expect(
      bobRaw.request('forward', { messages: [{ ...genuine, author: 'bob' }] }),
    ).resolves.toMatchObject({
      results: [{ error: { code: 'E_FORBIDDEN' } }],
    });
    expect(bob).toBeDefined();
  });
});

describe('the host checks rights itself', () => {
  it('visitors read a channel that allows them from the host, and the host refuses their writes', async () => {
    const { net, alice, third, ch } = await hosted(true);
    await alice.call('POST', `/api/channels/${ch}/messages`, { text: 'welcome' });
    expect((await third.call('POST', '/api/visitor', { name: 'guest' })).status).toBe(200);
    await third.call('POST', `/api/channels/${ch}/join`);
    await waitFor(
      async () =>
        JSON.stringify(await texts(third, ch)) ===
        JSON.stringify({ texts: ['welcome'], source: 'host' }),
    );

    // A visitor client that skips its own peer's checks talks to the host directly.
    const raw = await net.rawLink();
    const guest = await rawSession(raw, { name: 'mallory' });
    // A visitor sees the host of a channel it views (PROTOCOL.md §3.5).
    await raw.request('channel_join', { channelId: ch });
    const entry = (await raw.request('get_list', {})).peers.find((e) => e.username === 'alice')!;
    const link = rawHostLink(entry, guest);
    await link.start();
    try {
      expect((await link.request('subscribe', { channelIds: [ch] })).channelIds).toEqual([ch]);
      const message = signed(guest, {
        channelId: ch,
        ts: 1,
        lc: 0,
        text: 'spam',
      });
      await expect(link.request('post', { message })).rejects.toMatchObject({
        code: 'E_VISITOR_READ_ONLY',
      });
    } finally {
      link.stop();
    }
    expect((await texts(alice, ch)).texts).toEqual(['welcome']);
  });

  it('refuses non-members and hides channels that do not allow visitors', async () => {
    const { net, ch } = await hosted(false);
    const raw = await net.rawLink();
    await raw.request('register', { username: 'eve', password: 'eve-pw-1' });
    const eve = await rawSession(raw, { username: 'eve', password: 'eve-pw-1' });
    // The tracker no longer shows eve the host of a channel she is not in (PROTOCOL.md §3.5);
    // she may know its address anyway.
    expect((await raw.request('get_list', {})).peers.map((e) => e.username)).not.toContain('alice');
    const entry = net.server.tracker.entriesOf('alice', 'user')[0]!;
    const link = rawHostLink(entry, eve);
    await link.start();
    try {
      expect((await link.request('subscribe', { channelIds: [ch] })).channelIds).toEqual([]);
      await expect(
        link.request('sync', { channelId: ch, since: 0, limit: 10 }),
      ).rejects.toMatchObject({ code: 'E_NOT_MEMBER' });
      const message = signed(eve, {
        channelId: ch,
        ts: 1,
        lc: 0,
        text: 'hi',
      });
      await expect(link.request('post', { message })).rejects.toMatchObject({
        code: 'E_NOT_MEMBER',
      });
    } finally {
      link.stop();
    }
    const visitorRaw = await net.rawLink();
    const v = await rawSession(visitorRaw, { name: 'peeker' });
    const vlink = rawHostLink(entry, v);
    await vlink.start();
    try {
      await expect(vlink.request('history', { channelId: ch, limit: 10 })).rejects.toMatchObject({
        code: 'E_CHANNEL_NOT_FOUND',
      });
    } finally {
      vlink.stop();
    }
  });

  it('checks a member who joins while the host is online at once (member_joined)', async () => {
    const { alice, third, ch } = await hosted(false);
    await signIn(third, 'carol');
    await third.call('POST', `/api/channels/${ch}/join`);
    await waitFor(async () => (await texts(third, ch)).source === 'host');
    const r = await third.call('POST', `/api/channels/${ch}/messages`, { text: 'carol here' });
    expect(r.body.state).toBe('delivered');
    expect((await texts(alice, ch)).texts).toEqual(['carol here']);
  });
});

describe('invisible host', () => {
  it('serves its channels through the server and never appears to members', async () => {
    const { net, alice, bob, ch } = await hosted(false);
    await alice.call('PUT', '/api/status', { status: 'invisible' });
    await waitFor(async () => (await texts(bob, ch)).source === 'server');
    expect((await bob.call('GET', '/api/peers')).body.map((e: any) => e.username)).toEqual(['bob']);
    const a = await alice.call('POST', `/api/channels/${ch}/messages`, {
      text: 'from the shadows',
    });
    expect(a.body.state).toBe('delivered'); // the server has its backup
    await waitFor(async () => (await texts(bob, ch)).texts.includes('from the shadows'));
    await bob.call('POST', `/api/channels/${ch}/messages`, { text: 'hello?' });
    await waitFor(async () => (await texts(alice, ch)).texts.includes('hello?'));
    expect((await texts(alice, ch)).texts).toEqual(['from the shadows', 'hello?']);
    expect(log(bob).some((r) => r.ev === 'open' && String(r.peer).startsWith('host:alice'))).toBe(
      true,
    ); // before
    const opensAfter = log(bob).filter(
      (r) => r.ev === 'open' && String(r.peer).startsWith('host:alice'),
    );
    expect(opensAfter).toHaveLength(1);
    expect((await net.server.store.history(ch, 10)).messages.map((m) => m.text)).toEqual([
      'from the shadows',
      'hello?',
    ]);
  });
});

describe("the owner's other devices", () => {
  it('read the channel from its host, also after the host restarts or creates it later (outside new user 2)', async () => {
    const net = await createTestnet({ peers: 3 });
    const [a, a2, b] = net.peers as [TestPeer, TestPeer, TestPeer];
    await signIn(a, 'alice');
    // alice's second device logs in before the channel exists: it hears of its host by push.
    expect(
      (await a2.call('POST', '/api/login', { username: 'alice', password: 'alice-pw' })).status,
    ).toBe(200);
    await signIn(b, 'bob');
    const ch = (await a.call('POST', '/api/channels', { name: 'home', allowVisitors: false })).body
      .id as string;
    expect((await b.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
    const source = async (p: TestPeer) =>
      (await p.call('GET', `/api/channels/${ch}/messages`)).body.source;
    await waitFor(
      async () => (await source(a2)) === 'host' && (await source(b)) === 'host',
      15_000,
      "both read alice's channel from her host",
    );
    const again = await net.restartPeer(a);
    await waitFor(async () => (await source(b)) === 'host', 20_000, 'bob back on the host');
    await waitFor(async () => (await source(a2)) === 'host', 20_000, "alice's device back on it");
    // And what she writes there reaches her other device from it.
    const m = await again.call('POST', `/api/channels/${ch}/messages`, { text: 'from home' });
    await waitFor(
      async () =>
        ((await a2.call('GET', `/api/channels/${ch}/messages`)).body.messages as any[]).some(
          (x) => x.id === m.body.id,
        ),
      10_000,
      'the message on her other device',
    );
  }, 60_000);
});
