/**
 * Attack 8 (found while attacking the outbox across accounts): README "Status" says `offline`
 * keeps the connection to the server closed, across restarts, "until you choose `online` or
 * `invisible`"; `POST /api/logout` is always allowed. A user who logs out while offline can then
 * choose nothing: `PUT /api/status` needs a session (401), and `POST /api/login` and
 * `POST /api/visitor` answer `503 E_OFFLINE`, for good (a restart on the same `--data` keeps it).
 * Nobody can use that peer again, and what its user wrote offline (SPEC §5: "once a peer has
 * accepted a post locally, it is never lost") never goes out. Written from the documents only.
 */
import { afterAll, expect, it } from 'vitest';
import { killAll, startPeer, startServer, until } from './attack8-lib.js';

afterAll(killAll);

it('a user who logged out while offline can log in again on that peer, and what they wrote offline is delivered', async () => {
  const srv = await startServer();
  const host = await startPeer(srv);
  let peer = await startPeer(srv);
  const pw = (u: string) => `pw-${u}-1`;
  expect(
    (await host.api('POST', '/api/register', { username: 'carol', password: pw('carol') })).status,
  ).toBe(201);
  expect(
    (await peer.api('POST', '/api/register', { username: 'alice', password: pw('alice') })).status,
  ).toBe(201);
  expect(
    (await host.api('POST', '/api/login', { username: 'carol', password: pw('carol') })).status,
  ).toBe(200);
  const ch = (await host.api('POST', '/api/channels', { name: 'room', allowVisitors: false })).body
    .id;
  expect(
    (await peer.api('POST', '/api/login', { username: 'alice', password: pw('alice') })).status,
  ).toBe(200);
  expect((await peer.api('POST', `/api/channels/${ch}/join`)).status).toBe(200);

  expect((await peer.api('PUT', '/api/status', { status: 'offline' })).body).toEqual({
    status: 'offline',
  });
  const posted = await peer.api('POST', `/api/channels/${ch}/messages`, {
    text: 'written on the train',
  });
  expect(posted.body.state).toBe('pending');
  expect((await peer.api('POST', '/api/logout')).status).toBe(204);

  // Later (a restart on the same folder included), she wants to come back.
  await peer.kill();
  peer = await startPeer(srv, [], { data: peer.data });
  // Whatever choosing `online` takes without a session, she tries it, then logs in.
  const status = await peer.api('PUT', '/api/status', { status: 'online' });
  let login = await peer.api('POST', '/api/login', { username: 'alice', password: pw('alice') });
  try {
    await until(
      async () => {
        login = await peer.api('POST', '/api/login', { username: 'alice', password: pw('alice') });
        return login.status === 200;
      },
      15_000,
      500,
    );
  } catch {}
  expect(login, `PUT /api/status answered ${JSON.stringify(status)}`).toMatchObject({
    status: 200,
    body: { username: 'alice' },
  });
  // And the message she wrote offline reaches the channel, once.
  await until(async () => {
    const page = await host.api('GET', `/api/channels/${ch}/messages`);
    return page.body.messages?.some((m: any) => m.id === posted.body.id);
  }, 20_000);
  const page = await host.api('GET', `/api/channels/${ch}/messages`);
  expect(page.body.messages.filter((m: any) => m.text === 'written on the train')).toHaveLength(1);
}, 60_000);
