/**
 * The bench's Markdown summary with SVG plots (deliveries/s and p99 latency versus members), made
 * from a results file: `bench/results/summary.md`, `deliveries.svg`, `p99.svg`. `npm run bench`
 * writes them after each run; `node --import tsx bench/report.ts [results.json]` remakes them.
 */
import fs from 'node:fs';
import path from 'node:path';

interface Result {
  deliveriesPerSec: number;
  p50ms: number;
  p99ms: number;
  maxMs: number;
  lost: number;
  serverCpuPerDeliveryUs: number;
  serverRssMB: number;
}

interface Row {
  scenario: string;
  members: number;
  rate: number | null;
  hchat: Result;
  relay: Result;
  anchors: Array<{ name: string; result?: Result; error?: string }>;
}

const COLORS = ['#5865f2', '#e67e22', '#c0392b', '#27ae60', '#7f8c8d'];

/** A line chart: one series per server, members on x (equally spaced), value on y. */
function chart(
  title: string,
  yLabel: string,
  xs: number[],
  series: Array<{ name: string; values: Array<number | undefined> }>,
  log: boolean,
): string {
  const W = 640;
  const H = 360;
  const L = 70;
  const R = 170;
  const T = 40;
  const B = 50;
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== undefined && v > 0));
  const max = Math.max(...all, 1);
  const min = log ? Math.max(Math.min(...all), 0.1) : 0;
  const y = (v: number) =>
    log
      ? T +
        (H - T - B) *
          (1 - (Math.log10(v) - Math.log10(min)) / (Math.log10(max) - Math.log10(min) || 1))
      : T + (H - T - B) * (1 - v / max);
  const x = (i: number) => L + ((W - L - R) * (i + 0.5)) / xs.length;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2 - R / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${title}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#333"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#333"/>`,
    `<text x="16" y="${(H - B + T) / 2}" transform="rotate(-90 16 ${(H - B + T) / 2})" text-anchor="middle">${yLabel}</text>`,
    `<text x="${(W - R + L) / 2}" y="${H - 12}" text-anchor="middle">online members</text>`,
  ];
  const ticks = log
    ? Array.from({ length: 8 }, (_, k) => 10 ** (Math.floor(Math.log10(min)) + k)).filter(
        (t) => t >= min && t <= max * 1.0001,
      )
    : [0, 0.25, 0.5, 0.75, 1].map((f) => f * max);
  for (const t of ticks) {
    out.push(`<line x1="${L - 4}" y1="${y(t)}" x2="${W - R}" y2="${y(t)}" stroke="#eee"/>`);
    out.push(
      `<text x="${L - 6}" y="${y(t) + 4}" text-anchor="end">${t >= 1000 ? `${Math.round(t / 1000)}k` : +t.toPrecision(2)}</text>`,
    );
  }
  xs.forEach((m, i) =>
    out.push(`<text x="${x(i)}" y="${H - B + 16}" text-anchor="middle">${m}</text>`),
  );
  series.forEach((s, k) => {
    const color = COLORS[k % COLORS.length];
    const pts = s.values
      .map((v, i) => (v !== undefined && v > 0 ? `${x(i)},${y(v)}` : undefined))
      .filter(Boolean);
    if (pts.length > 1)
      out.push(
        `<polyline points="${pts.join(' ')}" fill="none" stroke="${color}" stroke-width="2"/>`,
      );
    for (const p of pts) {
      const [px, py] = p!.split(',');
      out.push(`<circle cx="${px}" cy="${py}" r="3.5" fill="${color}"/>`);
    }
    out.push(`<rect x="${W - R + 16}" y="${T + k * 20}" width="12" height="12" fill="${color}"/>`);
    out.push(`<text x="${W - R + 34}" y="${T + k * 20 + 11}">${s.name}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

const f = (n: number | undefined, d = 0) =>
  n === undefined || !Number.isFinite(n)
    ? '–'
    : n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

/** Writes summary.md and the two plots next to the results file. */
export function writeReport(resultsFile: string): string {
  const data = JSON.parse(fs.readFileSync(resultsFile, 'utf8'));
  const rows = data.results as Row[];
  const dir = path.dirname(resultsFile);
  const names = ['Hybrid Chat', ...(rows[0]?.anchors.map((a) => a.name) ?? []), 'Node relay'];
  const pick = (r: Row): Array<Result | undefined> => [
    r.hchat,
    ...r.anchors.map((a) => a.result),
    r.relay,
  ];
  const members = [...new Set(rows.map((r) => r.members))].sort((a, b) => a - b);
  const byMembers = (rate: number | null) =>
    members.map((m) => rows.find((r) => r.members === m && r.rate === rate));
  const full = byMembers(null);
  const thousand = byMembers(1000);
  const series = (rs: Array<Row | undefined>, fig: (r: Result) => number) =>
    names.map((name, k) => ({
      name,
      values: rs.map((r) => (r ? pick(r)[k] && fig(pick(r)[k]!) : undefined)),
    }));
  fs.writeFileSync(
    path.join(dir, 'deliveries.svg'),
    chart(
      'Full speed: deliveries per second',
      'deliveries/s',
      members,
      series(full, (r) => r.deliveriesPerSec),
      false,
    ),
  );
  fs.writeFileSync(
    path.join(dir, 'p99.svg'),
    chart(
      '1,000 messages/s: p99 latency',
      'p99 latency, ms (log)',
      members,
      series(thousand, (r) => r.p99ms),
      true,
    ),
  );
  const lines = [
    `# Bench summary (${data.date})`,
    '',
    `Machine: ${data.machine.cpus} cores, ${data.machine.model}, Node ${data.machine.node}. ` +
      `Raw figures: [${path.basename(resultsFile)}](${path.basename(resultsFile)}); how they are made: [bench/README.md](../README.md).`,
    '',
    '![deliveries per second versus members](deliveries.svg) ![p99 latency versus members](p99.svg)',
    '',
    '## Fan-out',
    '',
    `| scenario | figure | ${names.join(' | ')} |`,
    `|---|---|${names.map(() => '---:').join('|')}|`,
  ];
  for (const r of rows) {
    const rs = pick(r);
    const cells = (fig: (x: Result) => number, d: number) =>
      rs.map((x) => (x ? f(fig(x), d) : 'did not run')).join(' | ');
    lines.push(`| ${r.scenario} | deliveries/s | ${cells((x) => x.deliveriesPerSec, 0)} |`);
    lines.push(
      `| | p50 / p99 ms | ${rs.map((x) => (x ? `${f(x.p50ms, 1)} / ${f(x.p99ms, 1)}` : '–')).join(' | ')} |`,
    );
    lines.push(`| | server µs/delivery | ${cells((x) => x.serverCpuPerDeliveryUs, 2)} |`);
    lines.push(`| | not delivered in the window | ${cells((x) => x.lost, 0)} |`);
  }
  if (data.slowMember) {
    const m = data.slowMember;
    lines.push('', '## A member that stops reading', '');
    lines.push(
      `- 1 of 100 members stops reading for ${m.seconds} s at 1,000 messages/s: the others' p50/p99 ${m.othersBefore.p50ms}/${m.othersBefore.p99ms} ms before, ${m.othersDuring.p50ms}/${m.othersDuring.p99ms} ms during; server RSS ${m.serverRssBeforeMB} MB before, at most ${m.serverRssMaxDuringMB} MB during, ${m.serverRssEndMB} MB at the end; the slow member: ${m.slowMember}.`,
    );
  }
  if (data.capacity) {
    lines.push('', '## Server capacity', '');
    const idle = data.capacity.idle;
    lines.push(
      `- ${f(idle.sessions)} idle sessions: ${f(idle.rssPerSessionKB, 2)} KB resident per session, ${f(idle.idleCpuPercent, 1)} % CPU while idle.`,
    );
    for (const h of data.capacity.history)
      lines.push(
        `- History page of 50 in a channel of ${f(h.messages)} messages: p50 ${h.p50ms} ms, p99 ${h.p99ms} ms (SQLite alone: p99 ${h.sqliteP99ms} ms).`,
      );
  }
  const md = path.join(dir, 'summary.md');
  fs.writeFileSync(md, lines.join('\n') + '\n');
  return md;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = path.resolve(import.meta.dirname, 'results');
  const file =
    process.argv[2] ??
    path.join(
      dir,
      fs
        .readdirSync(dir)
        .filter((n) => n.endsWith('.json'))
        .sort()
        .pop()!,
    );
  console.log(`written ${writeReport(file)}`);
}
