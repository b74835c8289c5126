/**
 * What bench/nat.ts needs of a peer in a home namespace beyond `HomePeer.call` (JSON): its local
 * API in raw bytes (a file up and down) and its event stream (when a message reaches the host),
 * both through the home's forwarder socket (test/netns-core.ts), as `call` goes.
 */
import http from 'node:http';
import type { HomePeer } from '../test/netns-core.js';

/** One local API request in bytes; the status and the whole answer. */
export function rawCall(
  peer: HomePeer,
  method: string,
  route: string,
  body?: Buffer,
  type = 'application/octet-stream',
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { ...target(peer, route), method, headers: headers(peer, body && type) },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The peer's `GET /api/events`: `wait(test)` resolves with the first `message` event from now
 * on whose message passes `test` (or one that came before `wait` was called and nobody took).
 */
export interface MessageEvents {
  wait(test: (m: { text?: string; id: string }) => boolean, ms?: number): Promise<void>;
  close(): void;
}

export function messageEvents(peer: HomePeer): Promise<MessageEvents> {
  type Message = { text?: string; id: string };
  const unclaimed: Message[] = [];
  const waiting: Array<{ test: (m: Message) => boolean; done: () => void }> = [];
  const take = (m: Message) => {
    const i = waiting.findIndex((w) => w.test(m));
    if (i < 0) return void unclaimed.push(m);
    waiting.splice(i, 1)[0]!.done();
  };
  return new Promise((resolve, reject) => {
    const req = http.get(
      { ...target(peer, '/api/events'), headers: headers(peer) },
      (res: http.IncomingMessage) => {
        if (res.statusCode !== 200) return reject(new Error(`events: ${res.statusCode}`));
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (d: string) => {
          buf += d;
          let end: number;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            if (!/^event: message$/m.test(block)) continue;
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (data) take((JSON.parse(data) as { message: Message }).message);
          }
        });
        res.on('error', () => undefined);
        resolve({
          wait: (test, ms = 10_000) =>
            new Promise((done, fail) => {
              const i = unclaimed.findIndex(test);
              if (i >= 0) return void (unclaimed.splice(i, 1), done());
              const timer = setTimeout(() => fail(new Error('no such message event')), ms);
              waiting.push({
                test,
                done: () => {
                  clearTimeout(timer);
                  done();
                },
              });
            }),
          close: () => req.destroy(),
        });
      },
    );
    req.on('error', reject);
  });
}

function target(peer: HomePeer, route: string): http.RequestOptions {
  return { socketPath: peer.api.socketPath, path: route };
}

function headers(peer: HomePeer, type?: string): Record<string, string> {
  return {
    host: `127.0.0.1:${peer.api.port}`,
    authorization: `Bearer ${peer.api.token}`,
    ...(type ? { 'content-type': type } : {}),
  };
}
