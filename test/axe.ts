/**
 * axe-core in a test page: the page's CSP (`script-src 'self'`) refuses an injected <script>
 * tag, so the library's source is evaluated through the DevTools protocol (page.evaluate), which
 * CSP does not govern; the page itself runs with its real CSP.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';

const AXE_SOURCE = fs.readFileSync(
  createRequire(import.meta.url).resolve('axe-core/axe.min.js'),
  'utf8',
);

/** One axe violation, reduced to what a failing assertion should show. */
export interface AxeViolation {
  id: string;
  impact: string;
  help: string;
  targets: string[];
}

/** Runs axe on the page as it is now; returns the violations of impact serious or critical. */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  const all = await page.evaluate(async () => {
    const axe = (
      window as unknown as { axe: { run: (ctx: Document, opts: object) => Promise<any> } }
    ).axe;
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return (r.violations as any[]).map((v) => ({
      id: v.id as string,
      impact: (v.impact ?? '') as string,
      help: v.help as string,
      targets: (v.nodes as any[]).map((n) =>
        `${(n.target as string[]).join(' ')}: ${n.failureSummary ?? ''}`.slice(0, 300),
      ),
    }));
  });
  return all.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}
