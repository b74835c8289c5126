/**
 * The bench's anchor: the least a fan-out server in Node can do. It speaks the same framing,
 * forwards every frame a client sends to every other client (the same bytes, no parsing beyond
 * the length), acknowledges each to its sender, and stores nothing. Run as its own process;
 * prints `ready tcp=IP:PORT` like hchat does.
 */
import net from 'node:net';
import { encodeFrame } from '../src/protocol/frame.js';

const clients = new Set<net.Socket>();
const ack = encodeFrame({ t: 'res', id: 0, body: {} });

const server = net.createServer((s) => {
  s.setNoDelay(true);
  clients.add(s);
  let buf: Buffer = Buffer.alloc(0);
  s.on('data', (chunk: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    let off = 0;
    while (buf.length - off >= 4) {
      const len = buf.readUInt32BE(off);
      if (buf.length - off < 4 + len) break;
      const frame = buf.subarray(off, off + 4 + len);
      for (const c of clients) {
        if (c === s) continue;
        c.cork();
        c.write(frame);
        process.nextTick(() => c.uncork());
      }
      s.write(ack);
      off += 4 + len;
    }
    buf = buf.subarray(off);
  });
  s.on('error', () => undefined);
  s.on('close', () => clients.delete(s));
});
server.listen(0, '127.0.0.1', () => {
  const a = server.address() as net.AddressInfo;
  console.log(`ready tcp=${a.address}:${a.port}`);
});
process.on('SIGTERM', () => process.exit(0));
