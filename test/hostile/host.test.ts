/**
 * A malicious host against an honest member (issue 11, findings 2, 3, 4 and 6): mallory owns a
 * channel that bob joined, and runs her own P2P endpoint from the protocol document. Whatever
 * she sends, bob's peer keeps serving, shows only messages it verified, of the channel asked,
 * never lets its clock be dragged ahead, and never hands her a secret.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTestnet, signIn, waitFor, peerLog as log } from '../testnet.js';
import {
  announce,
  hostileHost,
  mallorysChannel,
  quietHost,
  sign,
  type HostileHandler,
} from './kit.js';

/** bob (an honest peer) joined mallory's channel; mallory's hostile endpoint is announced. */
async function hostileChannel(handler: HostileHandler) {
  const net = await createTestnet({ peers: 1 });
  const bob = net.peers[0]!;
  await signIn(bob, 'bob');
  const { raw, mallory, ch } = await mallorysChannel(net, bob);
  const host = await hostileHost(mallory, handler);
  await announce(raw, host.port, [ch]);
  await waitFor(
    () => host.conns.some((c) => c.frames.some((f) => f.t === 'auth')),
    10_000,
    'bob dials',
  );
  return { net, bob, raw, mallory, ch, host };
}

describe('a malicious host', () => {
  it('never receives a bearer token: the member proves itself by signature (finding 4)', async () => {
    const { bob, host } = await hostileChannel(quietHost());
    const token = JSON.parse(fs.readFileSync(path.join(bob.dataDir, 'session.json'), 'utf8')).token;
    const c = host.conns[0]!;
    expect(c.frames[0]).toMatchObject({ t: 'hello', role: 'peer', cert: expect.any(String) });
    expect(c.frames[0]).not.toHaveProperty('token');
    // Not anywhere in the bytes, not even a piece of it.
    expect(c.raw()).not.toContain(token.split('.')[1]!.slice(0, 40));
    expect(c.raw()).not.toContain(token.split('.')[0]!.slice(0, 40));
  });

  it('cannot crash a member with two messages under one host seq (finding 2)', async () => {
    let pushes: ((ev: string, body: unknown) => void) | undefined;
    const { bob, mallory, ch, host } = await hostileChannel((op, body, reply, push) => {
      pushes = push;
      quietHost()(op, body, reply, push);
    });
    const first = sign(mallory, { channelId: ch, text: 'first under seq 1' });
    const second = sign(mallory, { channelId: ch, text: 'second under seq 1' });
    await waitFor(() => pushes !== undefined);
    pushes!('message', { channelId: ch, message: { ...first, author: 'mallory', seq: 1 } });
    pushes!('message', { channelId: ch, message: { ...second, author: 'mallory', seq: 1 } });
    await waitFor(() =>
      log(bob).some(
        (r) => r.ev === 'refused' && r.msg === second.id && r.code === 'E_MESSAGE_CONFLICT',
      ),
    );
    // bob's peer still serves: it answers its API and kept the first message.
    const page = await bob.call('GET', `/api/channels/${ch}/messages`);
    expect(page.status).toBe(200);
    expect(bob.node.store.getMessage(first.id)?.text).toBe('first under seq 1');
    expect(bob.node.store.getMessage(second.id)).toBeUndefined();
    expect(host.conns.length).toBeGreaterThan(0);
  });

  it("cannot poison a member's clock with a message from the far future (finding 3)", async () => {
    let pushes: ((ev: string, body: unknown) => void) | undefined;
    const { bob, mallory, ch } = await hostileChannel((op, body, reply, push) => {
      pushes = push;
      quietHost()(op, body, reply, push);
    });
    const future = sign(mallory, { channelId: ch, text: 'from 2300', ts: 10_490_000_000_000 });
    await waitFor(() => pushes !== undefined);
    pushes!('message', { channelId: ch, message: { ...future, author: 'mallory', seq: 1 } });
    await waitFor(() =>
      log(bob).some((r) => r.ev === 'refused' && r.msg === future.id && r.code === 'E_CLOCK_SKEW'),
    );
    expect(bob.node.store.getMessage(future.id)).toBeUndefined();
    // bob's own next message is stamped now, not after 2300.
    const before = Date.now();
    const mine = await bob.call('POST', `/api/channels/${ch}/messages`, { text: 'still now' });
    const stored = bob.node.store.getMessage(mine.body.id)!;
    expect(stored.ts).toBeGreaterThanOrEqual(before - 1000);
    expect(stored.ts).toBeLessThan(Date.now() + 1000);
  });

  it('cannot show a member altered, invented or foreign messages in a page (finding 6)', async () => {
    const net = await createTestnet({ peers: 1 });
    const bob = net.peers[0]!;
    await signIn(bob, 'bob');
    // bob also reads another channel, elsewhere: mallory must not be able to write into it.
    const other = (await bob.call('POST', '/api/channels', { name: 'own', allowVisitors: false }))
      .body.id;
    const { raw, mallory, ch } = await mallorysChannel(net, bob);
    const genuine = {
      ...sign(mallory, { channelId: ch, text: 'genuine' }),
      author: 'mallory',
      seq: 1,
    };
    const altered = {
      ...sign(mallory, { channelId: ch, text: 'original' }),
      text: 'altered by the host',
      author: 'mallory',
      seq: 2,
    };
    const foreign = {
      ...sign(mallory, { channelId: other, text: 'into your channel' }),
      author: 'mallory',
      seq: 3,
    };
    let pushes: ((ev: string, body: unknown) => void) | undefined;
    const host = await hostileHost(mallory, (op, body, reply, push) => {
      pushes = push;
      quietHost({
        history: () => ({ messages: [genuine, altered, foreign], hasMore: false }),
      })(op, body, reply, push);
    });
    await announce(raw, host.port, [ch]);
    await waitFor(
      async () => (await bob.call('GET', `/api/channels/${ch}/messages`)).body.source === 'host',
    );
    const page = await bob.call('GET', `/api/channels/${ch}/messages`);
    expect(page.body.messages.map((m: any) => m.text)).toEqual(['genuine']);
    // A pushed message of another channel is not stored either.
    pushes!('message', { channelId: other, message: foreign });
    await waitFor(() => log(bob).some((r) => r.ev === 'refused' && r.msg === foreign.id));
    expect(bob.node.store.getMessage(foreign.id)).toBeUndefined();
    const own = await bob.call('GET', `/api/channels/${other}/messages`);
    expect(own.body.messages).toEqual([]);
  });

  it("cannot hold back a member's posts to other channels by never answering one (outside attacker, F1)", async () => {
    // alice hosts a channel bob joined; mallory's host completes the handshake, answers pings,
    // and never answers a request (PROTOCOL §3.1: a peer gives up on an answer after 15 s).
    const net = await createTestnet({ peers: 2 });
    const [alice, bob] = net.peers as [any, any];
    await signIn(alice, 'alice');
    await signIn(bob, 'bob');
    const ch = (await alice.call('POST', '/api/channels', { name: 'open', allowVisitors: false }))
      .body.id as string;
    expect((await bob.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
    await waitFor(
      async () => (await bob.call('GET', `/api/channels/${ch}/messages`)).body.source === 'host',
      15_000,
      "bob reads alice's channel from her peer",
    );
    const { raw, mallory, ch: trap } = await mallorysChannel(net, bob);
    const host = await hostileHost(mallory, (op, body, reply, push) => {
      if (op === 'post') return; // never answered
      quietHost()(op, body, reply, push);
    });
    await announce(raw, host.port, [trap]);
    await waitFor(
      async () => (await bob.call('GET', `/api/channels/${trap}/messages`)).body.source === 'host',
      15_000,
      "bob reads mallory's channel from her host",
    );
    // bob posts in mallory's channel: it stays pending (her host never answers).
    const stuck = bob.call('POST', `/api/channels/${trap}/messages`, { text: 'into the trap' });
    await waitFor(
      () => host.conns.some((c) => c.frames.some((f: any) => f.t === 'req' && f.op === 'post')),
      10_000,
      "bob's post reaches mallory's host",
    );
    // Then, in alice's channel, whose host is online and answers: delivered at once, each time.
    for (const text of ['first after the trap', 'second after the trap']) {
      const t0 = Date.now();
      const r = await bob.call('POST', `/api/channels/${ch}/messages`, { text });
      expect(r.status).toBe(201);
      expect(r.body.state, `${text}: ${Date.now() - t0} ms`).toBe('delivered');
      await waitFor(
        async () =>
          (await alice.call('GET', `/api/channels/${ch}/messages`)).body.messages.some(
            (m: any) => m.text === text,
          ),
        3_000,
        `alice holds "${text}"`,
      );
    }
    expect((await stuck).body.state).toBe('pending');
  }, 60_000);
});
