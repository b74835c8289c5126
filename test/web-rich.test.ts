/**
 * Rich messages in the browser (issue 13 items 1-3): alice owns #general, bob is a member; each
 * does what a person does on their own page: reply and jump to the original (loaded, or loaded
 * around it), mention (red badge, highlight, toast), edit, delete, react, and the owner deleting
 * bob's message. No console error (nor a refused call) on any page.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Locator, Page } from 'playwright-core';
import { createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';
import { openPage, snap } from './browser.js';
import { seriousViolations } from './axe.js';

const SHOTS = path.resolve(import.meta.dirname, '..', 'docs', 'screenshots');

function log(page: Page) {
  return page.getByRole('log', { name: 'Messages' });
}

/** The message whose accessible name starts with "author: text". */
function message(page: Page, author: string, text: string): Locator {
  const esc = text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return log(page).getByRole('article', { name: new RegExp(`^${author}: ${esc}`) });
}

async function send(page: Page, text: string) {
  await page.getByRole('textbox', { name: 'Message' }).fill(text);
  await page.keyboard.press('Enter');
}

async function openGeneral(page: Page, owner = "alice's channels") {
  await page.getByRole('button', { name: new RegExp(owner) }).click();
  await page.getByRole('button', { name: /^# ?general/ }).click();
  await page.getByRole('region', { name: '#general' }).waitFor();
}

/** alice (owner of #general and #random) and bob (member of both), signed in. */
async function setup() {
  const net = await createTestnet({ peers: 2 });
  const [alice, bob] = net.peers as [TestPeer, TestPeer];
  await signIn(alice, 'alice');
  await signIn(bob, 'bob');
  const general = (await alice.call('POST', '/api/channels', { name: 'general' })).body
    .id as string;
  const random = (await alice.call('POST', '/api/channels', { name: 'random' })).body.id as string;
  for (const ch of [general, random]) {
    await bob.call('POST', `/api/channels/${ch}/join`);
    await waitFor(() => bob.node.sourceOf(ch) === 'host');
  }
  return { alice, bob, general, random };
}

describe('rich messages in the web UI', () => {
  it('reply: "Replying to" bar, quoted preview, jump to the original, loaded or around it', async () => {
    const { alice, bob, general } = await setup();
    const first = (
      await alice.call('POST', `/api/channels/${general}/messages`, { text: 'the very first' })
    ).body.id as string;
    for (let i = 0; i < 60; i++)
      await alice.call('POST', `/api/channels/${general}/messages`, { text: `filler ${i}` });
    await alice.call('POST', `/api/channels/${general}/messages`, {
      text: 'answering the first, far above',
      replyTo: first,
    });
    await waitFor(async () => {
      const page = (await bob.call('GET', `/api/channels/${general}/messages?limit=1`)).body;
      return page.messages[0]?.text === 'answering the first, far above';
    });
    const a = await openPage(alice.uiUrl);
    const b = await openPage(bob.uiUrl);
    await openGeneral(a.page, 'Your channels');
    await openGeneral(b.page);

    // bob replies to a message on his screen from its hover actions.
    const filler = message(b.page, 'alice', 'filler 59');
    await filler.hover();
    await filler.getByRole('button', { name: 'Reply to alice' }).click();
    await b.page.getByText('Replying to alice', { exact: true }).waitFor();
    // Cancel, then reply again (the composer has the focus).
    await b.page.getByRole('button', { name: 'Cancel reply' }).click();
    expect(await b.page.getByText('Replying to alice', { exact: true }).count()).toBe(0);
    await filler.hover();
    await filler.getByRole('button', { name: 'Reply to alice' }).click();
    await b.page.keyboard.type('a reply from bob');
    await b.page.keyboard.press('Enter');
    await b.page.getByText('Replying to alice', { exact: true }).waitFor({ state: 'detached' });

    // alice sees the reply with its quote; the quote jumps to the original, highlighted.
    const reply = message(a.page, 'bob', 'a reply from bob');
    await reply.waitFor();
    const quote = reply.getByRole('button', { name: /^Replying to @alice filler 59/ });
    await quote.waitFor();
    await snap(a.page, 'reply');
    expect(await seriousViolations(a.page)).toEqual([]); // axe: no serious or critical violation
    fs.copyFileSync(
      path.resolve(import.meta.dirname, '..', 'test-artifacts', 'reply.png'),
      path.join(SHOTS, 'reply.png'),
    );
    await log(a.page).evaluate((el) => el.scrollTo(0, el.scrollHeight));
    await quote.click();
    const original = message(a.page, 'alice', 'filler 59');
    await waitFor(async () => /\bflash\b/.test((await original.getAttribute('class')) ?? ''));
    await waitFor(async () => await original.evaluate((e) => e === document.activeElement));

    // The first message is not loaded (a page is 50): the quote loads the page around it.
    expect(await message(b.page, 'alice', 'the very first').count()).toBe(0);
    const far = message(b.page, 'alice', 'answering the first');
    await far.getByRole('button', { name: /Replying to @alice the very first/ }).click();
    const target = message(b.page, 'alice', 'the very first');
    await target.waitFor();
    expect(await target.getAttribute('class')).toMatch(/\bflash\b/);
    // It is scrolled into view, and the newest are not shown: "Jump to present" brings them back.
    expect(await target.isVisible()).toBe(true);
    const box = await target.boundingBox();
    const view = await log(b.page).boundingBox();
    expect(box!.y).toBeGreaterThanOrEqual(view!.y);
    expect(box!.y + box!.height).toBeLessThanOrEqual(view!.y + view!.height);
    expect(await log(b.page).getByText('a reply from bob').count()).toBe(0);
    await b.page.getByRole('button', { name: /Jump to present/ }).click();
    const newest = message(b.page, 'bob', 'a reply from bob');
    await newest.waitFor();
    expect(await b.page.getByRole('button', { name: /Jump to present/ }).count()).toBe(0);
    // The newest message is at the bottom of a full log: its reaction picker opens above it,
    // all of it inside the log (below, the log's edge would cut it).
    await newest.hover();
    await newest.getByRole('button', { name: 'React', exact: true }).click();
    const picker = b.page.getByRole('group', { name: 'Pick a reaction' });
    await picker.getByRole('searchbox', { name: 'Search emoji' }).fill('cat');
    const pickerBox = (await picker.boundingBox())!;
    const logBox = (await log(b.page).boundingBox())!;
    expect(pickerBox.y).toBeGreaterThanOrEqual(logBox.y);
    expect(pickerBox.y + pickerBox.height).toBeLessThanOrEqual(logBox.y + logBox.height);
    await b.page.keyboard.press('Escape');
    await picker.waitFor({ state: 'detached' });

    // A reply to a message since deleted says so.
    await alice.call('DELETE', `/api/channels/${general}/messages/${first}`);
    await b.page.reload();
    await openGeneral(b.page);
    await message(b.page, 'alice', 'answering the first')
      .getByRole('button', { name: /Original message was deleted/ })
      .waitFor();
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });

  it('mention: red badge on the channel while bob is elsewhere, a toast, then the highlight', async () => {
    const { alice, bob } = await setup();
    const a = await openPage(alice.uiUrl);
    const b = await openPage(bob.uiUrl);
    await openGeneral(a.page, 'Your channels');
    await b.page.getByRole('button', { name: /alice's channels/ }).click();
    await b.page.getByRole('button', { name: /^# ?random/ }).click();
    await b.page.getByRole('region', { name: '#random' }).waitFor();

    // Typing a mention suggests the channel's members (not yourself), and @here; Enter picks.
    const box = a.page.getByRole('textbox', { name: 'Message' });
    await box.click();
    await a.page.keyboard.type('hey @');
    const suggest = a.page.getByRole('listbox', { name: 'Mention' });
    await suggest.waitFor();
    expect(await suggest.getByRole('option').allTextContents()).toEqual([
      '@bob',
      '@here everyone online',
    ]);
    await a.page.keyboard.type('B');
    await waitFor(async () => (await suggest.getByRole('option').count()) === 1);
    const bobOption = suggest.getByRole('option', { name: '@bob' });
    expect(await bobOption.getAttribute('aria-selected')).toBe('true');
    expect(await box.getAttribute('aria-activedescendant')).toBe(
      await bobOption.getAttribute('id'),
    );
    expect(await seriousViolations(a.page)).toEqual([]);
    await a.page.keyboard.press('Enter'); // picks the name, does not send
    await suggest.waitFor({ state: 'detached' });
    expect(await box.inputValue()).toBe('hey @bob ');
    await a.page.keyboard.type('look @h');
    await suggest.getByRole('option', { name: /@here/ }).waitFor();
    await a.page.keyboard.press('Escape'); // closes the list, keeps the text
    await suggest.waitFor({ state: 'detached' });
    await a.page.keyboard.press('Backspace');
    await a.page.keyboard.press('Backspace');
    await a.page.keyboard.type('at this');
    await a.page.keyboard.press('Enter');
    expect(await box.inputValue()).toBe('');
    await send(a.page, 'no mention here');
    // The toast, in a live region, though bob's tab is visible.
    const toast = b.page.getByRole('status').filter({ hasText: 'alice mentioned you in #general' });
    await toast.waitFor();
    // The channel's badge is the red mention count (1), not the unread count (2).
    const channel = b.page.getByRole('button', { name: /^# ?general/ });
    await channel.getByLabel('1 mention').waitFor();
    const red = await channel
      .getByLabel('1 mention')
      .evaluate((e) => getComputedStyle(e).backgroundColor);
    expect(red).toBe('rgb(196, 43, 48)');
    await b.page.getByRole('button', { name: /alice's channels, 2 unread, 1 mention$/ }).waitFor();
    await snap(b.page, 'mention-toast');
    expect(await seriousViolations(b.page)).toEqual([]); // axe: no serious or critical violation

    // The toast opens the channel; the message mentioning bob is highlighted, the other is not.
    await toast.getByRole('button', { name: 'Open #general' }).click();
    await b.page.getByRole('region', { name: '#general' }).waitFor();
    const mentioned = message(b.page, 'alice', 'hey @bob');
    await mentioned.waitFor();
    expect(await mentioned.getAttribute('class')).toMatch(/\bmentioned\b/);
    expect(await message(b.page, 'alice', 'no mention here').getAttribute('class')).not.toMatch(
      /\bmentioned\b/,
    );
    await b.page.mouse.move(0, 0);
    await snap(b.page, 'mention');
    fs.copyFileSync(
      path.resolve(import.meta.dirname, '..', 'test-artifacts', 'mention.png'),
      path.join(SHOTS, 'mention.png'),
    );
    // Read: the badge is gone.
    await waitFor(async () => (await channel.getByLabel(/mention/).count()) === 0);
    // No toast for a mention in the open channel.
    await send(a.page, '@bob again');
    await message(b.page, 'alice', '@bob again').waitFor();
    await b.page.waitForTimeout(300);
    expect(await b.page.getByText('alice mentioned you in #general').count()).toBe(0);
    // A toast closes once its channel is open, also when opened from the sidebar.
    await b.page.getByRole('button', { name: /^# ?random/ }).click();
    await b.page.getByRole('region', { name: '#random' }).waitFor();
    await send(a.page, 'once more, @bob');
    await toast.waitFor();
    await b.page.getByRole('button', { name: /^# ?general/ }).click();
    await message(b.page, 'alice', 'once more, @bob').waitFor();
    await toast.waitFor({ state: 'detached', timeout: 2000 });
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });

  it('edit, delete, react, owner moderation, and who may do what', async () => {
    const { alice, bob } = await setup();
    const a = await openPage(alice.uiUrl);
    const b = await openPage(bob.uiUrl);
    await openGeneral(a.page, 'Your channels');
    await openGeneral(b.page);

    await send(b.page, 'bob wrote this badly');
    await send(a.page, 'alice says hello');
    const mine = message(b.page, 'bob', 'bob wrote this badly');
    await message(b.page, 'alice', 'alice says hello').waitFor();

    // Edit from the keyboard: the message takes the focus, Tab reaches its actions.
    await mine.focus();
    await b.page.keyboard.press('Tab'); // Reply
    await b.page.keyboard.press('Tab'); // React
    await b.page.keyboard.press('Tab'); // Edit
    expect(await b.page.evaluate(() => document.activeElement?.textContent)).toBe('Edit');
    await b.page.keyboard.press('Enter');
    const editor = b.page.getByRole('textbox', { name: 'Edit message' });
    await editor.waitFor();
    // Escape cancels.
    await editor.press('Escape');
    await editor.waitFor({ state: 'detached' });
    await mine.hover();
    await mine.getByRole('button', { name: 'Edit', exact: true }).click();
    await editor.fill('bob wrote this well');
    await editor.press('Enter');
    const edited = message(a.page, 'bob', 'bob wrote this well');
    await edited.waitFor();
    await edited.getByText('(edited)').waitFor();
    expect(await edited.getByText('(edited)').getAttribute('title')).toMatch(/^Edited /);
    expect(await log(a.page).getByText('bob wrote this badly').count()).toBe(0);
    await message(b.page, 'bob', 'bob wrote this well').getByText('(edited)').waitFor();

    // bob cannot edit or delete alice's message; he can reply and react.
    const hers = message(b.page, 'alice', 'alice says hello');
    await hers.hover();
    await hers.getByRole('button', { name: 'Reply to alice' }).waitFor();
    expect(await hers.getByRole('button', { name: 'Edit', exact: true }).count()).toBe(0);
    expect(await hers.getByRole('button', { name: 'Delete', exact: true }).count()).toBe(0);

    // React: bob picks 👍 on alice's message; alice sees "👍 1", adds hers: 2, highlighted for her.
    await hers.getByRole('button', { name: 'React', exact: true }).click();
    await b.page.getByRole('group', { name: 'Pick a reaction' }).waitFor();
    await b.page.getByRole('button', { name: 'React with 👍' }).click();
    const onA = message(a.page, 'alice', 'alice says hello');
    const chipA = onA.getByRole('button', { name: /^👍 1, reacted by bob$/ });
    await chipA.waitFor();
    expect(await chipA.getAttribute('aria-pressed')).toBe('false');
    await chipA.click();
    const chip2 = onA.getByRole('button', { name: /^👍 2, reacted by/ });
    await chip2.waitFor();
    expect(await chip2.getAttribute('aria-pressed')).toBe('true');
    expect(await chip2.getAttribute('title')).toMatch(/bob/);
    expect(await chip2.getAttribute('title')).toMatch(/alice/);
    const chipB = hers.getByRole('button', { name: /^👍 2/ });
    await chipB.waitFor();
    expect(await chipB.getAttribute('aria-pressed')).toBe('true');
    // A second emoji from the picker, by keyboard: it opens in its search; up to the row of
    // eight (👍), arrow right to ❤️, Enter.
    await hers.hover();
    await hers.getByRole('button', { name: 'React', exact: true }).click();
    await b.page.keyboard.press('ArrowUp');
    await b.page.keyboard.press('ArrowRight');
    await b.page.keyboard.press('Enter');
    await onA.getByRole('button', { name: /^❤️ 1/ }).waitFor();
    // Any emoji, by its name: the picker's search ("heart" finds 😍 heart eyes); Enter picks.
    await hers.hover();
    await hers.getByRole('button', { name: 'React', exact: true }).click();
    const search = b.page.getByRole('searchbox', { name: 'Search emoji' });
    await search.fill('heart');
    await b.page.getByRole('button', { name: 'React with 😍 heart eyes' }).waitFor();
    expect(await seriousViolations(b.page)).toEqual([]);
    await search.fill(':heart_eyes');
    await search.press('Enter');
    await onA.getByRole('button', { name: /^😍 1, reacted by bob$/ }).waitFor();
    await b.page.mouse.move(0, 0);
    await snap(b.page, 'reactions');
    expect(await seriousViolations(b.page)).toEqual([]); // axe: no serious or critical violation
    fs.copyFileSync(
      path.resolve(import.meta.dirname, '..', 'test-artifacts', 'reactions.png'),
      path.join(SHOTS, 'reactions.png'),
    );
    // One picker at a time: it closes when another message's actions open (hover, or the focus
    // on another message), on Escape, and on a click outside.
    const picker = b.page.getByRole('group', { name: 'Pick a reaction' });
    const other = message(b.page, 'bob', 'bob wrote this well');
    const openPicker = async () => {
      await hers.hover();
      await hers.getByRole('button', { name: 'React', exact: true }).click();
      await picker.waitFor();
    };
    await openPicker();
    await other.hover();
    await picker.waitFor({ state: 'detached', timeout: 2000 });
    await openPicker();
    await other.focus();
    await picker.waitFor({ state: 'detached', timeout: 2000 });
    await openPicker();
    await b.page.mouse.move(0, 0);
    await b.page.getByRole('textbox', { name: 'Message' }).focus();
    await b.page.keyboard.press('Escape');
    await picker.waitFor({ state: 'detached', timeout: 2000 });
    await openPicker();
    await b.page.getByRole('heading', { name: 'general' }).click();
    await picker.waitFor({ state: 'detached', timeout: 2000 });

    // bob toggles 👍 off: alice's page shows 1 again.
    await chipB.click();
    await onA.getByRole('button', { name: /^👍 1, reacted by alice$/ }).waitFor();
    await hers.getByRole('button', { name: /^👍 1/ }).waitFor();
    expect(await hers.getByRole('button', { name: /^👍 1/ }).getAttribute('aria-pressed')).toBe(
      'false',
    );

    // bob deletes his own message, after confirming: gone on both pages.
    const well = message(b.page, 'bob', 'bob wrote this well');
    await well.hover();
    await well.getByRole('button', { name: 'Delete', exact: true }).click();
    const dialog = b.page.getByRole('dialog', { name: 'Delete message' });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click(); // kept
    await dialog.waitFor({ state: 'detached' });
    await well.hover();
    await well.getByRole('button', { name: 'Delete', exact: true }).click();
    await dialog.getByRole('button', { name: 'Delete', exact: true }).click();
    await well.waitFor({ state: 'detached' });
    await message(a.page, 'bob', 'bob wrote this well').waitFor({ state: 'detached' });

    // The owner deletes bob's message.
    await send(b.page, 'something off-topic');
    // First bob fixes it: Up in the empty composer edits his newest message (README), Escape or
    // Enter gives the focus back to the composer.
    const composer = b.page.getByRole('textbox', { name: 'Message' });
    const focused = () => composer.evaluate((el) => el === document.activeElement);
    await message(b.page, 'bob', 'something off-topic').waitFor();
    await composer.fill('a draft');
    await composer.press('ArrowUp'); // text in the box: the caret moves, nothing is edited
    expect(await editor.count()).toBe(0);
    await composer.fill('');
    await composer.press('ArrowUp');
    await editor.waitFor();
    expect(await editor.inputValue()).toBe('something off-topic');
    await editor.press('Escape');
    await editor.waitFor({ state: 'detached' });
    expect(await focused()).toBe(true);
    await composer.press('ArrowUp');
    await editor.fill('something quite off-topic');
    await editor.press('Enter');
    await editor.waitFor({ state: 'detached' });
    expect(await focused()).toBe(true);
    const offTopic = message(a.page, 'bob', 'something quite off-topic');
    await offTopic.hover();
    await offTopic.getByRole('button', { name: 'Delete', exact: true }).click();
    await a.page
      .getByRole('dialog', { name: 'Delete message' })
      .getByRole('button', { name: 'Delete', exact: true })
      .click();
    await message(b.page, 'bob', 'something quite off-topic').waitFor({ state: 'detached' });
    await offTopic.waitFor({ state: 'detached' });
    // Nothing doubled: each remaining message once on each page.
    expect(await log(a.page).getByRole('article').count()).toBe(1);
    expect(await log(b.page).getByRole('article').count()).toBe(1);
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });
});
