/**
 * Avatars in the browser (issue 14 item 5): alice picks a picture with "Change avatar", crops it
 * square and saves it; bob's open page (another browser) shows it beside her message and in the
 * member list without a reload, then her next one. A user without one shows initials on their
 * colour, and no page ever asks for that user's picture. The peer's refusal shows in the editor;
 * a visitor sees members' avatars and has none to change. No console error, no serious axe
 * violation.
 */
import { describe, expect, it } from 'vitest';
import type { Locator, Page } from 'playwright-core';
import { authHeaders, createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';
import { keep, openPage, snap } from './browser.js';
import { seriousViolations } from './axe.js';

function log(page: Page) {
  return page.getByRole('log', { name: 'Messages' });
}

/** The message whose accessible name starts with "author: text". */
function message(page: Page, author: string, text: string): Locator {
  return log(page).getByRole('article', { name: new RegExp(`^${author}: ${text}`) });
}

/** A user's row in the member list. */
function member(page: Page, username: string): Locator {
  return page
    .getByRole('complementary', { name: 'Members' })
    .getByRole('listitem')
    .filter({ hasText: username });
}

async function openChannel(page: Page, owner: string, name = 'general') {
  await page.getByRole('button', { name: new RegExp(owner) }).click();
  await page.getByRole('button', { name: new RegExp(`^# ?${name}`) }).click();
  await page.getByRole('region', { name: `#${name}` }).waitFor();
}

/** Every picture a page asked for (`/api/avatars/<user>`), by path. */
function pictureRequests(page: Page): string[] {
  const seen: string[] = [];
  page.on('request', (r) => {
    const p = new URL(r.url()).pathname;
    if (p.startsWith('/api/avatars/')) seen.push(p);
  });
  return seen;
}

interface Upload {
  name: string;
  mimeType: string;
  buffer: Buffer;
}

/** A real PNG of `w`×`h`, a gradient between two colours, drawn by the browser. */
async function png(page: Page, w: number, h: number, from: string, to: string): Promise<Upload> {
  const b64 = await page.evaluate(
    ({ w, h, from, to }) => {
      const c = document.createElement('canvas');
      c.width = w;
      c.height = h;
      const ctx = c.getContext('2d')!;
      const g = ctx.createLinearGradient(0, 0, w, h);
      g.addColorStop(0, from);
      g.addColorStop(1, to);
      ctx.fillStyle = g;
      ctx.fillRect(0, 0, w, h);
      return c.toDataURL('image/png').split(',')[1]!;
    },
    { w, h, from, to },
  );
  return { name: 'me.png', mimeType: 'image/png', buffer: Buffer.from(b64, 'base64') };
}

/** Picks `f` through "Change avatar" and the browser's own file chooser; the editor opens. */
async function pickAvatar(page: Page, f: Upload): Promise<Locator> {
  const chooser = page.waitForEvent('filechooser');
  await page.getByRole('button', { name: 'Change avatar' }).click();
  const c = await chooser;
  expect(c.isMultiple()).toBe(false);
  await c.setFiles(f);
  const dialog = page.getByRole('dialog', { name: 'Change avatar' });
  await dialog.waitFor();
  return dialog;
}

/** The hash the peer lists for a user's avatar (undefined: none). */
async function hashOf(p: TestPeer, username: string): Promise<string | undefined> {
  const list = (await p.call('GET', `/api/avatars?users=${username}`)).body as Array<{
    hash: string;
  }>;
  return list[0]?.hash;
}

/** Waits until `within` shows the picture of this hash, loaded; answers its natural size. */
async function showsPicture(within: Locator, hash: string) {
  const img = within.locator(`img.avatar[src*="v=${hash}"]`);
  await img.waitFor();
  return waitFor(
    () =>
      img.evaluate((i: HTMLImageElement) =>
        i.complete && i.naturalWidth > 0 ? { w: i.naturalWidth, h: i.naturalHeight } : null,
      ),
    10_000,
    `the avatar ${hash} loaded`,
  );
}

/** A default avatar's initials and colour, as drawn. */
async function drawnDefault(within: Locator) {
  const d = within.locator('.avatar-default');
  await d.waitFor();
  expect(await within.locator('img.avatar').count()).toBe(0);
  return {
    initials: await d.getAttribute('data-initials'),
    colour: await d.evaluate((e) => getComputedStyle(e).backgroundColor),
  };
}

/** alice (owner of #general) and bob (a member), each with a message there. */
async function setup() {
  const net = await createTestnet({ peers: 2 });
  const [alice, bob] = net.peers as [TestPeer, TestPeer];
  await signIn(alice, 'alice');
  await signIn(bob, 'bob');
  const general = (await alice.call('POST', '/api/channels', { name: 'general' })).body
    .id as string;
  await bob.call('POST', `/api/channels/${general}/join`);
  await waitFor(() => bob.node.sourceOf(general) === 'host');
  await alice.call('POST', `/api/channels/${general}/messages`, { text: 'hello from alice' });
  await bob.call('POST', `/api/channels/${general}/messages`, { text: 'hi from bob' });
  return { net, alice, bob, general };
}

describe('avatars in the web UI', () => {
  it("alice sets hers in the UI; bob's open page shows it beside her message and in the member list, then her new one; bob has his initials", async () => {
    const { alice, bob } = await setup();
    const a = await openPage(alice.uiUrl);
    const b = await openPage(bob.uiUrl);
    const seenA = pictureRequests(a.page);
    const seenB = pictureRequests(b.page);
    await openChannel(a.page, 'Your channels');
    await openChannel(b.page, "alice's channels");
    const hers = message(b.page, 'alice', 'hello from alice');
    await hers.waitFor();
    await member(b.page, 'alice').waitFor();
    // Nobody has one yet: initials on a colour of their own, the same on every page.
    expect((await drawnDefault(hers)).initials).toBe('A');
    const bobOnB = await drawnDefault(message(b.page, 'bob', 'hi from bob'));
    const bobOnA = await drawnDefault(message(a.page, 'bob', 'hi from bob'));
    expect(bobOnB.initials).toBe('B');
    expect(bobOnA).toEqual(bobOnB);
    expect((await drawnDefault(member(a.page, 'bob'))).initials).toBe('B');
    expect(bobOnB.colour).not.toBe((await drawnDefault(hers)).colour);

    // alice picks a 600×400 picture: the editor shows its middle square, the crop has the focus,
    // the arrow keys move it and + zooms.
    const dialog = await pickAvatar(a.page, await png(a.page, 600, 400, '#e63946', '#1d3557'));
    const crop = dialog.getByRole('img', { name: 'Your new avatar, as others will see it' });
    await waitFor(() => crop.evaluate((e) => e === document.activeElement), 5000, 'crop focused');
    const zoom = dialog.getByRole('slider', { name: 'Zoom' });
    await waitFor(async () => !(await zoom.isDisabled()), 5000, 'the picture decoded');
    await a.page.keyboard.press('ArrowRight');
    await a.page.keyboard.press('+');
    expect(Number(await zoom.inputValue())).toBeGreaterThan(1);
    expect(await seriousViolations(a.page)).toEqual([]);
    await snap(a.page, 'avatar-editor');
    keep('avatar-editor');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'detached' });
    // The focus is back where it was; her own panel shows the picture: 256×256 at most.
    expect(
      await a.page.getByRole('button', { name: 'Change avatar' }).evaluate((e) => {
        return e === document.activeElement;
      }),
    ).toBe(true);
    const first = await waitFor(() => hashOf(alice, 'alice'), 5000, 'alice has an avatar');
    const own = await showsPicture(a.page.locator('.user-panel'), first);
    expect(own.w).toBe(own.h);
    expect(own.w).toBeLessThanOrEqual(256);
    expect(own.w).toBeGreaterThan(200); // a square of 400/1.1 pixels, scaled down to 256
    const res = await fetch(new URL('/api/avatars/alice', alice.uiUrl), {
      headers: authHeaders(alice.uiUrl),
    });
    expect(res.headers.get('content-type')).toBe('image/webp');
    expect((await res.arrayBuffer()).byteLength).toBeLessThanOrEqual(256 * 1024);

    // bob's page, never reloaded, shows it beside her message and in the member list.
    expect((await showsPicture(hers, first)).w).toBe(own.w);
    await showsPicture(member(b.page, 'alice'), first);
    await snap(b.page, 'avatars');
    keep('avatars');

    // A new one: bob's page shows it (its address carries the new hash).
    const again = await pickAvatar(a.page, await png(a.page, 300, 300, '#f1fa8c', '#23a55a'));
    await again.getByRole('button', { name: 'Save' }).click();
    await again.waitFor({ state: 'detached' });
    const second = await waitFor(
      async () => {
        const h = await hashOf(alice, 'alice');
        return h !== first ? h : undefined;
      },
      5000,
      'the new avatar',
    );
    await showsPicture(hers, second);
    await showsPicture(member(b.page, 'alice'), second);
    await showsPicture(a.page.locator('.user-panel'), second);

    // bob has none: still his initials, and neither page ever asked for his picture.
    expect(await drawnDefault(message(b.page, 'bob', 'hi from bob'))).toEqual(bobOnB);
    expect(await drawnDefault(b.page.locator('.user-panel'))).toEqual(bobOnB);
    expect([...seenA, ...seenB].every((p) => p === '/api/avatars/alice')).toBe(true);
    expect(seenB.length).toBeGreaterThan(0);
    expect(await seriousViolations(b.page)).toEqual([]);
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });

  it('the editor: a file that is no picture, the peer refusing one, Escape, and no Save while not connected', async () => {
    const { alice } = await setup();
    const a = await openPage(alice.uiUrl);
    await openChannel(a.page, 'Your channels');
    const change = a.page.getByRole('button', { name: 'Change avatar' });

    // Not a picture: said at once, nothing sent; Escape closes and the focus comes back.
    const junk = { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not a png') };
    let dialog = await pickAvatar(a.page, junk);
    await dialog
      .getByRole('alert')
      .getByText(/not a picture this browser can read/)
      .waitFor();
    expect(await dialog.getByRole('button', { name: 'Save' }).isDisabled()).toBe(true);
    await a.page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect(await change.evaluate((e) => e === document.activeElement)).toBe(true);

    // The peer refuses what it is sent (here a body enlarged past 256 KiB on its way, since
    // the editor never makes one): its reason shows, and the editor stays open to try again.
    await a.page.route('**/api/me/avatar', (route) =>
      route.continue({ postData: Buffer.alloc(256 * 1024 + 1, 1) }),
    );
    dialog = await pickAvatar(a.page, await png(a.page, 120, 80, '#e63946', '#1d3557'));
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.getByRole('alert').getByText('avatar: at most 256 KiB').waitFor();
    expect(await seriousViolations(a.page)).toEqual([]);
    await a.page.unroute('**/api/me/avatar');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'detached' });
    const hash = await waitFor(() => hashOf(alice, 'alice'), 5000, 'saved');
    // Cropped from 120×80: its middle 80×80, not enlarged.
    expect(await showsPicture(a.page.locator('.user-panel'), hash)).toEqual({ w: 80, h: 80 });

    // Offline, Save waits for the connection instead of sending what must fail.
    await a.page.getByLabel('Status').selectOption('offline');
    await a.page.getByText('You are offline.').waitFor();
    dialog = await pickAvatar(a.page, await png(a.page, 64, 64, '#8e44ad', '#1d3557'));
    await dialog.getByText('Not connected to the central server').waitFor();
    expect(await dialog.getByRole('button', { name: 'Save' }).isDisabled()).toBe(true);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    expect(await hashOf(alice, 'alice')).toBe(hash);

    // The only errors: the refused upload's.
    const refused = a.errors.filter((e) => /413/.test(e));
    expect(refused.length).toBeGreaterThan(0);
    expect(a.errors.filter((e) => !/413/.test(e))).toEqual([]);
  });

  it("a visitor sees members' avatars beside their messages and in the member list, and has none to change", async () => {
    const net = await createTestnet({ peers: 2 });
    const [pa, pv] = net.peers as [TestPeer, TestPeer];
    await signIn(pa, 'alice');
    const lobby = (await pa.call('POST', '/api/channels', { name: 'lobby', allowVisitors: true }))
      .body.id as string;
    await pa.call('POST', `/api/channels/${lobby}/messages`, { text: 'visitors welcome' });

    const v = await openPage(pv.uiUrl);
    const seen = pictureRequests(v.page);
    const picture = await png(v.page, 96, 96, '#1f7a8c', '#f1fa8c');
    const set = await fetch(new URL('/api/me/avatar', pa.uiUrl), {
      method: 'PUT',
      headers: { ...authHeaders(pa.uiUrl), 'content-type': 'image/png' },
      body: new Uint8Array(picture.buffer),
    });
    const { hash } = (await set.json()) as { hash: string };

    await v.page.getByRole('tab', { name: 'Visitor' }).click();
    await v.page.getByLabel('Display name').fill('guest one');
    await v.page.getByRole('button', { name: 'Enter as visitor' }).click();
    await v.page.getByRole('button', { name: 'Join lobby' }).click();
    const msg = message(v.page, 'alice', 'visitors welcome');
    await msg.waitFor();
    expect(await showsPicture(msg, hash)).toEqual({ w: 96, h: 96 });
    await showsPicture(member(v.page, 'alice'), hash);
    // The visitor's own: initials of a name with a space in it, never asked for.
    expect((await drawnDefault(v.page.locator('.user-panel'))).initials).toBe('GO');
    expect(await v.page.getByRole('button', { name: 'Change avatar' }).count()).toBe(0);
    expect(seen.every((p) => p === '/api/avatars/alice')).toBe(true);
    expect(await seriousViolations(v.page)).toEqual([]);
    expect(v.errors).toEqual([]);
  });
});
