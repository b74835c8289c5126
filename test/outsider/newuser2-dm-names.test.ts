// A new user coming from Discord, knowing README only ("Start one with … New message and up to
// nine names for a group"). Names are written `@alice` everywhere in the app (mentions, reply
// quotes, the composer's suggestions), so that is how the user types them in "New message":
// `@alice, @carol`. The dialog answers with the schema's own words,
// "dm: members.0: username: 2-32 characters of A-Z a-z 0-9 _ . -; members.1: …", and starts
// nothing.
import { describe, expect, it } from 'vitest';
import { openPage } from '../browser.js';
import { evidence, world } from './newuser2-lib.js';

const w = world(['alice', 'bob', 'carol']);

describe('a new user starts a group DM', () => {
  it('"New message" takes names written as @name, as the app writes them', async () => {
    const { page } = await openPage(w.ui.bob!);
    await page.getByRole('button', { name: 'New message' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('textbox').fill('@alice, @carol');
    await dialog.getByRole('button', { name: 'Start conversation' }).click();
    await page.waitForTimeout(1500);
    await evidence(page, 'dm-names');
    // No schema path shown to a person.
    expect.soft(await page.locator('body').innerText()).not.toMatch(/members\.\d|dm: /);
    // The group is open, its composer addressed to both.
    await page.getByPlaceholder('Message alice, carol').waitFor({ timeout: 5000 });
    expect(await dialog.count()).toBe(0);
  });
});
