/**
 * A hostile client of the server's framed port, written from docs/PROTOCOL.md: raw TCP from any
 * loopback address, frames as it likes (pipelined requests, partial frames, raw bytes), and a
 * record of every frame the server sends back. Closed after the test.
 */
import net from 'node:net';
import tls from 'node:tls';
import { PROTOCOL_VERSION } from '../../src/protocol/common.js';
import { onTestFinished } from 'vitest';
import { FrameDecoder, encodeFrame } from '../../src/protocol/frame.js';
import { newSessionKeys } from '../../src/shared/signing.js';

/** One raw connection to the server. */
export class RawClient {
  readonly frames: Record<string, any>[] = [];
  closed = false;
  private readonly decoder = new FrameDecoder(64 * 1024 * 1024);
  private nextId = 1;
  private readonly waiters = new Map<number, (f: Record<string, any>) => void>();
  private readonly closedP: Promise<void>;
  private readonly changed = new Set<() => void>();

  private constructor(readonly socket: net.Socket) {
    socket.on('error', () => undefined);
    socket.on('data', (b: Buffer) => {
      try {
        for (const f of this.decoder.push(b)) {
          this.frames.push(f);
          if (f.t === 'res') this.waiters.get(f.id as number)?.(f);
        }
      } catch {
        /* a broken answer shows up as missing frames */
      }
      for (const c of this.changed) c();
    });
    this.closedP = new Promise((resolve) =>
      socket.on('close', () => {
        this.closed = true;
        for (const w of this.waiters.values()) w({ t: 'closed' });
        for (const c of this.changed) c();
        resolve();
      }),
    );
    onTestFinished(() => void socket.destroy());
  }

  /** Connects from `localAddress` (any 127.x.y.z) without sending anything. */
  static connect(port: number, localAddress = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({
        socket: net.connect({ port, host: '127.0.0.1', localAddress }),
        rejectUnauthorized: false,
      });
      s.once('secureConnect', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  /** Connects and says hello; resolves once the server's hello came (or the link closed). */
  static async open(port: number, localAddress = '127.0.0.1'): Promise<RawClient> {
    const c = await RawClient.connect(port, localAddress);
    c.send({ t: 'hello', v: PROTOCOL_VERSION, role: 'peer' });
    await c.until(() => c.frames.some((f) => f.t === 'hello') || c.closed, 10_000);
    return c;
  }

  send(obj: object): void {
    this.socket.write(encodeFrame(obj));
  }

  raw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Sends a request without waiting; the promise is its answer frame. */
  request(op: string, body: object): Promise<Record<string, any>> {
    const id = this.nextId++;
    const answer = new Promise<Record<string, any>>((resolve) => this.waiters.set(id, resolve));
    this.send({ t: 'req', id, op, body });
    return this.closed ? Promise.resolve({ t: 'closed' }) : answer;
  }

  /** The first `error` frame the server sent, if any. */
  get fatal(): Record<string, any> | undefined {
    return this.frames.find((f) => f.t === 'error');
  }

  /** Resolves when `cond()` holds (checked on every frame and at close), or after `ms`. */
  until(cond: () => boolean, ms: number): Promise<boolean> {
    if (cond()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (!cond()) return;
        clearTimeout(timer);
        this.changed.delete(check);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.changed.delete(check);
        resolve(false);
      }, ms);
      this.changed.add(check);
    });
  }

  /** Resolves when the server closed the connection, or false after `ms`. */
  closedWithin(ms: number): Promise<boolean> {
    return Promise.race([
      this.closedP.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), ms)),
    ]);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A fresh session public key, as `login` and `visitor` want it. */
export function publicKey(): string {
  return newSessionKeys().publicKey;
}
