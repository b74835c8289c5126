/**
 * A real Chromium for UI tests: Debian's /usr/bin/chromium driven by playwright-core, headless.
 * One browser per test worker (per set of command-line flags), shared by the worker's test files
 * one after another and closed when the worker exits; each page gets a fresh browser context (its
 * own cookies, storage and cache, as a fresh profile would), closed after its test. Starting
 * Chromium costs seconds on a busy 2-core machine (and its first page a second more); a context
 * costs a fraction of that. Console errors are collected: a page that logs one fails its test.
 */
import fs from 'node:fs';
import path from 'node:path';
import { onTestFinished } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';

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
  const ctx = await b.newContext({ viewport: size });
  onTestFinished(async () => {
    await ctx.close().catch(() => undefined);
  });
  const page = await ctx.newPage();
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
