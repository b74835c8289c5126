/**
 * Debian's Chromium as the tests and the bench launch it (never a downloaded browser): its path,
 * and the flags that keep it headless, offline and quiet.
 */
export const CHROMIUM = '/usr/bin/chromium';

export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
