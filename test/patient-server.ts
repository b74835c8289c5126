/**
 * A server end that never times anyone out (`node --import tsx test/patient-server.ts`), written
 * from PROTOCOL.md §3.2: TLS 1.3, its hello (heartbeatMs 1000, timeoutMs 3000), a `pong` for every
 * `ping`, `reflect` answered; nothing else, and nothing unasked. Prints `ready <port>
 * <fingerprint>`. Its own process, so that a test may hold its own thread while this one reads.
 */
import crypto from 'node:crypto';
import tls from 'node:tls';
import { FrameDecoder, encodeFrame } from '../src/protocol/frame.js';
import { TLS_VERSIONS, selfSignedIdentity } from '../src/shared/tls.js';

const id = selfSignedIdentity('patient');
const signing = crypto.generateKeyPairSync('ed25519').publicKey;
const server = tls.createServer({ key: id.key, cert: id.cert, ...TLS_VERSIONS }, (s) => {
  s.on('error', () => undefined);
  const d = new FrameDecoder();
  s.write(
    encodeFrame({
      t: 'hello',
      v: 4,
      role: 'server',
      heartbeatMs: 1000,
      timeoutMs: 3000,
      maxFrame: 1 << 20,
      publicKey: signing.export({ type: 'spki', format: 'der' }).toString('base64'),
    }),
  );
  s.on('data', (b) => {
    d.feed(b);
    for (let f = d.next(); f; f = d.next()) {
      if (f.t === 'ping') s.write(encodeFrame({ t: 'pong' }));
      else if (f.t === 'req' && f.op === 'reflect')
        s.write(encodeFrame({ t: 'res', id: f.id, body: { ip: '127.0.0.1', port: s.remotePort } }));
    }
  });
});
server.listen(0, '127.0.0.1', () => {
  console.log(`ready ${(server.address() as { port: number }).port} ${id.fingerprint}`);
});
