/**
 * A real Chromium for UI tests: Debian's /usr/bin/chromium driven by playwright-core, headless.
 * One browser per test worker (per set of command-line flags), shared by the worker's test files
 * one after another and closed when the worker exits. Each page starts blank, in a browser context
 * of its own: no cookies, storage, cache or permissions from anything before it. A page whose test
 * ended is wiped and kept for the next one (see `release`): a fresh context and page cost ~2.9 s
 * of CPU on this 2-core machine (a renderer process started), a kept page ~0.6 s to load another
 * peer's UI. Console errors are collected: a page that logs one fails its test.
 */
import fs from 'node:fs';
import path from 'node:path';
import { onTestFinished } from 'vitest';
import {
  chromium,
  type Browser,
  type BrowserContext,
  type CDPSession,
  type Page,
} from 'playwright-core';

import { CHROMIUM, CHROMIUM_ARGS } from './chromium.js';

/**
 * This worker's browsers, by their extra flags (a flag such as a fake camera is browser-wide).
 * Test files share a worker's modules (vitest isolate: false), so this module is loaded once per
 * worker and its browsers serve every browser test file the worker runs.
 */
const browsers = new Map<string, Promise<Browser>>();

// Nothing closes them between files: playwright-core kills what it launched when the worker
// process exits or is told to stop (SIGTERM).

function browser(extraArgs: string[]): Promise<Browser> {
  const key = extraArgs.join(' ');
  let b = browsers.get(key);
  if (!b) {
    if (!fs.existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
    b = chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_ARGS, ...extraArgs],
    });
    browsers.set(key, b);
    // A launch that failed is not kept: the next test tries again.
    b.catch(() => browsers.delete(key));
  }
  return b;
}

/**
 * Opens a page at `url` in a fresh context; `errors` collects what the page logged as errors.
 * `live` settles once the page's event stream (/api/events) is answered: what happens after it
 * reaches the page live (a message posted before it would only show when read).
 */
export async function openPage(
  url: string,
  size = { width: 1280, height: 760 },
  extraArgs: string[] = [],
): Promise<{ page: Page; errors: string[]; live: Promise<void> }> {
  let b = await browser(extraArgs);
  // A browser that died in an earlier test (a crash) is replaced rather than failing every test.
  if (!b.isConnected()) {
    browsers.delete(extraArgs.join(' '));
    b = await browser(extraArgs);
  }
  const kept = idle.get(b) ?? [];
  idle.set(b, kept);
  const blank = kept.pop() ?? (await blankPage(b));
  onTestFinished(() => release(b, blank));
  const { page } = blank;
  await page.setViewportSize(size);
  // Under the test's own timeout, so a failure names the locator it waited for.
  page.setDefaultTimeout(10_000);
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  let streamed = () => {};
  const live = new Promise<void>((resolve) => (streamed = resolve));
  page.on('response', (r) => {
    if (r.status() >= 400)
      errors.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
    else if (new URL(r.url()).pathname === '/api/events') streamed();
  });
  await page.goto(url);
  return { page, errors, live };
}

/** A page and its own context, with what `release` needs to wipe it. */
interface BlankPage {
  ctx: BrowserContext;
  page: Page;
  cdp: CDPSession;
  /** Origins the page has been at since it was last wiped. */
  origins: Set<string>;
  /** The test did what cannot be undone (a fake clock, a CDP session of its own…). */
  tainted: boolean;
}

/** Wiped pages waiting for a test, by browser. */
const idle = new Map<Browser, BlankPage[]>();

/** Methods after which a page is never given to another test (their effect cannot be undone). */
const TAINTING = {
  page: ['addInitScript', 'exposeBinding', 'exposeFunction', 'emulateMedia', 'setExtraHTTPHeaders'],
  ctx: [
    'addInitScript',
    'exposeBinding',
    'exposeFunction',
    'newCDPSession',
    'setExtraHTTPHeaders',
    'setGeolocation',
    'setHTTPCredentials',
    'setOffline',
  ],
  clock: ['install', 'setFixedTime', 'setSystemTime', 'fastForward', 'runFor', 'pauseAt'],
} as const;

async function blankPage(b: Browser): Promise<BlankPage> {
  const ctx = await b.newContext();
  const page = await ctx.newPage();
  const cdp = await ctx.newCDPSession(page);
  const blank: BlankPage = { ctx, page, cdp, origins: new Set(), tainted: false };
  const taint = (o: object, names: readonly string[]) => {
    const target = o as Record<string, (...a: unknown[]) => unknown>;
    for (const name of names) {
      const original = target[name]!.bind(o);
      target[name] = (...a: unknown[]) => {
        blank.tainted = true;
        return original(...a);
      };
    }
  };
  taint(page, TAINTING.page);
  taint(ctx, TAINTING.ctx);
  taint(page.clock, TAINTING.clock);
  trackOrigins(blank, page);
  // Tabs the test opens in the context (closed by `release`): their origins are wiped too.
  ctx.on('page', (tab) => trackOrigins(blank, tab));
  return blank;
}

/** Notes each origin `page` goes to: `release` clears their storage. */
function trackOrigins(blank: BlankPage, page: Page): void {
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) blank.origins.add(new URL(f.url()).origin);
  });
}

/**
 * Gives a test's page back, wiped as a fresh context would be: other tabs closed, the test's
 * listeners and routes removed, cookies, permissions, the HTTP cache and every visited origin's
 * storage cleared, at about:blank. One that cannot be wiped (closed, crashed, tainted) is closed.
 */
async function release(b: Browser, blank: BlankPage): Promise<void> {
  const { ctx, page, cdp } = blank;
  try {
    if (blank.tainted || page.isClosed() || !b.isConnected()) throw new Error('not reusable');
    for (const other of ctx.pages()) if (other !== page) await other.close();
    page.removeAllListeners();
    await page.unrouteAll({ behavior: 'ignoreErrors' });
    await ctx.unrouteAll({ behavior: 'ignoreErrors' });
    await page.goto('about:blank', { timeout: 10_000 });
    for (const origin of blank.origins)
      if (origin.startsWith('http'))
        await cdp.send('Storage.clearDataForOrigin', { origin, storageTypes: 'all' });
    await cdp.send('Network.clearBrowserCache');
    await ctx.clearCookies();
    await ctx.clearPermissions();
    blank.origins.clear();
    trackOrigins(blank, page);
    idle.get(b)?.push(blank);
  } catch {
    await ctx.close().catch(() => undefined);
  }
}

/** Saves a screenshot under test-artifacts/ (the best ones are kept in docs/screenshots). */
export async function snap(page: Page, name: string): Promise<void> {
  const dir = path.resolve(import.meta.dirname, '..', 'test-artifacts');
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`) });
}

/** Keeps a screenshot of test-artifacts/ (taken by `snap`) in docs/screenshots: the README shows it. */
export function keep(name: string): void {
  const root = path.resolve(import.meta.dirname, '..');
  fs.copyFileSync(
    path.join(root, 'test-artifacts', `${name}.png`),
    path.join(root, 'docs', 'screenshots', `${name}.png`),
  );
}
