/**
 * Direct messages in the browser (issue 15 items 1 and 4), as people use them: alice starts a
 * DM with bob from the member list of a shared channel; bob sees the unread and mention badge on
 * Home (and a toast) before opening it; they write both ways and each sees the other's message
 * live; alice edits one of her messages and deletes another, and bob sees both; both see the
 * same safety number; alice marks bob verified, then blocks him, and bob's next message does not
 * reach her. It works at 800 px; a visitor has no Direct Messages. axe finds no serious or
 * critical violation; no console error on any page.
 */
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';
import { keep, openPage, snap } from './browser.js';
import { seriousViolations } from './axe.js';

const SAFETY = /^(\d{5} ){11}\d{5}$/;

/** The open conversation's region. */
function conversation(page: Page, title: string) {
  return page.getByRole('region', { name: `Conversation with ${title}` });
}

/** Sends `text` from the open conversation's composer. */
async function write(page: Page, text: string) {
  const box = page.getByRole('textbox', { name: 'Message' });
  await box.fill(text);
  await box.press('Enter');
}

/** The safety number the dialog shows for `username`, its groups joined by single spaces. */
async function safetyNumber(page: Page, username: string): Promise<string> {
  const dialog = page.getByRole('dialog', { name: 'Safety number' });
  const member = dialog.getByRole('group', { name: username });
  const text = await member.locator('.safety-number').textContent();
  return (text ?? '').replace(/\s+/g, ' ').trim();
}

describe('direct messages in the web UI', () => {
  it('alice starts a DM from the member list; they talk live; same safety number; verify; block', async () => {
    const net = await createTestnet({ peers: 2 });
    const [pa, pb] = net.peers as [TestPeer, TestPeer];
    await signIn(pa, 'alice');
    await signIn(pb, 'bob');
    const ch = (await pa.call('POST', '/api/channels', { name: 'general' })).body.id as string;
    await pb.call('POST', `/api/channels/${ch}/join`);
    await waitFor(() => pb.node.sourceOf(ch) === 'host');

    const a = await openPage(pa.uiUrl);
    const b = await openPage(pb.uiUrl);
    // bob waits on Home: no conversation yet.
    await b.page
      .getByRole('region', { name: 'Direct Messages' })
      .getByText('No conversations yet')
      .waitFor();
    expect(await b.page.getByRole('button', { name: 'Home', exact: true }).count()).toBe(1);

    // alice: #general, then "Message" beside bob in the member list.
    await a.page.getByRole('button', { name: /Your channels/ }).click();
    await a.page.getByRole('region', { name: '#general' }).waitFor();
    const members = a.page.getByRole('complementary', { name: 'Members' });
    await members.getByText('Members — 2').waitFor();
    expect(await members.getByRole('button', { name: 'Message alice' }).count()).toBe(0);
    await members.getByRole('button', { name: 'Message bob' }).click();
    const aConv = conversation(a.page, 'bob');
    await aConv.waitFor();
    // Home is selected, with the conversation listed and open.
    const aList = a.page.getByRole('region', { name: 'Direct Messages' });
    expect(await aList.getByRole('button', { name: /^bob/ }).getAttribute('aria-current')).toBe(
      'true',
    );
    // bob's presence on his avatar, as Discord's DM list shows it: online, then offline while he
    // is invisible, and online again.
    const bobItem = aList.getByRole('button', { name: /^bob/ });
    await aList.getByRole('button', { name: /^bob \(online\)/ }).waitFor();
    expect(await bobItem.locator('.dot.online').count()).toBe(1);
    // The open conversation's header shows it too.
    const aHead = aConv.locator('.dm-pane-head');
    expect(await aHead.locator('.dot.online').count()).toBe(1);
    expect((await pb.call('PUT', '/api/status', { status: 'invisible' })).status).toBe(200);
    await aList.getByRole('button', { name: /^bob \(offline\)/ }).waitFor();
    expect(await bobItem.locator('.dot.offline').count()).toBe(1);
    expect(await aHead.locator('.dot.offline').count()).toBe(1);
    expect((await pb.call('PUT', '/api/status', { status: 'online' })).status).toBe(200);
    await aList.getByRole('button', { name: /^bob \(online\)/ }).waitFor();
    await write(a.page, 'hi @bob, got a minute?');
    await aConv.getByRole('log', { name: 'Messages' }).getByText('got a minute?').waitFor();

    // bob, on Home: the unread and mention count on the Home button and in the list, a toast.
    await b.page.getByRole('button', { name: 'Home, 1 unread, 1 mention' }).waitFor();
    const bList = b.page.getByRole('region', { name: 'Direct Messages' });
    const fromAlice = bList.getByRole('button', { name: /^alice/ });
    await fromAlice.getByText('hi @bob, got a minute?').waitFor();
    await fromAlice.getByLabel('1 mention').waitFor();
    await b.page.getByText('alice mentioned you').waitFor();
    expect(await seriousViolations(b.page)).toEqual([]);
    // More lines from alice: still one toast for the conversation, the mention's.
    for (const line of ['one', 'two', 'three']) await write(a.page, `and ${line}`);
    await fromAlice.getByText('and three').waitFor();
    expect(await b.page.getByText('alice mentioned you').count()).toBe(1);
    expect(await b.page.getByText('alice sent you a message').count()).toBe(0);

    // bob opens it: read, the badges go; he answers and alice sees it live.
    await fromAlice.click();
    const bConv = conversation(b.page, 'alice');
    await bConv.getByRole('log', { name: 'Messages' }).getByText('got a minute?').waitFor();
    // The "New messages" divider stands above the first of the four he had not read.
    const firstNew = bConv.locator(
      'div:has(> [role="separator"][aria-label="New messages"]) > article',
    );
    expect(await firstNew.innerText()).toContain('got a minute?');
    await b.page.getByRole('button', { name: 'Home', exact: true }).waitFor();
    await write(b.page, 'sure, what is up?');
    await aConv.getByRole('log', { name: 'Messages' }).getByText('sure, what is up?').waitFor();
    // And the other way, while both have it open.
    await write(a.page, 'the **release** notes');
    const bold = bConv.getByRole('log', { name: 'Messages' }).locator('strong', {
      hasText: 'release',
    });
    await bold.waitFor();
    // alice's own message ends delivered (bob's device has it).
    await waitFor(
      async () =>
        (await aConv.locator('.message', { hasText: 'release' }).getAttribute('class'))?.includes(
          'delivered',
        ),
      10_000,
      "alice's message delivered",
    );
    // alice edits her message in place and deletes another (after confirming): bob sees both.
    const release = aConv.locator('.message', { hasText: 'release' });
    await release.hover();
    await release.getByRole('button', { name: 'Edit', exact: true }).click();
    const editBox = release.getByRole('textbox', { name: 'Edit message' });
    await editBox.fill('the **release** notes, v2');
    await editBox.press('Enter');
    const bLog = bConv.getByRole('log', { name: 'Messages' });
    await bLog.locator('.message', { hasText: 'notes, v2' }).getByText('(edited)').waitFor();
    await aConv.locator('.message', { hasText: 'notes, v2' }).getByText('(edited)').waitFor();
    await write(a.page, 'wrong window, sorry');
    await bLog.getByText('wrong window, sorry').waitFor();
    const wrong = aConv.locator('.message', { hasText: 'wrong window' });
    await wrong.hover();
    await wrong.getByRole('button', { name: 'Delete', exact: true }).click();
    const confirm = a.page.getByRole('dialog', { name: 'Delete message' });
    await confirm.getByText('disappears for everyone in the conversation').waitFor();
    await confirm.getByRole('button', { name: 'Delete', exact: true }).click();
    await wrong.waitFor({ state: 'detached' });
    await bLog.getByText('wrong window, sorry').waitFor({ state: 'detached' });
    // bob has neither Edit nor Delete on alice's messages.
    // (A message that is not a reply: bob's reply below quotes this one's text.)
    const hers = bLog.locator('.message:not(:has(.reply-quote))', { hasText: 'notes, v2' });
    await hers.hover();
    expect(await hers.getByRole('button', { name: /^(Edit|Delete)$/ }).count()).toBe(0);
    // But he answers it and reacts to it, as in a channel; alice adds her reaction to his.
    await hers.getByRole('button', { name: 'Reply to alice' }).click();
    await b.page.getByText('Replying to alice', { exact: true }).waitFor();
    await b.page.keyboard.type('reading them now');
    await b.page.keyboard.press('Enter');
    await b.page.getByText('Replying to alice', { exact: true }).waitFor({ state: 'detached' });
    await hers.hover();
    await hers.getByRole('button', { name: 'React', exact: true }).click();
    await b.page.getByRole('button', { name: 'React with 👍' }).click();
    const aLog = aConv.getByRole('log', { name: 'Messages' });
    const answer = aLog.locator('.message', { hasText: 'reading them now' });
    const quote = answer.getByRole('button', { name: /^Replying to @alice the release notes, v2/ });
    await quote.waitFor();
    const original = aLog.locator('.message:not(:has(.reply-quote))', { hasText: 'notes, v2' });
    const chip = original.getByRole('button', { name: '👍 1, reacted by bob' });
    await chip.click();
    await bLog.getByRole('button', { name: '👍 2, reacted by alice, bob' }).waitFor();
    // Up in bob's empty composer edits his newest message in place, as in a channel.
    await b.page.getByRole('textbox', { name: 'Message' }).focus();
    await b.page.keyboard.press('ArrowUp');
    const bobEdit = bLog.getByRole('textbox', { name: 'Edit message' });
    await bobEdit.fill('reading them now, all good');
    await bobEdit.press('Enter');
    await aLog.locator('.message', { hasText: 'all good' }).getByText('(edited)').waitFor();
    // The quote jumps to its original, highlighted.
    await quote.click();
    await waitFor(
      async () => /\bflash\b/.test((await original.getAttribute('class')) ?? ''),
      5000,
      'the original highlighted',
    );
    // One toolbar, the hovered message's: the original holds the focus the jump gave it, and
    // showed a second toolbar beside the one under the pointer.
    await answer.hover();
    const toolbars = aLog.locator('.msg-actions:visible');
    await waitFor(async () => (await toolbars.count()) === 1, 5000, 'one toolbar');
    expect(await answer.locator('.msg-actions:visible').count()).toBe(1);

    expect(await seriousViolations(a.page)).toEqual([]);
    await snap(a.page, 'dms');
    keep('dms');

    // Safety numbers: the same 60 digits on both sides.
    await a.page.getByRole('button', { name: 'Safety number' }).click();
    await b.page.getByRole('button', { name: 'Safety number' }).click();
    await a.page
      .getByRole('dialog', { name: 'Safety number' })
      .getByRole('group', { name: 'bob' })
      .waitFor();
    await b.page
      .getByRole('dialog', { name: 'Safety number' })
      .getByRole('group', { name: 'alice' })
      .waitFor();
    const seenByAlice = await safetyNumber(a.page, 'bob');
    const seenByBob = await safetyNumber(b.page, 'alice');
    expect(seenByAlice).toMatch(SAFETY);
    expect(seenByBob).toBe(seenByAlice);
    expect(await seriousViolations(a.page)).toEqual([]);

    // alice marks bob verified: the dialog and the conversation's header say so.
    const bobInDialog = a.page
      .getByRole('dialog', { name: 'Safety number' })
      .getByRole('group', { name: 'bob' });
    await bobInDialog.getByRole('button', { name: 'Mark as verified' }).click();
    await bobInDialog.getByRole('button', { name: 'Clear verification' }).waitFor();
    await bobInDialog.getByText('✓ Verified').waitFor();
    await a.page
      .getByRole('dialog', { name: 'Safety number' })
      .getByRole('button', { name: 'Close' })
      .click();
    await b.page
      .getByRole('dialog', { name: 'Safety number' })
      .getByRole('button', { name: 'Close' })
      .click();
    await aConv.locator('header').getByText('✓ Verified').waitFor();
    const dm = ((await pa.call('GET', '/api/dms')).body as any[])[0];
    expect(dm.verified).toBe(true);

    // alice blocks bob (after confirming): she can no longer write to him, and his next message
    // does not reach her, though bob is given no sign of it (his copy ends delivered).
    await aConv.getByRole('button', { name: 'Block', exact: true }).click();
    await a.page
      .getByRole('dialog', { name: 'Block bob' })
      .getByRole('button', { name: 'Block' })
      .click();
    await aConv.getByRole('button', { name: 'Unblock' }).waitFor();
    await aConv.getByText('You blocked bob').first().waitFor();
    expect((await pa.call('GET', '/api/blocks')).body.blocked).toEqual(['bob']);
    const aBox = a.page.getByRole('textbox', { name: 'Message' });
    expect(await aBox.isDisabled()).toBe(true);
    expect(await aBox.getAttribute('placeholder')).toBe('You blocked bob: unblock them to write');
    await write(b.page, 'hello? are you there?');
    const blockedOne = bConv.locator('.message', { hasText: 'hello? are you there?' });
    await waitFor(
      async () => (await blockedOne.getAttribute('class'))?.includes('delivered'),
      15_000,
      "bob's message to alice, who blocked him, taken by her device",
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(await aConv.getByText('hello? are you there?').count()).toBe(0);
    const atAlice = (await pa.call('GET', `/api/dms/${dm.id}/messages`)).body.messages as any[];
    expect(atAlice.map((m) => m.text)).not.toContain('hello? are you there?');
    expect(await seriousViolations(a.page)).toEqual([]);

    // 800 px: the conversation, its header and the composer fit; nothing scrolls sideways.
    await a.page.setViewportSize({ width: 800, height: 640 });
    await aConv.getByRole('button', { name: 'Safety number' }).waitFor();
    expect(await aConv.getByRole('button', { name: 'Unblock' }).isVisible()).toBe(true);
    expect(await a.page.getByRole('textbox', { name: 'Message' }).isVisible()).toBe(true);
    expect(await a.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(
      800,
    );
    expect(await seriousViolations(a.page)).toEqual([]);

    // alice unblocks bob: she can write to him again; what he sent meanwhile stays unseen.
    await aConv.getByRole('button', { name: 'Unblock' }).click();
    await a.page
      .getByRole('dialog', { name: 'Unblock bob' })
      .getByRole('button', { name: 'Unblock' })
      .click();
    await aConv.getByRole('button', { name: 'Block', exact: true }).waitFor();
    expect(await aBox.isDisabled()).toBe(false);
    await write(a.page, 'sorry, back now');
    await bConv.getByText('sorry, back now').waitFor();
    expect(await aConv.getByText('hello? are you there?').count()).toBe(0);

    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  }, 90_000);

  it("a new device of bob's changes his safety number: a notice, a banner, and verifying clears it", async () => {
    const net = await createTestnet({ peers: 3 });
    const [pa, pb, pb2] = net.peers as [TestPeer, TestPeer, TestPeer];
    await signIn(pa, 'alice');
    await signIn(pb, 'bob');
    const dm = (await pa.call('POST', '/api/dms', { members: ['bob'] })).body;
    expect(dm.title).toBe('bob');
    await pa.call('POST', `/api/dms/${dm.id}/messages`, { text: 'before the new device' });
    await waitFor(
      async () => (await pb.call('GET', `/api/dms/${dm.id}/messages`)).body.messages?.length > 0,
      10_000,
      'bob has the first message',
    );
    // bob logs in on another peer: a second device with its own identity key.
    const login = await pb2.call('POST', '/api/login', { username: 'bob', password: 'bob-pw' });
    expect(login.status).toBe(200);

    const a = await openPage(pa.uiUrl);
    await a.page
      .getByRole('region', { name: 'Direct Messages' })
      .getByRole('button', { name: /^bob/ })
      .click();
    const conv = conversation(a.page, 'bob');
    await conv.getByText('before the new device').waitFor();
    // Once bob's second device is published, alice's peer sees it when it asks for his devices
    // (the safety numbers, as here, or a send): her open page is told at once.
    await waitFor(
      async () =>
        (await pa.call('GET', `/api/dms/${dm.id}/safety`)).body.members?.[0]?.devices === 2,
      15_000,
      "alice's peer knows bob's two devices",
    );
    const notice = conv.locator('.dm-notice');
    await notice.first().waitFor({ timeout: 15_000 });
    expect(await notice.first().textContent()).toContain('bob');
    const banner = conv.getByRole('status').filter({ hasText: "bob's safety number changed" });
    await banner.getByText("bob's safety number changed. Verify it.").waitFor();
    expect(await seriousViolations(a.page)).toEqual([]);

    await banner.getByRole('button', { name: 'Verify safety number' }).click();
    const bob = a.page.getByRole('dialog', { name: 'Safety number' }).getByRole('group', {
      name: 'bob',
    });
    await bob.getByText('Changed: not verified').waitFor();
    await bob.getByText('2 devices').waitFor();
    await bob.getByRole('button', { name: 'Mark as verified' }).click();
    await bob.getByRole('button', { name: 'Clear verification' }).waitFor();
    await a.page.keyboard.press('Escape');
    await banner.waitFor({ state: 'detached' });
    await conv.locator('header').getByText('✓ Verified').waitFor();
    // Both of bob's devices get what alice writes now.
    await write(a.page, 'after it');
    for (const p of [pb, pb2])
      await waitFor(
        async () =>
          ((await p.call('GET', `/api/dms/${dm.id}/messages`)).body.messages as any[])?.some(
            (m) => m.text === 'after it',
          ),
        15_000,
        'bob has "after it" on each device',
      );
    expect(a.errors).toEqual([]);
  }, 60_000);

  it('"New message" starts a group DM by name; an unknown one is said in the dialog; visitors have no DMs', async () => {
    const net = await createTestnet({ peers: 4 });
    const [pa, pb, pc, pv] = net.peers as [TestPeer, TestPeer, TestPeer, TestPeer];
    await signIn(pa, 'alice');
    await signIn(pb, 'bob');
    await signIn(pc, 'carol');
    await pa.call('POST', '/api/channels', { name: 'lobby', allowVisitors: true });

    const a = await openPage(pa.uiUrl);
    const list = a.page.getByRole('region', { name: 'Direct Messages' });
    await list.getByRole('button', { name: 'New message' }).click();
    const dialog = a.page.getByRole('dialog', { name: 'New message' });
    await dialog.getByLabel('Usernames').fill('nobody-here');
    await dialog.getByRole('button', { name: 'Start conversation' }).click();
    await dialog.getByRole('alert').waitFor();
    expect(await dialog.getByRole('alert').textContent()).toMatch(/nobody-here/);
    expect(await seriousViolations(a.page)).toEqual([]);
    // Too many names: said before asking.
    await dialog
      .getByLabel('Usernames')
      .fill(Array.from({ length: 10 }, (_, i) => `user${i}`).join(', '));
    await dialog.getByRole('button', { name: 'Start conversation' }).click();
    await dialog.getByText('at most 9 other members').waitFor();
    // Two names: a group DM, opened at once.
    await dialog.getByLabel('Usernames').fill('bob, carol');
    await dialog.getByRole('button', { name: 'Start conversation' }).click();
    await dialog.waitFor({ state: 'detached' });
    const group = conversation(a.page, 'bob, carol');
    await group.waitFor();
    // No Block in a group (it is per user, from a 1:1); a safety number per other member.
    expect(await group.getByRole('button', { name: 'Block' }).count()).toBe(0);
    // The member list shows the conversation's members (not everyone online), as Discord's.
    const panel = a.page.getByRole('complementary', { name: 'Members' });
    await panel.getByText('Members — 3').waitFor();
    expect(await panel.getByRole('listitem').allInnerTexts()).toEqual([
      expect.stringContaining('alice'),
      expect.stringContaining('bob'),
      expect.stringContaining('carol'),
    ]);
    // Started, then written in straight away: the focus is in its composer (typed text went to
    // the "New message" button, whose Space opened the dialog again).
    await waitFor(
      async () => (await a.page.evaluate(() => document.activeElement?.id)) === 'composer',
      5000,
      'the focus in the new conversation’s composer',
    );
    await a.page.keyboard.type('hi both');
    await a.page.keyboard.press('Enter');
    await group.locator('.message.delivered', { hasText: 'hi both' }).waitFor({ timeout: 15_000 });
    for (const p of [pb, pc]) {
      const dms = (await p.call('GET', '/api/dms')).body as any[];
      expect(dms.map((d) => d.members)).toEqual([['alice', 'bob', 'carol']]);
    }
    await group.getByRole('button', { name: 'Safety number' }).click();
    const safety = a.page.getByRole('dialog', { name: 'Safety number' });
    for (const name of ['bob', 'carol']) {
      await safety.getByRole('group', { name }).waitFor();
      expect(await safetyNumber(a.page, name)).toMatch(SAFETY);
    }
    expect(await seriousViolations(a.page)).toEqual([]);
    await safety.getByRole('button', { name: 'Close' }).click();
    // The unknown user was refused by the peer (404): that and nothing else in the console.
    expect(a.errors.some((e) => /^404 POST \/api\/dms$/.test(e))).toBe(true);
    expect(a.errors.filter((e) => !/404/.test(e))).toEqual([]);

    const v = await openPage(pv.uiUrl);
    await v.page.getByRole('tab', { name: 'Visitor' }).click();
    await v.page.getByLabel('Display name').fill('guest');
    await v.page.getByRole('button', { name: 'Enter as visitor' }).click();
    await v.page.getByRole('heading', { name: /Directory/ }).waitFor();
    await v.page.getByRole('button', { name: 'Join lobby' }).click();
    await v.page.getByRole('log', { name: 'Messages' }).waitFor();
    await v.page.getByRole('button', { name: 'Home', exact: true }).click();
    await v.page.getByRole('heading', { name: /Directory/ }).waitFor();
    expect(await v.page.getByRole('region', { name: 'Direct Messages' }).count()).toBe(0);
    expect(await v.page.getByRole('button', { name: /^Message / }).count()).toBe(0);
    // Never asked (a visitor's /api/dms is a 403, which would be logged here).
    expect(v.errors).toEqual([]);
  }, 60_000);
});
