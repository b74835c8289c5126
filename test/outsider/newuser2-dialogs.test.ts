// A new user coming from Discord, knowing README only, meets the web UI's toasts, dialogs and
// file cards. One world (a real server, alice's, bob's and carol's peers) for the four cases,
// each with its own page in the shared Chromium.
//
// - Toasts. A new direct message "notifies you when its conversation is not open": a toast
//   "carol wrote in bob, carol" at the top right. Opened from the Direct Messages list (not the
//   toast's own Open button), the conversation showed the message, but the toast stayed its
//   full 8 s, drawn over the conversation's header, where "Safety number" (and "Block" in a
//   1:1) is: a click there hit the toast's Open. README says of the mention toast that it
//   "closes once that channel is open, however you opened it"; no toast covers the header of
//   the open channel or conversation.
// - Names. README: "Start one with … New message and up to nine names for a group". Names are
//   written `@alice` everywhere in the app (mentions, reply quotes, the composer's suggestions),
//   so that is how the user types them: `@alice, @carol`. The dialog answered with the schema's
//   own words, "dm: members.0: username: 2-32 characters of A-Z a-z 0-9 _ . -; …", started
//   nothing, and the page logged the peer's 400.
// - Focus, with the keyboard alone. Closing a dialog (Escape, or its Cancel) dropped the focus
//   on the page's <body>: the next Tab started again at "Skip to …" and walked the whole
//   sidebar back to where the user was. Met with Channel settings, the Delete confirmation of a
//   message and New message; the Bots and tokens panel gave the focus back to its button.
//   WCAG 2.4.3: a closed dialog returns the focus to what opened it.
// - File names. "Other files show as a card with their size and a Download button"; the UI is
//   made for 360 px too. On a phone-width window the Download button left the name three
//   letters: `notes.txt` showed as "not…", so one could not tell which file it was.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { seriousViolations } from '../axe.js';
import { openPage } from '../browser.js';
import { api } from '../testnet.js';
import { channel, clickable, evidence, openFromHome, post, within, world } from './newuser2-lib.js';

const w = world(['alice', 'bob', 'carol']);

/** What has the focus, as a person would name it. */
function focused(page: Page): Promise<string> {
  return page.evaluate(() => {
    const e = document.activeElement;
    if (!e || e === document.body) return 'the page itself (<body>)';
    const name = e.getAttribute('aria-label') ?? e.textContent ?? '';
    return `<${e.tagName.toLowerCase()}> ${name.trim().slice(0, 40)}`;
  });
}

/** Waits until each of `users`' peers lists conversation `id`. */
async function known(id: string, users: string[]): Promise<void> {
  for (const u of users) {
    const has = await within(10_000, async () => {
      const l = await api(w.ui[u]!, 'GET', '/api/dms');
      return (l.body as { id: string }[]).some((d) => d.id === id);
    });
    expect(has, `${u}'s peer holds the conversation`).toBe(true);
  }
}

describe('a new user’s toasts, dialogs and file cards', () => {
  it('a DM toast closes once its conversation is open, and no toast covers the open header', async () => {
    const group = await api(w.ui.bob!, 'POST', '/api/dms', { members: ['alice', 'carol'] });
    expect(group.status).toBe(201);
    const id = group.body.id as string;
    const first = await api(w.ui.bob!, 'POST', `/api/dms/${id}/messages`, { text: 'lunch?' });
    expect(first.status).toBe(201);
    const single = await api(w.ui.bob!, 'POST', '/api/dms', { members: ['alice'] });
    expect(single.status).toBe(201);
    const one = single.body.id as string;
    expect(
      (await api(w.ui.bob!, 'POST', `/api/dms/${one}/messages`, { text: 'just us' })).status,
    ).toBe(201);
    await known(id, ['alice', 'carol']);
    await known(one, ['alice']);
    // For the last part: a channel of alice's own, and bob's, which she joined.
    await channel(w, 'alice', 'quiet');
    const busy = await channel(w, 'bob', 'busy', ['alice']);
    const { page, errors, live } = await openPage(w.ui.alice!);
    await live;
    const list = page.getByRole('region', { name: 'Direct Messages' });
    const groupItem = list.getByRole('button', { name: /^(bob, carol|carol, bob) / });
    await groupItem.waitFor();
    // alice is elsewhere (Home, no conversation open) when carol writes.
    const said = await api(w.ui.carol!, 'POST', `/api/dms/${id}/messages`, { text: 'noon?' });
    expect(said.status).toBe(201);
    const toast = page.getByRole('status').filter({ hasText: 'carol wrote in' });
    await toast.waitFor();
    // She opens it from the list, as a Discord user does.
    await groupItem.click();
    await page.getByRole('log').getByText('noon?', { exact: true }).waitFor();
    await evidence(page, 'dm-toast');
    expect.soft(await clickable(page.getByRole('button', { name: 'Safety number' }))).toBe('yes');
    expect(await within(1500, async () => (await toast.count()) === 0), 'toast closed').toBe(true);

    // With the 1:1 with bob open, carol writes in the group: its toast stands, but not over the
    // open conversation's Safety number and Block.
    await list.getByRole('button', { name: /^bob / }).click();
    await page.getByRole('log').getByText('just us', { exact: true }).waitFor();
    await api(w.ui.carol!, 'POST', `/api/dms/${id}/messages`, { text: 'or one?' });
    await toast.waitFor();
    for (const name of ['Safety number', 'Block'])
      expect.soft(await clickable(page.getByRole('button', { name })), name).toBe('yes');

    // A channel open (alice's own: Channel settings at the right of its header) and a mention
    // of her in another: the mention toast stands below the header, not over it.
    await openFromHome(page, 'quiet', 'alice');
    await post(w, 'bob', busy, '@alice look');
    const mention = page.getByRole('status').filter({ hasText: 'bob mentioned you in #busy' });
    await mention.waitFor();
    await evidence(page, 'toast-below-header');
    expect
      .soft(await clickable(page.getByRole('button', { name: 'Channel settings' })))
      .toBe('yes');
    expect(errors).toEqual([]);
  });

  it('"New message" takes names written as @name, and names a bad one before asking', async () => {
    const { page, errors } = await openPage(w.ui.bob!);
    await page.getByRole('button', { name: 'New message' }).click();
    const dialog = page.getByRole('dialog', { name: 'New message' });
    const names = dialog.getByRole('textbox', { name: 'Usernames' });
    // A name that cannot be a username: said in words naming it, and nothing is asked.
    await names.fill('@alice, al!ce');
    await dialog.getByRole('button', { name: 'Start conversation' }).click();
    const alert = dialog.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/“al!ce” is not a username/);
    expect(await alert.textContent()).not.toMatch(/members\.\d|dm: /);
    expect(await seriousViolations(page)).toEqual([]);
    // As the app writes names: the group starts.
    await names.fill('@alice, @carol');
    await dialog.getByRole('button', { name: 'Start conversation' }).click();
    await page.getByPlaceholder('Message alice, carol').waitFor({ timeout: 5000 });
    await evidence(page, 'dm-names');
    expect.soft(await page.locator('body').innerText()).not.toMatch(/members\.\d|dm: /);
    expect(await dialog.count()).toBe(0);
    expect(errors).toEqual([]);
  });

  it('Escape or Cancel gives the focus back to what opened the dialog', async () => {
    const id = await channel(w, 'alice', 'keys', ['bob']);
    await post(w, 'alice', id, 'a message of mine');
    const { page, errors } = await openPage(w.ui.alice!);
    await openFromHome(page, 'keys', 'alice');

    // Channel settings (the owner's), closed with Escape, then with its Cancel.
    const settings = page.getByRole('button', { name: 'Channel settings' });
    await settings.focus();
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    expect.soft(await focused(page), 'after Channel settings').toBe('<button> Channel settings');
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).press('Enter');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    expect.soft(await focused(page), 'after its Cancel').toBe('<button> Channel settings');

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

  it('at 360 px a file card shows a short file name whole, a long one cut but named', async () => {
    const id = await channel(w, 'alice', 'files', ['bob']);
    const long = `${'a-very-long-file-name-'.repeat(4)}end.txt`;
    const files: string[] = [];
    for (const name of ['notes.txt', long]) {
      const res = await fetch(
        new URL(`/api/channels/${id}/files?name=${encodeURIComponent(name)}`, w.ui.alice!),
        {
          method: 'POST',
          headers: {
            authorization: `Bearer ${new URL(w.ui.alice!).searchParams.get('token')}`,
            'content-type': 'text/plain',
          },
          body: 'some notes\n',
        },
      );
      expect(res.status).toBe(201);
      files.push(((await res.json()) as { id: string }).id);
    }
    const sent = await api(w.ui.alice!, 'POST', `/api/channels/${id}/messages`, {
      text: 'the notes',
      files,
    });
    expect(sent.status).toBe(201);
    const { page, errors } = await openPage(w.ui.bob!, { width: 360, height: 740 });
    await openFromHome(page, 'files', 'alice');
    const button = page.getByRole('button', { name: 'Download notes.txt' });
    await button.waitFor();
    await page.getByRole('button', { name: `Download ${long}` }).waitFor();
    await evidence(page, 'file-name-360');
    // The names as drawn: the element holding "notes.txt" is not cut (no ellipsis, no overflow);
    // the long one is, and says its whole name as its title.
    const drawn = await page.evaluate((long) => {
      const leaf = (text: string) =>
        [...document.querySelectorAll('article *')].filter(
          (e) => e.childElementCount === 0 && e.textContent === text,
        ) as HTMLElement[];
      const cut = (e: HTMLElement) => (e.scrollWidth > e.clientWidth + 1 ? 'cut' : 'whole');
      return {
        short: leaf('notes.txt').map(cut),
        long: leaf(long).map((e) => `${cut(e)} ${e.title === long ? 'titled' : 'untitled'}`),
      };
    }, long);
    expect(drawn.short.length).toBeGreaterThan(0);
    expect(drawn.short).not.toContain('cut');
    expect(drawn.long).toEqual(['cut titled']);
    // The Download button stays inside its card, on the screen.
    const card = page.getByRole('group', { name: /^notes\.txt, / });
    const [c, b] = [(await card.boundingBox())!, (await button.boundingBox())!];
    expect(b.x >= c.x && b.x + b.width <= c.x + c.width && c.x + c.width <= 360).toBe(true);
    expect(await clickable(button)).toBe('yes');
    expect(await seriousViolations(page)).toEqual([]);
    expect(errors).toEqual([]);
  });
});
