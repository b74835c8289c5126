/**
 * The message log as a virtual list (issue 19 item 5): a channel of thousands of messages opens
 * with only the rows in view (and a few either side) in the DOM, scrolls up to older ones,
 * follows new ones while at the bottom and keeps its place while scrolled up; and every message
 * of a fast burst shows (the page once kept only the latest live event: 49 of 3,000 showed).
 */
import { describe, expect, it } from 'vitest';
import type { Locator, Page } from 'playwright-core';
import { createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';
import { openPage, snap } from './browser.js';
import { seriousViolations } from './axe.js';

function log(page: Page): Locator {
  return page.getByRole('log', { name: 'Messages' });
}

/** How far the log is from its bottom, in pixels. */
function fromBottom(page: Page): Promise<number> {
  return log(page).evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight);
}

/** The message rows in the DOM now. */
function rowsInDom(page: Page): Promise<number> {
  return log(page).getByRole('article').count();
}

/** The text of the first message row whose top is inside the log's box. */
function firstInView(page: Page): Promise<string> {
  return log(page).evaluate((el) => {
    const top = el.getBoundingClientRect().top;
    const rows = [...el.querySelectorAll('article')].sort(
      (a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top,
    );
    const first = rows.find((r) => r.getBoundingClientRect().top >= top);
    return first?.querySelector('.text')?.textContent ?? '';
  });
}

/** Alice hosts `name`, bob is a member; both signed in. */
async function channelOfTwo(name: string) {
  // Alice's history is uploaded to the server in a moment, not at the post limit of 50 a second.
  const net = await createTestnet({
    peers: 2,
    server: { postsPerSecond: 1_000_000, postBurst: 1_000_000 },
  });
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

  it('a burst of 100 messages a second adds to the log a few times a second, not once a message', async () => {
    const { pa, pb, ch } = await channelOfTwo('paced');
    const a = await openPage(pa.uiUrl);
    await a.page.getByRole('button', { name: 'Your channels' }).click();
    await log(a.page).waitFor();
    // When the newest row shown became a newer message than before: a merge of live messages
    // that reached the DOM (the rows say their place in the list).
    await log(a.page).evaluate((el) => {
      const w = window as unknown as { advances: number[] };
      w.advances = [];
      let newest = 0;
      new MutationObserver(() => {
        const rows = [...el.querySelectorAll('article')];
        const now = Math.max(0, ...rows.map((r) => Number(r.getAttribute('aria-posinset'))));
        if (now > newest) w.advances.push(performance.now());
        newest = Math.max(newest, now);
      }).observe(el, { subtree: true, childList: true, attributes: true });
    });
    const N = 300;
    const t0 = Date.now();
    const posts: Promise<unknown>[] = [];
    for (let i = 0; i < N; i++) {
      posts.push(pb.call('POST', `/api/channels/${ch}/messages`, { text: `paced ${i}` }));
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + (i + 1) * 10 - Date.now())));
    }
    await Promise.all(posts);
    await log(a.page)
      .getByText(`paced ${N - 1}`, { exact: true })
      .waitFor();
    const at = await a.page.evaluate(() => (window as unknown as { advances: number[] }).advances);
    // Once a message: about 300 advances, 10 ms apart. Batched (at most one merge per 100 ms):
    // about one per 100 ms however long a loaded machine takes to post them all, now and then
    // followed closely by the virtual list's second render of the same batch. So the typical
    // gap is a batch's 100 ms, and there are not many more advances than 100 ms spans.
    const BATCH_MS = 100; // web/src/live-messages.ts
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    const median = [...gaps].sort((x, y) => x - y)[Math.floor(gaps.length / 2)]!;
    const span = at[at.length - 1]! - at[0]!;
    expect(at.length).toBeGreaterThan(5);
    expect(median, `gaps between advances (ms): ${gaps.map(Math.round)}`).toBeGreaterThan(
      0.8 * BATCH_MS,
    );
    expect(at.length).toBeLessThan(1.5 * (span / BATCH_MS) + 3);
    expect(a.errors).toEqual([]);
  });

  it('opened at its first unread with all of it in view, the log follows what comes next; scrolled up, a bar says new messages came below and jumps to them', async () => {
    const { pa, pb, ch } = await channelOfTwo('follow');
    const say = async (text: string) =>
      expect((await pa.call('POST', `/api/channels/${ch}/messages`, { text })).status).toBe(201);
    for (let i = 1; i <= 4; i++) await say(`unread ${i}`);
    await waitFor(
      async () =>
        (await pb.call('GET', '/api/channels')).body.find((c: any) => c.id === ch)?.unread === 4,
      10_000,
      '4 unread at bob',
    );
    const b = await openPage(pb.uiUrl);
    await b.page.getByRole('button', { name: /alice's channels/ }).click();
    await log(b.page).getByRole('separator', { name: 'New messages' }).waitFor();
    /** Whether the newest message shows, at the bottom of the log. */
    const newestShows = (text: string) => async () => {
      const row = log(b.page).getByRole('article').last();
      return (
        (await row.getAttribute('aria-label'))?.endsWith(`: ${text}`) === true &&
        (await row.isVisible()) &&
        (await fromBottom(b.page)) < 5
      );
    };
    // Nothing to scroll when it opened (no scroll event says it is at the bottom): it follows
    // others' messages past the log's height all the same.
    for (let i = 1; i <= 30; i++) await say(`next ${i}`);
    await waitFor(newestShows('next 30'), 5000, 'following the newest');

    // Scrolled up: new messages stay below, and a bar says so; it jumps to them.
    await log(b.page).evaluate((el) => (el.scrollTop = 0));
    await b.page.waitForTimeout(200);
    await say('below 1');
    await say('below 2');
    const bar = b.page.getByRole('button', { name: '2 new messages below · Jump to newest' });
    await bar.waitFor();
    expect(await fromBottom(b.page)).toBeGreaterThan(100);
    expect(await seriousViolations(b.page)).toEqual([]);
    await bar.click();
    await waitFor(newestShows('below 2'), 5000, 'at the newest after the bar');
    await bar.waitFor({ state: 'detached' });
    await say('after the bar');
    await waitFor(newestShows('after the bar'), 5000, 'following again');
    expect(b.errors).toEqual([]);
  });

  it('a channel of 5,000 messages opens with few rows in the DOM, scrolls up to older ones, follows new ones at the bottom and keeps its place above', async () => {
    const { net, pa, pb, ch } = await channelOfTwo('big');
    const N = 5000;
    // Written while offline (the quick way to a long history), then uploaded to the server.
    await pa.node.setStatus('offline');
    for (let i = 0; i < N; i++) await pa.node.post(ch, `big ${i}`);
    await pa.node.setStatus('online');
    await waitFor(async () => (await net.server.store.lastSeq(ch)) >= N, 20_000, 'the upload');

    const a = await openPage(pa.uiUrl);
    await a.page.getByRole('button', { name: 'Your channels' }).click();
    await log(a.page)
      .getByText(`big ${N - 1}`, { exact: true })
      .waitFor();
    await waitFor(async () => (await fromBottom(a.page)) < 5, 5000, 'at the bottom');
    // Each row says its place in the loaded list; older pages remain, so the size is unknown.
    const last = log(a.page).getByRole('article').last();
    expect(await last.getAttribute('aria-setsize')).toBe('-1');
    expect(await rowsInDom(a.page)).toBeLessThan(50); // a page of 50 loaded, fewer shown

    // Scrolling up loads older pages; the DOM keeps only the rows near the view.
    // (The rows of a message passed by are gone from the DOM again: the test asks how far up
    // the top row is, not whether one given message is still rendered.)
    const older = N - 400;
    let top = '';
    await waitFor(
      async () => {
        top = await log(a.page).evaluate((el) => {
          el.scrollTop = 0;
          return el.querySelector('article .text')?.textContent ?? '';
        });
        return /^big \d+$/.test(top) && Number(top.slice(4)) <= older;
      },
      30_000,
      () => `big ${older} or older at the top of the log, reached ${top}`,
    );
    expect(await rowsInDom(a.page)).toBeLessThan(80);
    expect(await seriousViolations(a.page)).toEqual([]);

    // Scrolled up: a new message keeps the rows in view where they are.
    await log(a.page).evaluate((el) => (el.scrollTop = el.scrollHeight / 2));
    await a.page.waitForTimeout(200);
    const before = await firstInView(a.page);
    await pb.call('POST', `/api/channels/${ch}/messages`, { text: 'while you read' });
    await waitFor(
      async () =>
        (await pa.call('GET', `/api/channels/${ch}/messages?limit=1`)).body.messages[0]?.text ===
        'while you read',
      5000,
      'the host to hold it',
    );
    await a.page.waitForTimeout(500); // its event reached the page meanwhile
    expect(await firstInView(a.page)).toBe(before);
    expect(await log(a.page).getByText('while you read').count()).toBe(0);

    // Back at the bottom, a new message shows and the log stays at the bottom.
    await log(a.page).evaluate((el) => (el.scrollTop = el.scrollHeight));
    await log(a.page).getByText('while you read').waitFor();
    await waitFor(async () => (await fromBottom(a.page)) < 5, 5000, 'at the bottom again');
    // The newest row's place: the pages loaded while scrolling up are all in the list.
    const loaded = Number(
      await log(a.page).getByRole('article').last().getAttribute('aria-posinset'),
    );
    expect(loaded).toBeGreaterThan(400);
    await pb.call('POST', `/api/channels/${ch}/messages`, { text: 'fresh at the bottom' });
    await log(a.page).getByText('fresh at the bottom').waitFor();
    await waitFor(async () => (await fromBottom(a.page)) < 5, 5000, 'following the newest');
    await snap(a.page, 'virtual-list');
    expect(await seriousViolations(a.page)).toEqual([]);
    expect(a.errors).toEqual([]);
  });
});
