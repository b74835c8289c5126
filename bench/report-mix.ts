/** The summary's section and target row for bench/mix.ts (a realistic mix, issue 19 item 4). */
import { median } from './stats.js';

const f = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : '–';

/** The targets table's row: end-to-end p99 ≤ 50 ms and server ≤ 50 % of one core, nothing lost. */
export function mixTarget(m: any): {
  target: string;
  measured: string;
  ratio: number;
  met: boolean;
} {
  return {
    target: 'Realistic mix: end-to-end p99 ≤ 50 ms, server ≤ 50 % of one core (nothing lost)',
    measured: `p99 ${f(m.p99ms, 1)} ms, server ${f(m.serverCpuPercent, 1)} % of a core, ${f(m.lost)} lost (${f(m.settings.sessions)} sessions, ${f(m.settings.channels)} channels, ${f(m.settings.rate)} posts/s; load average ${m.runs.map((r: any) => f(r.loadAverage, 1)).join(', ')})`,
    ratio: Math.max(m.p99ms / 50, m.serverCpuPercent / 50),
    met: m.p99ms <= 50 && m.serverCpuPercent <= 50 && m.lost === 0,
  };
}

/** `server|host <code>` → count, summed over the member processes. */
function dropReasons(run: any): string {
  const sum: Record<string, number> = {};
  for (const byProcess of run.dropReasons ?? [])
    for (const [why, n] of Object.entries(byProcess)) sum[why] = (sum[why] ?? 0) + Number(n);
  const all = Object.entries(sum).sort((a, b) => b[1] - a[1]);
  return all.length ? all.map(([why, n]) => `${why} ${f(n)}`).join(', ') : 'none';
}

/** Markdown lines for the mix's results (none when the run had no mix). */
export function mixSection(m: any): string[] {
  if (!m) return [];
  const s = m.settings;
  const p = m.plan;
  const lines = [
    '## A realistic mix (bench/mix.ts)',
    '',
    `${f(s.sessions)} user sessions in ${f(s.channels)} channels by Zipf's law (largest ${p.largest.join(', ')}; median ${p.medianSize}; ${f(p.channelsOf5to20)} of 5–20), ${f(s.rate)} posts/s in all (∝ channel size), ${f(s.churnPerMinute * 100)} % of the sessions leave and come back each minute; ${f(p.hostedChannels)} channels (${f(p.hostedSessions)} members) read from ${s.hosts} real host peers over P2P, the rest through the server. Median of ${s.repeats} runs of ${s.seconds} s on one world (${m.setup.openSeconds} s to open every session).`,
    '',
    '| figure | median | each run |',
    '| --- | --: | --- |',
  ];
  const row = (name: string, med: number, runs: (r: any) => number, d = 0) =>
    lines.push(`| ${name} | ${f(med, d)} | ${m.runs.map((r: any) => f(runs(r), d)).join(', ')} |`);
  row('end-to-end p50, ms', m.p50ms, (r) => r.p50ms, 1);
  row('end-to-end p99, ms', m.p99ms, (r) => r.p99ms, 1);
  row('p99 through the server, ms', m.serverReadP99ms, (r) => r.serverReadP99ms, 1);
  row('p99 through a host, ms', m.hostReadP99ms, (r) => r.hostReadP99ms, 1);
  row('posts/s', m.postsPerSec, (r) => r.postsPerSec, 1);
  row('deliveries/s', m.deliveriesPerSec, (r) => r.deliveriesPerSec);
  row('lost (owed to members online throughout)', m.lost, (r) => r.lost);
  row('server CPU, % of one core', m.serverCpuPercent, (r) => r.serverCpuPercent, 1);
  row('server RSS at most, MB', m.serverRssMaxMB, (r) => r.serverRssMaxMB, 1);
  row('host peers CPU, % of one core (all)', m.hostsCpuPercent, (r) =>
    r.hostsCpuPercent.reduce((a: number, b: number) => a + b, 0),
  );
  row('member processes CPU, % of one core', m.membersCpuPercent, (r) => r.membersCpuPercent);
  // The members' own delay is in every end-to-end figure: a message waits for a busy member to
  // read it. Runs from before this row was added have no such figure (shown as –).
  const lag = (r: any) => Math.max(...(r.membersLagMaxMs ?? [NaN]));
  const lags = m.runs.map(lag).filter(Number.isFinite);
  row('member processes: event loop late at most, ms', lags.length ? median(lags) : NaN, lag);
  lines.push(
    '',
    `Server RSS: ${f(m.server.rssEmptyMB, 1)} MB started, ${f(m.server.rssIdleMB, 1)} MB with every session online (idle: ${f(m.server.idleCpuPercent, 1)} % CPU), ${f(m.server.rssEndMB, 1)} MB at the end. Churn per run: ${m.runs.map((r: any) => `${r.churned} left, ${r.returned} back (p50 ${f(r.returnP50ms)} ms), ${f(r.caughtUp)} caught up`).join('; ')}. Links dropped since the sessions opened: ${f(m.runs.at(-1).dropped)} (${f(m.runs.at(-1).reconnected)} sessions back, ${f(m.runs.at(-1).gaveUp)} given up), by the reason each member's link gave: ${dropReasons(m.runs.at(-1))} (E_HEARTBEAT_TIMEOUT: the host or server found the member silent past its timeout, as it finds a member whose event loop is late by more than that; marked (this end): the member found the other end silent, counted from its first request or ping after its last read). The last deliveries of each window came ${m.runs.map((r: any) => f(r.drainMs / 1000, 1)).join(', ')} s after it ended. Hosts accepted ${f(m.hostAccepted)} posts; the server's backup holds ${f(m.backedUp)} of them. Load average at each run's end: ${m.runs.map((r: any) => f(r.loadAverage, 1)).join(', ')} (2 cores, shared); time ready but waiting for a core (% of the window): server ${m.runs.map((r: any) => f(r.serverWaitPercent)).join(', ')}, member processes ${m.runs.map((r: any) => r.membersWaitPercent.map((x: number) => f(x)).join(' + ')).join(', ')}.`,
  );
  return lines;
}
