/**
 * A message written offline where its author may no longer write, as the browser shows it
 * (README "Written offline, refused on return"): bob writes in #general while offline, alice
 * removes him meanwhile; once bob is back the channel leaves his list and his page says that the
 * message was not delivered, with its text, the channel and why, until he dismisses it (then
 * `GET /api/outbox` no longer lists it); the same when alice deletes the channel instead. axe
 * finds nothing serious with the notice shown; no console error.
 */
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';
import { openPage, snap } from './browser.js';
import { seriousViolations } from './axe.js';

/** alice hosts #general, bob joins it; on bob's page, offline, he writes there. */
async function writtenOffline() {
  const net = await createTestnet({ peers: 2 });
  const [alice, bob] = net.peers as [TestPeer, TestPeer];
  await signIn(alice, 'alice');
  await signIn(bob, 'bob');
  const general = (await alice.call('POST', '/api/channels', { name: 'general' })).body
    .id as string;
  expect((await bob.call('POST', `/api/channels/${general}/join`)).status).toBe(200);

  const b = await openPage(bob.uiUrl);
  await b.live;
  await b.page.getByRole('button', { name: /alice's channels/ }).click();
  await b.page.getByRole('button', { name: /^# ?general/ }).click();
  await b.page.getByRole('region', { name: '#general' }).waitFor();

  // bob goes offline and writes: the message waits in his outbox.
  expect((await bob.call('PUT', '/api/status', { status: 'offline' })).status).toBe(200);
  await b.page.getByText('You are offline.').waitFor();
  await b.page.getByRole('textbox', { name: 'Message' }).fill('see you all tomorrow');
  await b.page.keyboard.press('Enter');
  await b.page.getByText('1 message waiting to be sent.').waitFor();
  // He goes Home. (Left open, the channel's pane and member list read it again when he is
  // back, before his peer has learnt of the change: 403s in the console, another matter.)
  await b.page.getByRole('button', { name: 'Home' }).click();
  return { net, alice, bob, general, b };
}

/** bob is back: the channel leaves his list, and his page tells what became of his message. */
async function toldUntilDismissed(
  bob: TestPeer,
  general: string,
  b: { page: Page; errors: string[] },
  why: RegExp,
  shot?: string,
) {
  expect((await bob.call('PUT', '/api/status', { status: 'online' })).status).toBe(200);
  const notice = b.page.getByRole('region', { name: 'A message was not delivered' });
  await notice.waitFor();
  await notice.getByText('see you all tomorrow').waitFor();
  await notice.getByText('in #general').waitFor();
  await notice.getByText(why).waitFor();
  await b.page.getByRole('button', { name: /alice's channels/ }).waitFor({ state: 'detached' });
  const held = (await bob.call('GET', '/api/outbox')).body.messages as any[];
  expect(held).toMatchObject([{ channelId: general, state: 'failed' }]);
  expect(await seriousViolations(b.page)).toEqual([]);
  if (shot) await snap(b.page, shot);

  // Dismissed, it goes: from the page and from his peer.
  await notice.getByRole('button', { name: 'Dismiss “see you all tomorrow”' }).click();
  await notice.waitFor({ state: 'detached' });
  expect((await bob.call('GET', '/api/outbox')).body.messages).toEqual([]);
  expect(b.errors).toEqual([]);
}

describe('undelivered messages in the web UI', () => {
  it('a message written offline in a channel its author was removed from shows as not delivered until dismissed', async () => {
    const { net, alice, bob, general, b } = await writtenOffline();
    expect((await alice.call('DELETE', `/api/channels/${general}/members/bob`)).status).toBe(200);
    await waitFor(
      async () => await net.server.store.isRemoved(general, 'bob'),
      10_000,
      'the server stores the removal',
    );
    await toldUntilDismissed(
      bob,
      general,
      b,
      /the owner removed you from the channel/,
      'undelivered',
    );
  });

  it('a message written offline in a channel deleted meanwhile shows as not delivered until dismissed', async () => {
    const { net, alice, bob, general, b } = await writtenOffline();
    expect((await alice.call('DELETE', `/api/channels/${general}`)).status).toBe(200);
    await waitFor(
      async () => (await net.server.store.getChannel(general)) === undefined,
      10_000,
      'the server drops the channel',
    );
    await toldUntilDismissed(bob, general, b, /the channel was deleted/);
  });
});
