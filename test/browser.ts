/**
 * A real Chromium for UI tests: Debian's /usr/bin/chromium driven by playwright-core, headless,
 * with a fresh profile, closed after the test. Console errors are collected: a page that logs
 * one fails its test.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onTestFinished } from 'vitest';
import { chromium, type Page } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';

/** Opens a page at `url`; `errors` collects what the page logged as errors. */
export async function openPage(
  url: string,
  size = { width: 1280, height: 760 },
  extraArgs: string[] = [],
): Promise<{ page: Page; errors: string[] }> {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: size,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      ...extraArgs,
    ],
  });
  onTestFinished(async () => {
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
  });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  // Under the test's own timeout, so a failure names the locator it waited for.
  page.setDefaultTimeout(10_000);
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('response', (r) => {
    if (r.status() >= 400)
      errors.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
  });
  await page.goto(url);
  return { page, errors };
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
