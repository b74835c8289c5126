/**
 * What a hostile message must not do to the page that shows it, measured in the page: long tasks
 * (a freeze) and a composer that a click no longer reaches. Used by the attack files on the web UI
 * (test/outsider/hostile-content.test.ts, hostile-dm-avatar.test.ts).
 */
import type { Page } from 'playwright-core';

/**
 * Starts recording the page's long tasks from now on (read with `longTasks`). Not the page's own
 * start (its script and first render, ~0.3 s on a quiet machine and 1.3 s in a loaded CI run),
 * which happened before any hostile content was posted: a buffered observer counted it as theirs.
 */
export async function watchLongTasks(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __lt: number[] };
    w.__lt = [];
    const since = performance.now();
    new PerformanceObserver((l) => {
      for (const e of l.getEntries()) if (e.startTime >= since) w.__lt.push(e.duration);
    }).observe({ type: 'longtask', buffered: true });
  });
}

/** The long tasks over 1 s since `watchLongTasks`, in milliseconds. */
export async function longTasks(page: Page): Promise<number[]> {
  return page.evaluate(() =>
    (window as unknown as { __lt: number[] }).__lt.filter((d) => d > 1000),
  );
}

/** The composer and Send are on screen and are what a click at their centre reaches. */
export async function composerReachable(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const bad: string[] = [];
    for (const sel of ['#composer', '.composer button.primary']) {
      const el = document.querySelector(sel) as HTMLElement | null;
      if (!el) {
        bad.push(`${sel} missing`);
        continue;
      }
      const r = el.getBoundingClientRect();
      const x = r.left + r.width / 2;
      const y = r.top + r.height / 2;
      if (r.width === 0 || x < 0 || y < 0 || x > innerWidth || y > innerHeight) {
        bad.push(`${sel} off screen at ${Math.round(x)},${Math.round(y)}`);
        continue;
      }
      const hit = document.elementFromPoint(x, y);
      if (!hit || (hit !== el && !el.contains(hit)))
        bad.push(`${sel} covered by ${hit?.tagName}.${(hit as HTMLElement)?.className}`);
    }
    return bad;
  });
}
