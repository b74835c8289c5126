/**
 * The message log as a virtual list (issue 19 item 5): a channel of thousands of messages opens
 * with only the rows in view (and a few either side) in the DOM, scrolls up to older ones,
 * follows new ones while at the bottom and keeps its place while scrolled up; and every message
 * of a fast burst shows (the page once kept only the latest live event: 49 of 3,000 showed).
 */
import { describe, expect, it } from 'vitest';
import type { Locator, Page } from 'playwright-core';
import { createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';
import { openPage } from './browser.js';

function log(page: Page): Locator {
  return page.getByRole('log', { name: 'Messages' });
}

/** Alice hosts `name`, bob is a member; both signed in. */
async function channelOfTwo(name: string) {
  const net = await createTestnet({ peers: 2 });
  const [pa, pb] = net.peers as [TestPeer, TestPeer];
  await signIn(pa, 'alice');
  await signIn(pb, 'bob');
  const ch = (await pa.call('POST', '/api/channels', { name })).body.id as string;
  expect((await pb.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
  return { net, pa, pb, ch };
}

/** Every message text the log holds, read by scrolling it from top to bottom in half screens. */
async function textsByScrolling(page: Page): Promise<Set<string>> {
  const seen = new Set<string>();
  await log(page).evaluate((el) => (el.scrollTop = 0));
  for (let i = 0; i < 10_000; i++) {
    await page.waitForTimeout(30); // the virtual list renders the rows of the new position
    const texts = await log(page)
      .locator('article .text')
      .evaluateAll((els) => els.map((e) => e.textContent ?? ''));
    for (const t of texts) seen.add(t);
    const end = await log(page).evaluate((el) => {
      const before = el.scrollTop;
      el.scrollTop += el.clientHeight / 2;
      return el.scrollTop === before;
    });
    if (end) break;
  }
  return seen;
}

describe('web UI: the message log as a virtual list', () => {
  it('every message of a fast burst into the open channel shows', async () => {
    const { pa, pb, ch } = await channelOfTwo('burst');
    const a = await openPage(pa.uiUrl);
    await a.page.getByRole('button', { name: 'Your channels' }).click();
    await log(a.page).waitFor();

    // 600 messages, 30 in flight at a time: many events reach the page between two renders.
    const N = 600;
    const texts = Array.from({ length: N }, (_, i) => `burst ${i}`);
    for (let i = 0; i < N; i += 30)
      await Promise.all(
        texts.slice(i, i + 30).map(async (text) => {
          const r = await pb.call('POST', `/api/channels/${ch}/messages`, { text });
          expect(r.status).toBe(201);
        }),
      );
    let missing: string[] = [];
    await waitFor(
      async () => {
        const seen = await textsByScrolling(a.page);
        missing = texts.filter((t) => !seen.has(t));
        return missing.length === 0;
      },
      20_000,
      () => `every message in the log: ${missing.length} of ${N} missing (${missing.slice(0, 5)})`,
    );
    expect(a.errors).toEqual([]);
  });
});
