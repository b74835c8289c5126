// A new user coming from Discord, knowing README only ("Other files show as a card with their
// size and a Download button"; the UI is made for 360 px too). On a phone-width window the
// card's Download button leaves the name three letters: `notes.txt` shows as "not…", so one
// cannot tell which file it is before downloading it.
import { describe, expect, it } from 'vitest';
import { openPage } from '../browser.js';
import { api } from '../testnet.js';
import { channel, evidence, openFromHome, world } from './newuser2-lib.js';

const w = world(['alice', 'bob']);

describe('a new user on a phone-width window', () => {
  it('at 360 px a file card shows a short file name whole', async () => {
    const id = await channel(w, 'alice', 'files', ['bob']);
    const res = await fetch(new URL(`/api/channels/${id}/files?name=notes.txt`, w.ui.alice!), {
      method: 'POST',
      headers: {
        authorization: `Bearer ${new URL(w.ui.alice!).searchParams.get('token')}`,
        'content-type': 'text/plain',
      },
      body: 'some notes\n',
    });
    expect(res.status).toBe(201);
    const file = (await res.json()) as { id: string };
    const sent = await api(w.ui.alice!, 'POST', `/api/channels/${id}/messages`, {
      text: 'the notes',
      files: [file.id],
    });
    expect(sent.status).toBe(201);
    const { page, errors } = await openPage(w.ui.bob!, { width: 360, height: 740 });
    await openFromHome(page, 'files', 'alice');
    const card = page.getByRole('button', { name: 'Download notes.txt' });
    await card.waitFor();
    await evidence(page, 'file-name-360');
    // The name as drawn: the element holding "notes.txt" is not cut (no ellipsis, no overflow).
    const cut = await page.evaluate(() => {
      const els = [...document.querySelectorAll('article *')].filter(
        (e) => e.childElementCount === 0 && e.textContent === 'notes.txt',
      ) as HTMLElement[];
      return els.map((e) => (e.scrollWidth > e.clientWidth + 1 ? 'cut' : 'whole'));
    });
    expect(cut.length).toBeGreaterThan(0);
    expect(cut).not.toContain('cut');
    expect(errors).toEqual([]);
  });
});
