// A new user coming from Discord, knowing README only ("The React picker offers eight common
// emoji and a search of every emoji by its name (`heart` finds 😍; Enter picks the first
// found)"). React opens the picker with the focus on 👍, not in its search: typing `heart`, as
// in Discord, goes nowhere, and the Enter that should pick 😍 reacts 👍 instead, a reaction
// the user never chose, seen by everyone in the channel.
import { describe, expect, it } from 'vitest';
import { openPage } from '../browser.js';
import { channel, evidence, openFromHome, post, world } from './newuser2-lib.js';

const w = world(['alice', 'bob']);

describe('a new user reacts', () => {
  it('typing a name in the opened React picker searches, and Enter picks what it found', async () => {
    const id = await channel(w, 'alice', 'party', ['bob']);
    await post(w, 'alice', id, 'we shipped it');
    const { page, errors } = await openPage(w.ui.bob!);
    await openFromHome(page, 'party', 'alice');
    const msg = page.getByRole('article', { name: /alice: we shipped it/ });
    await msg.hover();
    await msg.getByRole('button', { name: 'React', exact: true }).click();
    await msg.getByRole('button', { name: 'React with 👍' }).waitFor();
    await page.keyboard.type('heart');
    await evidence(page, 'react-typing');
    expect
      .soft(await msg.getByRole('searchbox', { name: 'Search emoji' }).inputValue())
      .toBe('heart');
    await page.keyboard.press('Enter');
    await msg.getByRole('button', { name: /^[^ ]+ 1, reacted by bob$/ }).waitFor();
    const chips = await msg
      .getByRole('button', { name: /reacted by/ })
      .evaluateAll((bs) => bs.map((b) => b.getAttribute('aria-label')));
    expect(
      chips.filter((c) => c?.startsWith('👍')),
      'a 👍 the user never picked',
    ).toEqual([]);
    expect(errors).toEqual([]);
  });
});
