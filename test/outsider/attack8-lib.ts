// Attack 8 helpers, written from the documents: lib.ts's, and a bounded wait.
export * from './lib.js';

/** Polls `f` until it answers something truthy, or throws after `ms`. */
export async function until<T>(f: () => Promise<T>, ms = 10_000, every = 100): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error('timed out waiting' + (last ? ': ' + String(last) : ''));
    await new Promise((r) => setTimeout(r, every));
  }
}
