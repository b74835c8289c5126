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
let origin = '';
let first: Page | undefined;
/** What a console listener of the first test heard. */
const heard: string[] = [];

beforeAll(async () => {
  server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>t</title>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('browser pages kept between tests', () => {
  it('a test leaves cookies, storage, a permission, a second tab and listeners behind', async () => {
    const { page } = await openPage(`${origin}/one`);
    await page.evaluate(() => {
      localStorage.setItem('left', 'behind');
      sessionStorage.setItem('left', 'behind');
      document.cookie = 'left=behind; max-age=3600';
    });
    await page.context().grantPermissions(['clipboard-read'], { origin });
    await page.context().newPage();
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
    await page.evaluate(() => console.log('heard only by this test'));
    await page.waitForTimeout(200);
    expect(heard, 'a listener of the last test').toEqual([]);
    expect(errors).toEqual([]);
  });
});
