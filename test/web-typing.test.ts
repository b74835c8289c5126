/**
 * Typing indicators in the browser (issue 13 item 5): bob types in his composer, carol's page
 * says "bob is typing…" below the messages; it goes away by itself when bob stops, and at once
 * when his message arrives. Two typists are named together. No console error on either page.
 */
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';
import { openPage, snap } from './browser.js';
import { seriousViolations } from './axe.js';
import { TYPING_LIMITS } from '../src/shared/limits.js';

async function openChannel(page: Page) {
  await page.getByRole('button', { name: /alice's channels/ }).click();
  await page.getByRole('region', { name: '#general' }).waitFor();
  await page.getByText('P2P from its host').waitFor();
}

describe('typing indicator in the web UI', () => {
  it("bob typing shows on carol's page, expires, and disappears when his message arrives", async () => {
    const net = await createTestnet({ peers: 3 });
    const [alice, bob, carol] = net.peers as [TestPeer, TestPeer, TestPeer];
    await signIn(alice, 'alice');
    await signIn(bob, 'bob');
    await signIn(carol, 'carol');
    const ch = (await alice.call('POST', '/api/channels', { name: 'general' })).body.id as string;
    for (const p of [bob, carol]) {
      await p.call('POST', `/api/channels/${ch}/join`);
      await waitFor(() => p.node.sourceOf(ch) === 'host');
    }
    const b = await openPage(bob.uiUrl);
    const c = await openPage(carol.uiUrl);
    await openChannel(b.page);
    await openChannel(c.page);
    const line = c.page.getByRole('status').filter({ hasText: 'typing' });
    const composer = b.page.getByRole('textbox', { name: 'Message' });

    // bob types: carol is told, politely (a live region that does not interrupt).
    await composer.pressSequentially('hello ca');
    await c.page.getByText('bob is typing…').waitFor();
    // The line lives TYPING_LIMITS.ttlMs from bob's latest typing event, so never less than that
    // from when it first showed (whatever the snapshot and axe below take).
    const shownAt = Date.now();
    expect(await line.getAttribute('aria-live')).toBe('polite');
    // bob's own page never says he is typing.
    expect(await b.page.getByText('bob is typing…').count()).toBe(0);
    await snap(c.page, 'typing');
    expect(await seriousViolations(c.page)).toEqual([]); // axe: no serious or critical violation

    // bob stops: it ends by itself after TYPING_LIMITS.ttlMs (6 s).
    await c.page
      .getByText('bob is typing…')
      .waitFor({ state: 'detached', timeout: TYPING_LIMITS.ttlMs + 3000 });
    expect(Date.now() - shownAt).toBeGreaterThan(TYPING_LIMITS.ttlMs - 500);

    // Two typists at once (alice through her local API): named together.
    await composer.pressSequentially('rol');
    await alice.call('POST', `/api/channels/${ch}/typing`);
    await c.page.getByText('alice and bob are typing…').waitFor();

    // bob sends: his message arrives and his typing ends at once (alice is still typing).
    const sentAt = Date.now();
    await b.page.keyboard.press('Enter');
    await c.page.getByRole('log', { name: 'Messages' }).getByText('hello carol').waitFor();
    await c.page.getByText('alice is typing…').waitFor({ timeout: 2000 });
    expect(Date.now() - sentAt).toBeLessThan(TYPING_LIMITS.ttlMs - 2000);
    await c.page.getByText('alice is typing…').waitFor({ state: 'detached', timeout: 9000 });

    expect(b.errors).toEqual([]);
    expect(c.errors).toEqual([]);
  });
});
