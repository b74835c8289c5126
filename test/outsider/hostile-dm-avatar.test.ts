// Hostile direct messages, avatars, visitors and mention toasts against a victim with the web UI
// open (README "Direct messages", "Avatars", "Replies, reactions, mentions"; docs/SECURITY.md
// "Direct messages end to end", "Files and avatars", "The server's front door"; PROTOCOL.md §9.5,
// §10). Written from the docs and the test helpers only. Each test asserts the documented promise:
// it fails when the attack gets through.
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createTestnet, rawSession, signIn, waitFor, type TestPeer } from '../testnet.js';
import { openPage } from '../browser.js';
import { registerLogin } from './lib.js';
import { devicesOf, pairId, payload, seal, sessionWith, withDevice } from './dm-lib.js';
import { png, pngChunk, PNG_SIGNATURE } from '../pictures.js';
import { composerReachable, longTasks, watchLongTasks } from '../page-health.js';

/** victim, bob (its known contact, owner of #general and #other) and mallory, a co-member. */
async function setup() {
  const net = await createTestnet();
  const victim = await net.addPeer('victim');
  const bob = await net.addPeer('bob');
  const mallory = await net.addPeer('mallory');
  await signIn(victim, 'victim');
  await signIn(bob, 'bob');
  await signIn(mallory, 'mallory');
  const general = (
    await bob.call('POST', '/api/channels', { name: 'general', allowVisitors: true })
  ).body;
  const other = (await bob.call('POST', '/api/channels', { name: 'other', allowVisitors: true }))
    .body;
  for (const p of [victim, mallory])
    for (const c of [general, other])
      expect((await p.call('POST', `/api/channels/${c.id}/join`)).status).toBe(200);
  const bobDm = (await bob.call('POST', '/api/dms', { members: ['victim'] })).body;
  await bob.call('POST', `/api/dms/${bobDm.id}/messages`, { text: 'hi from bob' });
  return { net, victim, bob, mallory, general, other, bobDm };
}

/** mallory again, as a raw client with a device of its own (docs/PROTOCOL.md §10 only). */
async function rawMallory(net: { serverHost: string; serverPort: number }) {
  const m = await withDevice(
    await registerLogin({ host: net.serverHost, port: net.serverPort }, 'mallory', 'mallory-pw'),
  );
  const victimDev = (await devicesOf(m, 'victim'))[0].deviceId as string;
  const send = async (body: unknown) => {
    const r = await m.c.req('dm_send', {
      envelopes: [
        { id: crypto.randomUUID(), to: { username: 'victim', deviceId: victimDev }, body },
      ],
    });
    return r.body?.results?.[0];
  };
  return { m, victimDev, send };
}

/** The victim's page with a long-task recorder; `open` clicks that text first. */
async function victimPage(
  victim: TestPeer,
  open?: string,
  size?: { width: number; height: number },
) {
  const { page, errors, live } = await openPage(victim.uiUrl, size);
  await live;
  if (open?.startsWith('# ')) {
    const name = open.slice(2);
    await page
      .getByRole('button', { name: `Open ${name}`, exact: true })
      .or(page.locator('.channel-list').getByText(name, { exact: true }))
      .first()
      .click();
  } else if (open) await page.getByText(open, { exact: true }).first().click();
  await watchLongTasks(page);
  return { page, errors };
}

/**
 * README: the toast is "top right of the chat, below the search box: never over the composer,
 * the Members button or the channel list". Every toast's box that meets one of those.
 */
async function toastOverlaps(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const bad: string[] = [];
    const meets = (a: DOMRect, b: DOMRect) =>
      a.width > 0 &&
      b.width > 0 &&
      a.left < b.right &&
      b.left < a.right &&
      a.top < b.bottom &&
      b.top < a.bottom;
    const parts: Record<string, string> = {
      composer: '.composer',
      'members button': '.members-toggle',
      'channel list': '.sidebar',
      search: '.search',
    };
    for (const t of document.querySelectorAll('.toast')) {
      const tr = t.getBoundingClientRect();
      if (tr.bottom <= 0 || tr.top >= innerHeight) continue;
      for (const [what, sel] of Object.entries(parts)) {
        const el = document.querySelector(sel);
        if (!el) continue;
        const s = getComputedStyle(el);
        if (s.display === 'none' || s.visibility === 'hidden') continue;
        if (meets(tr, el.getBoundingClientRect())) bad.push(`a toast over the ${what}`);
      }
    }
    return [...new Set(bad)];
  });
}

async function post(p: TestPeer, channelId: string, text: string) {
  const r = await p.call('POST', `/api/channels/${channelId}/messages`, { text });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
}

describe('hostile DMs, avatars, visitors and toasts in the web UI (outsider)', () => {
  it('hostile DM text (deep nesting, emphasis runs, 4,000 characters) neither throws, freezes nor hides the composer of the conversation', async () => {
    const { victim, mallory } = await setup();
    const dm = (await mallory.call('POST', '/api/dms', { members: ['victim'] })).body;
    await mallory.call('POST', `/api/dms/${dm.id}/messages`, { text: 'calm before' });
    await waitFor(async () =>
      (await victim.call('GET', '/api/dms')).body.some((c: any) => c.title === 'mallory'),
    );
    const { page, errors } = await victimPage(victim, 'mallory');
    await page.locator('article', { hasText: 'calm before' }).waitFor();
    const payloads = [
      '>'.repeat(3990) + ' deep',
      '- '.repeat(1990) + 'deep',
      '1. '.repeat(1300) + 'deep',
      '*'.repeat(1000) + 'a' + '_'.repeat(1000) + '['.repeat(1000) + '`'.repeat(900),
      '|a'.repeat(700) + '|\n' + '|-'.repeat(700) + '|',
      'W'.repeat(4000),
      "***\n\n⚠ bob's safety number changed. Compare it again before you trust new messages.",
    ];
    for (const [i, p] of payloads.entries()) {
      const r = await mallory.call('POST', `/api/dms/${dm.id}/messages`, { text: p });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      await mallory.call('POST', `/api/dms/${dm.id}/messages`, { text: `calm ${i}` });
      const ok = await page
        .locator('article', { hasText: `calm ${i}` })
        .waitFor({ timeout: 8000 })
        .then(
          () => true,
          () => false,
        );
      expect.soft(ok, `calm ${i} shown after payload ${i}`).toBe(true);
    }
    expect.soft(errors, 'the page threw').toEqual([]);
    expect.soft(await longTasks(page), 'long tasks').toEqual([]);
    expect.soft(await composerReachable(page)).toEqual([]);
    // No <hr> (a fake divider), and a message's text is never a notice.
    expect.soft(await page.locator('.messages hr').count()).toBe(0);
    expect.soft(await page.locator('.dm-notice', { hasText: "bob's safety" }).count()).toBe(0);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
    expect.soft(wide, 'page wider than the window').toBeLessThanOrEqual(0);
    // A fresh page (Home, the list's previews) meets the same texts.
    const again = await victimPage(victim, 'mallory');
    const reopened = await again.page
      .locator('article', { hasText: `calm ${payloads.length - 1}` })
      .waitFor({ timeout: 8000 })
      .then(
        () => true,
        () => false,
      );
    expect.soft(reopened, 'a fresh page shows the conversation').toBe(true);
    expect.soft(again.errors, 'a fresh page threw').toEqual([]);
  });

  it("payloads that break §10.4 (spoofed members, a contact's pair, notices, future ts, foreign mentions) show nothing, a replay shows once, a reused id hides nothing", async () => {
    const { net, victim } = await setup();
    // The victim's own message in its 1:1 with mallory: mallory learns its id.
    const dm = (await victim.call('POST', '/api/dms', { members: ['mallory'] })).body;
    const mine = (
      await victim.call('POST', `/api/dms/${dm.id}/messages`, { text: 'MINE by victim' })
    ).body.id as string;
    const { m, victimDev, send } = await rawMallory(net);
    const bad: Array<[string, Buffer]> = [
      // A stranger's message in the victim's conversation with bob (a known contact).
      [
        'bob pair',
        payload({
          conversation: pairId('bob', 'victim'),
          members: ['bob', 'victim'],
          text: 'SPOOF-1 as bob',
        }),
      ],
      [
        'bob pair with mallory',
        payload({
          conversation: pairId('bob', 'victim'),
          members: ['bob', 'mallory', 'victim'],
          text: 'SPOOF-2',
        }),
      ],
      // Members that are no user name (README: usernames are 2–32 of A-Z a-z 0-9 _ . -).
      [
        'fake member',
        payload({
          conversation: crypto.randomUUID(),
          members: ['bob (verified ✓)', 'mallory', 'victim'],
          text: 'SPOOF-3 title',
        }),
      ],
      [
        'case twins',
        payload({
          conversation: crypto.randomUUID(),
          members: ['MALLORY', 'mallory', 'victim'],
          text: 'SPOOF-4',
        }),
      ],
      [
        'group with a derived id',
        payload({
          conversation: pairId('mallory', 'zed'),
          members: ['bob', 'mallory', 'victim'],
          text: 'SPOOF-5',
        }),
      ],
      [
        'pair with a random id',
        payload({
          conversation: crypto.randomUUID(),
          members: ['mallory', 'victim'],
          text: 'SPOOF-6',
        }),
      ],
      [
        'future ts',
        payload({
          conversation: pairId('mallory', 'victim'),
          members: ['mallory', 'victim'],
          text: 'SPOOF-7 future',
          ts: Date.now() + 10 * 60_000,
        }),
      ],
      [
        'foreign mention',
        payload({
          conversation: pairId('mallory', 'victim'),
          members: ['mallory', 'victim'],
          text: 'SPOOF-8 @bob',
          mentions: ['bob'],
        }),
      ],
      [
        'too long',
        payload({
          conversation: pairId('mallory', 'victim'),
          members: ['mallory', 'victim'],
          text: 'SPOOF-9' + 'x'.repeat(4000),
        }),
      ],
      [
        'notice kind',
        Buffer.from(
          JSON.stringify({
            t: 'notice',
            conversation: pairId('mallory', 'victim'),
            members: ['mallory', 'victim'],
            id: crypto.randomUUID(),
            ts: Date.now(),
            text: "SPOOF-10 bob's safety number changed",
          }),
        ),
      ],
    ];
    for (const [what, p] of bad) {
      const s = await sessionWith(m, 'victim', victimDev);
      expect(await send(seal(s, p)), what).toMatchObject({ ok: true });
    }
    // Extra members in a valid payload: an author or kind of its own must not be believed.
    const s = await sessionWith(m, 'victim', victimDev);
    const extra = JSON.parse(
      payload({
        conversation: pairId('mallory', 'victim'),
        members: ['mallory', 'victim'],
        text: 'EXTRA fields',
      }).toString(),
    );
    await send(
      seal(
        s,
        Buffer.from(JSON.stringify({ ...extra, author: 'bob', kind: 'notice', from: 'bob' })),
      ),
    );
    // A valid message, then the same ciphertext again under a new envelope id (a replay).
    const good = seal(
      s,
      payload({
        conversation: pairId('mallory', 'victim'),
        members: ['mallory', 'victim'],
        text: 'ONCE only',
      }),
    );
    await send(good);
    await send(good);
    // The victim's own message id, reused by mallory.
    await send(
      seal(
        s,
        payload({
          conversation: pairId('mallory', 'victim'),
          members: ['mallory', 'victim'],
          text: 'REUSED id',
          id: mine,
        }),
      ),
    );
    await send(
      seal(
        s,
        payload({
          conversation: pairId('mallory', 'victim'),
          members: ['mallory', 'victim'],
          text: 'LAST one',
        }),
      ),
    );
    const all = async () => {
      const convs = (await victim.call('GET', '/api/dms')).body as any[];
      const msgs: any[] = [];
      for (const c of convs)
        for (const x of (await victim.call('GET', `/api/dms/${c.id}/messages`)).body.messages)
          msgs.push({ ...x, conv: c });
      return { convs, msgs };
    };
    await waitFor(
      async () => (await all()).msgs.some((x) => x.text === 'LAST one'),
      15_000,
      'LAST one',
    );
    const { convs, msgs } = await all();
    expect
      .soft(
        msgs
          .filter((x) => /SPOOF/.test(x.text))
          .map((x) => `${x.conv.title}: ${x.text.slice(0, 30)}`),
      )
      .toEqual([]);
    expect.soft(convs.map((c) => c.title).filter((t) => /verified|\(/.test(t))).toEqual([]);
    expect.soft(msgs.filter((x) => x.text === 'ONCE only').length, 'a replay shows once').toBe(1);
    expect
      .soft(msgs.filter((x) => x.author === 'bob' && x.text !== 'hi from bob').map((x) => x.text))
      .toEqual([]);
    expect.soft(msgs.filter((x) => x.kind === 'notice' && /EXTRA|SPOOF/.test(x.text))).toEqual([]);
    const mineNow = msgs.filter((x) => x.id === mine);
    expect
      .soft(
        mineNow.find((x) => x.author === 'victim')?.text,
        "the reused id hid the victim's own message",
      )
      .toBe('MINE by victim');
    // The page: the bob conversation shows only bob's; the mallory one shows both MINE and REUSED.
    const { page, errors } = await victimPage(victim, 'bob');
    await page.locator('article', { hasText: 'hi from bob' }).waitFor();
    expect.soft(await page.locator('.messages article').allInnerTexts()).toHaveLength(1);
    await page.getByText('mallory', { exact: true }).first().click();
    await page.locator('article', { hasText: 'LAST one' }).waitFor();
    expect.soft(await page.locator('article', { hasText: 'MINE by victim' }).count()).toBe(1);
    expect.soft(await page.locator('article', { hasText: 'REUSED id' }).count()).toBe(1);
    expect.soft(await page.locator('article', { hasText: 'SPOOF' }).count()).toBe(0);
    expect.soft(errors).toEqual([]);
  });

  it('a flood of new conversations from a stranger device freezes nothing and keeps toasts off the composer, Members button and channel list', async () => {
    const { net, victim, general } = await setup();
    await post(victim, general.id, 'calm in general');
    const { page, errors } = await victimPage(victim, '# general', { width: 1280, height: 760 });
    await page.locator('article', { hasText: 'calm in general' }).waitFor();
    const { m, victimDev, send } = await rawMallory(net);
    const s = await sessionWith(m, 'victim', victimDev);
    // 150 groups, each new (a random id), each mentioning the victim, with a long first line.
    for (let i = 0; i < 150; i++) {
      const r = await send(
        seal(
          s,
          payload({
            conversation: crypto.randomUUID(),
            members: ['bob', 'mallory', 'victim'],
            text: `@victim flood ${i} ` + 'W'.repeat(300),
            mentions: ['victim'],
          }),
        ),
      );
      expect(r, `envelope ${i}`).toMatchObject({ ok: true });
    }
    await waitFor(
      async () => (await victim.call('GET', '/api/dms')).body.length >= 151,
      20_000,
      '151 conversations',
    );
    await page.waitForTimeout(1500);
    expect.soft(await toastOverlaps(page)).toEqual([]);
    expect.soft(await composerReachable(page)).toEqual([]);
    expect.soft(await longTasks(page), 'long tasks').toEqual([]);
    // Home lists them without freezing either.
    await page.locator('.rail-item').first().click();
    await page.getByText('bob, mallory').first().waitFor();
    await page.waitForTimeout(500);
    expect.soft(await longTasks(page), 'long tasks on Home').toEqual([]);
    expect.soft(await toastOverlaps(page)).toEqual([]);
    expect.soft(errors).toEqual([]);
  });

  it('a flood of mentions in another channel keeps the toast stack off the composer, Members button and channel list', async () => {
    const { victim, mallory, general, other } = await setup();
    await post(victim, general.id, 'calm in general');
    for (const size of [
      { width: 1280, height: 760 },
      { width: 800, height: 600 },
    ]) {
      const { page, errors } = await victimPage(victim, '# general', size);
      await page.locator('article', { hasText: 'calm in general' }).waitFor();
      for (let i = 0; i < 30; i++) await post(mallory, other.id, `@victim ping ${i} ${size.width}`);
      await page.waitForTimeout(1500);
      expect.soft(await toastOverlaps(page), `at ${size.width} px`).toEqual([]);
      expect.soft(await composerReachable(page), `at ${size.width} px`).toEqual([]);
      expect.soft(errors).toEqual([]);
    }
  });

  it('a mention toast whose author and channel names are as long as allowed stays off the channel list and the composer', async () => {
    const { net, victim, general } = await setup();
    const long = await net.addPeer('long');
    const name = 'W'.repeat(32);
    await signIn(long, name);
    const ch = (
      await long.call('POST', '/api/channels', { name: 'W'.repeat(64), allowVisitors: false })
    ).body;
    expect((await victim.call('POST', `/api/channels/${ch.id}/join`)).status).toBe(200);
    await post(victim, general.id, 'calm in general');
    for (const size of [
      { width: 1280, height: 760 },
      { width: 800, height: 600 },
    ]) {
      const { page, errors } = await victimPage(victim, '# general', size);
      await page.locator('article', { hasText: 'calm in general' }).waitFor();
      await post(long, ch.id, `@victim ${size.width}`);
      await page.locator('.toast').first().waitFor();
      await page.waitForTimeout(300);
      expect.soft(await toastOverlaps(page), `at ${size.width} px`).toEqual([]);
      expect.soft(await composerReachable(page), `at ${size.width} px`).toEqual([]);
      // Its Open and Dismiss buttons are on screen (else the toast can be neither used nor closed).
      const off = await page.evaluate(() =>
        [...document.querySelectorAll('.toast button')]
          .map((b) => [b.getAttribute('aria-label'), b.getBoundingClientRect()] as const)
          .filter(([, r]) => r.right > innerWidth || r.left < 0)
          .map(([l, r]) => `${l} at x ${Math.round(r.left)}-${Math.round(r.right)}`),
      );
      expect.soft(off, `toast buttons off the ${size.width} px window`).toEqual([]);
      const wide = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
      expect.soft(wide, 'page wider than the window').toBeLessThanOrEqual(0);
      expect.soft(errors).toEqual([]);
    }
  });

  it("a blocked user reaches none of the victim's conversations, not even a group they share, and raises no toast", async () => {
    const { victim, mallory, general } = await setup();
    const group = (await mallory.call('POST', '/api/dms', { members: ['victim', 'bob'] })).body;
    await mallory.call('POST', `/api/dms/${group.id}/messages`, { text: 'group before block' });
    const pair = (await mallory.call('POST', '/api/dms', { members: ['victim'] })).body;
    await mallory.call('POST', `/api/dms/${pair.id}/messages`, { text: 'pair before block' });
    await waitFor(async () => (await victim.call('GET', '/api/dms')).body.length >= 3);
    expect((await victim.call('PUT', '/api/blocks/mallory')).status).toBeLessThan(300);
    await post(victim, general.id, 'calm in general');
    const { page, errors } = await victimPage(victim, '# general');
    await page.locator('article', { hasText: 'calm in general' }).waitFor();
    await mallory.call('POST', `/api/dms/${group.id}/messages`, { text: 'BLOCKED in group' });
    await mallory.call('POST', `/api/dms/${pair.id}/messages`, { text: 'BLOCKED in pair' });
    await page.waitForTimeout(3000);
    const texts: string[] = [];
    for (const c of (await victim.call('GET', '/api/dms')).body)
      for (const x of (await victim.call('GET', `/api/dms/${c.id}/messages`)).body.messages)
        texts.push(x.text);
    // README: "Block (in a 1:1) stops whatever that user sends from reaching any of your devices".
    expect.soft(texts.filter((t) => t.startsWith('BLOCKED'))).toEqual([]);
    expect.soft(await page.locator('.dm-toasts .toast').allInnerTexts()).toEqual([]);
    expect.soft(errors).toEqual([]);
  });

  it("a visitor can enter under no name that shows as a member's, and can make a member's page show nothing", async () => {
    const { net, victim, general } = await setup();
    await post(victim, general.id, 'calm in general');
    const { page, errors } = await victimPage(victim, '# general');
    await page.locator('article', { hasText: 'calm in general' }).waitFor();
    // SECURITY.md: visitor names that look like a registered user's, or with "invisible, bidi or
    // format characters", are refused. Each of these draws as "bob" followed by blank space.
    const accepted: string[] = [];
    for (const name of [
      'bob\u2800',
      'bob\uffa0',
      'bob\u1160',
      'bob\u3164',
      'bob\u00ad',
      'bob\u2062',
    ]) {
      const link = await net.rawLink();
      const ok = await rawSession(link, { name }).then(
        () => true,
        () => false,
      );
      if (ok) accepted.push(JSON.stringify(name));
    }
    expect.soft(accepted, 'look-alike visitor names accepted').toEqual([]);
    // A visitor that views the channel cannot type, post, react, set an avatar or DM.
    const link = await net.rawLink();
    const v = await rawSession(link, { name: 'mallory2' });
    expect(v.username).toBe('mallory2');
    await link.request('channel_join', { channelId: general.id }).catch(() => undefined);
    const refusals: string[] = [];
    for (const [op, body] of [
      ['typing', { channelId: general.id }],
      ['dm_devices', { usernames: ['victim'] }],
      ['avatars', { usernames: ['victim'] }],
    ] as Array<[any, any]>) {
      const r = await link.request(op, body).then(
        () => 'accepted',
        (e: Error) => e.message,
      );
      refusals.push(`${op}: ${r}`);
    }
    expect
      .soft(
        refusals.filter(
          (r) => r.startsWith('typing: accepted') || r.startsWith('dm_devices: accepted'),
        ),
      )
      .toEqual([]);
    await page.waitForTimeout(1000);
    expect.soft(await page.locator('.typing').innerText()).not.toContain('mallory2');
    expect.soft(await page.locator('#member-list').innerText()).not.toContain('mallory2');
    expect.soft(errors).toEqual([]);
  });

  it("hostile avatars (a bomb header, an undecodable but well-formed PNG, SVG, another user's) are refused, and a flood of well-formed ones freezes nothing", async () => {
    const { net, victim, general } = await setup();
    await post(victim, general.id, 'calm in general');
    const { m } = await rawMallory(net);
    const setAvatar = (bytes: Buffer, type: string, username = 'mallory', ts = Date.now()) => {
      const hash = crypto.createHash('sha256').update(bytes).digest('base64url');
      const sig = crypto
        .sign(
          null,
          Buffer.from(JSON.stringify(['hchat/avatar/1', username.toLowerCase(), type, hash, ts])),
          m.key.privateKey,
        )
        .toString('base64url');
      return m.c.req('avatar_set', {
        avatar: { username, type, data: bytes.toString('base64'), ts, sig, cert: m.cert },
      });
    };
    const code = (r: any) => r.error?.code ?? 'ok';
    // A picture declaring 65535×65535 (a bomb), an SVG as PNG, another user's avatar.
    const bomb = Buffer.from(png(1, 1));
    bomb.writeUInt32BE(65535, 16);
    bomb.writeUInt32BE(65535, 20);
    const fixCrc = pngChunk('IHDR', bomb.subarray(16, 29));
    const bombPng = Buffer.concat([PNG_SIGNATURE, fixCrc, bomb.subarray(33)]);
    expect.soft(code(await setAvatar(bombPng, 'image/png')), 'bomb').not.toBe('ok');
    expect
      .soft(
        code(
          await setAvatar(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'), 'image/png'),
        ),
        'svg',
      )
      .not.toBe('ok');
    expect.soft(code(await setAvatar(png(8, 8, 3), 'image/png', 'bob')), "bob's").not.toBe('ok');
    // A well-formed PNG (chunks, CRCs, IEND) whose IDAT is no zlib stream: no browser decodes it.
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(64, 0);
    ihdr.writeUInt32BE(64, 4);
    ihdr[8] = 8;
    ihdr[9] = 2;
    const broken = Buffer.concat([
      PNG_SIGNATURE,
      pngChunk('IHDR', ihdr),
      pngChunk('IDAT', crypto.randomBytes(200)),
      pngChunk('IEND', Buffer.alloc(0)),
    ]);
    expect(code(await setAvatar(broken, 'image/png'))).toBe('ok');
    const { page, errors } = await victimPage(victim, '# general');
    await page.locator('article', { hasText: 'calm in general' }).waitFor();
    await page.waitForTimeout(1500);
    // A flood: 60 avatar changes, 1024×1024 each.
    const t0 = Date.now();
    for (let i = 0; i < 60; i++) {
      const r = await setAvatar(png(1024, 1024, i + 5), 'image/png', 'mallory', t0 + i);
      if (code(r) !== 'ok') break;
    }
    await page.waitForTimeout(3000);
    expect.soft(await longTasks(page), 'long tasks').toEqual([]);
    expect.soft(await composerReachable(page)).toEqual([]);
    expect.soft(errors).toEqual([]);
  });
});
