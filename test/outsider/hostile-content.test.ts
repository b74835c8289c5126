// A hostile co-member against the web UI of another member (README "Formatting", "Replies,
// reactions…", "Files and images"; docs/SECURITY.md "Message text in the web UI"). Written from
// the docs and the test helpers only. Each test asserts the documented promise: it fails when
// the hostile content gets through.
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createTestnet, rawSession, signIn, waitFor, type TestPeer } from '../testnet.js';
import { openPage } from '../browser.js';
import { sign } from '../hostile/kit.js';
import { composerReachable, longTasks, watchLongTasks } from '../page-health.js';

async function setup() {
  const net = await createTestnet();
  const mallory = await net.addPeer('mallory');
  const victim = await net.addPeer('victim');
  await signIn(mallory, 'mallory');
  await signIn(victim, 'victim');
  const ch = (await mallory.call('POST', '/api/channels', { name: 'general', allowVisitors: true }))
    .body;
  expect((await victim.call('POST', `/api/channels/${ch.id}/join`)).status).toBe(200);
  return { net, mallory, victim, ch };
}

async function post(p: TestPeer, channelId: string, text: string, extra: object = {}) {
  const r = await p.call('POST', `/api/channels/${channelId}/messages`, { text, ...extra });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id as string;
}

/** The victim's page, in `channelId`, with a long-task recorder installed. */
async function victimPage(victim: TestPeer, name: string, waitText: string) {
  const { page, errors, live } = await openPage(victim.uiUrl);
  await live;
  await page.getByText(name).first().click();
  await page.locator('article', { hasText: waitText }).first().waitFor();
  await watchLongTasks(page);
  return { page, errors };
}

/** What no message may produce in the page (SECURITY.md "Message text in the web UI"). */
async function injected(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const bad: string[] = [];
    for (const el of document.querySelectorAll('main *')) {
      for (const a of el.getAttributeNames())
        if (a.startsWith('on')) bad.push(`${el.tagName} ${a}`);
      if (
        /^(SCRIPT|IFRAME|OBJECT|EMBED|FORM|STYLE|SVG|IMG|VIDEO|AUDIO|DETAILS)$/i.test(el.tagName)
      ) {
        if (el.closest('article .text, .pane-head, .reactions, .reply, [class*=reply]'))
          bad.push(el.tagName);
      }
      const href = el.getAttribute('href');
      if (href && el.closest('article') && !/^(https?:|mailto:)/i.test(href))
        bad.push(`href ${href}`);
    }
    if ((window as unknown as { __x?: unknown }).__x !== undefined) bad.push('window.__x set');
    return bad;
  });
}

describe('hostile content in the web UI (outsider)', () => {
  it('markdown yields only the listed elements: a thematic break (a fake divider line) is not one of them', async () => {
    const { mallory, victim, ch } = await setup();
    await post(mallory, ch.id, 'first line');
    await post(mallory, ch.id, '***\n\nNew messages\n\n***');
    const edited = await post(mallory, ch.id, 'to be edited');
    const { page, errors } = await victimPage(victim, 'general', 'New messages');
    // An edit carries hostile markdown too (SECURITY.md: the same renderer).
    await mallory.call('PATCH', `/api/channels/${ch.id}/messages/${edited}`, {
      text: '[x](javascript:window.__x=1) <img src=x onerror="window.__x=1"> [^1]\n\n[^1]: [y](#main)',
    });
    await page.locator('article', { hasText: 'onerror' }).waitFor();
    const tags = await page
      .locator('article .text *')
      .evaluateAll((els) => [...new Set(els.map((e) => e.tagName.toLowerCase()))]);
    // "only a fixed list of elements is produced (paragraphs, emphasis, code, quotes, lists,
    // tables, links)"; strike is documented in README's Formatting.
    const allowed =
      /^(p|em|strong|del|code|pre|blockquote|ul|ol|li|table|thead|tbody|tr|th|td|a|span|br)$/;
    expect(tags.filter((t) => !allowed.test(t))).toEqual([]);
    expect(await injected(page)).toEqual([]);
    expect(await page.locator('article .text [id]').count()).toBe(0);
    expect(errors).toEqual([]);
  });

  it('a reply whose target is a message of another channel previews nothing of it, and clicking its quote breaks nothing', async () => {
    const { net, mallory, victim, ch } = await setup();
    const other = (
      await victim.call('POST', '/api/channels', { name: 'elsewhere', allowVisitors: false })
    ).body;
    await victim.call('POST', `/api/channels/${other.id}/join`);
    const foreign = await post(victim, other.id, 'SECRET of the other channel');
    await post(mallory, ch.id, 'before the replies');
    const link = await net.rawLink();
    const s = await rawSession(link, { username: 'mallory', password: 'mallory-pw' });
    const m1 = sign(s, {
      channelId: ch.id,
      text: 'REPLY-X quoting another channel',
      replyTo: foreign,
    });
    await link.request('post', { message: m1 });
    const m2 = sign(s, {
      channelId: ch.id,
      ts: Date.now() + 1,
      text: 'REPLY-Y quoting nothing',
      replyTo: '01a24160-0bbf-8c7e-be26-d8d9ff65348f',
    });
    await link.request('post', { message: m2 });
    await waitFor(async () => {
      const r = await victim.call('GET', `/api/channels/${ch.id}/messages`);
      return r.body.messages.some((m: any) => m.text === 'REPLY-Y quoting nothing');
    });
    // README: replyTo previews the message answered "when this peer holds it in the same channel,
    // else only its id".
    const api = await victim.call('GET', `/api/channels/${ch.id}/messages`);
    const r1 = api.body.messages.find((m: any) => m.id === m1.id);
    expect(r1.replyTo?.text).toBeUndefined();
    const { page, errors } = await victimPage(victim, 'general', 'REPLY-Y');
    const x = page.locator('article', { hasText: 'REPLY-X' });
    expect(await x.innerText()).not.toContain('SECRET');
    for (const mark of ['REPLY-X', 'REPLY-Y']) {
      const art = page.locator('article', { hasText: mark });
      const quote = art.locator('[class*=reply], [class*=quote]').first();
      if (await quote.count()) await quote.click();
      await page.waitForTimeout(500);
      expect(await page.locator('article', { hasText: 'SECRET' }).count(), mark).toBe(0);
    }
    expect(await composerReachable(page)).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('odd reaction strings stay text and a flood of reactions freezes nothing and keeps Send reachable', async () => {
    const { mallory, victim, ch } = await setup();
    const target = await post(mallory, ch.id, 'react to me');
    const { page, errors } = await victimPage(victim, 'general', 'react to me');
    const odd = [
      '\u202Eevil',
      'a' + '\u030d'.repeat(31),
      '<img/src=x/onerror=__x=1>',
      'javascript:__x=1',
      '@victim',
      '\u200b',
    ];
    const put = (e: string) =>
      mallory.call(
        'PUT',
        `/api/channels/${ch.id}/messages/${target}/reactions/${encodeURIComponent(e)}`,
      );
    for (const e of odd) {
      const r = await put(e);
      expect(r.status, `${JSON.stringify(e)} ${JSON.stringify(r.body)}`).toBeLessThan(300);
    }
    // A flood: 400 distinct reactions on one message (within postBurst 500).
    const flood = Array.from({ length: 400 }, (_, i) => `r${i}`);
    for (let i = 0; i < flood.length; i += 20) await Promise.all(flood.slice(i, i + 20).map(put));
    await waitFor(
      () => page.locator('article', { hasText: 'react to me' }).getByText('r399').count(),
      20_000,
      'the last reaction on the page',
    );
    expect(await injected(page)).toEqual([]);
    expect(await longTasks(page)).toEqual([]);
    expect(await composerReachable(page)).toEqual([]);
    expect(errors).toEqual([]);
  });

  for (const [what, text] of [
    ['quotes', '>'.repeat(3990) + ' deep'],
    ['lists', '- '.repeat(1990) + 'deep'],
    ['ordered lists', '1. '.repeat(1300) + 'deep'],
  ] as const)
    it(`one message of deeply nested ${what} neither throws nor blanks the channel for its readers`, async () => {
      const { mallory, victim, ch } = await setup();
      await post(mallory, ch.id, 'calm before');
      const { page, errors } = await victimPage(victim, 'general', 'calm before');
      await post(mallory, ch.id, text);
      await post(mallory, ch.id, 'calm after');
      const shown = await page
        .locator('article', { hasText: 'calm after' })
        .waitFor({ timeout: 5000 })
        .then(
          () => true,
          () => false,
        );
      expect.soft(errors, 'the page threw').toEqual([]);
      expect.soft(shown, 'the message after it is shown').toBe(true);
      expect.soft(await page.locator('article', { hasText: 'calm before' }).count()).toBe(1);
      expect.soft(await composerReachable(page)).toEqual([]);
      // A member who opens the page afterwards (or reloads it) meets the same message.
      const again = await openPage(victim.uiUrl);
      await again.live;
      await again.page.getByText('general').first().click();
      const reopened = await again.page
        .locator('article', { hasText: 'calm after' })
        .waitFor({ timeout: 5000 })
        .then(
          () => true,
          () => false,
        );
      expect.soft(reopened, 'a fresh page shows the channel').toBe(true);
      expect.soft(again.errors, 'a fresh page threw').toEqual([]);
    });

  it('pathological markdown (deep lists, emphasis runs, huge tables, unbroken words) neither throws, freezes nor hides the composer', async () => {
    const { mallory, victim, ch } = await setup();
    await post(mallory, ch.id, 'calm before');
    const { page, errors } = await victimPage(victim, 'general', 'calm before');
    const payloads = [
      '*'.repeat(1000) + 'a' + '_'.repeat(1000) + '['.repeat(1000) + '`'.repeat(900),
      '|a'.repeat(700) + '|\n' + '|-'.repeat(700) + '|',
      'W'.repeat(4000),
      'https://x.example/' + 'a'.repeat(3900),
      ':smile:'.repeat(570),
    ];
    for (const [i, p] of payloads.entries()) {
      await post(mallory, ch.id, p);
      await post(mallory, ch.id, `calm ${i}`);
      const ok = await page
        .locator('article', { hasText: `calm ${i}` })
        .waitFor({ timeout: 5000 })
        .then(
          () => true,
          () => false,
        );
      expect(ok, `calm ${i} shown`).toBe(true);
    }
    expect(errors).toEqual([]);
    expect(await longTasks(page)).toEqual([]);
    expect(await composerReachable(page)).toEqual([]);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
    expect(wide, 'page wider than the window').toBeLessThanOrEqual(0);
  });

  it('a combining-mark stack draws nothing over the rows around it', async () => {
    const { mallory, victim, ch } = await setup();
    await post(mallory, ch.id, 'row above the stack');
    await post(mallory, ch.id, 'second row above');
    const { page, errors } = await victimPage(victim, 'general', 'second row above');
    const above = page.locator('article', { hasText: 'row above the stack' });
    const box = (await above.boundingBox())!;
    const before = await page.screenshot({ clip: box });
    await post(
      mallory,
      ch.id,
      ('Z' + '\u030d\u030e\u0304\u0305\u033f\u0311\u0306'.repeat(40)).repeat(13),
    );
    await page.waitForTimeout(800);
    const box2 = (await above.boundingBox())!;
    const after = await page.screenshot({ clip: box2 });
    expect(after.equals(before), 'the row above was drawn over').toBe(true);
    expect(await composerReachable(page)).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('attachments with hostile names, types and declared sizes run nothing and keep the page usable', async () => {
    const { mallory, victim, ch } = await setup();
    await post(mallory, ch.id, 'files follow');
    const { page, errors } = await victimPage(victim, 'general', 'files follow');
    const up = async (name: string, type: string, body: Buffer | string, q = '') => {
      const res = await fetch(
        new URL(`/api/channels/${ch.id}/files?name=${encodeURIComponent(name)}${q}`, mallory.uiUrl),
        {
          method: 'POST',
          headers: {
            authorization: `Bearer ${new URL(mallory.uiUrl).searchParams.get('token')}`,
            'content-type': type,
          },
          body: typeof body === 'string' ? body : new Uint8Array(body),
        },
      );
      const b = await res.json();
      expect(res.status, JSON.stringify(b)).toBe(201);
      return b.id as string;
    };
    // 1×1 PNG
    const png = Buffer.from(
      'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
      'base64',
    );
    const ids = [
      await up(
        '<img src=x onerror="window.__x=1">.html',
        'text/html',
        '<script>window.__x=1</script>',
      ),
      await up('invoice\u202Efdp.exe', 'application/octet-stream', 'MZ'),
      await up('tall.png', 'image/png', png, '&width=1&height=65535'),
      await up('wide.png', 'image/png', png, '&width=65535&height=1'),
      await up(
        'svg.svg',
        'image/svg+xml',
        '<svg xmlns="http://www.w3.org/2000/svg" onload="window.__x=1"/>',
        '&width=10&height=10',
      ),
    ];
    await post(mallory, ch.id, 'here they are', { files: ids });
    await post(mallory, ch.id, 'after files');
    await page.locator('article', { hasText: 'after files' }).waitFor();
    await page.waitForTimeout(1000);
    expect(await page.locator('main script, main iframe, main object, main embed').count()).toBe(0);
    expect((await injected(page)).filter((b) => !/^IMG$/.test(b))).toEqual([]);
    expect(await composerReachable(page)).toEqual([]);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
    expect(wide, 'page wider than the window').toBeLessThanOrEqual(0);
    expect(await longTasks(page)).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('a channel name and topic set by its hostile owner stay text', async () => {
    const { mallory, victim, ch } = await setup();
    await post(mallory, ch.id, 'topic soon');
    const { page, errors } = await victimPage(victim, 'general', 'topic soon');
    const r = await mallory.call('PATCH', `/api/channels/${ch.id}`, {
      name: '<img src=x onerror=__x=1>',
      topic: '[t](javascript:window.__x=1) <img src=x onerror="window.__x=1"> **b**',
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    await page.getByText('<img src=x onerror=__x=1>').first().waitFor();
    await page.waitForTimeout(500);
    expect(await page.locator('img').count()).toBe(0);
    expect(
      await page.evaluate(() =>
        [...document.querySelectorAll('a[href]')]
          .map((a) => a.getAttribute('href'))
          .filter((h) => /^\s*javascript/i.test(h!)),
      ),
    ).toEqual([]);
    expect(await injected(page)).toEqual([]);
    expect(errors).toEqual([]);
  });
});
