import path from 'node:path';
/**
 * The web UI in a real browser (issue "Web UI"): two peers and their pages, a visitor page,
 * offline and back, scrollback. Everything goes through the UI a person uses.
 */
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';
import { openPage, snap } from './browser.js';
import { CentralServer } from '../src/server/server.js';

async function register(page: Page, username: string) {
  await page.getByRole('tab', { name: 'Register' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(`${username}-pw-1`);
  await page.getByRole('button', { name: 'Register' }).click();
  await page.getByRole('button', { name: 'Log out' }).waitFor();
}

async function send(page: Page, text: string) {
  await page.getByRole('textbox', { name: 'Message' }).fill(text);
  await page.keyboard.press('Enter');
}

function messages(page: Page) {
  return page.getByRole('log', { name: 'Messages' });
}

describe('web UI', () => {
  it('opened without its token, says which URL to open; with it, leaves no token in the address', async () => {
    const net = await createTestnet({ peers: 1 });
    const p = net.peers[0]!;
    const bare = await openPage(p.baseUrl);
    await bare.page.getByRole('alert').getByText('Open the URL printed by').waitFor();
    await expect(bare.page.getByLabel('Username').count()).resolves.toBe(0);
    // The only errors are the refused call itself (the browser logs a 401 as an error).
    expect(bare.errors.filter((e) => !/401/.test(e))).toEqual([]);
    const opened = await openPage(p.uiUrl);
    await opened.page.getByLabel('Username').waitFor();
    expect(opened.page.url()).toBe(p.baseUrl);
    expect(opened.errors).toEqual([]);
  });

  it('two people register, create and join a channel, and chat live', async () => {
    const net = await createTestnet({ peers: 2 });
    const [pa, pb] = net.peers as [TestPeer, TestPeer];
    const a = await openPage(pa.uiUrl);
    const b = await openPage(pb.uiUrl);
    await snap(a.page, 'entry');
    await register(a.page, 'alice');
    await register(b.page, 'bob');

    await a.page.getByLabel('Channel name').fill('general');
    await a.page.getByLabel('Allow visitors').check();
    await a.page.getByRole('button', { name: 'Create channel' }).click();
    await a.page.getByRole('region', { name: '#general' }).waitFor();
    await expect(a.page.getByText('Hosted on this peer')).toBeTruthy();

    await b.page.getByRole('button', { name: 'Refresh directory' }).click();
    await b.page.getByRole('button', { name: 'Join general' }).click();
    await b.page.getByRole('region', { name: '#general' }).waitFor();
    await b.page.getByText('P2P from its host').waitFor();

    await send(b.page, 'hi alice, from bob');
    await messages(a.page).getByText('hi alice, from bob').waitFor();
    await send(a.page, 'welcome, bob!\nglad you are here');
    await messages(b.page).getByText('glad you are here').waitFor();
    // Shift+Enter made a new line inside one message, not two messages.
    expect(await messages(b.page).getByRole('article').count()).toBe(2);
    const members = b.page.getByRole('complementary', { name: 'Members' });
    await members.getByText('Members — 2').waitFor();
    // Each member's name and presence (its actions, such as "Message", left out).
    const names = await members.getByRole('listitem').evaluateAll((items) =>
      items.map((li) => {
        const copy = li.cloneNode(true) as HTMLElement;
        for (const button of copy.querySelectorAll('button')) button.remove();
        return (copy.textContent ?? '').replace(/\s+/g, ' ').trim();
      }),
    );
    expect(names).toEqual(['alice online', 'bob online']);
    expect(await members.getByRole('button', { name: 'Message alice' }).count()).toBe(1);
    expect(await members.getByRole('button', { name: 'Message bob' }).count()).toBe(0);
    await snap(b.page, 'chat');

    // Messages that arrive while bob is elsewhere: a "New messages" divider marks the first one.
    await b.page.getByRole('button', { name: 'Home' }).click();
    await b.page.getByRole('heading', { name: /Directory/ }).waitFor();
    await send(a.page, 'first of the new ones');
    await send(a.page, 'second of the new ones');
    const rail = () =>
      b.page
        .getByRole('navigation', { name: 'Servers' })
        .getByRole('button')
        .evaluateAll((els) => els.map((e) => e.textContent));
    let labels: (string | null)[] = [];
    await waitFor(
      async () => (labels = await rail()).includes("AL, alice's channels, 2 unread"),
      10_000,
      () => `"AL, alice's channels, 2 unread" on the rail (it shows ${JSON.stringify(labels)})`,
    );
    await b.page.getByRole('button', { name: /alice's channels/ }).click();
    const marker = messages(b.page).getByRole('separator', { name: 'New messages' });
    await marker.waitFor();
    const order = (await messages(b.page).textContent()) ?? '';
    expect(order.indexOf('New messages')).toBeGreaterThan(-1);
    expect(order.indexOf('New messages')).toBeLessThan(order.indexOf('first of the new ones'));
    expect(order.indexOf('glad you are here')).toBeLessThan(order.indexOf('first of the new ones'));
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });

  it('a visitor reads a channel that allows visitors and cannot post', async () => {
    const net = await createTestnet({ peers: 2 });
    const [pa, pv] = net.peers as [TestPeer, TestPeer];
    await signIn(pa, 'alice');
    const ch = (await pa.call('POST', '/api/channels', { name: 'lobby', allowVisitors: true }))
      .body;
    // A history longer than a page, all of it from before the visitor came.
    for (let i = 0; i < 60; i++)
      await pa.call('POST', `/api/channels/${ch.id}/messages`, { text: `history ${i}` });
    await pa.call('POST', `/api/channels/${ch.id}/messages`, { text: 'visitors welcome' });
    await pa.call('POST', '/api/channels', { name: 'staff', allowVisitors: false });

    const v = await openPage(pv.uiUrl);
    await v.page.getByRole('tab', { name: 'Visitor' }).click();
    await v.page.getByLabel('Display name').fill('guest');
    await v.page.getByRole('button', { name: 'Enter as visitor' }).click();
    await v.page.getByRole('button', { name: 'Join lobby' }).click();
    // A first visit opens at the newest message, as Discord opens a newly joined channel: no
    // "New messages" divider over the whole history, nothing counted unread.
    const newest = messages(v.page).getByText('visitors welcome');
    await newest.waitFor();
    await waitFor(
      () => messages(v.page).evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight < 5),
      5000,
      'the log at its newest message',
    );
    expect(await newest.isVisible()).toBe(true);
    expect(await messages(v.page).getByRole('separator', { name: 'New messages' }).count()).toBe(0);
    expect(await v.page.getByRole('button', { name: /unread/ }).count()).toBe(0);
    expect(await v.page.getByRole('button', { name: 'Join staff' }).count()).toBe(0);
    const box = v.page.getByRole('textbox', { name: 'Message' });
    expect(await box.isDisabled()).toBe(true);
    expect(await box.getAttribute('placeholder')).toContain('Visitors can read but not post');
    await snap(v.page, 'visitor');
    expect(v.errors).toEqual([]);
  });

  it('a central server showing another TLS key: the page says it is not connecting, and why', async () => {
    const net = await createTestnet({ peers: 1 });
    const p = net.peers[0]!;
    await signIn(p, 'alice');
    const page = await openPage(p.uiUrl);
    await page.page.getByLabel('Status').waitFor();
    // Whatever the page asks before the other server is up is answered late, after what it
    // asks later: the page must show the newest answer, not the last to arrive.
    let swapped = false;
    await page.page.route('**/api/session', async (route) => {
      const stale = !swapped;
      const res = await route.fetch();
      if (stale) await new Promise((r) => setTimeout(r, 1500));
      await route.fulfill({ response: res });
    });
    // Another server, with another key, takes the address the peer pinned.
    await net.server.close();
    net.server = await CentralServer.start({
      host: '127.0.0.1',
      port: net.serverPort,
      httpPort: 0,
      dataDir: path.join(net.dir, 'another-server'),
    });
    swapped = true;
    const banner = page.page.getByRole('alert').filter({ hasText: 'Not connecting' });
    await banner.waitFor();
    expect(await banner.textContent()).toContain(net.server.fingerprint);
    await snap(page.page, 'server-key-refused');
    // The only errors are refused calls (the browser logs a 502 answer as an error), and a call
    // the server's departure answered 503 E_OFFLINE (README: calls that need the server).
    expect(page.errors.filter((e) => !/50[23]/.test(e))).toEqual([]);
  });

  it('going offline shows pending messages and a banner; going online delivers them', async () => {
    const net = await createTestnet({ peers: 2 });
    const [pa, pb] = net.peers as [TestPeer, TestPeer];
    await signIn(pa, 'alice');
    await signIn(pb, 'bob');
    const ch = (await pa.call('POST', '/api/channels', { name: 'general', allowVisitors: false }))
      .body;
    await pb.call('POST', `/api/channels/${ch.id}/join`);

    const b = await openPage(pb.uiUrl);
    await b.page.getByRole('button', { name: "alice's channels" }).click();
    await b.page.getByRole('region', { name: '#general' }).waitFor();
    await b.page.getByLabel('Status').selectOption('offline');
    await b.page.getByText('You are offline').waitFor();
    await send(b.page, 'written offline');
    const pending = messages(b.page).getByRole('article', { name: 'bob: written offline' });
    await pending.getByText('pending').waitFor();
    await b.page.getByText('1 message waiting to be sent').waitFor();
    await snap(b.page, 'offline');
    expect((await pa.call('GET', `/api/channels/${ch.id}/messages`)).body.messages).toEqual([]);

    await b.page.getByLabel('Status').selectOption('online');
    await waitFor(
      async () => (await pending.getByText('pending').count()) === 0,
      10_000,
      'delivered',
    );
    await waitFor(
      async () =>
        (await pa.call('GET', `/api/channels/${ch.id}/messages`)).body.messages.length === 1,
    );
    expect(await b.page.getByText('You are offline').count()).toBe(0);
    expect(b.errors).toEqual([]);
  });

  it('logging out while offline leads to a login page that works: once back, what was written offline is delivered', async () => {
    const net = await createTestnet({ peers: 2 });
    const [pa, pb] = net.peers as [TestPeer, TestPeer];
    await signIn(pa, 'alice');
    await signIn(pb, 'bob');
    const ch = (await pa.call('POST', '/api/channels', { name: 'general', allowVisitors: false }))
      .body;
    await pb.call('POST', `/api/channels/${ch.id}/join`);

    const b = await openPage(pb.uiUrl);
    await b.page.getByRole('button', { name: "alice's channels" }).click();
    await b.page.getByRole('region', { name: '#general' }).waitFor();
    await b.page.getByLabel('Status').selectOption('offline');
    await b.page.getByText('You are offline').waitFor();
    await send(b.page, 'written on the train');
    await b.page.getByText('1 message waiting to be sent').waitFor();
    await b.page.getByRole('button', { name: 'Log out' }).click();

    // The login page: logging in again is coming back (README "Status").
    await b.page.getByLabel('Username').fill('bob');
    await b.page.getByLabel('Password').fill('bob-pw');
    await b.page.getByRole('button', { name: 'Log in' }).click();
    await b.page.getByRole('button', { name: 'Log out' }).waitFor();
    await waitFor(
      async () =>
        (await pa.call('GET', `/api/channels/${ch.id}/messages`)).body.messages.length === 1,
      10_000,
      'bob’s message written offline, at alice’s',
    );
    expect(
      (await pa.call('GET', `/api/channels/${ch.id}/messages`)).body.messages.map(
        (m: { author: string; text: string }) => `${m.author}: ${m.text}`,
      ),
    ).toEqual(['bob: written on the train']);
    expect(await b.page.getByLabel('Status').inputValue()).toBe('online');
    expect(await b.page.getByText('You are offline').count()).toBe(0);
    expect(b.errors).toEqual([]);
  });

  it('scrollback loads older pages as you scroll up', async () => {
    const net = await createTestnet({ peers: 1 });
    const [pa] = net.peers as [TestPeer];
    await signIn(pa, 'alice');
    const ch = (await pa.call('POST', '/api/channels', { name: 'history', allowVisitors: false }))
      .body;
    for (let i = 0; i < 120; i++)
      await pa.call('POST', `/api/channels/${ch.id}/messages`, { text: `line ${i}` });
    const a = await openPage(pa.uiUrl, { width: 360, height: 640 });
    await a.page.getByRole('button', { name: 'Your channels' }).click();
    const log = messages(a.page);
    await log.getByText('line 119', { exact: true }).waitFor();
    expect(await log.getByText('line 0', { exact: true }).count()).toBe(0);
    for (let i = 0; i < 10 && (await log.getByText('line 0', { exact: true }).count()) === 0; i++) {
      await log.evaluate((el) => el.scrollTo(0, 0));
      await a.page.waitForTimeout(300);
    }
    await log.getByText('line 0', { exact: true }).waitFor();
    await snap(a.page, 'narrow');
    // On a phone the text box keeps most of the composer's width: no character count until the
    // text nears the 4,000 limit (as Discord), then it shows, in warning colour.
    const box = a.page.getByRole('textbox', { name: 'Message' });
    const width = (await box.boundingBox())!.width;
    expect(width, 'text box width at 360 px').toBeGreaterThan(160);
    expect(await a.page.getByText('/4000').count()).toBe(0);
    await box.fill('x'.repeat(3850));
    await a.page.getByText('3850/4000').waitFor();
    expect(a.errors).toEqual([]);
  });
});
