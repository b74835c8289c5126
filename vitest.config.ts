import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Browser tests start Chromium, a server and peers, two files at a time on two cores: on a
    // busy machine one takes more than 30 s (web-rich, web-ux, web-typing did in CI).
    testTimeout: 60_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Two cores here. Three files at a time: most files spend much of their time waiting (on
    // timers, sockets, other processes), and the suite must stay under CI's 20 minutes; more
    // would starve the multi-process tests.
    maxWorkers: 3,
  },
});
