/**
 * Every limit that bounds what one party can make another spend, with its default, in one place
 * (docs/SECURITY.md lists them). Processes take overrides through their options; tests and the
 * bench raise some of them.
 */

/** Message and clock limits, the same on every replica. */
export const MESSAGE_LIMITS = {
  /**
   * ε of the hybrid logical clock: a message stamped more than this far ahead of a replica's own
   * wall clock is refused (E_CLOCK_SKEW) and its reading never observed (CockroachDB's
   * `--max-offset` plays the same part).
   */
  maxClockSkewMs: 60_000,
  /** How long a key certificate is valid; renewed at each `resume`. */
  certTtlMs: 30 * 24 * 3600 * 1000,
} as const;

/** Frames and pages on every framed link. */
export const FRAME_LIMITS = {
  /** Room kept for the envelope around a page of items (`res`, ids, keys). */
  envelopeBytes: 4096,
  /** Frame cap on a P2P link before the handshake has proved who is at the other end. */
  preAuthMaxFrame: 16 * 1024,
  /** Time a P2P peer has to complete the handshake (hello and auth). */
  handshakeMs: 5000,
} as const;

/** Per-account caps at the server. */
export const ACCOUNT_LIMITS = {
  /** Channels one user may own. */
  channelsPerAccount: 200,
  /** Live sessions per account: logging in past it revokes the oldest. */
  sessionsPerAccount: 10,
} as const;

/** Post rates, per user, at the server and at a host. */
export const RATE_LIMITS = {
  /** Sustained posts per second per user. */
  postsPerSecond: 50,
  /** Posts a user may send at once before the sustained rate applies. */
  postBurst: 500,
} as const;
