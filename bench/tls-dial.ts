/**
 * What a dialled link's TLS context costs (`node --import tsx bench/tls-dial.ts`): BENCH_DIALS
 * (400) TLS 1.3 connections to a local listener (TLS_VERSIONS and a self-signed identity, as shared/tls.ts createTlsServer listens, in this
 * process),
 * each with a context made for it (as every link did before `dialContext`) and with the one
 * shared context; CPU µs per connection, client and listener together, BENCH_REPEATS (3) rounds
 * alternating, medians.
 */
import tls from 'node:tls';
import { TLS_VERSIONS, dialContext, selfSignedIdentity } from '../src/shared/tls.js';
import { median } from './stats.js';

const DIALS = Number(process.env.BENCH_DIALS ?? 400);
const REPEATS = Math.max(1, Number(process.env.BENCH_REPEATS ?? 3));

const id = selfSignedIdentity('bench');
const server = tls.createServer({ key: id.key, cert: id.cert, ...TLS_VERSIONS }, (s) => s.end());
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const port = (server.address() as { port: number }).port;

async function dials(context: () => tls.SecureContext): Promise<number> {
  const before = process.cpuUsage();
  for (let i = 0; i < DIALS; i++)
    await new Promise<void>((resolve, reject) => {
      const s = tls.connect(
        { host: '127.0.0.1', port, rejectUnauthorized: false, secureContext: context() },
        () => {
          s.destroy();
          resolve();
        },
      );
      s.on('error', reject);
    });
  const used = process.cpuUsage(before);
  return (used.user + used.system) / DIALS;
}

const fresh: number[] = [];
const shared: number[] = [];
for (let r = 0; r < REPEATS; r++) {
  fresh.push(await dials(() => tls.createSecureContext(TLS_VERSIONS)));
  shared.push(await dials(dialContext));
}
server.close();
const round = (xs: number[]) => xs.map(Math.round);
console.log(
  JSON.stringify({
    dials: DIALS,
    cpuUsPerDialNewContext: Math.round(median(fresh)),
    cpuUsPerDialShared: Math.round(median(shared)),
    runs: { newContext: round(fresh), shared: round(shared) },
  }),
);
