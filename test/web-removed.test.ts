/**
 * A channel that leaves a user's list while it is open on their page, without them leaving it
 * there: its owner removed them, or deleted it. The page says so by the channel's name where it
 * was open (before, the pane went blank with "Pick a channel." and nothing said why), asks the
 * peer nothing more of it (no refused read in the console), and a channel the user leaves
 * themselves closes without such a notice. axe finds no serious or critical violation.
 */
import { expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createTestnet, signIn, type TestPeer } from './testnet.js';
import { openPage } from './browser.js';
import { seriousViolations } from './axe.js';

async function openChannel(page: Page, name: string) {
  await page.getByRole('button', { name: /alice's channels/ }).click();
  await page.getByRole('button', { name: new RegExp(`^# ?${name}`) }).click();
  await page.getByRole('region', { name: `#${name}` }).waitFor();
}

it('a channel removed or deleted while open says so by name; one left here closes quietly', async () => {
  const net = await createTestnet({ peers: 2 });
  const [alice, bob] = net.peers as [TestPeer, TestPeer];
  await signIn(alice, 'alice');
  await signIn(bob, 'bob');
  const ids: Record<string, string> = {};
  for (const name of ['room', 'doomed', 'stay']) {
    ids[name] = (await alice.call('POST', '/api/channels', { name })).body.id as string;
    expect((await bob.call('POST', `/api/channels/${ids[name]}/join`)).status).toBe(200);
  }
  await alice.call('POST', `/api/channels/${ids.room}/messages`, { text: 'welcome' });

  const { page, errors } = await openPage(bob.uiUrl);
  const notice = page.getByRole('status').filter({ hasText: 'You can no longer read' });

  // Removed by the owner while #room is open.
  await openChannel(page, 'room');
  await page.getByText('welcome').waitFor();
  expect((await alice.call('DELETE', `/api/channels/${ids.room}/members/bob`)).status).toBe(200);
  await notice.filter({ hasText: '#room' }).waitFor();
  expect(await notice.innerText()).toContain('its owner removed you from it, or deleted it');
  expect(await page.getByRole('textbox', { name: 'Message' }).count()).toBe(0);
  await page.getByRole('button', { name: /^# ?room/ }).waitFor({ state: 'detached' });
  expect(await seriousViolations(page)).toEqual([]);
  await page.getByRole('button', { name: 'Close' }).click();
  await notice.waitFor({ state: 'detached' });

  // Deleted by the owner while #doomed is open.
  await openChannel(page, 'doomed');
  expect((await alice.call('DELETE', `/api/channels/${ids.doomed}`)).status).toBe(200);
  await notice.filter({ hasText: '#doomed' }).waitFor();

  // Left by bob himself: it closes, and nothing says it was taken from him.
  await openChannel(page, 'stay');
  await page.getByRole('button', { name: 'Leave channel' }).click();
  await page
    .getByRole('dialog', { name: 'Leave #stay' })
    .getByRole('button', { name: 'Leave' })
    .click();
  await page.getByRole('button', { name: /^# ?stay/ }).waitFor({ state: 'detached' });
  await page.getByRole('region', { name: '#stay' }).waitFor({ state: 'detached' });
  await new Promise((r) => setTimeout(r, 300)); // the list read after the leave, on the page
  expect(await notice.count()).toBe(0);
  expect(errors).toEqual([]);
});
