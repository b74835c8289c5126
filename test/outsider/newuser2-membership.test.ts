// A new user coming from Discord, knowing README only: channels and their members as one user's
// several pages (tabs, a script on the local API, a second device) and a visitor see them.
//
// Two tabs (or a script beside the page, as README's curl lines invite): joining a channel in one
// left the other without it, however long one waited, until a reload. README: event `channel`
// `{channelId}` comes "when a channel's settings or your membership changed (re-read GET
// /api/channels)"; a join or a creation sent none (only `sync`).
//
// A visitor opens a channel that allows visitors while its members are all online, bob posting
// at that very moment: the member list said "alice online", but "bob offline" and "carol
// offline", grey dots. A visitor learns only the host's presence (docs/SECURITY.md "The tracker"
// keeps the others' entries from visitors), and the page showed the unknown as offline.
import { describe, expect, it } from 'vitest';
import { openPage } from '../browser.js';
import { api, collectEvents, waitFor } from '../testnet.js';
import { channel, evidence, openFromHome, post, within, world } from './newuser2-lib.js';

// `bob-desk`: bob logged in on a second peer (SPEC §2: "one user may be logged in on several
// peers"); `guest` becomes a visitor's peer in its test.
const w = world(['alice', 'bob', 'carol', 'guest'], { 'bob-desk': 'bob' });

type Stream = ReturnType<typeof collectEvents>;

/** Whether `GET /api/channels` of `peer` lists `id`. */
async function lists(peer: string, id: string): Promise<boolean> {
  const r = await api(w.ui[peer]!, 'GET', '/api/channels');
  expect(r.status).toBe(200);
  return (r.body as { id: string }[]).some((c) => c.id === id);
}

/**
 * Waits for a `channel` event of `id` on `s` after the `from`-th event, then checks that
 * `GET /api/channels` of `peer` says what the event told: the channel listed, or gone.
 */
async function told(s: Stream, from: number, peer: string, id: string, listed: boolean) {
  await waitFor(
    () => s.events.slice(from).some((e) => e.event === 'channel' && e.data?.channelId === id),
    10_000,
    () =>
      `a channel event of ${id} on ${peer}'s stream; it had: ${s.events
        .slice(from)
        .map((e) => e.event)
        .join(', ')}`,
  );
  expect(await lists(peer, id), `${peer} lists the channel once told`).toBe(listed);
}

describe('one user on several pages and devices', () => {
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

  it('every change of your membership sends `channel`, on this peer and on your other device', async () => {
    const here = collectEvents(w.ui.bob!);
    const desk = collectEvents(w.ui['bob-desk']!);
    await Promise.all([here.ready, desk.ready]);
    const ch = await api(w.ui.alice!, 'POST', '/api/channels', {
      name: 'scripted',
      allowVisitors: false,
    });
    expect(ch.status).toBe(201);
    const id = ch.body.id as string;

    // Joined by a script on the local API: this peer's pages and bob's desk are told.
    let [h, d] = [here.events.length, desk.events.length];
    expect((await api(w.ui.bob!, 'POST', `/api/channels/${id}/join`)).status).toBe(200);
    await told(here, h, 'bob', id, true);
    await told(desk, d, 'bob-desk', id, true);

    // Left.
    [h, d] = [here.events.length, desk.events.length];
    expect((await api(w.ui.bob!, 'POST', `/api/channels/${id}/leave`)).status).toBe(204);
    await told(here, h, 'bob', id, false);
    await told(desk, d, 'bob-desk', id, false);

    // Created.
    [h, d] = [here.events.length, desk.events.length];
    const own = await api(w.ui.bob!, 'POST', '/api/channels', {
      name: 'bobs-own',
      allowVisitors: false,
    });
    expect(own.status).toBe(201);
    await told(here, h, 'bob', own.body.id, true);
    await told(desk, d, 'bob-desk', own.body.id, true);

    // Joined on the other device: this peer is told.
    [h, d] = [here.events.length, desk.events.length];
    expect((await api(w.ui['bob-desk']!, 'POST', `/api/channels/${id}/join`)).status).toBe(200);
    await told(desk, d, 'bob-desk', id, true);
    await told(here, h, 'bob', id, true);

    // Removed by the owner: someone else caused it, bob's pages are told all the same.
    [h, d] = [here.events.length, desk.events.length];
    const rm = await api(w.ui.alice!, 'DELETE', `/api/channels/${id}/members/bob`);
    expect(rm.status).toBe(200);
    await told(here, h, 'bob', id, false);
    await told(desk, d, 'bob-desk', id, false);
  });
});

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
    // The visitor is told the host's presence only: the others' is unknown to it, not offline.
    const seen = await api(w.ui.guest!, 'GET', `/api/channels/${id}/members`);
    expect(seen.status).toBe(200);
    expect(seen.body).toEqual([
      { username: 'alice', status: 'online' },
      { username: 'bob', status: 'unknown' },
      { username: 'carol', status: 'unknown' },
    ]);
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
    const members = await page
      .getByRole('complementary', { name: 'Members' })
      .getByRole('listitem')
      .evaluateAll((li) => li.map((l) => (l as HTMLElement).innerText.replace(/\s+/g, ' ')));
    expect(members).toEqual(['alice online', 'bob presence hidden', 'carol presence hidden']);
    // No dot says anything of bob's or carol's presence: alice's is the only one.
    expect(await page.locator('#member-list .dot').count()).toBe(1);
    expect(errors).toEqual([]);
  });
});
