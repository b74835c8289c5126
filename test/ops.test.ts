/**
 * The operations port of a real `bin/hchat server` (SPEC §11): /health, /ready (draining on
 * SIGTERM), /metrics in Prometheus text whose counters move by exactly what a client did, and
 * the operational log on stderr (JSON lines, no secrets).
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ServerLink } from '../src/peer/server-link.js';
import { ServerTrust } from '../src/peer/server-trust.js';
import { CentralServer } from '../src/server/server.js';
import { spawnServer, type HchatProcess } from './processes.js';
import { rawSession, signed, tempDir, waitFor } from './testnet.js';
import { randomUUID } from 'node:crypto';
import { onTestFinished } from 'vitest';

/** One sample of a Prometheus text exposition. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/**
 * A strict parser of the text format (0.0.4): every line is a HELP, a TYPE or a sample of a
 * family whose TYPE came first; label values are quoted with \\, \" and \n escapes; values are
 * floats, +Inf, -Inf or NaN. Throws on anything else.
 */
function parseProm(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  expect(text.endsWith('\n')).toBe(true);
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue;
    let m = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (m) {
      if (!NAME.test(m[2]!)) throw new Error(`bad name: ${line}`);
      if (m[1] === 'TYPE') {
        if (!TYPES.has(m[3]!) || types.has(m[2]!)) throw new Error(`bad TYPE: ${line}`);
        types.set(m[2]!, m[3]!);
      }
      continue;
    }
    if (line.startsWith('#')) throw new Error(`bad comment: ${line}`);
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/.exec(line);
    if (!m) throw new Error(`bad sample: ${line}`);
    const labels: Record<string, string> = {};
    let rest = m[3] ?? '';
    while (rest !== '') {
      const l = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/.exec(rest);
      if (!l) throw new Error(`bad labels: ${line}`);
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      rest = rest.slice(l[0].length);
    }
    const raw = m[4]!;
    // Values as Go's ParseFloat reads them, which Prometheus uses: NaN and Inf in any case
    // (prom-client writes `Nan`, for a gauge with no sample yet such as the event loop's lag).
    const value = /^\+?inf$/i.test(raw) ? Infinity : /^-inf$/i.test(raw) ? -Infinity : Number(raw);
    if (!/^nan$/i.test(raw) && Number.isNaN(value)) throw new Error(`bad value: ${line}`);
    const name = m[1]!;
    const family = [name, name.replace(/_(bucket|sum|count|total|created)$/, '')].find((n) =>
      types.has(n),
    );
    if (!family) throw new Error(`sample before its TYPE: ${line}`);
    samples.push({ name, labels, value });
  }
  return { types, samples };
}

/** The value of the one sample with this name and these labels (0 when absent). */
function value(s: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = s.filter(
    (x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v),
  );
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: several samples`);
  return found[0]?.value ?? 0;
}

async function scrape(http: string): Promise<Sample[]> {
  const res = await fetch(new URL('/metrics', http));
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const { types, samples } = parseProm(await res.text());
  expect(types.get('hchat_request_duration_seconds')).toBe('histogram');
  expect(types.get('hchat_messages_stored_total')).toBe('counter');
  expect(types.get('hchat_connections')).toBe('gauge');
  return samples;
}

async function getJson(http: string, route: string): Promise<{ status: number; body: any }> {
  const res = await fetch(new URL(route, http));
  return { status: res.status, body: await res.json() };
}

/** A raw protocol client of a spawned server, closed after the test. */
async function link(s: HchatProcess): Promise<ServerLink> {
  const [host, port] = s.ready.tcp!.split(':') as [string, string];
  const l = new ServerLink({
    host,
    port: Number(port),
    trust: ServerTrust.pinned(host, Number(port), s.ready.fingerprint!),
    reconnect: false,
  });
  await l.start();
  onTestFinished(() => l.stop());
  return l;
}

/** The server's operational log lines (all of its stderr), parsed. */
function opsLines(s: HchatProcess): Record<string, unknown>[] {
  return s
    .stderr()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('operations port', () => {
  it('answers /health, /ready and /metrics, and the counters move by what happened', async () => {
    const s = await spawnServer(path.join(tempDir(), 's'), { extra: ['--log-level', 'info'] });
    const http = s.ready.http!;
    expect(await getJson(http, '/health')).toMatchObject({
      status: 200,
      body: { status: 'ok', connections: 0, trackerEntries: 0 },
    });
    expect(await getJson(http, '/ready')).toEqual({ status: 200, body: { status: 'ready' } });
    expect(await getJson(http, '/nowhere')).toEqual({
      status: 404,
      body: { error: { code: 'E_NOT_FOUND', message: 'no route GET /nowhere' } },
    });
    const before = await scrape(http);
    expect(value(before, 'hchat_messages_stored_total', { via: 'post' })).toBe(0);
    expect(value(before, 'process_resident_memory_bytes')).toBeGreaterThan(0);

    const password = 'secret-Pw-7f3a91';
    const poster = await link(s);
    await poster.request('register', { username: 'alice', password });
    await expect(
      rawSession(poster, { username: 'alice', password: 'wrong-Pw-c0ffee' }),
    ).rejects.toMatchObject({ code: 'E_BAD_CREDENTIALS' });
    const alice = await rawSession(poster, { username: 'alice', password });
    const channelId = randomUUID();
    await poster.request('channel_create', { id: channelId, name: 'ops', allowVisitors: false });
    // A second session of alice hears the posts (the poster's own session does not).
    const reader = await link(s);
    const second = await rawSession(reader, { username: 'alice', password });
    await reader.request('subscribe', { channelIds: [channelId] });
    let heard = 0;
    reader.on('event', (name: string) => name === 'message' && heard++);

    const posts = Array.from({ length: 5 }, (_, i) =>
      signed(alice, { channelId, ts: Date.now(), lc: i, text: `ops test message ${i}` }),
    );
    for (const message of posts) await poster.request('post', { message });
    await poster.request('post', { message: posts[0]! }); // again: a duplicate, not stored
    await expect(
      poster.request('post', { message: { ...posts[1]!, text: 'altered' } }),
    ).rejects.toMatchObject({ code: 'E_BAD_SIGNATURE' });
    await waitFor(() => heard === 5, 5000, 'five pushes');

    const after = await scrape(http);
    const delta = (name: string, labels: Record<string, string> = {}) =>
      value(after, name, labels) - value(before, name, labels);
    expect(delta('hchat_messages_stored_total', { via: 'post' })).toBe(5);
    expect(delta('hchat_messages_stored_total', { via: 'forward' })).toBe(0);
    expect(delta('hchat_messages_duplicate_total')).toBe(1);
    expect(delta('hchat_pushes_total', { type: 'message' })).toBe(5);
    expect(delta('hchat_frames_received_total', { op: 'post' })).toBe(7);
    expect(delta('hchat_frames_received_total', { op: 'login' })).toBe(3);
    expect(delta('hchat_errors_total', { code: 'E_BAD_SIGNATURE' })).toBe(1);
    expect(delta('hchat_errors_total', { code: 'E_BAD_CREDENTIALS' })).toBe(1);
    expect(delta('hchat_request_duration_seconds_count', { op: 'post' })).toBe(7);
    expect(delta('hchat_request_duration_seconds_count', { op: 'login' })).toBe(3);
    expect(value(after, 'hchat_request_duration_seconds_bucket', { op: 'post', le: '+Inf' })).toBe(
      7,
    );
    expect(value(after, 'hchat_request_duration_seconds_sum', { op: 'post' })).toBeGreaterThan(0);
    expect(value(after, 'hchat_store_batch_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(value(after, 'hchat_connections', { role: 'peer' })).toBe(2);
    expect(value(after, 'hchat_connections', { role: 'visitor' })).toBe(0);
    expect(value(after, 'hchat_connections', { role: 'anonymous' })).toBe(0);
    expect(value(after, 'hchat_sessions')).toBe(2);
    expect(value(after, 'hchat_tracker_entries')).toBe(0);
    expect(value(after, 'hchat_queue_depth', { queue: 'post_commit' })).toBe(0);
    expect(value(after, 'hchat_queue_depth', { queue: 'scrypt_login' })).toBe(0);
    expect(value(after, 'hchat_connection_buffered_bytes')).toBeGreaterThanOrEqual(0);
    // /stats answers as before, its post counter now counting.
    const stats = await getJson(http, '/stats');
    expect(stats.body.messages).toMatchObject({ posted: 5, forwarded: 0, duplicates: 1 });
    expect(stats.body.connections).toBe(2);

    // The operational log: JSON lines with level, time and msg, and no secret of the test's.
    s.proc.kill('SIGTERM');
    expect(await s.exited).toBe(0);
    const lines = opsLines(s);
    for (const l of lines) {
      expect(typeof l.level).toBe('number');
      expect(typeof l.time).toBe('number');
      expect(typeof l.msg).toBe('string');
    }
    expect(lines.find((l) => l.msg === 'server started')).toMatchObject({
      store: 'SqliteServerStore',
      bus: 'LocalBus',
      tcp: s.ready.tcp,
    });
    expect(lines.map((l) => l.msg)).toEqual(
      expect.arrayContaining(['shutting down', 'server stopped']),
    );
    expect(s.stdout()).toBe(
      `ready tcp=${s.ready.tcp} http=${http} fingerprint=${s.ready.fingerprint}\n`,
    );
    const out = s.output();
    for (const secret of [password, 'wrong-Pw-c0ffee', alice.token, second.token, alice.cert])
      expect(out).not.toContain(secret);
    for (const p of posts) expect(out).not.toContain(p.text);
  });

  it('answers /ready with 503 "draining" from SIGTERM until it closes (--drain-ms)', async () => {
    const s = await spawnServer(path.join(tempDir(), 's'), {
      extra: ['--drain-ms', '3000'],
      env: { HCHAT_LOG_LEVEL: 'warn' },
    });
    const http = s.ready.http!;
    const peer = await link(s);
    await peer.request('register', { username: 'bob', password: 'bob-pw-123' });
    expect((await getJson(http, '/ready')).status).toBe(200);
    s.proc.kill('SIGTERM');
    await waitFor(async () => (await getJson(http, '/ready')).status === 503, 2000, 'draining');
    expect(await getJson(http, '/ready')).toEqual({ status: 503, body: { status: 'draining' } });
    // Still alive and serving its peers while it drains.
    expect((await getJson(http, '/health')).status).toBe(200);
    await peer.request('register', { username: 'carol', password: 'carol-pw-123' });
    expect(await s.exited).toBe(0);
    // warn and up only: the info lines (start, shutdown) are not written.
    expect(opsLines(s)).toEqual([]);
  });

  it('names each failing readiness check, a hung one after its timeout', async () => {
    const server = await CentralServer.start({
      host: '127.0.0.1',
      port: 0,
      httpPort: 0,
      dataDir: path.join(tempDir(), 's'),
      readiness: [
        { name: 'nats', check: () => Promise.reject(new Error('connection refused 10.0.0.9')) },
        { name: 'slow', check: () => new Promise<void>(() => undefined) },
        { name: 'fine', check: () => undefined },
      ],
    });
    onTestFinished(() => server.close());
    const t0 = Date.now();
    const r = await getJson(server.httpUrl, '/ready');
    expect(r).toEqual({ status: 503, body: { status: 'unready', failing: ['nats', 'slow'] } });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
    // Why it fails is for the operator's log, not for whoever asks.
    expect(JSON.stringify(r.body)).not.toContain('10.0.0.9');
  });
});
