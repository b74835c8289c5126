// A new user coming from Discord, knowing README only: a visitor opens a channel that allows
// visitors, while its members are all online, bob posting at that very moment. The member list
// says "alice online", but "bob offline" and "carol offline", grey dots: a visitor learns only
// the host's presence (docs/SECURITY.md keeps the others' entries from visitors), and the page
// shows the unknown as offline. A list that tells a visitor someone is offline while he writes
// misleads; Discord shows a server's online members to anyone who can read it.
import { describe, expect, it } from 'vitest';
import { openPage } from '../browser.js';
import { api } from '../testnet.js';
import { channel, evidence, post, within, world } from './newuser2-lib.js';

const w = world(['alice', 'bob', 'carol', 'guest']);

describe('a visitor reads a public channel', () => {
  it('the member list does not call a member who is online "offline"', async () => {
    const id = await channel(w, 'alice', 'town-square', ['bob', 'carol']);
    // `guest`'s peer becomes a visitor's (README "Visitor" on the entry page).
    await api(w.ui.guest!, 'POST', '/api/logout');
    const v = await api(w.ui.guest!, 'POST', '/api/visitor', { name: 'Gary' });
    expect(v.status).toBe(200);
    const j = await api(w.ui.guest!, 'POST', `/api/channels/${id}/join`);
    expect(j.status).toBe(200);
    // The members' own peers see each other online.
    const online = await within(10_000, async () => {
      const m = await api(w.ui.alice!, 'GET', `/api/channels/${id}/members`);
      return (m.body as { username: string; status: string }[]).every((x) => x.status === 'online');
    });
    expect(online, "alice's peer sees every member online").toBe(true);
    const { page, errors } = await openPage(w.ui.guest!);
    await page
      .getByRole('button', { name: /town-square/ })
      .first()
      .click();
    await page.getByRole('heading', { name: '#town-square' }).waitFor();
    await post(w, 'bob', id, 'hello from bob, online right now');
    await page.getByRole('article', { name: /bob: hello from bob/ }).waitFor();
    await page.waitForTimeout(1500);
    await evidence(page, 'visitor-presence');
    const rows = await page
      .getByRole('complementary')
      .getByRole('listitem')
      .evaluateAll((li) => li.map((l) => (l as HTMLElement).innerText.replace(/\s+/g, ' ')));
    expect(rows.filter((r) => /\boffline\b/.test(r))).toEqual([]);
    expect(errors).toEqual([]);
  });
});
