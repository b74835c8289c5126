/**
 * One peer connection on the server and its state machine: hello → open → authenticated.
 */
import { peerName, type Reader } from '../shared/connlog.js';
import type { HchatError } from '../protocol/errors.js';
import type { LinkRefs } from '../shared/compact-refs.js';

/**
 * What a connection's services use of its link: a peer's framed socket (FramedSocket), or a REST
 * API call or gateway link that speaks the same operations over HTTP (server/api/).
 */
export interface ConnLink {
  readonly remote: { ip: string; port: number };
  /** The largest frame the other end takes: pages are cut to fit it. */
  peerMaxFrame: number;
  readonly isOpen: boolean;
  send(obj: object): void;
  /** Answers request `id` (E_FRAME_TOO_LARGE instead when it does not fit). */
  answer(id: number, body: unknown): void;
  /** Sends a frame encoded once for many links (protocol/frame.ts `encodeFrame`). */
  sendEncoded(frame: Buffer): void;
  setMaxFrame(n: number): void;
  hold(): void;
  release(): void;
  fail(err: HchatError): void;
  close(reason?: HchatError): void;
}

/** The session a connection carries once logged in. */
export interface Session {
  sessionId: string;
  username: string;
  role: 'user' | 'visitor';
}

/** One peer connection (or one API call or gateway link: `L`). */
export class Conn<L extends ConnLink = ConnLink> {
  helloDone = false;
  /** Requests of this connection being worked on (FRAME_LIMITS.maxInFlight at most). */
  inFlight = 0;
  /**
   * The end of this connection's requests so far: each waits for the one before it (but for
   * register and login, which hash apart), so that what one request changed (a session, a
   * membership) is there for the next, as when every store answer came at once.
   */
  turn: Promise<void> = Promise.resolve();
  session: Session | undefined;
  entryKey: string | undefined;
  /** The DM device this connection's session speaks for, once it published it (`dm_publish`). */
  dmDevice: string | undefined;
  /** Set when the hellos agreed compact pushes and pages (PROTOCOL.md §3.11). */
  refs: LinkRefs | undefined;
  /** Channels whose new messages are pushed to this connection (see `subscribe`). */
  readonly subs = new Set<string>();
  /**
   * Channels that allow visitors and that a visitor's connection views (its joins and
   * subscriptions): the tracker shows it the entries that host or stream them (presence.ts).
   */
  readonly views = new Set<string>();

  constructor(
    readonly id: number,
    readonly fs: L,
  ) {}

  get name(): string {
    const r = this.fs.remote;
    return peerName(this.session?.username, r.ip, r.port);
  }

  /** Whom a read on this connection is answered to (its session's: ConnectionLog `read`). */
  get reader(): Reader {
    const s = this.session!;
    return { role: s.role, username: s.username, ip: this.fs.remote.ip };
  }
}
