/**
 * A malicious member or server-side client against an honest host and the server (issue 11,
 * findings 3, 4, 5, 7, 8, 15): forged posts over P2P, messages from the future, id squatting,
 * visitor certificates passed off as users', post floods, and a revoked session's links.
 */
import { describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import {
  createTestnet,
  rawHostLink,
  rawSession,
  signIn,
  waitFor,
  type RawSession,
} from '../testnet.js';
import { sign } from './kit.js';
import { messageId } from '../../src/shared/message-id.js';
import type { ServerLink } from '../../src/peer/server-link.js';
import type { TrackerEntry } from '../../src/protocol/common.js';
import { newKeyPair } from '../../src/shared/keygen.js';

/** alice hosts "general" on her peer; bob is a member on a raw link (no peer of his own). */
async function hostedWithRawBob() {
  const net = await createTestnet({ peers: 1 });
  const alice = net.peers[0]!;
  await signIn(alice, 'alice');
  const ch = (await alice.call('POST', '/api/channels', { name: 'general', allowVisitors: false }))
    .body.id as string;
  const raw = await net.rawLink();
  await raw.request('register', { username: 'bob', password: 'bob-pw-1' });
  const bob = await rawSession(raw, { username: 'bob', password: 'bob-pw-1' });
  await raw.request('channel_join', { channelId: ch });
  await waitFor(() => alice.node.store.isMember(ch, 'bob'));
  const entry = (await raw.request('get_list', {})).peers.find((e) => e.username === 'alice')!;
  return { net, alice, ch, raw, bob, entry };
}

describe('the host checks every post exactly as the server does (finding 5)', () => {
  it('refuses tampered, uncertified, borrowed and unsigned posts over P2P', async () => {
    const { net, alice, ch, bob, entry } = await hostedWithRawBob();
    const carolRaw = await net.rawLink();
    await carolRaw.request('register', { username: 'carol', password: 'carol-pw' });
    const carol = await rawSession(carolRaw, { username: 'carol', password: 'carol-pw' });
    const link = rawHostLink(entry, bob);
    await link.start();
    const good = sign(bob, { channelId: ch, text: 'hello' });
    const tampered = { ...good, text: 'hellO' };
    tampered.id = messageId({ ...tampered, author: 'bob' });
    const selfMade = newKeyPair('ed25519');
    const fakeCert = `${Buffer.from(JSON.stringify({ typ: 'key', sid: 'x'.repeat(22), u: 'bob', r: 'user', pk: selfMade.publicKey.export({ format: 'jwk' }).x, iat: 0, exp: 9e15 })).toString('base64url')}.${'A'.repeat(86)}`;
    const forged: Array<[string, any]> = [
      ['tampered text', tampered],
      ['uncertified key', { ...good, cert: fakeCert }],
      [
        "another user's certificate",
        { ...sign(carol, { channelId: ch, text: 'x' }, { author: 'bob' }) },
      ],
      ['a token as certificate', { ...good, cert: bob.token }],
      ['an all-zero signature', { ...good, sig: Buffer.alloc(64).toString('base64url') }],
    ];
    for (const [what, message] of forged) {
      await expect(link.request('post', { message }), what).rejects.toMatchObject({
        code: 'E_BAD_SIGNATURE',
      });
    }
    expect(await link.request('post', { message: good })).toMatchObject({ duplicate: false });
    // Only the genuine one is in the primary copy, and only it reaches the server.
    expect(alice.node.store.page(ch, 50).messages.map((m) => m.text)).toEqual(['hello']);
    await waitFor(async () => (await net.server.store.history(ch, 10)).messages.length === 1);
  });
});

describe('clock skew (finding 3)', () => {
  it('the server and the host refuse a message stamped more than 60 s ahead', async () => {
    const { net, alice, ch, raw, bob, entry } = await hostedWithRawBob();
    const ahead = sign(bob, { channelId: ch, text: 'tomorrow', ts: Date.now() + 86_400_000 });
    await expect(raw.request('post', { message: ahead })).rejects.toMatchObject({
      code: 'E_CLOCK_SKEW',
    });
    const link = rawHostLink(entry, bob);
    await link.start();
    await expect(link.request('post', { message: ahead })).rejects.toMatchObject({
      code: 'E_CLOCK_SKEW',
    });
    // Within ε is fine: clocks differ a little.
    const soon = sign(bob, { channelId: ch, text: 'in 30 s', ts: Date.now() + 30_000 });
    await expect(link.request('post', { message: soon })).resolves.toMatchObject({ seq: 1 });
    expect((await net.server.store.history(ch, 10)).messages.map((m) => m.text)).not.toContain(
      'tomorrow',
    );
    // alice's clock observed "in 30 s", never "tomorrow": her next post is before tomorrow.
    const mine = await alice.call('POST', `/api/channels/${ch}/messages`, { text: 'mine' });
    expect(alice.node.store.getMessage(mine.body.id)!.ts).toBeLessThan(Date.now() + 61_000);
  });
});

describe('message ids belong to their content (finding 7)', () => {
  it("a member cannot squat another author's id in its own channel, so the real one is never refused", async () => {
    const { net, alice, ch, raw, bob } = await hostedWithRawBob();
    // bob owns a channel of his own where he may post anything.
    const mine = await raw.request('channel_create', {
      id: uuidv7(),
      name: 'bobs',
      allowVisitors: false,
    });
    // alice writes while the server cannot see it yet: bob learns the id first (a push).
    await alice.call('PUT', '/api/status', { status: 'offline' });
    const posted = await alice.call('POST', `/api/channels/${ch}/messages`, {
      text: 'alice speaks',
    });
    const id = posted.body.id as string;
    // bob posts his own message under that id, signed by him: refused, it is not his content.
    const squat = sign(bob, { channelId: mine.id, text: 'squatted' }, { id });
    await expect(raw.request('post', { message: squat })).rejects.toMatchObject({
      code: 'E_BAD_SIGNATURE',
      message: expect.stringContaining('id'),
    });
    // alice's message reaches the backup with its own id.
    await alice.call('PUT', '/api/status', { status: 'online' });
    await waitFor(
      async () => (await net.server.store.history(ch, 10)).messages.some((m) => m.id === id),
      10_000,
    );
    // ...and alice hears so (her outbox marks it delivered once the server's answer is in).
    await waitFor(() => alice.node.store.getMessage(id)!.state === 'delivered', 10_000);
  });
});

describe('certificates name an account, not a bare name (finding 8)', () => {
  it('a visitor certificate taken under a future username never signs as that user', async () => {
    const net = await createTestnet({ peers: 1 });
    const alice = net.peers[0]!;
    await signIn(alice, 'alice');
    const ch = (await alice.call('POST', '/api/channels', { name: 'lobby', allowVisitors: true }))
      .body.id as string;
    const vlink = await net.rawLink();
    const early = await rawSession(vlink, { name: 'zed' }); // a visitor takes the name first
    const reg = await net.rawLink();
    await reg.request('register', { username: 'zed', password: 'zed-pw-1' });
    const zedLink = await net.rawLink();
    await rawSession(zedLink, { username: 'zed', password: 'zed-pw-1' });
    await zedLink.request('channel_join', { channelId: ch });
    // The visitor's certificate, used as if it were the user zed's: the server refuses it...
    const fake = sign(early, { channelId: ch, text: 'zed never wrote this' });
    await expect(zedLink.request('post', { message: fake })).rejects.toMatchObject({
      code: 'E_BAD_SIGNATURE',
      message: expect.stringContaining('visitor'),
    });
    // ...and so does every member that is handed it.
    const bad = (alice.node as any).verifier.check({ ...fake, author: 'zed' });
    expect(bad?.code).toBe('E_BAD_SIGNATURE');
  });
});

/** Posts `n` messages as `s` without waiting for answers; the settled outcomes. */
async function flood(link: ServerLink, s: RawSession, channelId: string, n: number) {
  const now = Date.now();
  return Promise.allSettled(
    Array.from({ length: n }, (_, i) =>
      link.request('post', { message: sign(s, { channelId, text: `flood ${i}`, ts: now, lc: i }) }),
    ),
  );
}

describe('post rate limits (finding 15)', () => {
  it('one user flooding gets E_RATE_LIMITED with a retry time; others are still served promptly', async () => {
    const { net, alice, ch, raw, bob } = await hostedWithRawBob();
    await alice.call('PUT', '/api/status', { status: 'offline' }); // bob posts to the server
    const carolLink = await net.rawLink();
    await carolLink.request('register', { username: 'carol', password: 'carol-pw' });
    const carol = await rawSession(carolLink, { username: 'carol', password: 'carol-pw' });
    await carolLink.request('channel_join', { channelId: ch });
    let n = 0;
    /** carol's post latency, median of 7, in ms. */
    const carolMedian = async () => {
      const ms: number[] = [];
      for (let i = 0; i < 7; i++) {
        const t = performance.now();
        await carolLink.request('post', {
          message: sign(carol, { channelId: ch, text: `carol ${n++}` }),
        });
        ms.push(performance.now() - t);
      }
      return ms.sort((a, b) => a - b)[3]!;
    };
    const baseline = await carolMedian();
    const t0 = Date.now();
    const flooding = flood(raw, bob, ch, 3000);
    const during = await carolMedian();
    const results = await flooding;
    const seconds = (Date.now() - t0) / 1000;
    const limited = results.filter((r) => r.status === 'rejected');
    expect(limited.length).toBeGreaterThan(2000);
    expect((limited[0] as PromiseRejectedResult).reason).toMatchObject({
      code: 'E_RATE_LIMITED',
      retryAfterMs: expect.any(Number),
    });
    const fromBob = (await net.server.store.since(ch, 0, 5000)).filter(
      (m) => m.author === 'bob',
    ).length;
    // The burst of 500, and 50 a second while the flood lasted.
    expect(fromBob).toBeLessThanOrEqual(500 + Math.ceil(50 * seconds) + 1);
    // carol is served within twice her usual time, or 1 s: the flood's 3,000 refusals are
    // answered in turn with hers (and this test process signs and reads them all too), so
    // measured here she waits 40-60 ms instead of 1 ms on a quiet machine, and above 200 ms in a
    // loaded CI run (seen twice). Before the limit, all 3,000 were checked and stored ahead of
    // her: seconds. The bound tells the two apart without timing the machine's load.
    console.log(
      `carol's post latency: ${baseline.toFixed(1)} ms before, ${during.toFixed(1)} ms during`,
    );
    expect(during).toBeLessThanOrEqual(Math.max(2 * baseline, 1000));
  });
});

describe('revoked sessions (finding 4)', () => {
  it('a host drops the P2P links of a session that logged out and refuses its handshake', async () => {
    const { net, alice, raw, bob, entry } = await hostedWithRawBob();
    const link = rawHostLink(entry, bob);
    await link.start();
    expect(link.connected).toBe(true);
    const down = new Promise((r) => link.once('down', r));
    await raw.request('logout', {});
    await down;
    const again = rawHostLink(entry, bob);
    const failed = new Promise<unknown>((r) => again.once('down', r));
    await again.start();
    expect(await failed).toMatchObject({ code: 'E_SESSION_INVALID' });
    // And the server keeps the revoked key out: a host (alice, on a second session of hers)
    // forwarding a message it signed after the logout is refused; one from before is not.
    const aliceRaw = await net.rawLink();
    await rawSession(aliceRaw, { username: 'alice', password: 'alice-pw' });
    const ch = alice.node.store.hostedIds()[0]!;
    const before = sign(bob, { channelId: ch, text: 'before logout', ts: Date.now() - 60_000 });
    await new Promise((r) => setTimeout(r, 5));
    const after = sign(bob, { channelId: ch, text: 'with a stolen key' });
    const { results } = await aliceRaw.request('forward', {
      messages: [
        { ...before, author: 'bob' },
        { ...after, author: 'bob' },
      ],
    });
    expect(results[0]).toMatchObject({ seq: expect.any(Number) });
    expect(results[1]).toMatchObject({
      error: { code: 'E_BAD_SIGNATURE', message: expect.stringContaining('revoked') },
    });
  });
});

/** Opens a P2P link from a raw session to a host: 'up', or the code it was refused with. */
async function handshake(entry: TrackerEntry, s: RawSession): Promise<string> {
  const link = rawHostLink(entry, s);
  const result = new Promise<string>((resolve) => {
    link.once('up', () => resolve('up'));
    link.once('down', (reason?: { code?: string }) => resolve(reason?.code ?? 'down'));
  });
  await link.start();
  const r = await result;
  link.stop();
  return r;
}

describe('a revocation the host did not hear of (outside attacker: revoked-cert)', () => {
  it('a host that was offline at the logout refuses the revoked session once back', async () => {
    const { net, alice, raw, bob, entry } = await hostedWithRawBob();
    expect(await handshake(entry, bob)).toBe('up');
    await alice.call('PUT', '/api/status', { status: 'offline' });
    await raw.request('logout', {}); // alice's peer is not connected: no session_revoked reaches it
    // bob, on another session (still live), sees alice come back.
    const raw2 = await net.rawLink();
    const bob2 = await rawSession(raw2, { username: 'bob', password: 'bob-pw-1' });
    await alice.call('PUT', '/api/status', { status: 'online' });
    const back = await waitFor(
      async () => (await raw2.request('get_list', {})).peers.find((e) => e.username === 'alice'),
      10_000,
      "alice's entry again",
    );
    // The logged-out session's certificate and key are refused; the live session is not.
    expect(await handshake(back, bob)).toBe('E_SESSION_INVALID');
    expect(await handshake(back, bob2)).toBe('up');
  });

  it('a logout made while the user shared no channel with the host ends its links once it joins again (outside attacker F2)', async () => {
    const { net, alice, ch, raw, bob, entry } = await hostedWithRawBob();
    // bob's first session S1 has a link up; his second, S2, is live on another connection.
    const s1 = rawHostLink(entry, bob);
    await s1.start();
    expect(s1.connected).toBe(true);
    const raw2 = await net.rawLink();
    await rawSession(raw2, { username: 'bob', password: 'bob-pw-1' });
    // bob leaves alice's only channel, then S1 logs out: alice shares no channel with bob, so no
    // session_revoked reaches her (PROTOCOL §3.5); then bob joins again from S2.
    await raw2.request('channel_leave', { channelId: ch });
    await waitFor(() => !alice.node.store.isMember(ch, 'bob'));
    const down = new Promise<any>((r) => s1.once('down', r));
    await raw.request('logout', {});
    await raw2.request('channel_join', { channelId: ch });
    await waitFor(() => alice.node.store.isMember(ch, 'bob'));
    // The revoked session's open link is closed, and its key may not dial again.
    expect(
      await Promise.race([down, new Promise((r) => setTimeout(() => r('still up'), 5000))]),
    ).toMatchObject({
      code: 'E_SESSION_INVALID',
    });
    expect(await handshake(entry, bob)).toBe('E_SESSION_INVALID');
  });

  it('a host keeps what it learnt across a restart, even with the server down', async () => {
    const { net, alice, raw, bob, entry } = await hostedWithRawBob();
    await raw.request('logout', {});
    expect(await handshake(entry, bob)).toBe('E_SESSION_INVALID'); // heard live
    await net.server.close();
    const again = await net.restartPeer(alice);
    const [ip, port] = again.p2p.split(':') as [string, string];
    expect(await handshake({ ...entry, ip, port: Number(port) }, bob)).toBe('E_SESSION_INVALID');
  });
});

describe('per-account caps (finding 1)', () => {
  it('an account owns and joins a bounded number of channels, and keeps at most 10 live sessions', async () => {
    const net = await createTestnet({
      server: { channelsPerAccount: 3, membershipsPerAccount: 4 },
    });
    const reg = await net.rawLink();
    await reg.request('register', { username: 'hoarder', password: 'hoarder-pw' });
    const tokens: string[] = [];
    const links: ServerLink[] = [];
    for (let i = 0; i < 11; i++) {
      const l = await net.rawLink();
      tokens.push((await rawSession(l, { username: 'hoarder', password: 'hoarder-pw' })).token);
      links.push(l);
    }
    // The 11th login retired the oldest session: its token no longer resumes.
    const again = await net.rawLink();
    await expect(again.request('resume', { token: tokens[0]! })).rejects.toMatchObject({
      code: 'E_SESSION_INVALID',
    });
    const last = links[10]!;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push(
        (await last.request('channel_create', { id: uuidv7(), name: `c${i}`, allowVisitors: true }))
          .id,
      );
    await expect(
      last.request('channel_create', { id: uuidv7(), name: 'c3', allowVisitors: true }),
    ).rejects.toMatchObject({ code: 'E_FORBIDDEN' });
    // Joined channels count too: 3 owned + 1 joined, then no more.
    const other = await net.rawLink();
    await other.request('register', { username: 'owner', password: 'owner-pw' });
    await rawSession(other, { username: 'owner', password: 'owner-pw' });
    const theirs = [];
    for (let i = 0; i < 2; i++)
      theirs.push(
        (
          await other.request('channel_create', {
            id: uuidv7(),
            name: `o${i}`,
            allowVisitors: true,
          })
        ).id,
      );
    await last.request('channel_join', { channelId: theirs[0]! });
    await expect(last.request('channel_join', { channelId: theirs[1]! })).rejects.toMatchObject({
      code: 'E_FORBIDDEN',
    });
    expect((await last.request('my_channels', {})).channels).toHaveLength(4);
  });
});

describe('presence floods (outside attacker, tracker-flood)', () => {
  it('a member toggling its status cannot flood its co-members with presence events', async () => {
    const net = await createTestnet();
    const reg = await net.rawLink();
    for (const u of ['mallory', 'victim'])
      await reg.request('register', { username: u, password: `${u}-pw-1` });
    const m = await net.rawLink();
    await rawSession(m, { username: 'mallory', password: 'mallory-pw-1' });
    const v = await net.rawLink();
    await rawSession(v, { username: 'victim', password: 'victim-pw-1' });
    const ch = await m.request('channel_create', {
      id: uuidv7(),
      name: 'both',
      allowVisitors: false,
    });
    await v.request('channel_join', { channelId: ch.id });
    let events = 0;
    v.on('event', (name: string) => {
      if (name === 'peer_joined' || name === 'peer_left') events++;
    });
    await m.request('submit_info', { ip: '127.0.0.1', port: 9, udpPort: 9, status: 'online' });
    const t0 = Date.now();
    const answers = await Promise.allSettled(
      Array.from({ length: 2000 }, (_, i) =>
        m.request('set_status', { status: i % 2 ? 'online' : 'invisible' }),
      ),
    );
    const seconds = (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 300));
    const accepted = answers.filter((a) => a.status === 'fulfilled').length;
    expect(answers.find((a) => a.status === 'rejected')).toMatchObject({
      reason: { code: 'E_RATE_LIMITED' },
    });
    // At most the burst (20, the submit_info included) and 2 a second: not 2,000 events.
    expect(accepted).toBeLessThanOrEqual(20 + Math.ceil(2 * seconds));
    expect(events).toBeLessThanOrEqual(21 + Math.ceil(2 * seconds));
  });
});
