/**
 * Files and images in the browser (issue 14 item 4): alice owns #general, bob is a member, each
 * on their own peer and page. Files are attached by the button, by a paste and by a drop, upload
 * with progress, and can be removed before sending; images show inline (preview first, then the
 * image, in a box that does not move) and open full size; bob downloads what alice sent, byte for
 * byte; an SVG or HTML file with a script never runs it. No console error and no serious axe
 * violation on any page.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Locator, Page } from 'playwright-core';
import { authHeaders, createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';
import { keep, openPage, snap } from './browser.js';
import { seriousViolations } from './axe.js';
import { FILE_LIMITS } from '../src/shared/limits.js';

/**
 * `route` of the peer at `uiUrl` with a URL key in its query, as the page loads it (an `<img>`,
 * a frame): GET only, made from the token (src/peer/api-auth.ts, web/src/auth.ts).
 */
function withUrlKey(uiUrl: string, route: string): string {
  const u = new URL(uiUrl);
  const expiry = Math.floor(Date.now() / 1000) + 3600;
  const mac = crypto
    .createHmac('sha256', u.searchParams.get('token')!)
    .update(`hchat url key v1 ${expiry}`)
    .digest('base64url');
  return new URL(`${route}?key=${expiry}.${mac}`, u.origin).href;
}

function log(page: Page) {
  return page.getByRole('log', { name: 'Messages' });
}

/** The message whose accessible name starts with "author: text". */
function message(page: Page, author: string, text: string): Locator {
  const esc = text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return log(page).getByRole('article', { name: new RegExp(`^${author}: ${esc}`) });
}

/** The chip of an attachment in the composer, by file name. */
function chip(page: Page, name: string): Locator {
  return page
    .getByRole('list', { name: 'Attachments' })
    .getByRole('listitem', { name: new RegExp(`^${name.replace('.', '\\.')},`) });
}

async function openGeneral(page: Page, owner = "alice's channels") {
  await page.getByRole('button', { name: new RegExp(owner) }).click();
  await page.getByRole('button', { name: /^# ?general/ }).click();
  await page.getByRole('region', { name: '#general' }).waitFor();
}

/** alice (owner of #general) and bob (a member), signed in on their own peers. */
async function setup() {
  const net = await createTestnet({ peers: 2 });
  const [alice, bob] = net.peers as [TestPeer, TestPeer];
  await signIn(alice, 'alice');
  await signIn(bob, 'bob');
  const general = (await alice.call('POST', '/api/channels', { name: 'general' })).body
    .id as string;
  await bob.call('POST', `/api/channels/${general}/join`);
  await waitFor(() => bob.node.sourceOf(general) === 'host');
  return { alice, bob, general };
}

interface Upload {
  name: string;
  mimeType: string;
  buffer: Buffer;
}

/** Picks files with the attach button, through the browser's own file chooser. */
async function attachByButton(page: Page, files: Upload[]) {
  const chooser = page.waitForEvent('filechooser');
  await page.getByRole('button', { name: 'Attach files' }).click();
  const c = await chooser;
  expect(c.isMultiple()).toBe(true);
  // Large files go by their path (Chromium reads them from disk, while the test lasts): as
  // bytes, Playwright sends them through the DevTools protocol, which takes longer than the
  // test's patience on a busy machine.
  if (files.every((f) => f.buffer.length <= 1024 * 1024)) return c.setFiles(files);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hchat-upload-'));
  onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  await c.setFiles(
    files.map((f) => {
      const file = path.join(dir, f.name);
      fs.writeFileSync(file, f.buffer);
      return file;
    }),
  );
}

/** Pastes a file into the composer, as the clipboard gives a screenshot. */
async function paste(page: Page, f: Upload) {
  await page.getByRole('textbox', { name: 'Message' }).focus();
  await page.evaluate(
    ({ b64, name, type }) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], name, { type }));
      document.activeElement!.dispatchEvent(
        new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }),
      );
    },
    { b64: f.buffer.toString('base64'), name: f.name, type: f.mimeType },
  );
}

/** A real PNG of `w`×`h` (a gradient, so its preview is not blank), drawn by the browser. */
async function png(page: Page, w: number, h: number, name = 'photo.png'): Promise<Upload> {
  const b64 = await page.evaluate(
    async ({ w, h }) => {
      const c = document.createElement('canvas');
      c.width = w;
      c.height = h;
      const ctx = c.getContext('2d')!;
      const g = ctx.createLinearGradient(0, 0, w, h);
      g.addColorStop(0, '#e63946');
      g.addColorStop(0.5, '#f1fa8c');
      g.addColorStop(1, '#1d3557');
      ctx.fillStyle = g;
      ctx.fillRect(0, 0, w, h);
      return c.toDataURL('image/png').split(',')[1]!;
    },
    { w, h },
  );
  return { name, mimeType: 'image/png', buffer: Buffer.from(b64, 'base64') };
}

/** Every value the page's <progress> bars matching `selector` take (as a fraction), sampled. */
async function recordProgress(page: Page, selector: string) {
  await page.evaluate((sel) => {
    const seen: number[] = [];
    (window as unknown as { progressSeen: number[] }).progressSeen = seen;
    setInterval(() => {
      for (const p of document.querySelectorAll<HTMLProgressElement>(sel)) seen.push(p.position);
    }, 10);
  }, selector);
  return () => page.evaluate(() => (window as unknown as { progressSeen: number[] }).progressSeen);
}

/** Slows this page's network (DevTools throttling), so progress has something to show. */
async function throttler(page: Page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  return (o: { upload?: number; download?: number }) =>
    cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: 0,
      uploadThroughput: o.upload ?? -1,
      downloadThroughput: o.download ?? -1,
    });
}

/** The files of the newest message, as a peer's API shows them. */
async function newestFiles(p: TestPeer, channelId: string) {
  const page = (await p.call('GET', `/api/channels/${channelId}/messages?limit=1`)).body;
  return (page.messages[0]?.files ?? []) as Array<{
    id: string;
    name: string;
    size: number;
    type: string;
    url: string;
    image?: { width: number; height: number; preview?: string };
  }>;
}

describe('files in the web UI', () => {
  it('attach by button and by paste: chips with upload progress, removed before sending, sent with or without text', async () => {
    const { alice, general } = await setup();
    const a = await openPage(alice.uiUrl);
    await openGeneral(a.page, 'Your channels');

    // Two files by the button; uploads slowed to 4 MiB/s so the 3 MiB one shows its progress.
    const big = crypto.randomBytes(3 * 1024 * 1024);
    const throttle = await throttler(a.page);
    await throttle({ upload: 4 * 1024 * 1024 });
    const seen = await recordProgress(a.page, '.chip progress');
    await attachByButton(a.page, [
      { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not this one\n') },
      { name: 'big.bin', mimeType: 'application/octet-stream', buffer: big },
    ]);
    await chip(a.page, 'big.bin').getByRole('progressbar', { name: 'Uploading big.bin' }).waitFor();
    // Send waits for the uploads (asked at once: the upload lasts under a second).
    expect(await a.page.getByRole('button', { name: 'Send' }).isDisabled()).toBe(true);
    await snap(a.page, 'attach-chips');
    keep('attach-chips');
    await a.page.getByRole('listitem', { name: 'notes.txt, ready to send' }).waitFor();
    await a.page.getByRole('listitem', { name: 'big.bin, ready to send' }).waitFor();
    const fractions = await seen();
    expect(fractions.some((x) => x > 0 && x < 1)).toBe(true); // progress between 0 and 100%
    expect(await seriousViolations(a.page)).toEqual([]); // axe, with the chips shown
    // notes.txt is removed before sending: only big.bin goes, with the text.
    await chip(a.page, 'notes.txt').getByRole('button', { name: 'Remove notes.txt' }).click();
    await chip(a.page, 'notes.txt').waitFor({ state: 'detached' });
    await a.page.getByRole('textbox', { name: 'Message' }).fill('the report');
    await a.page.keyboard.press('Enter');
    const sent = message(a.page, 'alice', 'the report (file: big.bin)');
    await sent.waitFor();
    await sent.getByRole('group', { name: 'big.bin, 3.0 MiB' }).waitFor();
    expect(await a.page.getByRole('list', { name: 'Attachments' }).count()).toBe(0);
    const files = await newestFiles(alice, general);
    expect(files.map((f) => [f.name, f.size])).toEqual([['big.bin', big.length]]);

    // An image pasted into the composer: sent alone, without text; its size and preview made by
    // the browser went with it.
    await throttle({});
    const image = await png(a.page, 640, 480, 'image.png');
    await paste(a.page, image);
    await a.page.getByRole('listitem', { name: 'image.png, ready to send' }).waitFor();
    expect(await a.page.getByRole('textbox', { name: 'Message' }).inputValue()).toBe('');
    await a.page.getByRole('button', { name: 'Send' }).click();
    await message(a.page, 'alice', '(file: image.png)').waitFor();
    const [pasted] = await newestFiles(alice, general);
    expect(pasted).toMatchObject({
      name: 'image.png',
      type: 'image/png',
      size: image.buffer.length,
    });
    expect(pasted!.image).toMatchObject({ width: 640, height: 480 });
    expect(pasted!.image!.preview).toMatch(/^data:image\/(webp|jpeg);base64,/);
    expect(pasted!.image!.preview!.length).toBeLessThanOrEqual(2048);
    expect(a.errors).toEqual([]);
  });

  it('drag and drop: a drop zone while files are held over the channel, and the dropped files attached', async () => {
    const { alice } = await setup();
    const a = await openPage(alice.uiUrl);
    await openGeneral(a.page, 'Your channels');
    const zone = a.page.getByText('Drop files to attach them to #general');
    const drag = (type: string) =>
      log(a.page).evaluate((el, type) => {
        const dt = new DataTransfer();
        dt.items.add(new File(['dropped bytes'], 'dropped.txt', { type: 'text/plain' }));
        el.dispatchEvent(
          new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }),
        );
      }, type);
    await drag('dragenter');
    await zone.waitFor();
    expect(await seriousViolations(a.page)).toEqual([]);
    await snap(a.page, 'drop-zone');
    await drag('dragleave');
    await zone.waitFor({ state: 'detached' });
    await drag('dragenter');
    await drag('dragover');
    await drag('drop');
    await zone.waitFor({ state: 'detached' });
    await a.page.getByRole('listitem', { name: 'dropped.txt, ready to send' }).waitFor();
    await a.page.getByRole('button', { name: 'Send' }).click();
    await message(a.page, 'alice', '(file: dropped.txt)').waitFor();
    expect(a.errors).toEqual([]);
  });

  it('an image shows inline, its preview first in a box that does not move, then the image; it opens full size', async () => {
    const { alice, bob } = await setup();
    const a = await openPage(alice.uiUrl);
    const b = await openPage(bob.uiUrl);
    await openGeneral(a.page, 'Your channels');
    // bob's page gets no file bytes until the test lets them through: the preview must show.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    await b.page.route(/\/api\/channels\/[^/]+\/files\/[^/?]+(\?key=[^&]+)?$/, async (route) => {
      await held;
      await route.continue();
    });
    await openGeneral(b.page);

    await attachByButton(a.page, [await png(a.page, 640, 480)]);
    await a.page.getByRole('listitem', { name: 'photo.png, ready to send' }).waitFor();
    await a.page.getByRole('textbox', { name: 'Message' }).fill('a picture');
    await a.page.keyboard.press('Enter');

    const onB = message(b.page, 'alice', 'a picture (file: photo.png)');
    const open = onB.getByRole('button', { name: 'Open photo.png full size' });
    await open.waitFor();
    const preview = open.locator('img.image-preview');
    const full = open.locator('img.image-full');
    expect(await preview.getAttribute('src')).toMatch(/^data:image\/(webp|jpeg);base64,/);
    await waitFor(() =>
      preview.evaluate((i: HTMLImageElement) => i.complete && i.naturalWidth > 0),
    );
    expect(await full.evaluate((i: HTMLImageElement) => i.naturalWidth)).toBe(0);
    // 640×480 in a box of at most 400×300: 400×300, the image's shape before it is loaded.
    const before = (await open.boundingBox())!;
    expect(Math.round(before.width)).toBe(400);
    expect(Math.round(before.height)).toBe(300);
    expect(await seriousViolations(b.page)).toEqual([]);
    await snap(b.page, 'image-preview');
    keep('image-preview');

    release();
    await waitFor(() => full.evaluate((i: HTMLImageElement) => i.complete && i.naturalWidth > 0));
    expect(await full.evaluate((i: HTMLImageElement) => i.naturalWidth)).toBe(640);
    await preview.waitFor({ state: 'detached' });
    const after = (await open.boundingBox())!;
    expect([after.width, after.height]).toEqual([before.width, before.height]); // no jump
    await b.page.mouse.move(0, 0);
    await snap(b.page, 'image-inline');
    keep('image-inline');

    // Full size in a dialog; Escape closes it and the focus goes back to the image.
    await open.click();
    const dialog = b.page.getByRole('dialog', { name: 'photo.png' });
    await dialog.waitFor();
    const big = dialog.getByRole('img', { name: 'photo.png' });
    await waitFor(() => big.evaluate((i: HTMLImageElement) => i.complete && i.naturalWidth > 0));
    expect(await big.evaluate((i: HTMLImageElement) => [i.naturalWidth, i.naturalHeight])).toEqual([
      640, 480,
    ]);
    expect(await seriousViolations(b.page)).toEqual([]);
    await snap(b.page, 'image-viewer');
    await b.page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect(await open.evaluate((e) => e === document.activeElement)).toBe(true);

    // alice sees it inline too.
    const onA = message(a.page, 'alice', 'a picture');
    const fullA = onA.locator('img.image-full');
    await waitFor(() => fullA.evaluate((i: HTMLImageElement) => i.complete && i.naturalWidth > 0));
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });

  it('bob downloads what alice attached, with progress, and gets the same bytes', async () => {
    const { alice, bob, general } = await setup();
    const a = await openPage(alice.uiUrl);
    const b = await openPage(bob.uiUrl);
    await openGeneral(a.page, 'Your channels');
    await openGeneral(b.page);
    const bytes = crypto.randomBytes(4 * 1024 * 1024 + 123);
    await attachByButton(a.page, [
      { name: 'data set.bin', mimeType: 'application/octet-stream', buffer: bytes },
    ]);
    await a.page.getByRole('listitem', { name: 'data set.bin, ready to send' }).waitFor();
    await a.page.getByRole('textbox', { name: 'Message' }).fill('the data');
    await a.page.keyboard.press('Enter');

    const card = message(b.page, 'alice', 'the data').getByRole('group', {
      name: 'data set.bin, 4.0 MiB',
    });
    await card.waitFor();
    // bob's peer fetches it only when he opens it: the card says so, from the message's state.
    await card.getByText('Not on this device yet').waitFor();
    expect(await seriousViolations(b.page)).toEqual([]);
    await snap(b.page, 'file-card');
    keep('file-card');
    // Downloads slowed to 8 MiB/s, so the 4 MiB show their progress.
    await (
      await throttler(b.page)
    )({ download: 8 * 1024 * 1024 });
    const seen = await recordProgress(b.page, '.download progress');
    const saved = b.page.waitForEvent('download');
    await card.getByRole('button', { name: 'Download data set.bin' }).click();
    const d = await saved;
    expect(d.suggestedFilename()).toBe('data set.bin');
    const got = fs.readFileSync((await d.path())!);
    expect(got.equals(bytes)).toBe(true);
    expect((await seen()).some((x) => x > 0 && x < 1)).toBe(true);
    await card.getByRole('progressbar').waitFor({ state: 'detached' });
    // bob's peer holds it now, and the card heard it (the `file` event).
    const [f] = await newestFiles(bob, general);
    const status = (await bob.call('GET', `${f!.url}/status`)).body;
    expect(status).toMatchObject({ state: 'complete', have: bytes.length });
    await card.getByText('Not on this device yet').waitFor({ state: 'detached' });
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });

  it('an SVG and an HTML file with a script run nothing, opened or framed from the page', async () => {
    const { alice, bob, general } = await setup();
    const a = await openPage(alice.uiUrl);
    const b = await openPage(bob.uiUrl);
    await openGeneral(a.page, 'Your channels');
    await openGeneral(b.page);
    // What the script would do: set a global, mark the DOM (its own and its parent's), log.
    const evil =
      "window.pwned=1;document.title='pwned';" +
      "try{parent.pwned=1;parent.document.body.dataset.pwned='1'}catch(e){}" +
      "try{opener.pwned=1}catch(e){}console.log('pwned')";
    const svg =
      `<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40" onload="${evil}">` +
      `<script>${evil}</script><rect width="40" height="40" fill="red"/></svg>`;
    const html = `<!doctype html><title>evil</title><p>evil</p><script>${evil}</script>`;
    await attachByButton(a.page, [
      { name: 'evil.svg', mimeType: 'image/svg+xml', buffer: Buffer.from(svg) },
      { name: 'evil.html', mimeType: 'text/html', buffer: Buffer.from(html) },
    ]);
    await a.page.getByRole('listitem', { name: 'evil.svg, ready to send' }).waitFor();
    await a.page.getByRole('listitem', { name: 'evil.html, ready to send' }).waitFor();
    await a.page.getByRole('textbox', { name: 'Message' }).fill('careful');
    await a.page.keyboard.press('Enter');

    // Shown as cards, never inline (an SVG is not drawn by the page).
    const onB = message(b.page, 'alice', 'careful');
    await onB.getByRole('group', { name: /^evil\.svg, / }).waitFor();
    await onB.getByRole('group', { name: /^evil\.html, / }).waitFor();
    expect(await onB.getByRole('button', { name: /full size/ }).count()).toBe(0);
    expect(await onB.locator('img').count()).toBe(0);

    const files = await newestFiles(bob, general);
    expect(files.map((f) => f.name).sort()).toEqual(['evil.html', 'evil.svg']);
    const logged: string[] = [];
    b.page.on('console', (m) => logged.push(m.text()));
    for (const f of files) {
      // The headers that keep it from running (README "Files").
      const res = await fetch(new URL(f.url, bob.uiUrl), { headers: authHeaders(bob.uiUrl) });
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('content-security-policy')).toMatch(/\bsandbox\b/);
      expect(res.headers.get('content-disposition')).toMatch(/^attachment/);
      expect(Buffer.from(await res.arrayBuffer()).toString()).toBe(
        f.name.endsWith('.svg') ? svg : html,
      );

      // Opened in a tab of bob's browser (it downloads, or shows without running anything).
      const tab = await b.page.context().newPage();
      tab.on('console', (m) => logged.push(m.text()));
      await tab.goto(withUrlKey(bob.uiUrl, f.url)).catch(() => undefined);
      await tab.waitForLoadState('load');
      expect(await tab.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBe(
        undefined,
      );
      expect(await tab.title()).not.toBe('pwned');
      await tab.close();

      // Framed and embedded in the app's own page: nothing reaches it.
      await b.page.evaluate(
        async (url) => {
          const loaded = (el: HTMLElement) =>
            new Promise<void>((resolve) => {
              el.addEventListener('load', () => resolve(), { once: true });
              el.addEventListener('error', () => resolve(), { once: true });
              setTimeout(resolve, 2000); // a frame that downloads fires neither
              document.body.append(el);
            });
          const frame = document.createElement('iframe');
          frame.src = url;
          frame.title = 'framed file';
          const object = document.createElement('object');
          object.data = url;
          await Promise.all([loaded(frame), loaded(object)]);
          frame.remove();
          object.remove();
        },
        withUrlKey(bob.uiUrl, f.url),
      );
    }
    expect(await b.page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBe(
      undefined,
    );
    expect(await b.page.evaluate(() => document.body.dataset.pwned)).toBe(undefined);
    expect(await b.page.title()).not.toBe('pwned');
    expect(logged.filter((t) => /pwned/.test(t))).toEqual([]);
    expect(a.errors).toEqual([]);
    // Only the browser's own notes that it refused to run a sandboxed script, if any.
    expect(b.errors.filter((e) => !/sandbox|Content Security Policy/i.test(e))).toEqual([]);
  });

  it('a refused upload says why, and Send waits until it is removed', async () => {
    const { alice } = await setup();
    const a = await openPage(alice.uiUrl);
    await openGeneral(a.page, 'Your channels');
    await attachByButton(a.page, [
      {
        name: 'huge.bin',
        mimeType: 'application/octet-stream',
        buffer: Buffer.alloc(FILE_LIMITS.maxFileBytes + 1),
      },
    ]);
    const failed = chip(a.page, 'huge.bin');
    await failed.getByRole('alert').waitFor();
    // The API's own message, as it said it.
    expect(await failed.getByRole('alert').textContent()).toBe(
      'Not sent: files are at most 25 MiB',
    );
    await a.page.getByRole('textbox', { name: 'Message' }).fill('with a failed file');
    expect(await a.page.getByRole('button', { name: 'Send' }).isDisabled()).toBe(true);
    expect(await seriousViolations(a.page)).toEqual([]);
    await failed.getByRole('button', { name: 'Remove huge.bin' }).click();
    await a.page.getByRole('button', { name: 'Send' }).click();
    await message(a.page, 'alice', 'with a failed file').waitFor();
    // The refusal itself is the only error the page saw.
    expect(a.errors.filter((e) => !/413/.test(e))).toEqual([]);
  });
});
