/**
 * Channel management in the browser (issue 13 item 7), as people do it: alice (owner) renames
 * #general and gives it a topic from its settings, removes carol from the member list, and
 * deletes #random; bob sees each change on his own page and leaves. axe finds no serious or
 * critical violation with the settings dialog open; no console error on any page.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';
import { openPage, snap } from './browser.js';
import { seriousViolations } from './axe.js';

const SHOTS = path.resolve(import.meta.dirname, '..', 'docs', 'screenshots');

async function openChannel(page: Page, rail: RegExp, name: string) {
  await page.getByRole('button', { name: rail }).click();
  await page.getByRole('button', { name: new RegExp(`^# ?${name}`) }).click();
  await page.getByRole('region', { name: `#${name}` }).waitFor();
}

describe('channel management in the web UI', () => {
  it('the owner renames, sets a topic, removes a member and deletes a channel; a member leaves', async () => {
    const net = await createTestnet({ peers: 3 });
    const [alice, bob, carol] = net.peers as [TestPeer, TestPeer, TestPeer];
    await signIn(alice, 'alice');
    await signIn(bob, 'bob');
    await signIn(carol, 'carol');
    const general = (await alice.call('POST', '/api/channels', { name: 'general' })).body
      .id as string;
    const random = (await alice.call('POST', '/api/channels', { name: 'random' })).body
      .id as string;
    for (const p of [bob, carol])
      for (const ch of [general, random]) await p.call('POST', `/api/channels/${ch}/join`);
    await alice.call('POST', `/api/channels/${general}/messages`, { text: 'hello all' });
    await bob.call('POST', '/api/channels', { name: 'notes' });

    const a = await openPage(alice.uiUrl);
    const b = await openPage(bob.uiUrl);
    await openChannel(a.page, /Your channels/, 'general');
    await openChannel(b.page, /alice's channels/, 'general');
    // A member is offered no settings, only to leave.
    expect(await b.page.getByRole('button', { name: 'Channel settings' }).count()).toBe(0);

    // alice: rename and topic from the settings dialog.
    await a.page.getByRole('button', { name: 'Channel settings' }).click();
    const dialog = a.page.getByRole('dialog', { name: 'Channel settings' });
    await dialog.getByLabel('Name').fill('lobby');
    await dialog.getByLabel('Topic').fill('say hi, be kind');
    expect(await seriousViolations(a.page)).toEqual([]);
    await snap(a.page, 'channel-settings');
    fs.copyFileSync(
      path.resolve(import.meta.dirname, '..', 'test-artifacts', 'channel-settings.png'),
      path.join(SHOTS, 'channel-settings.png'),
    );
    await dialog.getByRole('button', { name: 'Save' }).click();
    await a.page.getByRole('region', { name: '#lobby' }).waitFor();
    // bob's page follows: the new name and topic in the header and the channel list.
    await b.page.getByRole('region', { name: '#lobby' }).waitFor();
    await b.page.getByText('say hi, be kind').waitFor();
    await b.page.getByRole('button', { name: /^# ?lobby/ }).waitFor();

    // alice removes carol from the member list.
    const members = a.page.getByRole('complementary', { name: 'Members' });
    await members.getByRole('button', { name: 'Remove carol from the channel' }).click();
    await a.page
      .getByRole('dialog', { name: 'Remove carol' })
      .getByRole('button', { name: 'Remove' })
      .click();
    await waitFor(
      async () => await net.server.store.isRemoved(general, 'carol'),
      10_000,
      'carol removed at the server',
    );
    await waitFor(
      async () =>
        !((await carol.call('GET', '/api/channels')).body as any[]).some((c) => c.id === general),
      10_000,
      'carol no longer lists it',
    );
    await members.getByText('carol').waitFor({ state: 'detached' });
    expect(await members.getByRole('button', { name: /Remove bob/ }).count()).toBe(1);
    expect(await members.getByRole('button', { name: /Remove alice/ }).count()).toBe(0);

    // alice deletes #random: gone from both pages.
    await openChannel(a.page, /Your channels/, 'random');
    await a.page.getByRole('button', { name: 'Channel settings' }).click();
    await a.page
      .getByRole('dialog', { name: 'Channel settings' })
      .getByRole('button', { name: 'Delete channel' })
      .click();
    await a.page
      .getByRole('dialog', { name: 'Delete #random' })
      .getByRole('button', { name: 'Delete channel' })
      .click();
    await a.page.getByRole('button', { name: /^# ?random/ }).waitFor({ state: 'detached' });
    await b.page.getByRole('button', { name: /^# ?random/ }).waitFor({ state: 'detached' });
    await waitFor(
      async () => (await net.server.store.getChannel(random)) === undefined,
      10_000,
      'the server drops #random',
    );

    // bob leaves #lobby from its header. The answer to the leave comes late (as on a slow link):
    // meanwhile the peer has left, and its link to alice's host (bob's last channel there) went
    // with it. The page asks nothing more of #lobby from the moment bob confirms: a read then
    // was refused (a 403 in the console, in CI).
    let answered = () => {};
    const leaveAnswered = new Promise<void>((r) => (answered = r));
    await b.page.route(`**/api/channels/${general}/leave`, async (route) => {
      const answer = await route.fetch();
      await new Promise((r) => setTimeout(r, 1500));
      await route.fulfill({ response: answer });
      answered();
    });
    const asked: string[] = [];
    let confirmed = false;
    b.page.on('request', (r) => {
      const p = new URL(r.url()).pathname;
      if (confirmed && p.startsWith(`/api/channels/${general}`) && !p.endsWith('/leave'))
        asked.push(`${r.method()} ${p}`);
    });
    await b.page.getByRole('button', { name: 'Leave channel' }).click();
    const leave = b.page.getByRole('dialog', { name: 'Leave #lobby' }).getByRole('button', {
      name: 'Leave',
    });
    await leave.waitFor();
    confirmed = true;
    await leave.click();
    // bob goes on to his own channel before the answer: it stays open when the answer comes
    // (the answer closed whatever channel was open then).
    await openChannel(b.page, /Your channels/, 'notes');
    await leaveAnswered;
    await b.page.getByRole('button', { name: /alice's channels/ }).waitFor({ state: 'detached' });
    await new Promise((r) => setTimeout(r, 200)); // the answer's handling, on the page
    expect(await b.page.getByRole('region', { name: '#notes' }).isVisible()).toBe(true);
    expect(asked).toEqual([]);
    await waitFor(
      async () => !(await net.server.store.isMember(general, 'bob')),
      10_000,
      'bob left at the server',
    );
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });

  // While a leave is under way the pane reads nothing of the channel (above). When the leave is
  // refused, the channel stays open: what came meanwhile was shown, and is read, as any message
  // that comes into the open channel (it stayed unread: the read mark had been held back).
  it('a leave that fails leaves the channel as it was: what came during it is read', async () => {
    const net = await createTestnet({ peers: 2 });
    const [alice, bob] = net.peers as [TestPeer, TestPeer];
    await signIn(alice, 'alice');
    await signIn(bob, 'bob');
    const general = (await alice.call('POST', '/api/channels', { name: 'general' })).body
      .id as string;
    await bob.call('POST', `/api/channels/${general}/join`);
    const b = await openPage(bob.uiUrl);
    await openChannel(b.page, /alice's channels/, 'general');
    const unread = async () =>
      ((await bob.call('GET', '/api/channels')).body as any[]).find((c) => c.id === general)
        ?.unread;
    // The leave reaches bob's peer only once alice's message is on his page, and is refused
    // there: it asks to leave a channel bob is not in (his peer answers E_NOT_MEMBER).
    const other = (await alice.call('POST', '/api/channels', { name: 'other' })).body.id as string;
    await b.page.route(`**/api/channels/${general}/leave`, async (route) => {
      await alice.call('POST', `/api/channels/${general}/messages`, { text: 'wait, stay' });
      await b.page.getByText('wait, stay').waitFor();
      await waitFor(async () => (await unread()) === 1, 5_000, 'the message unread meanwhile');
      await new Promise((r) => setTimeout(r, 300));
      await route.continue({ url: route.request().url().replace(general, other) });
    });
    await b.page.getByRole('button', { name: 'Leave channel' }).click();
    await b.page
      .getByRole('dialog', { name: 'Leave #general' })
      .getByRole('button', { name: 'Leave' })
      .click();
    await b.page.getByRole('region', { name: '#general' }).getByRole('alert').waitFor();
    await waitFor(async () => (await unread()) === 0, 5_000, 'the message read');
  });
});
