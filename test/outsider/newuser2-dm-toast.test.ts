// A new user coming from Discord, knowing README only. A new direct message "notifies you when
// its conversation is not open": a toast "carol wrote in bob, carol" at the top right. Opened
// from the Direct Messages list (not the toast's own Open button), the conversation shows the
// message, but the toast stays for its full 8 s, drawn over the conversation's header, where
// "Safety number" (and "Block" in a 1:1) is: a click there hits the toast's Open. README says of
// the mention toast that it "closes once that channel is open, however you opened it".
import type { Locator } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { openPage } from '../browser.js';
import { api } from '../testnet.js';
import { evidence, within, world } from './newuser2-lib.js';

const w = world(['alice', 'bob', 'carol']);

/** Whether a click at the middle of `sel` lands on it, else what is drawn over it. */
async function clickable(sel: Locator): Promise<string> {
  const box = await sel.boundingBox();
  if (!box) return 'not laid out';
  return sel.evaluate(
    (el, [x, y]) => {
      const hit = document.elementFromPoint(x!, y!);
      if (hit && (hit === el || el.contains(hit))) return 'yes';
      return `covered by <${hit?.tagName.toLowerCase()}> ${(hit?.textContent ?? '').slice(0, 60)}`;
    },
    [box.x + box.width / 2, box.y + box.height / 2],
  );
}

describe('a new user’s direct-message toasts', () => {
  it('a DM toast closes once its conversation is open, and never covers its header', async () => {
    const dm = await api(w.ui.bob!, 'POST', '/api/dms', { members: ['alice', 'carol'] });
    expect(dm.status).toBe(201);
    const id = dm.body.id as string;
    const first = await api(w.ui.bob!, 'POST', `/api/dms/${id}/messages`, { text: 'lunch?' });
    expect(first.status).toBe(201);
    for (const u of ['alice', 'carol']) {
      const known = await within(10_000, async () => {
        const l = await api(w.ui[u]!, 'GET', '/api/dms');
        return (l.body as { id: string }[]).some((d) => d.id === id);
      });
      expect(known, `${u}'s peer holds the conversation`).toBe(true);
    }
    const { page, errors, live } = await openPage(w.ui.alice!);
    await live;
    await page
      .getByRole('button', { name: /bob, carol|carol, bob/ })
      .first()
      .waitFor();
    // alice is elsewhere (Home, no conversation open) when carol writes.
    const said = await api(w.ui.carol!, 'POST', `/api/dms/${id}/messages`, { text: 'noon?' });
    expect(said.status).toBe(201);
    const toast = page.getByRole('status').filter({ hasText: 'carol wrote in' });
    await toast.waitFor();
    // She opens it from the list, as a Discord user does.
    await page
      .getByRole('button', { name: /bob, carol|carol, bob/ })
      .first()
      .click();
    await page.getByText('noon?').waitFor();
    await evidence(page, 'dm-toast');
    expect.soft(await clickable(page.getByRole('button', { name: 'Safety number' }))).toBe('yes');
    expect(await within(1500, async () => (await toast.count()) === 0), 'toast closed').toBe(true);
    expect(errors).toEqual([]);
  });
});
