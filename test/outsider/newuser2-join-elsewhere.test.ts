// A new user coming from Discord, knowing README only, with the app open in two tabs (or a
// script on the local API beside the page, as README's curl lines invite). Joining a channel in
// one tab leaves the other without it: no rail button, no channel, however long one waits,
// until a reload. README: event `channel` `{channelId}` comes "when a channel's settings or your
// membership changed (re-read GET /api/channels)"; a join sends none (only `sync`).
import { describe, expect, it } from 'vitest';
import { openPage } from '../browser.js';
import { channel, evidence, openFromHome, world } from './newuser2-lib.js';

const w = world(['alice', 'bob']);

describe('a new user with two tabs', () => {
  it('a channel joined in one tab shows in the other', async () => {
    await channel(w, 'alice', 'elsewhere');
    const first = await openPage(w.ui.bob!);
    await first.live;
    const second = await openPage(w.ui.bob!);
    await openFromHome(second.page, 'elsewhere', 'alice');
    const rail = first.page.getByRole('button', { name: /alice's channels/ });
    const shown = await rail.waitFor({ timeout: 8000 }).then(
      () => true,
      () => false,
    );
    await evidence(first.page, 'join-elsewhere');
    expect(shown, "the first tab lists alice's channel").toBe(true);
    expect([...first.errors, ...second.errors]).toEqual([]);
  });
});
