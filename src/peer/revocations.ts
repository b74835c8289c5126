/**
 * Which sessions a host refuses at its P2P handshake because they were revoked (logout; PROTOCOL.md
 * §4.1). The server's live `session_revoked` event covers revocations while this peer is connected
 * to it; one made while this peer was offline (not connected to it) or stopped never reaches it
 * as an event. So a session this host has not checked since its current server connection came up
 * is checked with the server (`session_check`) before its handshake is answered, and the answer
 * holds for as long as that connection does (a later revocation arrives as the event). What the
 * host learns is kept in its store, so a restart does not forget it. Without the server (down, or
 * this peer offline) only what the store holds is known: an unchecked session is let in then.
 */
import { HchatError } from '../protocol/errors.js';
import type { PeerStore } from '../store/peer-store.js';
import type { DialProof } from '../protocol/server-link.js';
import type { ServerLink } from './server-link.js';

/** How long a handshake waits for the server's answer before going on without it. */
const CHECK_WAIT_MS = 3000;

export interface RevocationsOptions {
  store: PeerStore;
  /** The server link while it carries this peer's session, else undefined. */
  server(): ServerLink | undefined;
}

export class Revocations {
  /**
   * Sessions the server said were live on the current connection (cleared when it changes), with
   * their user (lower case).
   */
  private readonly live = new Map<string, string>();
  /** Checks under way, so that a burst of handshakes of one session asks once. */
  private readonly asking = new Map<string, Promise<boolean>>();
  /** Counts server connections: an answer from an earlier one is not kept. */
  private epoch = 0;

  constructor(private readonly opts: RevocationsOptions) {}

  /** The server said this session was revoked (its event, or a check). */
  revoked(sessionId: string): void {
    this.live.delete(sessionId);
    this.opts.store.addRevokedSession(sessionId, Date.now());
  }

  /** The server connection came up or went down: what it said of live sessions no longer holds. */
  connectionChanged(): void {
    this.epoch++;
    this.live.clear();
    this.asking.clear();
  }

  /**
   * Forgets what the server said of `username`'s sessions: the user shares a channel with this
   * peer again, and a revocation made while it shared none came as no event (the server tells
   * only the peers that share a channel with the session's user), so its sessions are asked
   * about again.
   */
  forgetUser(username: string): void {
    const u = username.toLowerCase();
    for (const [sid, who] of this.live) if (who === u) this.live.delete(sid);
  }

  /** True when the session is known revoked here (its event, an earlier check). */
  knownRevoked(sessionId: string): boolean {
    return this.opts.store.isSessionRevoked(sessionId);
  }

  /**
   * True when the session is known revoked; a promise when the server must be asked first,
   * showing `proof`, the dial signature of the session's hello on a link to this peer (the
   * server answers only about a session that dialled the asker). A visitor's session is asked
   * about at each handshake, whatever was said before: its end when its grace runs out (its
   * peer gone, PROTOCOL.md §3.3) comes as no event, so an earlier "live" let the ended session
   * in again, under a name another visitor may hold by then.
   */
  isRevoked(
    sessionId: string,
    username: string,
    visitor: boolean,
    proof: DialProof,
  ): boolean | Promise<boolean> {
    if (this.opts.store.isSessionRevoked(sessionId)) return true;
    if (!visitor && this.live.has(sessionId)) return false;
    const link = this.opts.server();
    if (!link) return false; // not connected: only what the store holds is known
    let p = this.asking.get(sessionId);
    if (!p) {
      const asked: Promise<boolean> = this.ask(link, sessionId, username, proof).finally(() => {
        if (this.asking.get(sessionId) === asked) this.asking.delete(sessionId);
      });
      this.asking.set(sessionId, (p = asked));
    }
    return p;
  }

  private async ask(
    link: ServerLink,
    sessionId: string,
    username: string,
    proof: DialProof,
  ): Promise<boolean> {
    const epoch = this.epoch;
    let live: boolean;
    try {
      ({ live } = await link.request('session_check', { sessionId, proof }, CHECK_WAIT_MS));
    } catch (err) {
      // No answer (the link dropped, too slow, an older server): as if offline.
      if (err instanceof HchatError) return false;
      throw err;
    }
    if (!live) {
      this.revoked(sessionId);
      return true;
    }
    // The event of a revocation just after the server read the session may have come first.
    if (this.opts.store.isSessionRevoked(sessionId)) return true;
    if (epoch === this.epoch) {
      if (this.live.size >= 10_000) this.live.clear();
      this.live.set(sessionId, username.toLowerCase());
    }
    return false;
  }
}
