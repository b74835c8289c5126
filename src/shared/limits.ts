/**
 * Named limits with their defaults, one object per area. Each is listed in docs/SECURITY.md
 * ("Limits"); change a default there and here together.
 */

/** The peer's local API (src/peer/api.ts, SPEC §10). */
export const LOCAL_API_LIMITS = {
  /** Event streams (`GET /api/events`) open at once; one more is refused with 503. */
  maxEventStreams: 32,
  /**
   * Bytes an event stream may have waiting in the process towards its reader. Events are taken
   * from the shared window as the reader drains, so only this much is ever buffered per reader.
   */
  eventStreamHighWater: 64 * 1024,
  /** Random bytes of a generated API token (base64url in the `api-token` file). */
  apiTokenBytes: 32,
} as const;

/** Databases (src/store/sqlite.ts). */
export const STORE_LIMITS = {
  /**
   * Largest database file that gets a full `PRAGMA quick_check` at start (bigger files only
   * have their schema read: checking every page would delay the start).
   */
  quickCheckMaxBytes: 64 * 1024 * 1024,
} as const;
