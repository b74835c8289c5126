/**
 * Revoked sessions (docs/PROTOCOL.md §3.3 logout): the server's one answer to "was this signed
 * with the key of a session that had ended?", asked by every operation that takes something a
 * session key signed (posts and forwards, avatars), or the key of an API token (REST `POST /keys`)
 * once the token is revoked. A certificate stays valid until it expires;
 * only the server knows of every revocation, so it keeps a stolen key of a logged-out session from
 * entering anything signed after the logout.
 */
import { HchatError } from '../protocol/errors.js';
import type { ServerStore } from '../store/server-store.js';
import type { ApiTokenStore } from '../store/api-token-store.js';
import { isTokenId } from './token-service.js';

export interface RevocationsDeps {
  store: Pick<ServerStore, 'getSession'>;
  /** API tokens: a key certified through the REST API names its token in place of a session. */
  tokens?: Pick<ApiTokenStore, 'getToken'>;
  /** The session id a certificate the server signed names, or undefined. */
  sessionOf(cert: string): string | undefined;
}

/** Revocations and "live when read" kept at most (the oldest go first). */
const KEPT = 100_000;

/** Sessions' revocation times, read once from the store per session and learnt as they happen. */
export class Revocations {
  /** Session id → when it was revoked (null: live when read). */
  private readonly at = new Map<string, number | null>();

  constructor(private readonly d: RevocationsDeps) {}

  /**
   * Reads once when the session of a certificate was revoked, for `signedAfter` (cached: a post
   * costs no store read). A revocation learnt meanwhile (`revoked`) wins over the read.
   */
  async load(cert: string): Promise<void> {
    const sid = this.d.sessionOf(cert);
    if (sid === undefined || this.at.has(sid)) return;
    const at =
      (isTokenId(sid)
        ? (await this.d.tokens?.getToken(sid))?.revokedAt
        : (await this.d.store.getSession(sid))?.revokedAt) ?? null;
    if (this.at.has(sid)) return;
    this.keep(sid, at);
  }

  /**
   * E_BAD_SIGNATURE when something stamped `ts` was signed under a certificate whose session was
   * revoked before `ts` (as `load` read it: no store read here), else undefined.
   */
  signedAfter(what: string, m: { cert: string; ts: number }): HchatError | undefined {
    const sid = this.d.sessionOf(m.cert);
    const at = sid === undefined ? undefined : (this.at.get(sid) ?? undefined);
    if (at !== undefined && m.ts > at)
      return new HchatError('E_BAD_SIGNATURE', `${what}: signed after its session was revoked`);
    return undefined;
  }

  /** A session (or an API token) was revoked (here, or on another instance): known at once. */
  revoked(sessionId: string, at: number): void {
    this.keep(sessionId, at);
  }

  /** Sets one entry, forgetting the oldest past KEPT (forgotten: read again on next use). */
  private keep(sid: string, at: number | null): void {
    this.at.delete(sid);
    if (this.at.size >= KEPT) this.at.delete(this.at.keys().next().value!);
    this.at.set(sid, at);
  }

  /** True when this instance knows the session revoked (a resume racing a logout). */
  isRevoked(sessionId: string): boolean {
    return typeof this.at.get(sessionId) === 'number';
  }
}
