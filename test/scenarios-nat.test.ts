/**
 * The synchronization scenarios of test/scenarios.ts across NATs (issue 18), in the namespace
 * world of test/netns.ts: the server on the internet, alice (the host) behind a cone NAT, bob
 * behind another cone NAT (his link to alice is a punched hole) and carol behind a symmetric NAT
 * (hers goes through the server's relay). Each scenario asserts exactly what it does on
 * 127.0.0.1, `host:alice@…` sources included.
 * In scenario 3 bob's video comes through holes punched in both NATs, carol's through a media
 * tunnel in the server's relay (her NAT draws ports): the server's framed port still carries no
 * media, and the relay counts what it passed as `kind=media`.
 */
import { describe, expect, it } from 'vitest';
import type { NatSpec } from './netns.js';
import { waitFor } from './testnet.js';
import { hostedChannel, startSwarm, type Swarm } from './swarm.js';
import {
  hostGoesOffline,
  hostGoesOnline,
  joinedUserGoesOffline,
  joinedUserGoesOnline,
  livestream,
  post,
  postedToWhenLogged,
  sigkilledHost,
} from './scenarios.js';

/** alice's, bob's and carol's homes. */
const HOMES: NatSpec[] = [{}, {}, { symmetric: true }];

/** A fresh swarm across NATs with alice's channel, then `scenario` on it. */
const play = (scenario: (s: Swarm, ch: string) => Promise<void>) => async () => {
  const s = await startSwarm(['alice', 'bob', 'carol'], { nat: HOMES });
  const ch = await hostedChannel(s);
  assertLinks(s);
  await scenario(s, ch);
};

/**
 * Every link a member opened to alice's peer went a way its NAT allows, and each has one: bob's
 * punched (or relayed after a punch that failed, as when alice's peer was still starting and did
 * not answer), carol's always relayed (her NAT draws ports: no punch is tried).
 */
function assertLinks(s: Swarm): void {
  const host = `host:alice@${s.peers.alice!.p2p}`;
  const opens = (name: string) =>
    s
      .log(name)
      .filter((r) => r.ev === 'open' && r.peer === host)
      .map((r) => r.via);
  const bob = opens('bob');
  expect(bob.length, `bob's links to ${host}`).toBeGreaterThan(0);
  const failedPunches = s.log('bob').filter((r) => r.ev === 'punch' && r.result === 'failed');
  expect(bob.filter((v) => v !== 'punched').length).toBeLessThanOrEqual(failedPunches.length);
  for (const v of bob) expect(['punched', 'relay']).toContain(v);
  const carol = opens('carol');
  expect(carol.length, `carol's links to ${host}`).toBeGreaterThan(0);
  expect(carol).toEqual(carol.map(() => 'relay'));
  expect(s.log('carol').filter((r) => r.ev === 'punch')).toEqual([]);
}

describe('synchronization scenarios across NATs (alice and bob behind cone NATs, carol behind a symmetric one)', () => {
  it(
    '1. host goes offline: members switch to the server, which serves what the host had synced',
    play(hostGoesOffline),
  );

  it(
    '3. livestream period: chat flows P2P through the host; bob’s video through punched holes, carol’s through a media tunnel in the relay',
    play(async (s, ch) => {
      await livestream(s, ch);
      expect(s.log('bob').some((r) => r.ev === 'media_tunnel')).toBe(false);
      expect(s.log('carol')).toContainEqual(
        expect.objectContaining({ ev: 'media_tunnel', side: 'child', peer: 'alice' }),
      );
      expect(s.log('server')).toContainEqual(
        expect.objectContaining({ ev: 'relay_open', kind: 'media' }),
      );
    }),
  );

  it(
    '2. host goes online: members switch back to P2P, bob through a punched hole and carol through the relay',
    play(async (s, ch) => {
      await hostGoesOnline(s, ch);
      // The links alice's return opened went the same ways as the first ones.
      assertLinks(s);
      // The server (its counters read on the internet) took B from bob and A, C and D from the
      // host, each once, whichever way the members' posts reached the host.
      expect((await s.serverStats()).messages).toMatchObject({
        posted: 1,
        forwarded: 3,
        duplicates: 0,
      });
    }),
  );

  it(
    '4. joined user goes online: catches up from the host, and its outbox reaches everyone once',
    play(joinedUserGoesOnline),
  );

  it(
    '5. joined user goes offline: writes stay local, survive SIGKILL, and nobody sees them until it is back',
    play(joinedUserGoesOffline),
  );

  it('4 after a network cut: what bob wrote while his home was cut off goes to the host once his link is back, not to the server that answers first', async () => {
    // Links that go silent are dropped within 2 s (the host link's own bound is 6 s).
    const s = await startSwarm(['alice', 'bob', 'carol'], {
      nat: HOMES,
      serverArgs: ['--heartbeat-ms', '500', '--peer-timeout-ms', '2000'],
    });
    const ch = await hostedChannel(s);
    await post(s, 'alice', ch, 'a1');
    await s.waitView('bob', ch, ['a1'], 'host');
    const router = s.world!.homes[1]!.nat;
    s.world!.run(router, ['ip', 'link', 'set', 'wan', 'down']);
    let b1: { id: string; state: string };
    try {
      await waitFor(
        async () => (await s.view('bob', ch)).source === 'local',
        20_000,
        'bob to lose both the server and the host',
      );
      b1 = await post(s, 'bob', ch, 'b1');
      expect(b1.state).toBe('pending');
    } finally {
      s.world!.run(router, ['ip', 'link', 'set', 'wan', 'up']);
    }
    // Back: the server link comes up first (the punch to the host goes through the server),
    // then the link to the host; the outbox waits for it.
    for (const m of ['alice', 'bob', 'carol']) await s.waitView(m, ch, ['a1', 'b1'], 'host');
    expect(await postedToWhenLogged(s, 'bob', [b1.id])).toEqual([
      `host:alice@${s.peers.alice!.p2p}`,
    ]);
    await waitFor(async () => (await s.serverMessages(ch)).length === 2);
    expect((await s.serverMessages(ch)).map((m) => m.text)).toEqual(['a1', 'b1']);
  });

  it(
    "a SIGKILLed host loses nothing it accepted: members' posts reach the server once it is back (carol's relayed link is down with the server)",
    play(async (s, ch) => {
      await sigkilledHost(s, ch, { relayed: ['carol'] });
      // The restarted server relays again (on another relay port), and alice's new address is
      // punched again.
      assertLinks(s);
    }),
  );
});
