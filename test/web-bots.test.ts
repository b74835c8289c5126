/**
 * Bots and tokens in the browser (issue 17): alice opens "Bots and tokens" from her user panel,
 * makes a bot (a taken name is refused in the dialog), makes a read-and-write token for it
 * limited to #general, sees it once and copies it. The bot, on the SDK with that token, joins
 * #general and posts: her page shows the message with a BOT tag. She revokes the token in the
 * panel and the bot's next call is refused with E_TOKEN_INVALID. With the same token, `hchat bot`
 * answers alice's mention typed in the composer, and stops when the token is revoked. axe finds nothing serious on
 * the open panel; the page logs no error but the refused name's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { ApiError, BotClient } from '../src/sdk/client.js';
import { createTestnet, signIn, tempDir, type TestPeer } from './testnet.js';
import { spawnHchat } from './processes.js';
import { openPage, snap } from './browser.js';
import { seriousViolations } from './axe.js';

const focused = (page: Page, role: 'button' | 'textbox', name: string) =>
  page.getByRole(role, { name }).evaluate((e) => e === document.activeElement);

describe('bots and tokens in the web UI', () => {
  it('makes a bot and its token, shown once and copied; the bot posts with a BOT tag; revoking stops it', async () => {
    const net = await createTestnet({ peers: 1 });
    const alice = net.peers[0] as TestPeer;
    await signIn(alice, 'alice');
    const general = (await alice.call('POST', '/api/channels', { name: 'general' })).body
      .id as string;
    await alice.call('POST', `/api/channels/${general}/messages`, { text: 'hello team' });

    const { page, errors } = await openPage(alice.uiUrl);
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], {
      origin: new URL(alice.uiUrl).origin,
    });
    await page.getByRole('button', { name: /Your channels/ }).click();
    await page.getByRole('button', { name: /^# ?general/ }).click();
    const log = page.getByRole('log', { name: 'Messages' });
    await log.getByRole('article', { name: /^alice: hello team/ }).waitFor();

    // The panel: a modal dialog, the first field focused.
    await page.getByRole('button', { name: 'Bots and tokens' }).click();
    const panel = page.getByRole('dialog', { name: 'Bots and tokens' });
    await panel.getByText('No bots yet.').waitFor();
    expect(await focused(page, 'textbox', 'Bot username')).toBe(true);
    await page.keyboard.type('helper');
    await page.keyboard.press('Enter');
    await panel
      .getByRole('listitem')
      .filter({ hasText: /^helper/ })
      .waitFor();
    // A taken name: the server's refusal, in the dialog.
    await panel.getByRole('textbox', { name: 'Bot username' }).fill('Helper');
    await panel.getByRole('button', { name: 'Create bot' }).click();
    await panel.getByRole('alert').getByText(/taken/i).waitFor();

    // A read-and-write token for the bot, limited to #general, for 30 days.
    await panel.getByRole('textbox', { name: 'Token name' }).fill('helper token');
    await panel.getByRole('combobox', { name: 'Acts as' }).selectOption('helper');
    await panel.getByRole('radio', { name: 'Read and write' }).check();
    await panel.getByRole('checkbox', { name: '#general' }).check();
    await panel.getByRole('spinbutton', { name: 'Expires after (days)' }).fill('30');
    await panel.getByRole('button', { name: 'Create token' }).click();
    await panel.getByText('you will not see it again').waitFor();
    expect(await panel.getByRole('alert').count()).toBe(0);
    const secret = panel.getByRole('textbox', { name: 'Your new token' });
    const token = await secret.inputValue();
    expect(token).toMatch(/^tok_[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
    expect(await focused(page, 'textbox', 'Your new token')).toBe(true);
    await panel.getByRole('button', { name: 'Copy' }).click();
    await panel.getByRole('status').getByText('Copied.').waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(token);
    expect(await seriousViolations(page)).toEqual([]);
    await snap(page, 'bots-panel');
    // Done: the secret is gone from the page for good; the list shows the token without it.
    await panel.getByRole('button', { name: 'Done' }).click();
    await secret.waitFor({ state: 'detached' });
    const listed = panel.getByRole('listitem').filter({ hasText: 'helper token' });
    await listed.getByText('read and write').waitFor();
    expect(await listed.getByRole('definition').allTextContents()).toEqual(
      expect.arrayContaining(['helper', '#general']),
    );
    expect(await page.content()).not.toContain(token.split('.')[1]);
    await panel.getByRole('button', { name: 'Close' }).click();
    await panel.waitFor({ state: 'detached' });
    expect(await focused(page, 'button', 'Bots and tokens')).toBe(true);

    // The bot, on the SDK with the copied token: joins #general and posts; alice's page marks it.
    const bot = await BotClient.connect({ url: net.server.httpUrl, token });
    expect(bot.me).toMatchObject({ username: 'helper', bot: true });
    await bot.join(general);
    await bot.post(general, 'beep from helper');
    const beep = log.getByRole('article', { name: /^helper \(bot\): beep from helper/ });
    await beep.waitFor();
    expect(await beep.locator('.bot-tag').textContent()).toBe('BOT');
    const own = log.getByRole('article', { name: /^alice: hello team/ });
    expect(await own.locator('.bot-tag').count()).toBe(0);

    // `hchat bot` on the copied token: alice mentions it in the composer, its answer shows.
    const dir = tempDir();
    const config = path.join(dir, 'bot.json');
    fs.writeFileSync(path.join(dir, 'bot.token'), token, { mode: 0o600 });
    fs.writeFileSync(
      config,
      JSON.stringify({
        tokenFile: 'bot.token',
        rules: [{ when: 'mention', reply: 'at your service, {author}' }],
      }),
    );
    const running = await spawnHchat(
      ['bot', '--config', config, '--url', net.server.httpUrl],
      {},
      15_000,
      /^ready (bot=.*)$/m,
    );
    await page.getByRole('textbox', { name: 'Message' }).fill('@helper are you there?');
    const t0 = performance.now();
    await page.keyboard.press('Enter');
    const answer = log.getByRole('article', {
      name: /^helper \(bot\): at your service, alice/,
    });
    await answer.waitFor();
    console.log(
      `hchat bot in the browser: mention to answer shown ${Math.round(performance.now() - t0)} ms`,
    );

    // Revoked in the panel (confirmed): the bot's next call is refused.
    await page.getByRole('button', { name: 'Bots and tokens' }).click();
    const revoke = panel.getByRole('button', { name: 'Revoke helper token' });
    const confirm = page.getByRole('dialog', { name: 'Revoke “helper token”' });
    // Escape closes the confirmation only.
    await revoke.click();
    await confirm.waitFor();
    await page.keyboard.press('Escape');
    await confirm.waitFor({ state: 'detached' });
    expect(await panel.isVisible()).toBe(true);
    await revoke.click();
    await confirm.getByRole('button', { name: 'Revoke' }).click();
    await confirm.waitFor({ state: 'detached' });
    await listed.getByText('Revoked').waitFor();
    expect(await revoke.count()).toBe(0);
    expect(
      await panel
        .getByRole('heading', { name: 'Your tokens' })
        .evaluate((e) => e === document.activeElement),
    ).toBe(true);
    const refused = await bot.post(general, 'still here?').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).code).toBe('E_TOKEN_INVALID');
    // The running bot stops at once, saying why.
    expect(await running.exited).toBe(1);
    expect(running.stderr()).toContain('E_TOKEN_INVALID');
    expect(await log.getByRole('article').count()).toBe(4);
    await page.keyboard.press('Escape');
    await panel.waitFor({ state: 'detached' });
    expect(await focused(page, 'button', 'Bots and tokens')).toBe(true);

    // The only errors the page saw: the taken name's refusal.
    expect(errors.some((e) => /409/.test(e))).toBe(true);
    expect(errors.filter((e) => !/409/.test(e))).toEqual([]);
  });
});
