// A new user coming from Discord, knowing README only. In Discord what you typed stays in a
// channel's composer when you look at another channel or a DM and come back (a draft per
// channel). Here the composer is emptied whenever the open channel or conversation changes: a
// half-written message is lost by a glance at another channel.
import { describe, expect, it } from 'vitest';
import { openPage } from '../browser.js';
import { channel, evidence, openFromHome, world } from './newuser2-lib.js';

const w = world(['alice', 'bob']);

describe('a new user’s drafts', () => {
  it('what you typed in a channel is still there after a look at another channel or a DM', async () => {
    await channel(w, 'alice', 'plans', ['bob']);
    await channel(w, 'bob', 'notes');
    const { page, errors } = await openPage(w.ui.bob!);
    await openFromHome(page, 'plans', 'alice');
    const box = page.getByRole('textbox', { name: 'Message' });
    const draft = 'a long answer about the plan that I have not finished';
    await box.fill(draft);

    // Another channel, then back (the sidebar's "# plans", as a user clicks it).
    await openFromHome(page, 'notes', 'bob');
    await openFromHome(page, 'plans', 'alice');
    await evidence(page, 'drafts-channel');
    expect.soft(await box.inputValue(), 'draft after another channel').toBe(draft);

    // A direct message (README: "Message" beside a member), then back.
    await box.fill(draft);
    await page.getByRole('button', { name: 'Message alice' }).click();
    await page.getByRole('textbox', { name: 'Message' }).waitFor();
    await page.getByPlaceholder('Message alice').waitFor();
    await openFromHome(page, 'plans', 'alice');
    expect.soft(await box.inputValue(), 'draft after a DM').toBe(draft);
    expect(errors).toEqual([]);
  });
});
