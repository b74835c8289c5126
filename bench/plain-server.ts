/**
 * bench/ only: Hybrid Chat's central server with its framed port in plain TCP
 * (`ServerOptions.benchPlaintext`), so that `npm run bench` can measure what TLS costs against
 * the same server in the same run. No flag of `hchat` reaches that option, by design; this
 * launcher is the only way in. It takes the `--port`, `--http-port`, `--data` and limit flags the
 * bench gives `bin/hchat server` (bench/harness.ts BENCH_SERVER_LIMITS), with the CLI's defaults
 * for the rest, and prints the same ready line:
 *
 *   node --import tsx bench/plain-server.ts --port 0 --http-port 0 --data DIR [limits…]
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

// The compiled server that bin/hchat runs, not src/ through tsx: both sides of the comparison
// run the same JavaScript, so TLS is the only difference.
const dist = pathToFileURL(path.resolve(import.meta.dirname, '..', 'dist', 'server', 'server.js'));
const { CentralServer } = (await import(dist.href)) as typeof import('../src/server/server.js');

/** The limit flags bench/harness.ts passes, by the ServerOptions field each sets. */
const LIMITS = {
  'max-visitors-per-address': 'maxVisitorsPerAddress',
  'max-registrations-per-address': 'maxRegistrationsPerAddress',
  'max-tracker-entries-per-address': 'maxTrackerEntriesPerAddress',
  'max-unauthenticated-per-address': 'maxUnauthenticatedPerAddress',
  'max-unauthenticated': 'maxUnauthenticated',
  'posts-per-second': 'postsPerSecond',
  'post-burst': 'postBurst',
} as const;

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'http-port': { type: 'string', default: '0' },
    data: { type: 'string' },
    ...Object.fromEntries(Object.keys(LIMITS).map((k) => [k, { type: 'string' as const }])),
  },
});
if (!values.data) throw new Error('bench/plain-server.ts: --data is required');
const given = values as Record<string, string | undefined>;
const limits = Object.fromEntries(
  Object.entries(LIMITS).flatMap(([flag, field]) =>
    given[flag] === undefined ? [] : [[field, Number(given[flag])]],
  ),
);
// As `hchat server` passes it (HCHAT_VERIFY_THREADS reaches both servers the same way).
const verifyThreads = process.env.HCHAT_VERIFY_THREADS
  ? Number(process.env.HCHAT_VERIFY_THREADS)
  : undefined;

const server = await CentralServer.start({
  host: '127.0.0.1',
  port: Number(values.port),
  httpPort: Number(values['http-port']),
  dataDir: path.resolve(String(values.data)),
  heartbeatMs: 5000,
  timeoutMs: 15000,
  verifyThreads,
  ...limits,
  benchPlaintext: true,
});
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void server.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
console.log(
  `ready tcp=${server.tcpAddress} http=${server.httpUrl} fingerprint=${server.fingerprint}`,
);
