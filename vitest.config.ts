import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Browser tests start Chromium, a server and peers, two files at a time on two cores: on a
    // busy machine one takes more than 30 s (web-rich, web-ux, web-typing did in CI).
    testTimeout: 60_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Two cores here: two files at a time keeps multi-process tests from starving each other
    // (three made the suite no faster, 978 s against 997 s, and timed out the relay tree test).
    maxWorkers: 2,
  },
});
