// A new user coming from Discord, knowing README only ("Enter sends, Shift+Enter starts a new
// line"). Writing a few lines (a list, a code block) the composer stays one line and a half
// high: of six short lines only the last two show, the rest scrolled out of sight above, so the
// user sends what they cannot read over. Discord's composer grows with its text (up to about
// half the window); this one has room for it (its CSS allows 40vh) but never grows.
import { describe, expect, it } from 'vitest';
import { openPage } from '../browser.js';
import { channel, evidence, openFromHome, world } from './newuser2-lib.js';

const w = world(['alice', 'bob']);

describe('a new user writes several lines', () => {
  it('the composer grows to show six short lines typed with Shift+Enter', async () => {
    await channel(w, 'alice', 'lists', ['bob']);
    const { page, errors } = await openPage(w.ui.bob!);
    await openFromHome(page, 'lists', 'alice');
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.click();
    for (let i = 1; i <= 6; i++) {
      await page.keyboard.type(`- item ${i}`);
      if (i < 6) await page.keyboard.press('Shift+Enter');
    }
    await evidence(page, 'composer-lines');
    const { scroll, client } = await box.evaluate((el) => ({
      scroll: el.scrollHeight,
      client: el.clientHeight,
    }));
    expect(
      scroll <= client + 2 ? 'every line shows' : `${scroll - client} px of the text hidden`,
    ).toBe('every line shows');
    expect(errors).toEqual([]);
  });
});
