/**
 * A CPU profile of a page through the DevTools protocol (Profiler.start/stop), for finding where
 * its long tasks go: `BENCH_WEB_PROFILE=out.cpuprofile` in bench/web-ui.ts. The file opens in
 * Chromium's DevTools (Performance panel); `topFunctions` sums each function's self time.
 */
import fs from 'node:fs';
import type { Page } from 'playwright-core';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Starts profiling `page`; the function returned stops, writes the profile to `file`, sums it. */
export async function profilePage(page: Page, file: string) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
  await cdp.send('Profiler.start');
  return async () => {
    const { profile } = (await cdp.send('Profiler.stop')) as unknown as { profile: Profile };
    await cdp.detach();
    fs.writeFileSync(file, JSON.stringify(profile));
    return topFunctions(profile);
  };
}

/** Self and total time per function (name, file, line): the `n` largest of each. */
export function topFunctions(p: Profile, n = 20) {
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const parent = new Map<number, number>();
  for (const x of p.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
  const key = (id: number) => {
    const f = byId.get(id)!.callFrame;
    return `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}:${f.lineNumber + 1}`;
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  p.samples.forEach((id, i) => {
    const ms = (p.timeDeltas[i] ?? 0) / 1000;
    self.set(key(id), (self.get(key(id)) ?? 0) + ms);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) seen.add(key(at));
    for (const k of seen) total.set(k, (total.get(k) ?? 0) + ms);
  });
  const top = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([fn, ms]) => `${Math.round(ms)} ms ${fn}`);
  return { self: top(self), total: top(total) };
}
