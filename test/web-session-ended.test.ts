/**
 * A session the server ends while its peer is logged in (a newer login of the account retired
 * it, past the sessions an account may hold; a visitor's name went to another visitor): the
 * server says why when it closes the link (PROTOCOL.md §3.3), and the user is told. Before, the
 * peer dropped that reason: the page went back to the login form and nothing said why, and
 * GET /api/session answered only `{me: null}`.
 */
import { describe, expect, it } from 'vitest';
import { createTestnet, rawSession, signIn, waitFor, type TestPeer } from './testnet.js';
import { openPage } from './browser.js';
import { seriousViolations } from './axe.js';

const RETIRED =
  'session ended: a newer login of this account retired it (too many sessions at once)';

describe('a session the server ended', () => {
  it('is told, with the server’s reason, by GET /api/session and on the login page, until the next login', async () => {
    const net = await createTestnet({ peers: 1, server: { sessionsPerAccount: 2 } });
    const [alice] = net.peers as [TestPeer];
    await signIn(alice, 'alice');
    const { page, errors, live } = await openPage(alice.uiUrl);
    await live;
    await page
      .getByRole('button', { name: /Your channels|Home/ })
      .first()
      .waitFor();

    // Two newer logins of alice elsewhere: the peer's session, the oldest, is retired.
    for (let i = 0; i < 2; i++)
      await rawSession(await net.rawLink(), { username: 'alice', password: 'alice-pw' });

    const ended = await waitFor(
      async () => {
        const s = (await alice.call('GET', '/api/session')).body;
        return s.me === null ? s : undefined;
      },
      15_000,
      "the peer to learn that the server ended alice's session",
    );
    expect(ended).toEqual({ me: null, ended: { code: 'E_SESSION_INVALID', message: RETIRED } });

    const notice = page
      .getByRole('status')
      .filter({ hasText: 'The server ended your last session' });
    await notice.waitFor();
    expect(await notice.innerText()).toContain(
      'a newer login of this account retired it (too many sessions at once)',
    );
    expect(await seriousViolations(page)).toEqual([]);

    // alice logs in again: the notice is gone, and so is `ended`.
    await page.getByLabel('Username').fill('alice');
    await page.getByLabel('Password').fill('alice-pw');
    await page.getByRole('button', { name: 'Log in', exact: true }).last().click();
    await notice.waitFor({ state: 'detached' });
    expect((await alice.call('GET', '/api/session')).body.ended).toBeUndefined();
    expect(errors).toEqual([]);
  });

  it('a logout of your own is not an end by the server: nothing is told', async () => {
    const net = await createTestnet({ peers: 1 });
    const [bob] = net.peers as [TestPeer];
    await signIn(bob, 'bob');
    expect((await bob.call('POST', '/api/logout')).status).toBeLessThan(300);
    expect((await bob.call('GET', '/api/session')).body).toEqual({ me: null });
  });
});
