/**
 * Runs before every test file. Files share their worker's modules (vitest `isolate: false`: a
 * fresh module graph per file cost 1–2 s each), so what a module keeps per file is reset here.
 */
import { afterAll } from 'vitest';

afterAll(async () => {
  // Chromium started by this file's tests (test/browser.ts), if any.
  await (globalThis as { hchatCloseBrowsers?: () => Promise<void> }).hchatCloseBrowsers?.();
});
