/**
 * test/browser.ts gives a page whose test ended to the next test, wiped: the next test must find
 * nothing of the last one's (cookies, storage, permissions, tabs, listeners), as in a fresh
 * context. The two tests run in this order, in one worker, on one small HTTP server's origin.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { openPage } from './browser.js';

let server: http.Server;
let other: http.Server;
let origin = '';
/** Another origin, which only a second tab of the first test visits. */
let otherOrigin = '';
let first: Page | undefined;
/** What a console listener of the first test heard. */
const heard: string[] = [];

async function serve(): Promise<[http.Server, string]> {
  const s = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>t</title>');
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return [s, `http://127.0.0.1:${(s.address() as AddressInfo).port}`];
}

beforeAll(async () => {
  [server, origin] = await serve();
  [other, otherOrigin] = await serve();
});
afterAll(async () => {
  for (const s of [server, other]) await new Promise<void>((resolve) => s.close(() => resolve()));
});

describe('browser pages kept between tests', () => {
  it('a test leaves cookies, storage, a permission, a second tab and listeners behind', async () => {
    const { page } = await openPage(`${origin}/one`);
    await page.evaluate(() => {
      localStorage.setItem('left', 'behind');
      sessionStorage.setItem('left', 'behind');
      document.cookie = 'left=behind; max-age=3600';
    });
    await page.context().grantPermissions(['clipboard-read'], { origin });
    const tab = await page.context().newPage();
    await tab.goto(`${otherOrigin}/tab`);
    await tab.evaluate(() => localStorage.setItem('left', 'by a tab'));
    page.on('console', (m) => heard.push(m.text()));
    expect(await page.context().cookies()).toHaveLength(1);
    expect(page.context().pages()).toHaveLength(2);
    first = page;
  });

  it('the next test gets that page wiped: none of it is there', async () => {
    const { page, errors } = await openPage(`${origin}/two`);
    expect(page, 'the page the last test left').toBe(first);
    expect(page.context().pages()).toEqual([page]);
    expect(await page.context().cookies()).toEqual([]);
    const left = await page.evaluate(async () => ({
      local: localStorage.length,
      session: sessionStorage.length,
      cookie: document.cookie,
      permission: (await navigator.permissions.query({ name: 'clipboard-read' as PermissionName }))
        .state,
    }));
    expect(left).toEqual({ local: 0, session: 0, cookie: '', permission: 'prompt' });
    await page.goto(`${otherOrigin}/again`);
    expect(await page.evaluate(() => localStorage.length), 'what the tab left').toBe(0);
    await page.evaluate(() => console.log('heard only by this test'));
    await page.waitForTimeout(200);
    expect(heard, 'a listener of the last test').toEqual([]);
    expect(errors).toEqual([]);
  });
});
