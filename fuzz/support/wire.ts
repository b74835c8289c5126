/**
 * The hostile side of a framed TLS link, for the targets that feed a real listener (the central
 * server, a peer's P2P port): a raw client (TLS 1.3, any key accepted), the encoding of an input's lines into bytes, and the
 * contract every framed listener owes whatever it is sent.
 */
import tls from 'node:tls';
import { FrameDecoder, encodeFrame } from '../../src/protocol/frame.js';
import { isErrorCode } from '../../src/protocol/errors.js';
import { Request } from '../../src/protocol/rpc.js';
import { ContractViolation } from '../engine/target.js';

/** One connection: the frames received, and whether the other end closed it. */
export class Client {
  readonly frames: Array<Record<string, unknown>> = [];
  closed = false;
  decodeError: unknown;
  readonly socket: tls.TLSSocket;
  /** Settles when the TLS handshake is done (or the connection closed before). */
  readonly ready: Promise<void>;
  private readonly decoder = new FrameDecoder();
  private waiters: Array<() => void> = [];

  constructor(host: string, port: number) {
    this.socket = tls.connect({ port, host, rejectUnauthorized: false });
    this.ready = new Promise<void>((resolve) => {
      this.socket.once('secureConnect', resolve);
      this.socket.once('close', resolve);
    });
    this.socket.on('data', (b) => {
      try {
        this.frames.push(...this.decoder.push(b));
      } catch (err) {
        this.decodeError ??= err;
      }
      this.wake();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits until `done()` holds or the connection closes, at most `ms`; true when done held. */
  async until(done: () => boolean, ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while (!done() && !this.closed) {
      const left = end - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return done();
  }

  /** Sends a request and waits for its answer's body (harness set-up only). */
  async call(id: number, op: string, body: unknown): Promise<Record<string, unknown>> {
    this.socket.write(encodeFrame({ t: 'req', id, op, body }));
    await this.until(() => this.frames.some((f) => f.t === 'res' && f.id === id), 30_000);
    const res = this.frames.find((f) => f.t === 'res' && f.id === id);
    if (!res || res.error) throw new Error(`setup ${op} failed: ${JSON.stringify(res)}`);
    return res.body as Record<string, unknown>;
  }
}

/**
 * The bytes an input stands for: each line that parses as JSON (after `$NAME` placeholders are
 * replaced) is one frame; `#hex:` lines are raw bytes; any other line is sent as it is.
 */
export function encodeLines(data: Buffer, vars: Record<string, string | (() => string)>): Buffer {
  const parts: Buffer[] = [];
  const names = Object.keys(vars).sort((a, b) => b.length - a.length);
  for (const raw of data.toString('utf8').split('\n')) {
    if (raw.startsWith('#hex:')) {
      const hex = raw.slice(5).replace(/[^0-9a-f]/gi, '');
      parts.push(Buffer.from(hex.slice(0, hex.length & ~1), 'hex'));
      continue;
    }
    let line = raw;
    for (const n of names) {
      const v = vars[n]!;
      line = line.replaceAll(`$${n}`, () => (typeof v === 'string' ? v : v()));
    }
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      if (line.length > 0) parts.push(Buffer.from(line));
      continue;
    }
    parts.push(
      value !== null && typeof value === 'object' ? encodeFrame(value) : Buffer.from(line),
    );
  }
  return Buffer.concat(parts);
}

const ENVELOPE = new Set(['hello', 'res', 'ev', 'pong', 'ping', 'error']);

/**
 * Sends `bytes` and a ping on a fresh connection and checks what a framed listener owes: every
 * frame back decodes and is an envelope frame; every error code is in the catalogue and none is
 * E_INTERNAL; and while the link stays open, the ping is answered (when the stream ended on a frame
 * boundary) and so is every well-formed request of a known op (`isOp`) within `answerMs`.
 */
export async function exchange(
  host: string,
  port: number,
  bytes: Buffer,
  isOp: (op: string) => boolean,
  answerMs: number,
  /** Runs on the fresh connection before the input is sent (a P2P handshake). */
  prelude?: (c: Client) => Promise<void>,
): Promise<void> {
  // What the listener will decode, exactly: the requests it owes an answer while the link is open.
  const ping = encodeFrame({ t: 'ping' });
  const sent: Array<Record<string, unknown>> = [];
  const local = new FrameDecoder();
  // Whether the ping after the input is read as a ping (the input ends on a frame boundary).
  let whole = false;
  try {
    sent.push(...local.push(bytes));
    const after = local.push(ping);
    whole = after.length > 0 && after[after.length - 1]!.t === 'ping' && local.pending === 0;
    sent.push(...after);
  } catch {
    // the listener refuses the stream at that point and closes
  }
  const owed = new Map<number, number>();
  for (const f of sent) {
    const r = Request.safeParse(f);
    if (r.success && isOp(r.data.op)) owed.set(r.data.id, (owed.get(r.data.id) ?? 0) + 1);
  }
  const c = new Client(host, port);
  if (prelude) await prelude(c);
  c.socket.write(Buffer.concat([bytes, ping]));
  try {
    const answered = () => {
      const got = new Map<number, number>();
      for (const f of c.frames)
        if (f.t === 'res') got.set(f.id as number, (got.get(f.id as number) ?? 0) + 1);
      return [...owed].every(([id, n]) => (got.get(id) ?? 0) >= n);
    };
    const ponged = whole && (await c.until(() => c.frames.some((f) => f.t === 'pong'), answerMs));
    if (whole && !ponged && !c.closed) {
      throw new ContractViolation('no pong to a ping on a whole stream', `${answerMs} ms`);
    }
    if (!(await c.until(answered, answerMs)) && !c.closed) {
      throw new ContractViolation('requests left unanswered on an open link', `${answerMs} ms`);
    }
    if (c.decodeError)
      throw new ContractViolation('sent bytes that do not decode', String(c.decodeError));
    for (const f of c.frames) {
      if (typeof f.t !== 'string' || !ENVELOPE.has(f.t)) {
        throw new ContractViolation(
          'sent a frame of unknown type',
          JSON.stringify(f).slice(0, 200),
        );
      }
      const err = f.t === 'error' ? f : (f.error as Record<string, unknown> | undefined);
      if (err) {
        if (!isErrorCode(err.code))
          throw new ContractViolation('error code not in the catalogue', JSON.stringify(err));
        if (err.code === 'E_INTERNAL')
          throw new ContractViolation('answered E_INTERNAL', JSON.stringify(f));
      }
    }
  } finally {
    c.socket.destroy();
  }
}
