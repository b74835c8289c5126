/**
 * Accessibility (issue 13 §9): axe-core on every view a person meets, at desktop and phone width:
 * the entry page, Home with the directory, a channel without a stream, and a channel with a live
 * stream playing (watched by one page, broadcast by the other). No serious or critical violation.
 */
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';
import { openPage } from './browser.js';
import { seriousViolations, type AxeViolation } from './axe.js';

const FAKE_MEDIA = [
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
];
const WIDTHS = [1280, 360] as const;

describe('accessibility (axe-core)', () => {
  it('no serious or critical violation on entry, Home, a channel, and a channel with a live stream, at 1280 and 360 px', async () => {
    const net = await createTestnet({ peers: 2 });
    const [pa, pb] = net.peers as [TestPeer, TestPeer];
    const found: Record<string, AxeViolation[]> = {};
    async function check(page: Page, view: string) {
      for (const width of WIDTHS) {
        await page.setViewportSize({ width, height: width === 360 ? 640 : 760 });
        await page.waitForTimeout(150);
        found[`${view} @${width}`] = await seriousViolations(page);
        expect(await page.locator('h1').count(), `${view} @${width}: one <h1>`).toBe(1);
      }
    }

    const entry = await openPage(pa.uiUrl, undefined, FAKE_MEDIA);
    await entry.page.getByLabel('Username').waitFor();
    await check(entry.page, 'login');
    await entry.page.getByRole('tab', { name: 'Register' }).click();
    await check(entry.page, 'register');

    await signIn(pa, 'alice');
    await signIn(pb, 'bob');
    const c = await pa.call('POST', '/api/channels', { name: 'studio', allowVisitors: false });
    await pa.call('POST', `/api/channels/${c.body.id}/messages`, { text: 'hello from alice' });
    await pa.call('POST', '/api/channels', { name: 'lobby', allowVisitors: true });
    await pb.call('POST', `/api/channels/${c.body.id}/join`);

    const a = entry;
    await a.page.reload();
    const b = await openPage(pb.uiUrl, undefined, FAKE_MEDIA);
    await b.page.getByRole('heading', { name: /Directory/ }).waitFor();
    await b.page.getByText('lobby').first().waitFor();
    await check(b.page, 'home');

    await b.page.getByRole('button', { name: /alice's channels/ }).click();
    await b.page.getByRole('log', { name: 'Messages' }).getByText('hello from alice').waitFor();
    await check(b.page, 'channel');

    await a.page.getByRole('button', { name: /Your channels/ }).click();
    await a.page.getByRole('button', { name: 'Go live' }).click();
    await a.page.getByLabel('You are live').waitFor();
    await b.page.getByRole('button', { name: 'Watch alice' }).click({ timeout: 15_000 });
    const tile = b.page.getByRole('figure', { name: "alice's stream" });
    await waitFor(async () => Number(await tile.getAttribute('data-frames-drawn')) > 5, 20_000);
    await check(b.page, 'channel with stream (viewer)');
    await check(a.page, 'channel with stream (streamer)');

    // Keyboard: the first Tab reaches the skip link; in a channel it lands in the composer. Tab
    // then reaches every control on the page (those at tabindex -1 repeat a neighbour's action).
    await b.page.setViewportSize({ width: 1280, height: 760 });
    await b.page.reload();
    await b.page.getByRole('heading', { name: /Directory/ }).waitFor();
    await b.page.keyboard.press('Tab');
    expect(await focused(b.page)).toBe('Skip to main content');
    await b.page.getByRole('button', { name: /alice's channels/ }).click();
    await b.page.getByRole('log', { name: 'Messages' }).waitFor();
    // Opening a channel puts the caret in its composer (as Discord does)…
    expect(await b.page.evaluate(() => document.activeElement?.id)).toBe('composer');
    // …and the first control of the page is the skip link that leads there.
    const skip = b.page.getByRole('link', { name: 'Skip to message composer' });
    expect(
      await skip.evaluate(
        (el) =>
          el ===
          document.querySelector(
            'a[href], button:not([disabled]), input:not([disabled]), select, textarea, [tabindex]:not([tabindex="-1"])',
          ),
      ),
    ).toBe(true);
    await skip.focus();
    await b.page.keyboard.press('Enter');
    expect(await b.page.evaluate(() => document.activeElement?.id)).toBe('composer');
    await b.page.getByRole('button', { name: 'Home' }).click();
    await b.page.getByRole('heading', { name: /Directory/ }).waitFor();
    expect(await unreachable(b.page)).toEqual([]);
    await b.page.getByRole('button', { name: /alice's channels/ }).click();
    await b.page.getByRole('log', { name: 'Messages' }).waitFor();
    expect(await unreachable(b.page)).toEqual([]);

    const counts = Object.entries(found).map(
      ([view, v]) => `${view}: ${v.length} ${v.map((x) => x.id).join(',')}`,
    );
    console.log(`axe serious/critical per view:\n${counts.join('\n')}`);
    const bad = Object.fromEntries(Object.entries(found).filter(([, v]) => v.length > 0));
    expect(bad).toEqual({});
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });
});

async function focused(page: Page): Promise<string> {
  return page.evaluate(() => (document.activeElement as HTMLElement | null)?.innerText ?? '');
}

/** Tabs through the whole page; answers the visible controls that Tab never reached. */
async function unreachable(page: Page): Promise<string[]> {
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  const reached = new Set<string>();
  for (let i = 0; i < 80; i++) {
    await page.keyboard.press('Tab');
    const key = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      if (!el || el === document.body) return '';
      el.dataset.tabbed = '1';
      return el.outerHTML.slice(0, 80);
    });
    if (key && reached.has(key)) break;
    reached.add(key);
  }
  return page.evaluate(() =>
    [
      ...document.querySelectorAll<HTMLElement>(
        'button, a[href], input, select, textarea, [tabindex]:not([tabindex="-1"])',
      ),
    ]
      .filter(
        (el) =>
          el.tabIndex >= 0 &&
          !(el as HTMLButtonElement).disabled &&
          el.getClientRects().length > 0 &&
          getComputedStyle(el).visibility !== 'hidden' &&
          !el.dataset.tabbed,
      )
      .map((el) => el.outerHTML.slice(0, 120)),
  );
}
