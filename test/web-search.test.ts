/**
 * Search in the browser (issue 13 item 6): bob types a word's beginning in the search box, sees
 * the matching message with the word marked, clicks it, and the channel opens at that message
 * (an old one, far above the newest), scrolled into view and highlighted. No console error.
 */
import { describe, expect, it } from 'vitest';
import { createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';
import { openPage, snap } from './browser.js';
import { seriousViolations } from './axe.js';

describe('search in the web UI', () => {
  it('typing a word shows marked results; clicking one opens the channel at that message', async () => {
    const net = await createTestnet({ peers: 2 });
    const [alice, bob] = net.peers as [TestPeer, TestPeer];
    await signIn(alice, 'alice');
    await signIn(bob, 'bob');
    const ch = (await alice.call('POST', '/api/channels', { name: 'general' })).body.id as string;
    await bob.call('POST', `/api/channels/${ch}/join`);
    const post = (text: string) =>
      alice.call('POST', `/api/channels/${ch}/messages`, { text }).then((r) => r.body.id as string);
    await post('warming up');
    const old = await post('Met the ancient Lighthouse keeper today');
    for (let i = 0; i < 80; i++) await post(`filler number ${i}`);
    await waitFor(
      async () =>
        (await bob.call('GET', '/api/search?q=filler&limit=50')).body.results.length === 50 &&
        (await bob.call('GET', '/api/search?q=lighthouse')).body.results.length === 1,
      15_000,
      "bob's copy to hold the messages",
    );

    const { page, errors } = await openPage(bob.uiUrl);
    const box = page.getByRole('searchbox', { name: 'Search messages' });
    await box.fill('lighth');
    await box.press('Enter');
    const results = page.getByRole('region', { name: 'Search results' });
    const hit = results.getByRole('button', { name: /ancient/ });
    await hit.waitFor();
    expect(await hit.locator('mark').allTextContents()).toEqual(['Lighthouse']);
    expect(await hit.textContent()).toContain('# general');
    await snap(page, 'search');
    expect(await seriousViolations(page)).toEqual([]); // axe: no serious or critical violation

    await hit.click();
    await page.getByRole('region', { name: '#general' }).waitFor();
    const target = page.locator(`#msg-${old}`);
    await target.waitFor();
    expect(await target.getAttribute('class')).toContain('flash');
    // Scrolled to it: it is inside the visible part of the message log.
    await waitFor(
      async () => {
        const log = await page.getByRole('log', { name: 'Messages' }).boundingBox();
        const m = await target.boundingBox();
        return log && m && m.y >= log.y && m.y + m.height <= log.y + log.height;
      },
      5000,
      'the message to be in view',
    );
    expect(await results.count()).toBe(0);
    // Far above the newest: what came after it is not shown, so it stays unread.
    const listed = async () =>
      ((await bob.call('GET', '/api/channels')).body as any[]).find((c) => c.id === ch);
    expect((await listed()).unread).toBeGreaterThan(0);
    expect(errors).toEqual([]);
  });

  it('a result whose page reaches the newest message opens the channel read (outside new user 5)', async () => {
    const net = await createTestnet({ peers: 2 });
    const [alice, bob] = net.peers as [TestPeer, TestPeer];
    await signIn(alice, 'alice');
    await signIn(bob, 'bob');
    const ch = (await alice.call('POST', '/api/channels', { name: 'secret' })).body.id as string;
    await bob.call('POST', `/api/channels/${ch}/join`);
    const listed = async () =>
      ((await bob.call('GET', '/api/channels')).body as any[]).find((c) => c.id === ch);
    await alice.call('POST', `/api/channels/${ch}/messages`, { text: 'the narwhal plan' });
    await alice.call('POST', `/api/channels/${ch}/messages`, { text: 'and one more thing' });
    await waitFor(async () => (await listed())?.unread === 2, 15_000, 'two unread at bob');

    const { page, errors } = await openPage(bob.uiUrl);
    const box = page.getByRole('searchbox', { name: 'Search messages' });
    await box.fill('narwhal');
    await box.press('Enter');
    const hit = page
      .getByRole('region', { name: 'Search results' })
      .getByRole('button', { name: /narwhal/ });
    await hit.click();
    await page.getByRole('region', { name: '#secret' }).waitFor();
    await page.getByText('and one more thing').waitFor();
    await waitFor(async () => (await listed()).unread === 0, 5_000, 'the channel read');
    expect(errors).toEqual([]);
  });
});
