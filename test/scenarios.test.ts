/**
 * The assignment's five synchronization scenarios (SPEC appendix), end to end with real
 * `bin/hchat` processes on 127.0.0.1: a server and three peers. alice hosts "general"; bob (X)
 * and carol (Y) are members. The scenarios themselves are in test/scenarios.ts.
 */
import { describe, it } from 'vitest';
import { hostedChannel, startSwarm, type Swarm } from './swarm.js';
import {
  hostGoesOffline,
  hostGoesOnline,
  joinedUserGoesOffline,
  joinedUserGoesOnline,
  livestream,
  sigkilledHost,
} from './scenarios.js';

/** A fresh swarm with alice's channel, then `scenario` on it. */
const play = (scenario: (s: Swarm, ch: string) => Promise<void>) => async () => {
  const s = await startSwarm(['alice', 'bob', 'carol']);
  await scenario(s, await hostedChannel(s));
};

describe('synchronization scenarios', () => {
  it(
    '1. host goes offline: members switch to the server, which serves what the host had synced',
    play(hostGoesOffline),
  );

  it(
    '2. host goes online: it syncs both ways with the server and members switch back to P2P',
    play(hostGoesOnline),
  );

  it(
    '3. livestream period: alice streams, busy chat flows P2P; the server receives one copy of each, serves none and carries no media',
    play(livestream),
  );

  it(
    '4. joined user goes online: catches up from the host, and its outbox reaches everyone once',
    play(joinedUserGoesOnline),
  );

  it(
    '5. joined user goes offline: writes stay local, survive SIGKILL, and nobody sees them until it is back',
    play(joinedUserGoesOffline),
  );

  it(
    "a SIGKILLed host loses nothing it accepted: members' posts reach the server once it is back",
    play(sigkilledHost),
  );
});
