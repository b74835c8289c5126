/**
 * One peer connection on the server and its state machine: hello → open → authenticated.
 */
import { peerName } from '../shared/connlog.js';
import type { FramedSocket } from '../shared/framed-socket.js';

/** The session a connection carries once logged in. */
export interface Session {
  sessionId: string;
  username: string;
  role: 'user' | 'visitor';
}

/** One peer connection. */
export class Conn {
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
  /** Channels whose new messages are pushed to this connection (see `subscribe`). */
  readonly subs = new Set<string>();
  /**
   * Channels that allow visitors and that a visitor's connection views (its joins and
   * subscriptions): the tracker shows it the entries that host or stream them (presence.ts).
   */
  readonly views = new Set<string>();

  constructor(
    readonly id: number,
    readonly fs: FramedSocket,
  ) {}

  get name(): string {
    const r = this.fs.remote;
    return peerName(this.session?.username, r.ip, r.port);
  }
}
