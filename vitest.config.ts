import { defineConfig } from 'vitest/config';
import { DurationSequencer } from './test/sequencer.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Browser tests start Chromium, a server and peers, two files at a time on two cores: on a
    // busy machine one takes more than 30 s (web-rich, web-ux, web-typing did in CI).
    testTimeout: 60_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Files run one after another in a worker and share its modules: importing the server, the
    // peer and playwright afresh for each file cost 1–2 s a file. test/browser.ts's Chromium
    // serves every browser test file of its worker (a fresh context per page), not one each.
    isolate: false,
    // Two cores here: two files at a time keeps multi-process tests from starving each other
    // (three made the suite no faster, 978 s against 997 s, and timed out the relay tree test).
    maxWorkers: 2,
    // Longest files first, by test/durations.json: a clean clone has no vitest cache to go by.
    sequence: { sequencer: DurationSequencer },
  },
});
