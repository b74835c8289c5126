/** The summary's section for bench/cluster.ts (several instances, issue 16). */

const f = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : '–';

/** Markdown lines for the cluster results (none when the run had no cluster part). */
export function clusterSection(c: any): string[] {
  if (!c) return [];
  const lines = ['## Several instances (bench/cluster.ts)', ''];
  const fan = c.fanout;
  if (fan) {
    lines.push(
      `Fan-out to ${f(c.members)} members, one publisher at full speed, median of ${c.repeats} runs of ${c.seconds} s:`,
      '',
      '| deployment | deliveries/s | p99 ms | instances CPU % | deliveries/s of each run |',
      '| --- | --: | --: | --: | --- |',
    );
    const rows: Array<[string, any]> = [
      ['SQLite, 1 instance', fan.sqlite1],
      ['PostgreSQL, 1 instance', fan.pg1],
      ['PostgreSQL + NATS, 2 instances', fan.pg2],
    ];
    for (const [name, r] of rows)
      if (r)
        lines.push(
          `| ${name} | ${f(r.deliveriesPerSec)} | ${f(r.p99ms, 1)} | ${f(r.serverCpuPercent)} | ${r.deliveriesPerSecRuns.map((v: number) => f(v)).join(', ')} |`,
        );
    const x = fan.crossInstance;
    if (x)
      lines.push(
        '',
        `- Cross-instance push latency at ${f(x.rate)} messages/s: p50 ${f(x.remoteP50ms, 1)} ms, p99 ${f(x.remoteP99ms, 1)} ms (members on the publisher's instance: p50 ${f(x.localP50ms, 1)} ms, p99 ${f(x.localP99ms, 1)} ms).`,
      );
  }
  const h = c.history;
  if (h) {
    const anchor = (x: any) =>
      x.anchorP50ms === undefined
        ? ''
        : ` Anchor, the same pages read with the store's statement by a plain client: p50 ${f(x.anchorP50ms, 2)} ms, p99 ${f(x.anchorP99ms, 2)} ms; load average ${f(x.loadAverage, 1)}.`;
    lines.push(
      `- History page of ${h.pageSize} on PostgreSQL with ${f(h.messages)} messages in ${f(h.channels)} channels${h.vacuumed ? ' (table vacuumed after loading)' : ''}, as the load left the OS cache: p50 ${f(h.p50ms, 2)} ms, p99 ${f(h.p99ms, 2)} ms, max ${f(h.maxMs, 1)} ms (goal at 10M: p99 ≤ 5 ms).${anchor(h)}`,
    );
    const w = h.cached;
    if (w)
      lines.push(
        `- The same, with the table and its indexes in the OS cache (pg_prewarm), as on a server that has served them: p50 ${f(w.p50ms, 2)} ms, p99 ${f(w.p99ms, 2)} ms, max ${f(w.maxMs, 1)} ms.${anchor(w)}`,
      );
    else if (h.cachedSkipped) lines.push(`- No pass with the table cached: ${h.cachedSkipped}.`);
  }
  const fl = c.files;
  if (fl) {
    const rows: Array<[string, any]> = [
      ['SQLite, 1 instance', fl.sqlite1],
      ['PostgreSQL + NATS, 2 instances (in on one, out on the other)', fl.pg2],
    ];
    const rates = rows
      .filter(([, r]) => r)
      .map(
        ([name, r]) =>
          `${name} ${f(r.putMiBps, 1)} MiB/s in, ${f(r.readMiBps, 1)} out (median of ${r.runs})`,
      );
    lines.push(
      `- A ${f(fl.mib)} MiB file backed up chunk by chunk, then read back chunk by chunk: ${rates.join('; ')}.`,
    );
  }
  const i = c.idle;
  if (i)
    lines.push(
      `- ${f(i.sessions)} idle sessions over ${i.instances ?? 2} instances (channels of ${i.channelSize}, ${f(i.churned)} churned in ${i.minutes} min, ${i.repeats ?? 1} run(s), load average ${f(i.loadAverage, 1)}): ${f(i.rssPerSessionKB, 1)} KB resident per session, ${f(i.pushesPerSessionPerMinute, 3)} pushes per session per minute (${f(i.receivedPerSessionPerMinute, 3)} counted by the clients, ${f(i.expectedPerSessionPerMinute, 3)} expected from the churn), instances' CPU ${f(i.instancesCpuPercent, 1)} % of a core in all; ${f(i.droppedByServer)} sessions dropped by the server, ${f(i.misdirected)} pushes misdirected.`,
    );
  if (c.skipped?.length) lines.push(`- Skipped: ${c.skipped.join('; ')}.`);
  return lines;
}
