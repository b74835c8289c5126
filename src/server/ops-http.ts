/**
 * The server's HTTP port for operators (SPEC §11): `/health` (the process is alive), `/ready`
 * (its store and bus answer: send it peers), `/metrics` (Prometheus text) and `/stats` (the
 * counters the bench reads). Nothing here reads a request body or a secret; every answer is
 * built from counters and the readiness checks the server hands in.
 */
import http from 'node:http';
import type { Logger } from 'pino';
import { PROTOCOL_VERSION } from '../protocol/common.js';
import type { TrafficStats } from '../shared/framed-socket.js';
import type { MessageCounts } from './channel-service.js';
import type { ServerMetrics } from './metrics.js';

/**
 * One thing the server needs to serve peers (its store, its bus): `check` resolves when it
 * answers, and throws (or rejects) with why it does not.
 */
export interface ReadinessCheck {
  name: string;
  check: () => Promise<void> | void;
}

/** How long one readiness check may take before it counts as failed. */
export const READY_CHECK_TIMEOUT_MS = 2000;

/** What the operations port reads from its server. */
export interface OpsHttpDeps {
  metrics: ServerMetrics;
  checks: readonly ReadinessCheck[];
  /** True once the server is closing: `/ready` says so, so balancers send peers elsewhere. */
  draining(): boolean;
  connections(): number;
  trackerEntries(): number;
  traffic: TrafficStats;
  counts: MessageCounts;
  log: Logger;
  checkTimeoutMs?: number;
  /** The REST API's handler, which takes every `/api/` request (undefined until it is built). */
  api?: () => http.RequestListener | undefined;
}

/** The result of the readiness checks: every failing one, named, with why. */
export type Readiness =
  | { status: 'ready' }
  | { status: 'draining' }
  /** Only the names: why a check fails goes to the operational log, not to whoever asks. */
  | { status: 'unready'; failing: string[] };

/** Runs every check at once, each bounded by `timeoutMs`. */
export async function runReadiness(
  checks: readonly ReadinessCheck[],
  timeoutMs: number,
): Promise<{ name: string; error: string }[]> {
  const results = await Promise.all(
    checks.map(async ({ name, check }) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          Promise.resolve().then(check),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`no answer within ${timeoutMs} ms`)),
              timeoutMs,
            );
          }),
        ]);
        return undefined;
      } catch (err) {
        return { name, error: err instanceof Error ? err.message : String(err) };
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return results.filter((r) => r !== undefined);
}

/** How long one round of readiness checks answers every probe. */
const READY_CACHE_MS = 1000;

/** The HTTP server of the operations port (not yet listening). */
export function createOpsHttp(d: OpsHttpDeps): http.Server {
  const timeoutMs = d.checkTimeoutMs ?? READY_CHECK_TIMEOUT_MS;
  // A failing check is logged when it starts failing, not at every probe.
  let failingBefore = '';

  // One round of checks at a time, its answer kept for a second: a flood of probes on a public
  // operations port costs the store one query a second, not one per probe.
  let round:
    { at: number; done: boolean; failing: Promise<{ name: string; error: string }[]> } | undefined;
  const checked = () => {
    if (!round || (round.done && Date.now() - round.at > READY_CACHE_MS)) {
      const r = { at: Date.now(), done: false, failing: runReadiness(d.checks, timeoutMs) };
      void r.failing.finally(() => (r.done = true));
      round = r;
    }
    return round.failing;
  };

  const ready = async (): Promise<Readiness> => {
    if (d.draining()) return { status: 'draining' };
    const failing = await checked();
    const names = failing.map((f) => f.name);
    if (names.join(',') !== failingBefore) {
      if (failing.length > 0) d.log.warn({ failing }, 'not ready');
      else d.log.info('ready again');
      failingBefore = names.join(',');
    }
    if (d.draining()) return { status: 'draining' };
    return failing.length === 0 ? { status: 'ready' } : { status: 'unready', failing: names };
  };

  const route = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = req.url ?? '/';
    const get = req.method === 'GET' || req.method === 'HEAD';
    if (get && (url === '/health' || url === '/'))
      return json(res, 200, {
        status: 'ok',
        protocol: PROTOCOL_VERSION,
        connections: d.connections(),
        trackerEntries: d.trackerEntries(),
      });
    if (get && url === '/ready') {
      const r = await ready();
      return json(res, r.status === 'ready' ? 200 : 503, r);
    }
    if (get && url === '/metrics') {
      const text = await d.metrics.text();
      res.writeHead(200, { 'content-type': d.metrics.contentType });
      res.end(text);
      return;
    }
    if (get && url === '/stats')
      return json(res, 200, {
        traffic: d.traffic,
        messages: d.counts,
        connections: d.connections(),
      });
    json(res, 404, { error: { code: 'E_NOT_FOUND', message: `no route ${req.method} ${url}` } });
  };

  return http.createServer((req, res) => {
    const api = d.api?.();
    if (api && req.url?.startsWith('/api/')) return api(req, res);
    route(req, res).catch((err: unknown) => {
      d.log.error({ err, route: req.url }, 'operations endpoint failed');
      if (!res.headersSent)
        json(res, 500, { error: { code: 'E_INTERNAL', message: 'internal error' } });
      else res.destroy();
    });
  });
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
