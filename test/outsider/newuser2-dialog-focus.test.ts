// A new user coming from Discord, knowing README only, using the keyboard alone. Closing a
// dialog (Escape, or its Cancel) drops the focus on the page's <body>: the next Tab starts again
// at "Skip to …" and walks the whole sidebar back to where the user was. Met with Channel
// settings, the Delete confirmation of a message and New message; the Bots and tokens panel, by
// contrast, gives the focus back to its button. WCAG 2.4.3: a closed dialog returns the focus to
// what opened it.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { openPage } from '../browser.js';
import { channel, evidence, openFromHome, post, world } from './newuser2-lib.js';

const w = world(['alice', 'bob']);

/** What has the focus, as a person would name it. */
function focused(page: Page): Promise<string> {
  return page.evaluate(() => {
    const e = document.activeElement;
    if (!e || e === document.body) return 'the page itself (<body>)';
    const name = e.getAttribute('aria-label') ?? e.textContent ?? '';
    return `<${e.tagName.toLowerCase()}> ${name.trim().slice(0, 40)}`;
  });
}

describe('a keyboard user closes dialogs', () => {
  it('Escape or Cancel gives the focus back to what opened the dialog', async () => {
    const id = await channel(w, 'alice', 'keys', ['bob']);
    await post(w, 'alice', id, 'a message of mine');
    const { page, errors } = await openPage(w.ui.alice!);
    await openFromHome(page, 'keys', 'alice');

    // Channel settings (the owner's), closed with Escape.
    const settings = page.getByRole('button', { name: 'Channel settings' });
    await settings.focus();
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    expect.soft(await focused(page), 'after Channel settings').toBe('<button> Channel settings');

    // Delete on a message, reached with Tab, then Cancel.
    const msg = page.getByRole('article', { name: /alice: a message of mine/ });
    await msg.focus();
    const del = msg.getByRole('button', { name: 'Delete' });
    for (let i = 0; i < 6 && !(await del.evaluate((b) => b === document.activeElement)); i++)
      await page.keyboard.press('Tab');
    expect(await focused(page)).toBe('<button> Delete');
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).press('Enter');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    await evidence(page, 'dialog-focus');
    expect
      .soft(await focused(page), 'after Cancel of Delete')
      .toMatch(/^<(button|article)> (Delete|alice: a message of mine)/);

    // New message on Home, closed with Escape.
    await page.getByRole('button', { name: /^Home/ }).first().click();
    const fresh = page.getByRole('button', { name: 'New message' });
    await fresh.focus();
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    expect.soft(await focused(page), 'after New message').toBe('<button> New message');
    expect(errors).toEqual([]);
  });
});
