/**
 * Livestream in the browser (issue "Livestream" §4, §7): Chromium's fake camera and microphone
 * feed a page that goes live; WebCodecs encodes VP8 and Opus; a second page watches, decodes with
 * WebCodecs onto a canvas and plays the audio.
 */
import { describe, expect, it } from 'vitest';
import { twoMembers, waitFor } from './testnet.js';
import { openPage, snap } from './browser.js';

const FAKE_MEDIA = [
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
];

describe('livestream in the browser', () => {
  it('a page goes live with camera and microphone; another page draws the frames and plays the sound', async () => {
    const { pa, pb } = await twoMembers('studio');

    const a = await openPage(pa.uiUrl, undefined, FAKE_MEDIA);
    const b = await openPage(pb.uiUrl, undefined, FAKE_MEDIA);
    await a.page.getByRole('button', { name: 'Your channels' }).click();
    await a.page.getByRole('button', { name: 'Go live' }).click();
    await a.page.getByLabel('You are live').waitFor();
    await a.page.getByLabel('Your camera').waitFor();

    await b.page.getByRole('button', { name: "alice's channels" }).click();
    await b.page.getByLabel('live now').waitFor({ timeout: 15_000 });
    await b.page.getByRole('button', { name: 'Watch alice' }).click();
    const tile = b.page.getByRole('figure', { name: "alice's stream" });
    await tile.waitFor();
    let seen = '';
    await waitFor(
      async () => {
        const frames = Number(await tile.getAttribute('data-frames-drawn'));
        const audio = Number(await tile.getAttribute('data-audio-frames'));
        seen = `${frames} frames drawn, ${audio} audio frames played`;
        return frames > 30 && audio > 10;
      },
      20_000,
      () => seen,
    );
    await b.page.getByLabel('Stream stats').getByText(/fps/).waitFor();
    // Bob's page is held 3 s (its thread busy): the frames that came meanwhile wait in its queue,
    // seconds late. It skips them, decoding none, and plays on from live at the next keyframe,
    // instead of drawing every stale frame and staying seconds behind (web/src/live-lag.ts).
    const before = Number(await tile.getAttribute('data-frames-drawn'));
    await b.page.evaluate(() => {
      const until = performance.now() + 3000;
      while (performance.now() < until);
    });
    await waitFor(
      async () => {
        seen = `${await tile.getAttribute('data-frames-skipped')} frames skipped, ${await tile.getAttribute('data-frames-drawn')} drawn`;
        return Number(await tile.getAttribute('data-frames-skipped')) > 0;
      },
      10_000,
      () => seen,
    );
    const skipped = Number(await tile.getAttribute('data-frames-skipped'));
    await waitFor(
      async () => Number(await tile.getAttribute('data-frames-drawn')) > before + 10,
      15_000,
      'frames drawn again after the skip',
    );
    expect(await tile.getAttribute('data-stall')).toBe('playing');
    expect(skipped).toBeGreaterThan(0);
    // The chat goes on beside the stream.
    await b.page.getByRole('textbox', { name: 'Message' }).fill('great stream!');
    await b.page.keyboard.press('Enter');
    await a.page.getByRole('log', { name: 'Messages' }).getByText('great stream!').waitFor();
    await snap(b.page, 'livestream-viewer');
    const st = (await pa.call('GET', '/api/streams')).body[0];
    expect(st).toMatchObject({ streamer: 'alice', viewers: 1, source: 'browser' });

    await a.page.getByRole('button', { name: 'End stream' }).click();
    await tile.waitFor({ state: 'detached', timeout: 15_000 });
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });
});
