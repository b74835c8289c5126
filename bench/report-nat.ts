/** The summary's section for bench/nat.ts (NAT traversal, issue 18). */

const KINDS = ['direct', 'punched', 'relayed'] as const;

/** A figure to `d` decimals, '–' when absent (the direct row has no ratio to itself). */
const n = (v: unknown, d = 1) => (typeof v === 'number' ? v.toFixed(d) : '–');

/** A table with a row per link: `cells` gives a link's figures (the name comes first). */
function table(head: string[], cells: (kind: (typeof KINDS)[number]) => string[]): string[] {
  return [
    `| link | ${head.join(' | ')} |`,
    `|---|${head.map(() => '---:').join('|')}|`,
    ...KINDS.map((k) => `| ${k} | ${cells(k).join(' | ')} |`),
  ];
}

/** Markdown lines for the NAT results (none when the run had no NAT part). */
export function natSection(nat: any): string[] {
  if (!nat) return [];
  const { setup, chat, bulk, stream } = nat;
  return [
    '## NAT traversal (bench/nat.ts)',
    '',
    `Alice hosts a channel behind a cone NAT; a member at her home dials her (direct), one behind another cone NAT punches a hole (punched), one behind a symmetric NAT goes through the server's relay (relayed). Real \`bin/hchat\` processes in network namespaces; ratios are to the direct link of the same run (${nat.seconds} s in all).`,
    ...(setup ? ['', ...setupLines(setup)] : []),
    ...(chat ? ['', ...chatLines(chat)] : []),
    ...(bulk ? ['', ...bulkLines(bulk)] : []),
    ...(stream ? ['', ...streamLines(stream)] : []),
  ];
}

function setupLines(setup: any): string[] {
  return [
    `Link setup, from the member's decision to dial to its TLS link open, ${setup.setups} times each (whole ms; p99 of 20 is the largest):`,
    '',
    ...table(['p50 ms', 'p99 ms', 'p50 / direct', 'p99 / direct', 'went another way'], (k) => {
      const s = setup[k];
      return [n(s.p50Ms), n(s.p99Ms), n(s.p50ToDirect, 2), n(s.p99ToDirect, 2), `${s.otherVia}`];
    }),
    '',
    `A direct dial is dated by its SYN (tcpdump), a punch or relay by its own log record; dating a dial by the \`close\` record + the 2 s retry instead would add ${n(setup.retryTimerLateMs.p50, 0)} ms at the median, up to ${n(setup.retryTimerLateMs.max, 0)} ms.`,
  ];
}

function chatLines(chat: any): string[] {
  return [
    `Chat, ${chat.posts} posts a member, one at a time, the members taking turns; medians of ${chat.runs} runs: until the host's event stream shows the post (arrival), and the post's answer:`,
    '',
    ...table(
      [
        'arrival p50 / p99 ms',
        'answer p50 / p99 ms',
        'arrival p50 / direct',
        'arrival p99 / direct',
        'added p50 ms',
      ],
      (k) => {
        const c = chat[k];
        return [
          `${n(c.seenP50Ms, 2)} / ${n(c.seenP99Ms, 2)}`,
          `${n(c.answerP50Ms, 2)} / ${n(c.answerP99Ms, 2)}`,
          n(c.seenP50ToDirect, 2),
          n(c.seenP99ToDirect, 2),
          n(c.seenP50AddedMs, 2),
        ];
      },
    ),
  ];
}

function bulkLines(bulk: any): string[] {
  return [
    `Bulk: each member downloads a ${n(bulk.fileBytes / 2 ** 20, 0)} MiB file only alice holds, once a run, ${bulk.runs} runs (medians):`,
    '',
    ...table(['MiB/s', '/ direct', 'server CPU ms per MiB of file', 'ms of each run'], (k) => {
      const b = bulk[k];
      return [n(b.MiBps), n(b.MiBpsToDirect, 2), n(b.serverCpuMsPerMiB, 2), b.msRuns.join(', ')];
    }),
    '',
    `The relay passed ${n(bulk.relayed.relayBytesPerFileByte, 3)} bytes per byte of the file (both ways: base64 chunks in TLS records, requests) at ${n(bulk.relayed.serverCpuMsPerRelayedMiB, 2)} ms of server CPU per MiB relayed.`,
  ];
}

const VIEWERS = ['lan', 'punched', 'symmetric', 'udpBlocked'] as const;
const VIEWER_NAMES: Record<(typeof VIEWERS)[number], string> = {
  lan: 'LAN (her home)',
  punched: 'cone NAT: punched UDP',
  symmetric: 'symmetric NAT: media tunnel',
  udpBlocked: 'UDP blocked: media tunnel',
};

function streamLines(stream: any): string[] {
  const r = stream.relay;
  return [
    `Livestream: alice streams synthetic video at ${stream.bitrateKbps} kbit/s, ${stream.fps} fps (she sent ${n(stream.sentFps)} frames a second), to four viewers, each a child of hers; ${stream.seconds} s windows, medians of ${stream.runs} runs, ratios to the LAN viewer of the same run. Latency is capture to whole frame on the viewer's \`/play\` socket by the bench's clock (one kernel clock; ±0.5 ms a frame), and as the viewer's stats give it (whole ms, every frame since it began watching):`,
    '',
    `| viewer | latency p50 / p99 ms | stats p50 / p99 ms | p50 / LAN | p99 / LAN | added p50 ms | complete of sent | kbit/s | kbit/s / LAN |`,
    `|---|---:|---:|---:|---:|---:|---:|---:|---:|`,
    ...VIEWERS.map((k) => {
      const v = stream.viewers[k];
      return `| ${VIEWER_NAMES[k]} | ${n(v.latencyP50Ms, 2)} / ${n(v.latencyP99Ms, 2)} | ${n(v.statsLatencyP50Ms, 0)} / ${n(v.statsLatencyP99Ms, 0)} | ${n(v.latencyP50ToLan, 2)} | ${n(v.latencyP99ToLan, 2)} | ${n(v.latencyP50AddedMs, 2)} | ${n(v.completeOfSent, 4)} | ${n(v.kbps, 0)} | ${n(v.kbpsToLan, 2)} |`;
    }),
    '',
    `The relay passed ${n(r.bytesPerS / 1000, 1)} kB/s of media for the two tunnels (${n(r.symmetricBytesPerS / 1000, 1)} and ${n(r.udpBlockedBytesPerS / 1000, 1)} kB/s each over its life), ${n(r.bytesPerStreamByte, 3)} bytes per byte of the frames delivered, at ${n(r.serverCpuMsPerMiB, 1)} ms of server CPU per MiB relayed (${n(r.serverCpuMsPerMiBLessIdle, 1)} less the idle server's ${n(r.serverIdleCpuMsPerS, 1)} ms/s).`,
  ];
}
