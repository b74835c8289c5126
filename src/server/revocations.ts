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

/** Sessions and tokens known at most (the oldest go first). */
const KEPT = 100_000;

/** What is known of a certificate's session (or API token) when it was read. */
interface Known {
  /** When it was revoked; null: live when read. */
  at: number | null;
  /** An API token's channels (`null`: every channel of its account); absent for a session. */
  channels?: ReadonlySet<string> | null;
}

/** Sessions' revocation times, read once from the store per session and learnt as they happen. */
export class Revocations {
  private readonly known = new Map<string, Known>();

  constructor(private readonly d: RevocationsDeps) {}

  /**
   * Reads once when the session of a certificate was revoked (and an API token's channels), for
   * `signedAfter` (cached: a post costs no store read). A revocation learnt meanwhile
   * (`revoked`) wins over the read.
   */
  async load(cert: string): Promise<void> {
    const sid = this.d.sessionOf(cert);
    if (sid === undefined || this.known.has(sid)) return;
    let read: Known;
    if (isTokenId(sid)) {
      const t = await this.d.tokens?.getToken(sid);
      // A certificate naming a token this deployment does not know stands for nothing.
      read = t
        ? { at: t.revokedAt, channels: t.channels && new Set(t.channels) }
        : { at: 0, channels: null };
    } else read = { at: (await this.d.store.getSession(sid))?.revokedAt ?? null };
    if (this.known.has(sid)) return;
    this.keep(sid, read);
  }

  /**
   * E_BAD_SIGNATURE when what a certificate's key signed (stamped `ts`, in `channelId` when it
   * is a channel's item) may not enter, as `load` read its session: no store read here.
   *
   * - A session's key: anything stamped after the session was revoked (what it signed before
   *   may still arrive: a peer's offline writes, a host's backups).
   * - An API token's key (REST `POST /keys`): anything once the token is revoked, whatever its
   *   stamp, since the signer picks the clock and a token's key has no offline writes to wait
   *   for (its posts go through the REST API, which stores them as it answers); and any item of a
   *   channel outside the token's channels, which the key must not reach by another way (a host
   *   forwarding it) than the token may.
   */
  signedAfter(
    what: string,
    m: { cert: string; ts: number; channelId?: string },
  ): HchatError | undefined {
    const sid = this.d.sessionOf(m.cert);
    const k = sid === undefined ? undefined : this.known.get(sid);
    if (!k) return undefined;
    if (k.channels !== undefined) {
      if (k.at !== null)
        return new HchatError('E_BAD_SIGNATURE', `${what}: signed with the key of a revoked token`);
      if (m.channelId !== undefined && k.channels !== null && !k.channels.has(m.channelId))
        return new HchatError(
          'E_BAD_SIGNATURE',
          `${what}: its key's token may not write in this channel`,
        );
      return undefined;
    }
    if (k.at !== null && m.ts > k.at)
      return new HchatError('E_BAD_SIGNATURE', `${what}: signed after its session was revoked`);
    return undefined;
  }

  /** A session (or an API token) was revoked (here, or on another instance): known at once. */
  revoked(sessionId: string, at: number): void {
    const before = this.known.get(sessionId);
    this.keep(
      sessionId,
      isTokenId(sessionId) ? { at, channels: before?.channels ?? null } : { at },
    );
  }

  /** Sets one entry, forgetting the oldest past KEPT (forgotten: read again on next use). */
  private keep(sid: string, k: Known): void {
    this.known.delete(sid);
    if (this.known.size >= KEPT) this.known.delete(this.known.keys().next().value!);
    this.known.set(sid, k);
  }

  /** True when this instance knows the session revoked (a resume racing a logout). */
  isRevoked(sessionId: string): boolean {
    return typeof this.known.get(sessionId)?.at === 'number';
  }
}
