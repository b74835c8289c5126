/**
 * bench/ only: a Hybrid Chat peer whose livestream media travels between peers in plain RTP/RTCP
 * (`PeerOptions.benchPlainMedia`), so that `npm run bench` can measure what SRTP costs against the
 * same peer in the same run. No flag or variable of `hchat` reaches that option, by design; this
 * launcher is the only way in. It takes the flags bench/stream.ts gives `bin/hchat peer`, with the
 * CLI's defaults for the rest, and prints the same ready line:
 *
 *   node --import tsx bench/plain-peer.ts --server HOST:PORT#FINGERPRINT --data DIR
 *     [--stream-fanout K] [--udp-loss RATE]
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

// The compiled peer that bin/hchat runs, not src/ through tsx: both sides of the comparison run
// the same JavaScript, so SRTP is the only difference.
const dist = (p: string) => pathToFileURL(path.resolve(import.meta.dirname, '..', 'dist', p)).href;
const { startPeer } = (await import(
  dist('peer/index.js')
)) as typeof import('../src/peer/index.js');
const { parseServer, parseRate, parseFanout } = (await import(
  dist('cli/options.js')
)) as typeof import('../src/cli/options.js');

const { values } = parseArgs({
  options: {
    server: { type: 'string' },
    data: { type: 'string' },
    'stream-fanout': { type: 'string', default: '4' },
    'udp-loss': { type: 'string', default: '0' },
  },
});
if (!values.server || !values.data)
  throw new Error('bench/plain-peer.ts: --server and --data are required');
const server = parseServer(values.server);

const peer = await startPeer({
  serverHost: server.host,
  serverPort: server.port,
  serverFingerprint: server.fingerprint,
  host: '127.0.0.1',
  p2pPort: 0,
  udpPort: 0,
  uiPort: 0,
  dataDir: path.resolve(values.data),
  streamFanout: parseFanout(values['stream-fanout']),
  udpLoss: parseRate(values['udp-loss']),
  benchPlainMedia: true,
});
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void peer.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
console.log(`ready ui=${peer.uiUrl} p2p=${peer.p2p} udp=${peer.udp}`);
