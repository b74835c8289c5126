/**
 * The web UI behind NATs (issue 18): bob's page says how his peer reaches alice's host, a hole
 * punched through both home routers or the server's relay, beside "P2P from its host"; no
 * console error, no serious accessibility violation. The world of test/netns.ts (root).
 */
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createNatWorld } from './netns.js';
import { openPage, snap } from './browser.js';
import { seriousViolations } from './axe.js';
import { waitFor } from './testnet.js';

async function openChannel(page: Page, badge: string) {
  await page.getByRole('button', { name: /alice's channels/ }).click();
  await page.getByRole('region', { name: '#general' }).waitFor();
  await page.getByText(badge).waitFor();
}

describe('the source badge behind NATs', () => {
  for (const [how, symmetric, badge] of [
    ['punched', false, 'P2P from its host · through both routers'],
    ['relay', true, 'P2P from its host · relayed by the server'],
  ] as const)
    it(`says the link to the host is ${how}`, async () => {
      const world = createNatWorld([{}, { symmetric }]);
      const server = await world.startServer();
      const alice = await world.startPeer(0, server, 'alice');
      const bob = await world.startPeer(1, server, 'bob');
      const ch = (await alice.call('POST', '/api/channels', { name: 'general' })).body.id;
      expect((await bob.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
      await waitFor(
        async () => (await bob.call('GET', `/api/channels/${ch}/messages`)).body.link === how,
        20_000,
        `bob's link ${how}`,
      );
      const b = await openPage(await bob.uiUrl());
      await openChannel(b.page, badge);
      await snap(b.page, `nat-${how}`);
      expect(await seriousViolations(b.page)).toEqual([]);
      expect(b.errors).toEqual([]);
    });
});
