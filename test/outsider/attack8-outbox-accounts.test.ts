/**
 * Attack 8 (held): `GET /api/outbox` and `DELETE /api/outbox/:id` (README) on a peer that several
 * accounts use in turn. alice's message refused for good (she was removed while offline) stays
 * hers: bob, logged in next on the same peer, neither reads it (text, channel) nor dismisses it,
 * and a visitor sees nothing; alice finds it again when she is back. Written from the documents.
 */
import { afterAll, expect, it } from 'vitest';
import { killAll, startPeer, startServer, until } from './attack8-lib.js';

afterAll(killAll);

it('another account on the same peer neither reads nor dismisses a user’s undelivered messages', async () => {
  const srv = await startServer();
  const host = await startPeer(srv);
  const peer = await startPeer(srv);
  const pw = (u: string) => `pw-${u}-1`;
  for (const [p, u] of [
    [host, 'carol'],
    [peer, 'alice'],
    [peer, 'bobby'],
  ] as const)
    expect((await p.api('POST', '/api/register', { username: u, password: pw(u) })).status).toBe(
      201,
    );
  await host.api('POST', '/api/login', { username: 'carol', password: pw('carol') });
  const ch = (await host.api('POST', '/api/channels', { name: 'room', allowVisitors: false })).body
    .id;
  await peer.api('POST', '/api/login', { username: 'alice', password: pw('alice') });
  expect((await peer.api('POST', `/api/channels/${ch}/join`)).status).toBe(200);
  await peer.api('PUT', '/api/status', { status: 'offline' });
  const posted = await peer.api('POST', `/api/channels/${ch}/messages`, { text: 'alice only' });
  expect((await host.api('DELETE', `/api/channels/${ch}/members/alice`)).status).toBe(200);
  await peer.api('PUT', '/api/status', { status: 'online' });
  await until(
    async () => (await peer.api('GET', '/api/outbox')).body.messages?.[0]?.state === 'failed',
    20_000,
  );
  expect((await peer.api('POST', '/api/logout')).status).toBe(204);

  expect(
    (await peer.api('POST', '/api/login', { username: 'bobby', password: pw('bobby') })).status,
  ).toBe(200);
  const seen = await peer.api('GET', '/api/outbox');
  expect(seen).toEqual({ status: 200, body: { messages: [] } });
  expect(JSON.stringify(seen)).not.toContain('alice only');
  expect((await peer.api('DELETE', `/api/outbox/${posted.body.id}`)).status).toBe(404);
  expect((await peer.api('POST', '/api/visitor', { name: 'walker' })).status).toBe(200);
  expect((await peer.api('GET', '/api/outbox')).body).toEqual({ messages: [] });
  expect((await peer.api('DELETE', `/api/outbox/${posted.body.id}`)).status).toBe(404);

  expect(
    (await peer.api('POST', '/api/login', { username: 'alice', password: pw('alice') })).status,
  ).toBe(200);
  const back = await peer.api('GET', '/api/outbox');
  expect(back.body.messages).toMatchObject([
    { id: posted.body.id, text: 'alice only', channelId: ch, state: 'failed' },
  ]);
}, 60_000);
