/**
 * The frames of one peer connection (PROTOCOL.md §1, §3): hello first, then pings and requests.
 * A request is validated against its operation's schema and rights, and runs in the connection's
 * turn (but for the password-hashing ones) with at most FRAME_LIMITS.maxInFlight of one
 * connection at once; its answer or its refusal goes back with its id.
 */
import type { Logger } from 'pino';
import type { z } from 'zod';
import { HchatError } from '../protocol/errors.js';
import { checkHelloVersion, helloSentTwice } from '../protocol/hello-version.js';
import { encodeFrame } from '../protocol/frame.js';
import { PROTOCOL_VERSION } from '../protocol/common.js';
import {
  ClientHello,
  OPS,
  Request,
  describeIssues,
  isOpName,
  type OpName,
  type OpReq,
} from '../protocol/server-link.js';
import type { ConnectionLog } from '../shared/connlog.js';
import { COMPACT_OPS, COMPACT_VERSION } from '../protocol/compact.js';
import { LinkRefs, compactPage, type Page, type RefRegistry } from '../shared/compact-refs.js';
import { FRAME_LIMITS } from '../shared/limits.js';
import type { Conn } from './conn.js';
import type { ServerMetrics } from './metrics.js';

const MAX_IN_FLIGHT = FRAME_LIMITS.maxInFlight;
/** Operations that hash a password (seconds under load): they do not hold a connection's turn. */
const HASHING_OPS: ReadonlySet<string> = new Set(['register', 'login']);
const NOTHING = (): void => undefined;

/** What the frame dispatch needs from its server. */
export interface FrameDispatchDeps {
  log: ConnectionLog;
  opsLog: Logger;
  metrics: Pick<ServerMetrics, 'frameIn' | 'error'>;
  /** What the server's hello says of it (PROTOCOL.md §3.2). */
  hello: { heartbeatMs: number; timeoutMs: number; maxFrame: number; publicKey: string };
  /** This instance's numbering of certificates and channels for compact links (§3.11). */
  refs: RefRegistry;
  /** The connection finished its hello (door.ts). */
  helloDone(conn: Conn): void;
  /** True while the instance drains: a new connection hears it at once. */
  draining(): boolean;
  /** Queues a post for the next group commit; it is answered after the batch's transaction. */
  queuePost(conn: Conn, id: number, body: OpReq<'post'>): void;
  /** Runs any other operation, its body validated and the caller's rights checked. */
  run(conn: Conn, op: Exclude<OpName, 'post'>, body: unknown): Promise<unknown>;
}

/** Frames in, answers out, for every connection of one instance. */
export class FrameDispatch {
  private readonly helloFrame: Buffer;
  private readonly compactHelloFrame: Buffer;

  constructor(private readonly d: FrameDispatchDeps) {
    const hello = {
      t: 'hello',
      v: PROTOCOL_VERSION,
      role: 'server',
      heartbeatMs: d.hello.heartbeatMs,
      timeoutMs: d.hello.timeoutMs,
      maxFrame: d.hello.maxFrame,
      publicKey: d.hello.publicKey,
    };
    this.helloFrame = encodeFrame(hello);
    this.compactHelloFrame = encodeFrame({ ...hello, compact: COMPACT_VERSION });
  }

  /** A frame from `conn`; a throw here is a protocol error that ends the connection. */
  onFrame(conn: Conn, f: Record<string, unknown>): void {
    this.d.metrics.frameIn(conn, f);
    if (f.t === 'error') {
      // The other end is closing with a fatal error: never answered (PROTOCOL.md §1).
      conn.fs.close(HchatError.fromErrorFrame(f));
      return;
    }
    if (!conn.helloDone) {
      if (f.t !== 'hello') throw new HchatError('E_HELLO_REQUIRED');
      checkHelloVersion(f, 'server');
      const hello = ClientHello.safeParse(f);
      if (!hello.success)
        throw new HchatError('E_BAD_FRAME', `hello: ${describeIssues(hello.error)}`);
      conn.helloDone = true;
      if (hello.data.maxFrame) conn.fs.peerMaxFrame = hello.data.maxFrame;
      // Compact pushes and pages when the peer asks for them (§3.11): version 1, the only one.
      const fs = conn.fs;
      if (hello.data.compact !== undefined) conn.refs = new LinkRefs((f) => fs.sendEncoded(f));
      this.d.helloDone(conn);
      conn.fs.sendEncoded(conn.refs ? this.compactHelloFrame : this.helloFrame);
      // A connection that finished its TLS handshake as the drain began hears it too.
      if (this.d.draining()) conn.fs.send({ t: 'ev', ev: 'draining', body: {} });
      return;
    }
    switch (f.t) {
      case 'ping':
        conn.fs.send({ t: 'pong' });
        return;
      case 'pong':
        return;
      case 'req': {
        const req = Request.safeParse(f);
        if (!req.success) throw new HchatError('E_BAD_FRAME', `req: ${describeIssues(req.error)}`);
        const { id, op, body } = req.data;
        // Forward compatible (PROTOCOL.md §1): an unknown operation is refused, the link stays.
        if (!isOpName(op))
          return this.answerError(
            conn,
            id,
            op,
            new HchatError('E_UNKNOWN_TYPE', `unknown operation "${op}"`),
          );
        // At most MAX_IN_FLIGHT requests of one connection are worked on at once: past it the
        // connection's next frames wait (a pipelining client cannot queue unbounded work).
        if (++conn.inFlight >= MAX_IN_FLIGHT) conn.fs.hold();
        const done = () => {
          if (--conn.inFlight < MAX_IN_FLIGHT) conn.fs.release();
        };
        const work = (): Promise<void> => this.handle(conn, id, op, body);
        const task = HASHING_OPS.has(op) ? work() : conn.turn.then(work);
        if (!HASHING_OPS.has(op)) conn.turn = task.then(NOTHING, NOTHING);
        task.then(done, (err: unknown) => {
          done();
          this.answerError(conn, id, op, err);
        });
        return;
      }
      case 'hello':
        throw helloSentTwice();
      default:
        throw new HchatError(
          'E_UNKNOWN_TYPE',
          `unknown frame type ${JSON.stringify(f.t)?.slice(0, 40)}`,
        );
    }
  }

  /** Refuses request `id`: its error goes back, and is counted and logged. */
  answerError(conn: Conn, id: number, op: string, err: unknown): void {
    if (!(err instanceof HchatError)) {
      // A bug here must not take every other peer down with it; log it and answer E_INTERNAL.
      this.d.opsLog.error({ err, op }, 'request failed');
      err = new HchatError('E_INTERNAL');
    }
    const e = err as HchatError;
    this.d.metrics.error(e.code);
    const line = { peer: conn.name, op, code: e.code };
    // Refusals cost the refused nothing: a stranger's within its address group's share of the
    // log, a session's within its account's (LOG_LIMITS), so a flood of them cannot rotate the
    // other records out.
    if (conn.session) this.d.log.refusal(conn.session.username, line);
    else this.d.log.outsider(conn.fs.remote.ip, 'refuse', line);
    conn.fs.send({ t: 'res', id, error: e.toWire() });
  }

  private async handle(conn: Conn, id: number, op: OpName, rawBody: unknown): Promise<void> {
    const spec = OPS[op];
    const parsed = (spec.req as z.ZodType).safeParse(rawBody ?? {});
    if (!parsed.success) {
      throw new HchatError('E_BAD_REQUEST', `${op}: ${describeIssues(parsed.error)}`);
    }
    if (spec.access !== 'anyone') {
      if (!conn.session) throw new HchatError('E_AUTH_REQUIRED');
      if (spec.access === 'user' && conn.session.role !== 'user') {
        throw new HchatError('E_VISITOR_READ_ONLY', `visitors cannot ${op.replace('_', ' ')}`);
      }
    }
    if (op === 'post') {
      // Posts are group-committed: answered after the batch's transaction.
      this.d.queuePost(conn, id, parsed.data as OpReq<'post'>);
      return;
    }
    const result = await this.d.run(conn, op, parsed.data);
    if (!conn.fs.isOpen) return;
    // A page to a compact link (§3.11): its items compact, after the `ref` frames it lacks.
    if (conn.refs && COMPACT_OPS.has(op))
      return conn.fs.answer(id, compactPage(this.d.refs, conn.refs, result as Page));
    conn.fs.answer(id, result);
  }
}
