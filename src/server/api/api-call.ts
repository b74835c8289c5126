/**
 * One REST API call as a connection of its own (issue 17): the call's token acts as a session of
 * its account, and the operation runs through the same frame dispatch as a peer's request, so it
 * is validated by the same schema and checked by the same rights, limits and services, and logged
 * in the connection log as the caller's address. The link takes the one answer and nothing else:
 * a call subscribes to nothing beyond itself (its subscriptions end with it).
 */
import { encodeFrame, HEADER_BYTES } from '../../protocol/frame.js';
import { HchatError } from '../../protocol/errors.js';
import type { WireError } from '../../protocol/rpc.js';
import { API_LIMITS } from '../../shared/limits.js';
import type { z } from 'zod';
import type { OpName } from '../../protocol/server-link.js';
import type { ApiTokenRecord } from '../../store/api-token-store.js';
import { Conn, type ConnLink } from '../conn.js';
import type { FrameDispatch } from '../frame-dispatch.js';

/** The link of one call: resolves with the answer to its request, or its error. */
export class ApiCallLink implements ConnLink {
  peerMaxFrame: number = API_LIMITS.maxAnswerBytes;
  private open = true;
  private settle: ((r: { body?: unknown; error?: z.infer<typeof WireError> }) => void) | undefined;
  /** The answer to the call's request. */
  readonly answered: Promise<{ body?: unknown; error?: z.infer<typeof WireError> }>;

  constructor(readonly remote: { ip: string; port: number }) {
    this.answered = new Promise((resolve) => (this.settle = resolve));
  }

  get isOpen(): boolean {
    return this.open;
  }

  send(obj: object): void {
    const f = obj as { t?: unknown; body?: unknown; error?: z.infer<typeof WireError> };
    if (f.t === 'res') this.settle?.({ body: f.body, error: f.error });
  }

  answer(_id: number, body: unknown): void {
    const bytes = encodeFrame({ t: 'res', id: 0, body }).length - HEADER_BYTES;
    if (bytes <= this.peerMaxFrame) return this.settle?.({ body });
    this.settle?.({ error: new HchatError('E_FRAME_TOO_LARGE').toWire() });
  }

  /** Pushes (`ev`, encoded once for many): a call takes none. */
  sendEncoded(): void {}
  setMaxFrame(): void {}
  hold(): void {}
  release(): void {}

  fail(err: HchatError): void {
    this.open = false;
    this.settle?.({ error: err.toWire() });
  }

  close(reason?: HchatError): void {
    this.fail(reason ?? new HchatError('E_SHUTTING_DOWN'));
  }
}

/** What running a call needs from its server. */
export interface ApiCallDeps {
  /** The frame dispatch of the server's peer connections. */
  frames: FrameDispatch;
  /** Forgets what the call's connection left behind (subscriptions, views). */
  finished(conn: Conn): void;
}

/** Call connections count down from -1, apart from the peers' connection numbers. */
let lastCallId = 0;

/**
 * Runs wire operation `op` with `body` as a session of the token's account, from `remote`:
 * resolves with its answer, or throws its error.
 */
export async function runApiCall(
  d: ApiCallDeps,
  token: ApiTokenRecord,
  remote: { ip: string; port: number },
  op: OpName,
  body: unknown,
): Promise<unknown> {
  const link = new ApiCallLink(remote);
  const conn = new Conn(--lastCallId, link);
  conn.helloDone = true;
  // The token is the session: its id names it (logs, pushes not echoed back to it).
  conn.session = { sessionId: token.id, username: token.account, role: 'user' };
  try {
    d.frames.onFrame(conn, { t: 'req', id: 1, op, body });
    const r = await link.answered;
    if (r.error) throw HchatError.fromWire(r.error);
    return r.body;
  } finally {
    link.close();
    d.finished(conn);
  }
}
