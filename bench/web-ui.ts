/**
 * The web UI as a user sees it (issue 19 item 5), run by `npm run bench` or alone
 * (`node --import tsx bench/web-ui.ts`, `--quick` for a smoke run). A server and two peers in
 * this process (post limits raised: the history is uploaded in seconds); alice's channel holds
 * BENCH_WEB_CACHED (100,000) messages, written offline and uploaded. Debian's Chromium (the test
 * flags, a fresh profile) opens alice's UI:
 * 1. open: the channel is clicked until its newest message shows, median of BENCH_REPEATS (3);
 * 2. scroll: the log is scrolled to its top again and again for BENCH_WEB_SCROLL_S (10 s),
 *    loading older pages: messages loaded, rows in the DOM, long tasks;
 * 3. live: at the bottom, bob posts BENCH_WEB_RATE (100) messages/s into the open channel for
 *    BENCH_WEB_SECONDS (30 s) on a 10 ms clock, BENCH_REPEATS times: the page's long tasks
 *    (PerformanceObserver 'longtask': over 50 ms), the longest, the JS heap before and after
 *    (after a garbage collection, through the DevTools protocol), and whether every message
 *    showed (the newest row's aria-posinset). BENCH_WEB_PROFILE=file.cpuprofile: a CPU profile
 *    of the first live run is written there, its top functions added to the result.
 */
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { benchWorld, until } from './world.js';
import { profilePage } from './cpu-profile.js';
import { median } from './stats.js';
import { CHROMIUM, CHROMIUM_ARGS } from '../test/chromium.js';

const QUICK = process.argv.includes('--quick') || !!process.env.BENCH_WEB_QUICK;
const CACHED = Number(process.env.BENCH_WEB_CACHED ?? (QUICK ? 5000 : 100_000));
const RATE = Number(process.env.BENCH_WEB_RATE ?? 100);
const SECONDS = Number(process.env.BENCH_WEB_SECONDS ?? (QUICK ? 5 : 30));
const SCROLL_S = Number(process.env.BENCH_WEB_SCROLL_S ?? (QUICK ? 3 : 10));
const REPEATS = QUICK ? 1 : Math.max(1, Number(process.env.BENCH_REPEATS ?? 3));
const LONG_TASK_MS = 50;
/** A file to write a CPU profile of the first live run to (and its top functions to the result). */
const PROFILE = process.env.BENCH_WEB_PROFILE;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Collects the page's long tasks from its start (injected before any script of the page). */
function watchLongTasks(): void {
  const w = window as unknown as { __long: number[] };
  w.__long = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) w.__long.push(e.duration);
  }).observe({ type: 'longtask', buffered: true });
}

/** Long tasks since the last call (and clears them). */
function takeLongTasks(page: Page): Promise<number[]> {
  return page.evaluate(() => {
    const w = window as unknown as { __long: number[] };
    return w.__long.splice(0);
  });
}

async function heapMB(page: Page): Promise<number> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('HeapProfiler.collectGarbage');
  const { usedSize } = await cdp.send('Runtime.getHeapUsage');
  await cdp.detach();
  return Math.round((usedSize / 2 ** 20) * 10) / 10;
}

const log = (page: Page) => page.getByRole('log', { name: 'Messages' });
/** The newest row's place in the loaded list (scrolled to the bottom): how many it holds. */
async function loadedCount(page: Page): Promise<number> {
  await log(page).evaluate((el) => (el.scrollTop = el.scrollHeight));
  await sleep(150); // the virtual list renders the rows of the new position
  return log(page)
    .evaluate((el) => {
      const rows = [...el.querySelectorAll('article')];
      return Math.max(0, ...rows.map((r) => Number(r.getAttribute('aria-posinset') ?? 0)));
    })
    .catch(() => 0);
}

export async function benchWebUi(): Promise<Record<string, unknown>> {
  const w = await benchWorld('hchat-bench-web-', {
    postsPerSecond: 1_000_000,
    postBurst: 1_000_000,
  });
  const { dir, server, peer } = w;
  let ctx: BrowserContext | undefined;
  try {
    const alice = await peer('alice');
    const bob = await peer('bob');
    const ch = await alice.node.createChannel('big', false);
    await bob.node.join(ch.id);
    let t = Date.now();
    await alice.node.setStatus('offline');
    for (let i = 0; i < CACHED; i++) await alice.node.post(ch.id, `cached message ${i}`);
    await alice.node.setStatus('online');
    await until(async () => (await server.store.lastSeq(ch.id)) >= CACHED, 600_000, 'upload');
    const seedS = (Date.now() - t) / 1000;

    ctx = await chromium.launchPersistentContext(path.join(dir, 'chromium'), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 760 },
      args: [...CHROMIUM_ARGS],
    });
    await ctx.addInitScript(watchLongTasks);
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    page.setDefaultTimeout(60_000);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });

    // 1. Open the channel of CACHED messages: click → its newest message shown.
    const openMs: number[] = [];
    for (let r = 0; r < REPEATS; r++) {
      await page.goto(alice.uiUrl);
      const rail = page.getByRole('button', { name: 'Your channels' });
      await rail.waitFor();
      t = performance.now();
      await rail.click();
      await log(page)
        .getByText(`cached message ${CACHED - 1}`, { exact: true })
        .waitFor();
      openMs.push(performance.now() - t);
    }
    const openLong = await takeLongTasks(page);

    // 2. Scroll up through the history for SCROLL_S.
    const end = Date.now() + SCROLL_S * 1000;
    let maxRows = 0;
    while (Date.now() < end) {
      const rows = await log(page).evaluate((el) => {
        el.scrollTop = 0;
        return el.querySelectorAll('article').length;
      });
      maxRows = Math.max(maxRows, rows);
      await sleep(50);
    }
    const scrollLong = await takeLongTasks(page);
    const loadedByScrolling = await loadedCount(page);

    // 3. RATE messages/s into the open channel for SECONDS, REPEATS times.
    const runs: Array<Record<string, number>> = [];
    let sent = 0;
    let profile: Awaited<ReturnType<Awaited<ReturnType<typeof profilePage>>>> | undefined;
    for (let r = 0; r < REPEATS; r++) {
      await page.goto(alice.uiUrl);
      await page.getByRole('button', { name: 'Your channels' }).click();
      await log(page)
        .getByText(sent ? `live ${sent - 1}` : `cached message ${CACHED - 1}`, { exact: true })
        .waitFor();
      await sleep(1000);
      const before = await heapMB(page);
      const startCount = await loadedCount(page);
      await takeLongTasks(page);
      const stopProfile = PROFILE && r === 0 ? await profilePage(page, PROFILE) : undefined;
      const total = RATE * SECONDS;
      const t0 = performance.now();
      const posts: Promise<unknown>[] = [];
      for (let i = 0; i < total;) {
        const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * RATE));
        for (; i < due; i++) posts.push(bob.node.post(ch.id, `live ${sent + i}`));
        await sleep(10);
      }
      await Promise.all(posts);
      sent += total;
      await until(
        async () => (await loadedCount(page)) >= startCount + total,
        30_000,
        `every live message shown (${await loadedCount(page)} of ${startCount + total})`,
      );
      const long = await takeLongTasks(page);
      if (stopProfile) profile = await stopProfile();
      const after = await heapMB(page);
      runs.push({
        longTasks: long.filter((d) => d > LONG_TASK_MS).length,
        longestTaskMs: Math.round(Math.max(0, ...long)),
        heapBeforeMB: before,
        heapAfterMB: after,
        shown: (await loadedCount(page)) - startCount,
        rowsInDom: await log(page).locator('article').count(),
      });
    }
    const fig = (k: string) => median(runs.map((x) => x[k]!));
    return {
      quick: QUICK,
      cached: CACHED,
      seedSeconds: Math.round(seedS),
      openMs: Math.round(median(openMs)),
      openMsRuns: openMs.map(Math.round),
      openLongestTaskMs: Math.round(Math.max(0, ...openLong)),
      scrollSeconds: SCROLL_S,
      scrollLoaded: loadedByScrolling,
      scrollMaxRowsInDom: maxRows,
      scrollLongTasks: scrollLong.filter((d) => d > LONG_TASK_MS).length,
      scrollLongestTaskMs: Math.round(Math.max(0, ...scrollLong)),
      rate: RATE,
      seconds: SECONDS,
      runs: REPEATS,
      longTasks: fig('longTasks'),
      longestTaskMs: fig('longestTaskMs'),
      heapBeforeMB: fig('heapBeforeMB'),
      heapAfterMB: fig('heapAfterMB'),
      rowsInDom: fig('rowsInDom'),
      everyMessageShown: runs.every((x) => x.shown === RATE * SECONDS),
      liveRuns: runs,
      pageErrors: errors.length,
      ...(profile && { profile }),
    };
  } finally {
    await ctx?.close().catch(() => undefined);
    await w.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchWebUi(), null, 2));
}
