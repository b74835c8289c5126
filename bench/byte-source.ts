/**
 * The files bench's anchors (bench/files.ts): the least a download over loopback can cost. Holds
 * the bytes of the file named on its command line in memory and writes them, whole, to every
 * connection, then ends it: a copy from one process to another, nothing framed or checked. In
 * plain TCP, or with `tls`, in TLS 1.3 as peers speak it (src/shared/tls.ts: same versions and
 * suites; the client pins the fingerprint the ready line prints). Prints `ready tcp=IP:PORT …`
 * like hchat does.
 */
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { TLS_VERSIONS, selfSignedIdentity } from '../src/shared/tls.js';

const data = fs.readFileSync(process.argv[2]!);
const secure = process.argv[3] === 'tls';
const identity = secure ? selfSignedIdentity('byte-source') : undefined;

const send = (s: net.Socket) => {
  s.on('error', () => undefined);
  s.end(data);
};
const server = identity
  ? tls.createServer({ key: identity.key, cert: identity.cert, ...TLS_VERSIONS }, send)
  : net.createServer(send);
server.listen(0, '127.0.0.1', () => {
  const a = server.address() as net.AddressInfo;
  const fp = identity ? ` fingerprint=${identity.fingerprint}` : '';
  console.log(`ready tcp=${a.address}:${a.port} bytes=${data.length}${fp}`);
});
process.on('SIGTERM', () => process.exit(0));
