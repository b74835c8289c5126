// Attack 9, written from README.md "Local API" alone: `GET /api/session` answers `{me, ended?}`,
// "`ended` `{code, message}` when that is because the server ended the last session, and why (a
// newer login retired it, a visitor's name went to another), until a session starts again: the
// login page says it"; "A peer restarted on the same --data resumes its session, outbox, status
// and caches".
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanDirs,
  keypair,
  restartPeer,
  sleep,
  startPeer,
  startServer,
  Wire,
  type Peer,
  type Server,
} from './attack9-lib.js';

describe('attack9: GET /api/session ended', () => {
  let s: Server;
  let p: Peer;
  const wires: Wire[] = [];
  beforeAll(async () => {
    s = await startServer();
    p = await startPeer(s);
  });
  afterAll(async () => {
    for (const w of wires) w.close();
    await p?.stop();
    await s?.stop();
    cleanDirs();
  });

  it('still says why the server ended the last session after the peer restarts, until a session starts again', async () => {
    expect(
      (await p.api('POST', '/api/register', { username: 'alice', password: 'alice-pw1' })).status,
    ).toBe(201);
    expect(
      (await p.api('POST', '/api/login', { username: 'alice', password: 'alice-pw1' })).status,
    ).toBe(200);
    // Ten newer logins of the account (the per-account cap) retire the peer's session.
    for (let i = 0; i < 10; i++) {
      const w = await Wire.connect(s);
      wires.push(w);
      expect(
        (
          await w.req('login', {
            username: 'alice',
            password: 'alice-pw1',
            publicKey: keypair().pk,
          })
        ).error,
      ).toBeUndefined();
    }
    await sleep(1_000);
    const before = (await p.api('GET', '/api/session')).json;
    expect(before.me).toBeNull();
    expect(before.ended?.code).toBe('E_SESSION_INVALID');

    // The user's machine restarts the peer before they looked at the page.
    const dir = p.dir;
    await p.stop();
    p = await restartPeer(s, dir);
    await sleep(1_000);
    const after = (await p.api('GET', '/api/session')).json;
    expect(after.me).toBeNull();
    // No session started since: the login page should still say why.
    expect(after.ended).toEqual(before.ended);
  });
});
