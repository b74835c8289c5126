// A new user coming from Discord, knowing README only ("The composer shows a character count
// only once the text nears its 4,000-character limit"). Pasting a log a little over the limit
// into the composer cuts it to 4,000 characters without a word (a small "4000/4000" in the
// corner); Enter then sends the cut text, and the end of what was pasted is gone. Discord keeps
// the whole paste, shows how far over the limit it is and sends nothing until it fits.
import { describe, expect, it } from 'vitest';
import { openPage } from '../browser.js';
import { api } from '../testnet.js';
import { channel, evidence, openFromHome, world } from './newuser2-lib.js';

const w = world(['alice', 'bob']);

describe('a new user pastes a long text', () => {
  it('a paste over the 4,000-character limit is kept whole, not cut silently and sent cut', async () => {
    const id = await channel(w, 'alice', 'logs', ['bob']);
    const { page, errors } = await openPage(w.ui.bob!);
    await openFromHome(page, 'logs', 'alice');
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.focus();
    const pasted = `${'stack line\n'.repeat(372)}THE END OF THE LOG`; // 4,110 characters
    // What a paste of text does to a textarea (an input event with the whole text).
    await page.evaluate((t) => document.execCommand('insertText', false, t), pasted);
    await evidence(page, 'long-paste');
    const held = await box.inputValue();
    expect
      .soft(`${held.length} of ${pasted.length} characters kept`, 'the composer holds the paste')
      .toBe(`${pasted.length} of ${pasted.length} characters kept`);
    await box.press('Enter');
    await page.waitForTimeout(1500);
    // Nothing sent that is only a part of the paste.
    const r = await api(w.ui.bob!, 'GET', `/api/channels/${id}/messages`);
    const texts = (r.body.messages as { text: string }[]).map((m) => m.text);
    const cut = texts.filter((t) => t !== pasted && pasted.startsWith(t));
    expect(cut.map((t) => `${t.length} characters sent of ${pasted.length}`)).toEqual([]);
    expect(errors).toEqual([]);
  });
});
