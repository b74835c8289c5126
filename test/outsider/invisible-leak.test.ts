// FINDING (invisible presence leak via the relay tree): an invisible user who watches a live
// stream is named — username, session id, IP and UDP port — to another viewer in
// `stream_children` (and, the other way round, as `parent`). SPEC §3: invisible "appears offline
// in every list, event and API other users can see"; PROTOCOL §4.3: "Its presence is never
// revealed". This test fails while the leak exists.
import { test, expect, afterAll } from 'vitest';
import dgram from 'node:dgram';
import { startServer, startPeer, registerLogin, killAll, sleep, p2pConnect } from './lib.js';

afterAll(killAll);

test('an invisible viewer is never named to another viewer (stream_children)', async () => {
  const srv = await startServer();
  const st = await startPeer(srv, ['--stream-fanout', '1']);
  await st.api('POST', '/api/register', { username: 'alice', password: 'alicepw' });
  await st.api('POST', '/api/login', { username: 'alice', password: 'alicepw' });
  const pub = (await st.api('POST', '/api/channels', { name: 'public', allowVisitors: true })).body;
  const streamId = (
    await st.api('POST', `/api/channels/${pub.id}/streams`, {
      source: 'synthetic',
      fps: 10,
      bitrateKbps: 100,
    })
  ).body.streamId;

  const ivy = await startPeer(srv);
  await ivy.api('POST', '/api/register', { username: 'ivy', password: 'ivypw1' });
  await ivy.api('POST', '/api/login', { username: 'ivy', password: 'ivypw1' });
  expect((await ivy.api('PUT', '/api/status', { status: 'invisible' })).body.status).toBe(
    'invisible',
  );
  await ivy.api('POST', `/api/channels/${pub.id}/join`);
  await sleep(300);

  // The attacker: any user (a visitor would do too), watching first so that it becomes a relay.
  const rob = await registerLogin(srv, 'rob');
  const list = await rob.c.req('get_list', {});
  expect(list.body.peers.map((p: any) => p.username)).not.toContain('ivy'); // the tracker hides her
  const { c } = await p2pConnect(st, rob);
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
  expect((await c.req('watch', { streamId, udpPort: udp.address().port })).body).toBeTruthy();
  await sleep(300);

  const w = await ivy.api('POST', `/api/streams/${streamId}/watch`);
  expect(w.status).toBe(200);
  await sleep(1500);
  udp.close();
  const leaked = c.events
    .filter((e) => e.ev === 'stream_children')
    .flatMap((e) => e.body.children)
    .filter((ch: any) => ch.username === 'ivy');
  // observed: [{username:'ivy', sessionId:'…', ip:'127.0.0.1', udpPort:…}]
  expect(leaked).toEqual([]);
}, 60000);
