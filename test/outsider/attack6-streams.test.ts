// A hostile streamer's `stream_list` (docs/PROTOCOL.md §5.1, §5.2): a member announces its live
// streams in its tracker entry (`live`, kept by the server only for channels it belongs to), and
// a viewer asks it for the details over the P2P link, whose handshake (§4.1) proves who it is.
// Played with the hostile-host kit (a P2P listener that completes the handshake as mallory and
// answers what it likes) against a real peer's local API (README "Livestream API").
import { expect, test } from 'vitest';
import { createTestnet, rawSession, signIn, waitFor } from '../testnet.js';
import { hostileHost, quietHost } from '../hostile/kit.js';

const stream = (streamId: string, channelId: string, streamer: string) => ({
  streamId,
  channelId,
  streamer,
  source: 'synthetic',
  startedAt: Date.now(),
  fps: 5,
  bitrateKbps: 100,
  viewers: 0,
  videoSsrc: 1,
  audioSsrc: 2,
});

/**
 * alice and bob on peers, alice's channel "live" (bob joined), and mallory, a raw member of it
 * too; `more` channels of alice's that bob joins as well.
 */
async function stage(more: string[] = []) {
  const net = await createTestnet({ peers: 2 });
  const [alice, bob] = net.peers as [any, any];
  await signIn(alice, 'alice');
  await signIn(bob, 'bob');
  const ids: string[] = [];
  for (const name of ['live', ...more])
    ids.push((await alice.call('POST', '/api/channels', { name, allowVisitors: false })).body.id);
  for (const c of ids) await bob.call('POST', `/api/channels/${c}/join`);
  const raw = await net.rawLink();
  await raw.request('register', { username: 'mallory', password: 'mallory-pw' });
  const mallory = await rawSession(raw, { username: 'mallory', password: 'mallory-pw' });
  const open = ids[0]!;
  await raw.request('channel_join', { channelId: open });
  return { alice, bob, open, more: ids.slice(1), raw, mallory };
}

test("a member's stream is listed as its own, in a channel its entry announces it in: never as another user's, nor where it is no member", async () => {
  const { bob, open, more, raw, mallory } = await stage(['secret']);
  const secret = more[0]!;

  // Mallory goes live in the channel she shares with bob (her entry says so), and her peer
  // describes that stream as alice's, and one more, never announced, in alice's secret channel.
  const mine = '11111111-2222-4333-8444-555555555555';
  const unannounced = '66666666-7777-4888-8999-aaaaaaaaaaaa';
  const host = await hostileHost(
    mallory,
    quietHost({
      stream_list: () => ({
        streams: [stream(mine, open, 'alice'), stream(unannounced, secret, 'alice')],
      }),
    }),
  );
  await raw.request('submit_info', {
    ip: '127.0.0.1',
    port: host.port,
    udpPort: host.port,
    status: 'online',
    live: [{ streamId: mine, channelId: open }],
  });
  const listed = await waitFor(async () => {
    const r = await bob.call('GET', '/api/streams');
    return r.body.length > 0 && host.conns.length > 0 ? r.body : undefined;
  });
  expect(
    listed.map((s: any) => ({
      streamId: s.streamId,
      channelId: s.channelId,
      streamer: s.streamer,
    })),
  ).toEqual([{ streamId: mine, channelId: open, streamer: 'mallory' }]);
}, 60_000);

test('a stream id another user announces too is watched only at the streamer named: never at the copy', async () => {
  const { alice, bob, open, raw, mallory } = await stage();
  const live = await alice.call('POST', `/api/channels/${open}/streams`, { source: 'synthetic' });
  expect(live.status).toBe(201);
  const streamId = live.body.streamId as string;
  // Mallory, a member too, announces alice's stream id as hers, and would serve a stream of
  // her own to whoever asks her for it.
  const asked: string[] = [];
  const host = await hostileHost(
    mallory,
    quietHost({
      stream_list: () => ({ streams: [stream(streamId, open, 'mallory')] }),
      watch: () => {
        asked.push('watch');
        return { stream: stream(streamId, open, 'mallory'), parent: { username: 'mallory' } };
      },
    }),
  );
  await raw.request('submit_info', {
    ip: '127.0.0.1',
    port: host.port,
    udpPort: host.port,
    status: 'online',
    live: [{ streamId, channelId: open }],
  });
  const listed = await waitFor(async () => {
    const r = await bob.call('GET', '/api/streams');
    return r.body.length === 2 ? r.body : undefined;
  });
  expect(listed.map((s: any) => s.streamer).sort()).toEqual(['alice', 'mallory']);
  // Unnamed, the viewer cannot tell which one is meant: it says so and dials neither.
  const unnamed = await bob.call('POST', `/api/streams/${streamId}/watch`);
  expect(unnamed.status).toBe(400);
  expect(unnamed.body.error.message).toContain('name the streamer');
  const watched = await bob.call('POST', `/api/streams/${streamId}/watch`, { streamer: 'alice' });
  expect(watched.status, JSON.stringify(watched.body)).toBe(200);
  expect(watched.body.parent).toBe('alice');
  expect(asked).toEqual([]);
  host.close();
}, 60_000);
