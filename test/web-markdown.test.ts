/**
 * Markdown in messages (issue 13 item 4), in a real browser: formatting a person types shows as
 * formatting, links open in a new tab without opener or referrer, and no script, style, frame or
 * remote image from a message ever reaches the page.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Page } from 'playwright-core';
import { createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';
import { openPage, snap } from './browser.js';
import { seriousViolations } from './axe.js';

function messages(page: Page) {
  return page.getByRole('log', { name: 'Messages' });
}

async function send(page: Page, text: string) {
  await page.getByRole('textbox', { name: 'Message' }).fill(text);
  await page.keyboard.press('Enter');
}

/** A peer with alice signed in and a channel, and her page open on it. */
async function aliceInChannel(name: string) {
  const net = await createTestnet({ peers: 1 });
  const p = net.peers[0] as TestPeer;
  await signIn(p, 'alice');
  const ch = (await p.call('POST', '/api/channels', { name, allowVisitors: false })).body;
  const post = async (text: string) => {
    const r = await p.call('POST', `/api/channels/${ch.id}/messages`, { text });
    expect(r.status).toBe(201);
  };
  const opened = await openPage(p.uiUrl);
  // Every request the page makes must stay on the peer: no remote image, no prefetch.
  const elsewhere: string[] = [];
  opened.page.on('request', (r) => {
    if (new URL(r.url()).origin !== new URL(p.baseUrl).origin) elsewhere.push(r.url());
  });
  await opened.page.getByRole('button', { name: 'Your channels' }).click();
  await opened.page.getByRole('region', { name: `#${name}` }).waitFor();
  return { ...opened, post, elsewhere };
}

/** An http server on 127.0.0.1 that records the Referer of each request it answers. */
async function linkTarget(): Promise<{ url: string; referers: (string | undefined)[] }> {
  const referers: (string | undefined)[] = [];
  const server = http.createServer((req, res) => {
    if (req.url === '/page') referers.push(req.headers.referer);
    res.setHeader('content-type', 'text/html');
    res.end('<!doctype html><title>elsewhere</title><p>elsewhere</p>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => {
    server.closeAllConnections(); // the popup's keep-alive connection
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/page`, referers };
}

describe('markdown in messages', () => {
  it('bold, strike, code, fenced code, autolinks, emoji, quotes and lists render as formatting', async () => {
    const { page, errors, post, elsewhere } = await aliceInChannel('formatting');
    const log = messages(page);
    // Typed in the composer, as a person does.
    await send(page, '**bold** and *italic*, ~~strike~~, `code` and :smile: :heart:');
    await log.locator('strong', { hasText: 'bold' }).waitFor();
    await post('```\nconst answer = 42;\nconsole.log(answer);\n```');
    await post('see https://example.com for more, or write to <mailto:alice@example.com>');
    await post('# Release notes\n> quoted line\n\n- one\n- two\n\n1. first\n2. second');
    await post('the logo: ![our logo](https://example.com/logo.png) and ~one tilde~ stays');
    await log.getByText('stays').waitFor();

    expect(await log.locator('em').textContent()).toBe('italic');
    expect(await log.locator('del').textContent()).toBe('strike');
    expect(await log.locator('p > code').textContent()).toBe('code');
    expect(await log.locator('pre > code').textContent()).toBe(
      'const answer = 42;\nconsole.log(answer);\n',
    );
    const emoji = await log.getByRole('article', { name: /bold/ }).textContent();
    expect(emoji).toContain('😄');
    expect(emoji).toContain('❤');
    expect(emoji).not.toContain(':smile:');

    const site = log.getByRole('link', { name: 'https://example.com' });
    expect(await site.getAttribute('href')).toBe('https://example.com/');
    expect(await site.getAttribute('target')).toBe('_blank');
    expect(await site.getAttribute('rel')).toBe('noopener noreferrer');
    const mail = log.getByRole('link', { name: 'mailto:alice@example.com' });
    expect(await mail.getAttribute('href')).toBe('mailto:alice@example.com');

    // A heading in a message is bold text, not a heading of the page.
    expect(await log.locator('h1, h2, h3, h4, h5, h6').count()).toBe(0);
    expect(await log.locator('p.heading > strong').textContent()).toBe('Release notes');
    expect(await log.locator('blockquote').textContent()).toContain('quoted line');
    expect(await log.locator('ul > li').allTextContents()).toEqual(['one', 'two']);
    expect(await log.locator('ol > li').allTextContents()).toEqual(['first', 'second']);

    // An image is a link to it, never loaded; a single tilde is not a strikethrough.
    expect(await log.locator('img').count()).toBe(0);
    const image = log.getByRole('link', { name: 'image: our logo' });
    expect(await image.getAttribute('href')).toBe('https://example.com/logo.png');
    expect(await log.locator('del').count()).toBe(1);
    await snap(page, 'markdown');
    expect(await seriousViolations(page)).toEqual([]); // axe: no serious or critical violation
    expect(elsewhere).toEqual([]);
    expect(errors).toEqual([]);
  });

  // A link whose text is not its address (`[text](url)`: the text may name another site) asks
  // first, saying where it goes, as Discord does; one that shows its address opens at once.
  it('a link opens a new tab, without opener or referrer, and the chat stays where it was', async () => {
    const { page, errors, post } = await aliceInChannel('links');
    const target = await linkTarget();
    await post(`the notes are at [https://good.example](${target.url})`);
    const link = messages(page).getByRole('link', { name: 'https://good.example' });
    await link.waitFor();
    const appUrl = page.url();
    await link.click();
    const ask = page.getByRole('dialog', { name: 'Leaving Hybrid Chat' });
    await ask.getByText(`This link goes to ${target.url}`).waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    const [popup] = await Promise.all([
      page.context().waitForEvent('page'),
      ask.getByRole('button', { name: 'Open link' }).click(),
    ]);
    await popup.waitForLoadState();
    expect(popup.url()).toBe(target.url);
    expect(await popup.evaluate(() => window.opener)).toBeNull();
    expect(target.referers).toEqual([undefined]);
    expect(page.url()).toBe(appUrl);
    await ask.waitFor({ state: 'detached' });
    await popup.close();

    // Its own address as its text: no question.
    await post(`or straight: ${target.url}`);
    const plain = messages(page).getByRole('link', { name: target.url });
    const [again] = await Promise.all([page.context().waitForEvent('page'), plain.click()]);
    await again.waitForLoadState();
    expect(again.url()).toBe(target.url);
    expect(await again.evaluate(() => window.opener)).toBeNull();
    expect(target.referers).toEqual([undefined, undefined]);
    expect(await page.getByRole('dialog').count()).toBe(0);
    await messages(page).getByRole('link', { name: 'https://good.example' }).waitFor();
    expect(errors).toEqual([]);
  });

  it('XSS payloads in messages stay text: no script, handler, frame, style or javascript: link', async () => {
    const { page, errors, post, elsewhere } = await aliceInChannel('hostile');
    const payloads = [
      '<script>window.__x=1</script>',
      '<img src=x onerror="window.__x=1">',
      '[click](javascript:window.__x=1)',
      '<svg onload="window.__x=1"><circle r="5"/></svg>',
      '<iframe src="javascript:window.__x=1"></iframe>',
      '<iframe srcdoc="<script>parent.__x=1</script>"></iframe>',
      '<style>body{display:none}</style>',
      '[data](data:text/html;base64,PHNjcmlwdD5wYXJlbnQuX194PTE8L3NjcmlwdD4=)',
      '[a](JaVaScRiPt:alert(1))',
      '[entity](&#106;avascript:window.__x=1)',
      '[hex entity](&#x6A;&#x61;vascript:window.__x=1)',
      '[tab](java&#x09;script:window.__x=1)',
      '[newline](java&#10;script:window.__x=1)',
      '<javascript:window.__x=1>',
      '![pic](javascript:window.__x=1)',
      '![pic2](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)',
      '[ref link][r]\n\n[r]: javascript:window.__x=1',
      '[vb](vbscript:msgbox(1))',
      '[rel](/api/me) and [hash](#top)',
      '<a href="javascript:window.__x=1">raw anchor</a>',
      '<details open ontoggle="window.__x=1">x</details>',
      '<object data="javascript:window.__x=1"></object><embed src="javascript:window.__x=1">',
      '<form action="javascript:window.__x=1"><button>go</button></form>',
      '<math><mtext><table><mglyph><style><img src=x onerror="window.__x=1">',
      '&lt;script&gt;window.__x=1&lt;/script&gt; and &#60;img src=x onerror=window.__x=1&#62;',
      '[title](https://example.com "x\\" onmouseover=\\"window.__x=1")',
      '`<script>window.__x=1</script>` and\n```html\n<img src=x onerror="window.__x=1">\n```',
      '<p style="position:fixed;inset:0">overlay</p>',
    ];
    // One typed by hand, the rest through the local API.
    await send(page, '<img src=x onerror="window.__x=1"> typed');
    for (const p of payloads) await post(p);
    const log = messages(page);
    await log.getByText('overlay').waitFor();
    // Under load a message's event may land after the last one's: every one is there in time.
    const articles = () => log.getByRole('article').count();
    await waitFor(async () => (await articles()) === payloads.length + 1, 5000, 'every message');
    expect(await articles()).toBe(payloads.length + 1);

    // The markup is shown as what it is: text.
    await log.getByText('<script>window.__x=1</script>').first().waitFor();
    await log.getByText('<img src=x onerror="window.__x=1"> typed').waitFor();

    // Clicking what would have been a javascript: link runs nothing and goes nowhere.
    const appUrl = page.url();
    await log.getByText('click', { exact: true }).click();
    await log.getByText('a', { exact: true }).click();
    await log.getByText('entity', { exact: true }).click();
    expect(page.url()).toBe(appUrl);

    const found = await log.evaluate((root) => {
      const all = [...root.querySelectorAll('*')];
      return {
        dangerous: all
          .filter((el) =>
            /^(script|img|iframe|frame|svg|math|style|object|embed|form|details|link|meta|base|input|button)$/i.test(
              el.tagName,
            ),
          )
          // The log's own "Load older messages" button and each message's action toolbar
          // (MessageActions.tsx) are not from a message.
          .filter((el) => !el.classList.contains('older') && !el.closest('.msg-actions'))
          .map((el) => el.outerHTML),
        handlers: all.flatMap((el) =>
          [...el.attributes]
            .filter((a) => /^on/i.test(a.name))
            .map((a) => `${el.tagName} ${a.name}`),
        ),
        // The virtual list places its rows (and sizes their box) with styles of its own.
        styled: all
          .filter((el) => el.hasAttribute('style') && !el.matches('.rows, .row'))
          .map((el) => el.outerHTML),
        hrefs: all.flatMap((el) => {
          const h = el.getAttribute('href') ?? el.getAttribute('src') ?? el.getAttribute('action');
          return h === null ? [] : [h];
        }),
        x: (window as unknown as { __x?: unknown }).__x,
        bodyShown: getComputedStyle(document.body).display !== 'none',
      };
    });
    expect(found.dangerous).toEqual([]);
    expect(found.handlers).toEqual([]);
    expect(found.styled).toEqual([]);
    // Only the title link survives, to http(s); nothing javascript:, data:, vbscript: or relative.
    expect(found.hrefs).toEqual(['https://example.com/']);
    expect(found.x).toBeUndefined();
    expect(found.bodyShown).toBe(true);
    expect(await page.evaluate(() => (window as unknown as { __x?: unknown }).__x)).toBeUndefined();
    const title = log.getByRole('link', { name: 'title' });
    expect(await title.getAttribute('title')).toBe('x" onmouseover="window.__x=1');
    expect(elsewhere).toEqual([]);
    expect(errors).toEqual([]);
  });
});
