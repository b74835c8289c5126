/**
 * The error catalogue: every error that crosses a boundary (TCP frame, HTTP answer, CLI) has a code
 * here, with its default message and the HTTP status the local API answers it with.
 * docs/PROTOCOL.md lists every code; test/errors.test.ts keeps the two in step.
 */
export const ERRORS = {
  E_BAD_FRAME: { status: 400, message: 'frame is not a valid JSON object' },
  E_FRAME_TOO_LARGE: { status: 413, message: 'frame exceeds the maximum frame length' },
  E_BAD_REQUEST: { status: 400, message: 'request does not match its schema' },
  E_UNKNOWN_TYPE: { status: 400, message: 'unknown frame type or operation' },
  E_VERSION_MISMATCH: { status: 400, message: 'protocol version not supported' },
  E_HELLO_REQUIRED: { status: 400, message: 'the first frame must be hello' },
  E_AUTH_REQUIRED: { status: 401, message: 'log in or enter as a visitor first' },
  E_ALREADY_AUTHENTICATED: { status: 409, message: 'this connection is already logged in' },
  E_BAD_CREDENTIALS: { status: 401, message: 'unknown user or wrong password' },
  E_RATE_LIMITED: { status: 429, message: 'too many attempts; wait and try again' },
  E_USERNAME_TAKEN: { status: 409, message: 'that username is taken' },
  E_NAME_TAKEN: { status: 409, message: 'that name belongs to a registered user' },
  E_SESSION_INVALID: {
    status: 401,
    message: 'session is unknown or revoked, or its certificate expired',
  },
  E_VISITOR_READ_ONLY: {
    status: 403,
    message: 'visitors can read but not create or change content',
  },
  E_FORBIDDEN: { status: 403, message: 'not allowed' },
  E_TOKEN_INVALID: { status: 401, message: 'the API token is unknown, revoked or expired' },
  E_TOKEN_SCOPE: { status: 403, message: "the API token's scopes do not allow this" },
  E_TOO_MANY_BAD_TOKENS: {
    status: 429,
    message: 'too many failed API token attempts from this address; wait and try again',
  },
  E_NOT_MEMBER: { status: 403, message: 'join the channel first' },
  E_CHANNEL_NOT_FOUND: { status: 404, message: 'no such channel' },
  E_CHANNEL_EXISTS: { status: 409, message: 'a channel with that id already exists' },
  E_MESSAGE_CONFLICT: {
    status: 409,
    message: 'a different message with that id already exists',
  },
  E_NOT_FOUND: { status: 404, message: 'no such resource' },
  E_CLOCK_SKEW: {
    status: 400,
    message: "the message's time is too far ahead of this replica's clock",
  },
  E_STORAGE_FULL: { status: 507, message: 'the storage of this replica is full; try again later' },
  E_FILE_TOO_LARGE: { status: 413, message: 'the file is larger than this replica takes' },
  E_QUOTA_EXCEEDED: {
    status: 507,
    message: 'your files at the server would pass your quota; delete some first',
  },
  E_BAD_CHUNK: { status: 422, message: "the chunk's bytes do not match its hash in the manifest" },
  E_BAD_GRANT: {
    status: 403,
    message: "the file grant is not the server's, not for this channel and session, or expired",
  },
  E_STREAM_NOT_FOUND: { status: 404, message: 'no such live stream (or not one you may watch)' },
  E_BAD_SIGNATURE: {
    status: 403,
    message: 'message signature or certificate does not verify',
  },
  E_BAD_ORIGIN: { status: 403, message: 'cross-origin requests are refused' },
  E_BAD_HOST: { status: 403, message: 'requests must name this peer as its Host' },
  E_API_TOKEN: {
    status: 401,
    message:
      'the local API needs its token: open the ui= URL printed by hchat peer, or send Authorization: Bearer <token>',
  },
  E_TOO_MANY_STREAMS: { status: 503, message: 'too many event streams are open; close one' },
  E_OFFLINE: {
    status: 503,
    message: 'not connected to the central server; set status online or wait for reconnection',
  },
  E_TIMEOUT: { status: 504, message: 'the other end did not answer in time' },
  E_HEARTBEAT_TIMEOUT: { status: 408, message: 'no frame received within the heartbeat timeout' },
  E_CONNECTION_CLOSED: { status: 503, message: 'the connection closed before an answer came' },
  E_SERVER_KEY_MISMATCH: {
    status: 502,
    message: "the server's TLS key is not the one pinned or trusted before for that address",
  },
  E_SLOW_CONSUMER: { status: 503, message: 'the reader fell too far behind; connection closed' },
  E_SHUTTING_DOWN: { status: 503, message: 'the process is shutting down' },
  E_INTERNAL: { status: 500, message: 'internal error' },
} as const satisfies Record<string, { status: number; message: string }>;

/** A code from the catalogue. */
export type ErrorCode = keyof typeof ERRORS;

/** True when `code` names an entry of the catalogue. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

/** An error that carries a catalogue code across process and protocol boundaries. */
export class HchatError extends Error {
  readonly code: ErrorCode;
  /** For E_RATE_LIMITED and other refusals that pass: how long to wait before trying again. */
  readonly retryAfterMs: number | undefined;

  constructor(
    code: ErrorCode,
    message?: string,
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    super(message ?? ERRORS[code].message, options);
    this.name = 'HchatError';
    this.code = code;
    this.retryAfterMs =
      options?.retryAfterMs === undefined
        ? undefined
        : Math.max(0, Math.ceil(options.retryAfterMs));
  }

  /** HTTP status for the local API. */
  get status(): number {
    return ERRORS[this.code].status;
  }

  /** The `{code, message, retryAfterMs?}` shape used on the wire and in HTTP bodies. */
  toWire(): { code: ErrorCode; message: string; retryAfterMs?: number } {
    return this.retryAfterMs === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, retryAfterMs: this.retryAfterMs };
  }

  /** Rebuilds an error received from the other end; unknown codes become E_INTERNAL. */
  static fromWire(e: { code: string; message: string; retryAfterMs?: number }): HchatError {
    const retryAfterMs =
      typeof e.retryAfterMs === 'number' && Number.isFinite(e.retryAfterMs) && e.retryAfterMs >= 0
        ? e.retryAfterMs
        : undefined;
    return new HchatError(isErrorCode(e.code) ? e.code : 'E_INTERNAL', e.message, {
      retryAfterMs,
    });
  }
  /** The reason an `error` frame from the other end gives (never answered: PROTOCOL.md §1). */
  static fromErrorFrame(f: Record<string, unknown>): HchatError {
    return HchatError.fromWire({
      code: typeof f.code === 'string' ? f.code : 'E_INTERNAL',
      message: typeof f.message === 'string' ? f.message.slice(0, 200) : '',
    });
  }
  /** E_RATE_LIMITED for a wait of `ms` milliseconds. */
  static rateLimited(what: string, ms: number): HchatError {
    return new HchatError('E_RATE_LIMITED', `${what}; try again in ${Math.ceil(ms / 1000)} s`, {
      retryAfterMs: ms,
    });
  }
}
