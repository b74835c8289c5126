/**
 * A member's subscription that its host refuses because the host has not heard of the
 * membership yet (the server tells the host of a join while the member's own peer, told at once,
 * already asks the host: on a loaded machine the member can be first). Before, the member's peer
 * ignored which channels the host granted: the channel was served by nobody, and its messages
 * never reached that member (a clean-clone CI run: a message of a second channel missing from
 * the member's search after 20 s, in test/outsider/read-privacy.test.ts). Now the peer asks the
 * host again until it grants them, and catches up from it.
 */
import { describe, expect, it } from 'vitest';
import { createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';

describe('a host that learns of a membership late', () => {
  it("still serves the new member: the member's peer asks again, and gets what was written meanwhile", async () => {
    const net = await createTestnet({ peers: 2 });
    const [pa, pb] = net.peers as [TestPeer, TestPeer];
    await signIn(pa, 'alice');
    await signIn(pb, 'bob');
    const a = (await pa.call('POST', '/api/channels', { name: 'a' })).body.id as string;
    const b = (await pa.call('POST', '/api/channels', { name: 'b' })).body.id as string;
    expect((await pb.call('POST', `/api/channels/${a}/join`)).status).toBe(200);
    await waitFor(() => pb.node.sourceOf(a) === 'host', 10_000, "bob's link to alice's host");

    // alice's host hears of bob's membership of b only 1.5 s after he joined.
    const store = pa.node.store;
    const isMember = store.isMember.bind(store);
    let until = Infinity;
    let refused = 0;
    store.isMember = (channelId: string, username: string) => {
      if (channelId === b && username.toLowerCase() === 'bob' && Date.now() < until) {
        refused++;
        return false;
      }
      return isMember(channelId, username);
    };
    until = Date.now() + 1500;
    expect((await pb.call('POST', `/api/channels/${b}/join`)).status).toBe(200);
    expect(
      (await pa.call('POST', `/api/channels/${b}/messages`, { text: 'ocelot in b' })).status,
    ).toBe(201);
    // The host did refuse bob at first (else this test proves nothing).
    expect(refused).toBeGreaterThan(0);

    // What bob's peer holds of b: its search answers from its own copy.
    const reaches = (n: number, what: string) =>
      waitFor(
        async () =>
          ((await pb.call('GET', '/api/search?q=ocelot')).body.results ?? []).length === n,
        10_000,
        what,
      );
    await reaches(1, "alice's message in b to reach bob's peer");
    // And bob's peer reads b from the host, live: a later message comes by push.
    expect(pb.node.sourceOf(b)).toBe('host');
    expect(
      (await pa.call('POST', `/api/channels/${b}/messages`, { text: 'ocelot again' })).status,
    ).toBe(201);
    await reaches(2, "alice's next message in b to reach bob's peer");
  });
});
