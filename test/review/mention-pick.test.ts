/**
 * Review proof: picking a suggested name (web/src/MentionSuggest.tsx) rebuilds the text from
 * what `look` saw last, which only an `onSelect` (a change of the selection) updates, and keeps
 * whatever followed the caret. So a name picked with the caret inside a typed name leaves the rest
 * of that name behind; a pick after text was removed without moving the caret (Delete) brings the
 * removed text back; and a pick that leaves the text as it was keeps the caret where it was and
 * moves it later, at the next change of the text, to the old place (a caret jump).
 */
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createTestnet, signIn, waitFor, type TestPeer } from '../testnet.js';
import { openPage } from '../browser.js';

/** alice (owner of #general) and bob (a member), alice's page open on #general. */
async function setup() {
  const net = await createTestnet({ peers: 2 });
  const [alice, bob] = net.peers as [TestPeer, TestPeer];
  await signIn(alice, 'alice');
  await signIn(bob, 'bob');
  const general = (await alice.call('POST', '/api/channels', { name: 'general' })).body
    .id as string;
  await bob.call('POST', `/api/channels/${general}/join`);
  await waitFor(() => bob.node.sourceOf(general) === 'host');
  const a = await openPage(alice.uiUrl);
  await a.page.getByRole('button', { name: /Your channels/ }).click();
  await a.page.getByRole('button', { name: /^# ?general/ }).click();
  await a.page.getByRole('region', { name: '#general' }).waitFor();
  const box = a.page.getByRole('textbox', { name: 'Message' });
  await box.click();
  return { page: a.page, box, errors: a.errors };
}

function suggest(page: Page) {
  return page.getByRole('listbox', { name: 'Mention' });
}

describe('mention suggestions: what a pick does to the text', () => {
  it('a name picked with the caret inside a typed name replaces the whole name', async () => {
    const { page, box } = await setup();
    await page.keyboard.type('hi @bo');
    await suggest(page).getByRole('option', { name: '@bob' }).waitFor();
    // The caret goes back one character, still in the name: the list stays on bob.
    await page.keyboard.press('ArrowLeft');
    await suggest(page).getByRole('option', { name: '@bob' }).waitFor();
    await page.keyboard.press('Tab');
    await suggest(page).waitFor({ state: 'detached' });
    // Got 'hi @bob o': the "o" after the caret stayed behind the picked name.
    expect(await box.inputValue()).toBe('hi @bob ');
  });

  it('a pick after text was deleted with Delete keeps the deletion', async () => {
    const { page, box } = await setup();
    await page.keyboard.type('hi @bo there');
    for (let i = 0; i < ' there'.length; i++) await page.keyboard.press('ArrowLeft');
    await suggest(page).getByRole('option', { name: '@bob' }).waitFor();
    // Delete what follows the caret: the caret does not move, the text changes.
    for (let i = 0; i < ' there'.length; i++) await page.keyboard.press('Delete');
    expect(await box.inputValue()).toBe('hi @bo');
    await page.keyboard.press('Enter'); // picks
    await suggest(page).waitFor({ state: 'detached' });
    // Got 'hi @bob there': the deleted " there" came back.
    expect(await box.inputValue()).toBe('hi @bob ');
  });

  it('after a pick that leaves the text as it was, typing at the end stays at the end', async () => {
    const { page, box } = await setup();
    await page.keyboard.type('@bob x');
    // Back into the name, just after "@bob": bob is offered; the pick gives the same text.
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowLeft');
    await suggest(page).getByRole('option', { name: '@bob' }).waitFor();
    await page.keyboard.press('Tab');
    await suggest(page).waitFor({ state: 'detached' });
    expect(await box.inputValue()).toBe('@bob x');
    await page.keyboard.press('End');
    await page.keyboard.type('yz');
    // Got '@bob zxy': the first change of the text moved the caret to where the pick had put it.
    expect(await box.inputValue()).toBe('@bob xyz');
  });
});
