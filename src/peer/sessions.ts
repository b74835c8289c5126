/**
 * The account's session on this peer (SPEC §3): who is logged in and with which keys, whether
 * the server connection carries that session now, and the session changes (register, log in,
 * visitor entry, log out) run one after the other, with the link's resume (link-lifecycle.ts).
 */
import { HchatError } from '../protocol/errors.js';
import type { Status } from '../protocol/common.js';
import type { OpRes } from '../protocol/server-link.js';
import type { ConnectionLog } from '../shared/connlog.js';
import {
  exportPrivateKey,
  loadSessionKeys,
  newSessionKeys,
  type SessionKeys,
} from '../shared/signing.js';
import type { EventHub } from './event-hub.js';
import type { OwedLogouts } from './owed-logouts.js';
import { ServerLink } from './server-link.js';
import type { ServerTrust } from './server-trust.js';
import {
  readSession,
  readSessionEnded,
  writeSession,
  writeSessionEnded,
  type SavedSession,
  type SessionEnded,
} from './session-file.js';

/** How long a spare connection (a login while a session is live) may take to say hello. */
const SPARE_START_MS = 10_000;

/** What the sessions need from their node. */
export interface SessionsDeps {
  /** The data folder the session is saved in (session-file.ts). */
  readonly dataDir: string;
  readonly link: ServerLink;
  /** Whose TLS key this peer accepts at each server address (a spare connection's too). */
  readonly serverTrust: ServerTrust;
  readonly log: ConnectionLog;
  readonly events: EventHub;
  /** Sessions ended here while the server did not answer. */
  readonly owedLogouts: OwedLogouts;
  /** Why the last connection to the server was refused, when its TLS key was not trusted. */
  readonly trustError: HchatError | undefined;
  /** The status the user chose. */
  readonly status: Status;
  /** Everything a fresh session does on the link: announce, sync, drain (link-lifecycle.ts). */
  afterAuth(): Promise<void>;
  /**
   * A session started or ended here: the status of whoever is logged in now applies to the P2P
   * port and the server link (link-lifecycle.ts).
   */
  sessionChanged(): Promise<void>;
  /** Nobody is logged in any more: what the last session had open here closes. */
  ended(): void;
  /** Runs a task nobody awaits (see PeerNode). */
  background(task: Promise<void>): void;
}

/** The session of one peer node and its changes. */
export class Sessions {
  /** The logged-in session, if any (saved in the data folder, resumed at start). */
  currentSession: SavedSession | undefined;
  /** The session's signing keys. */
  keys: SessionKeys | undefined;
  /**
   * Why the server ended the last session, when it did (a newer login retired it, its visitor
   * name went to another): told by GET /api/session until someone logs in or enters again.
   */
  get endedBy(): SessionEnded | undefined {
    return this.ended;
  }

  /** Keeps why the server ended the session (in the data folder: a restart still says it). */
  set endedBy(e: SessionEnded | undefined) {
    this.ended = e;
    writeSessionEnded(this.d.dataDir, e);
  }

  private ended: SessionEnded | undefined;
  /**
   * True while the current server connection carries our session (set here on a log in, by
   * the link lifecycle on a resume, and cleared when the connection goes or the user goes offline).
   */
  authed = false;
  /** The last of the session changes (log in, visitor entry, log out, resume), run in turn. */
  private sessionTurn: Promise<unknown> = Promise.resolve();

  constructor(private readonly d: SessionsDeps) {
    this.currentSession = readSession(d.dataDir);
    this.keys = this.currentSession && loadSessionKeys(this.currentSession.key);
    // Why the last session ended matters only while none is open (a stale note goes).
    if (!this.currentSession) this.ended = readSessionEnded(d.dataDir);
    else writeSessionEnded(d.dataDir, undefined);
  }

  /** Saves `s` (or, undefined, that nobody is logged in) as this peer's session. */
  setSession(s: SavedSession | undefined, keys?: SessionKeys): void {
    // The next account on this peer replays none of the last one's events (local-reads.ts).
    if (this.currentSession?.sessionId !== s?.sessionId) this.d.events.forget();
    this.currentSession = s;
    this.keys = keys;
    if (this.ended) this.endedBy = undefined;
    writeSession(this.d.dataDir, s);
    if (!s) {
      this.authed = false;
      this.d.ended();
    }
  }

  /** The session of a user (E_AUTH_REQUIRED; a visitor cannot do `what`: E_VISITOR_READ_ONLY). */
  requireUser(what: string): SavedSession {
    const s = this.currentSession;
    if (!s) throw new HchatError('E_AUTH_REQUIRED');
    if (s.role !== 'user') throw new HchatError('E_VISITOR_READ_ONLY', `visitors cannot ${what}`);
    return s;
  }

  /** The server link while connected (else E_OFFLINE, or why the server's key was refused). */
  requireLink(): ServerLink {
    if (!this.d.link.connected) throw this.d.trustError ?? this.offlineError();
    return this.d.link;
  }

  /** Not connected: where and why, when the server could not be reached (not when offline). */
  private offlineError(): HchatError {
    const f = this.d.link.lastFailure;
    if (this.d.status === 'offline' || !f) return new HchatError('E_OFFLINE');
    return new HchatError(
      'E_OFFLINE',
      `not connected: the central server at ${f.addr} cannot be reached (${f.reason}); retrying`,
    );
  }

  /** The server link while it carries our session (else E_OFFLINE or E_AUTH_REQUIRED). */
  requireAuthed(): ServerLink {
    const link = this.requireLink();
    if (!this.currentSession) throw new HchatError('E_AUTH_REQUIRED');
    if (!this.authed) throw new HchatError('E_OFFLINE', 'reconnecting to the central server');
    return link;
  }

  async register(username: string, password: string): Promise<{ username: string }> {
    return this.requireLink().request('register', { username, password });
  }

  /**
   * Logs in as `username`: the new session replaces the current one once the server opened it.
   * Refused (wrong password, locked, offline), the current session stays as it was.
   */
  async login(
    username: string,
    password: string,
  ): Promise<{ username: string; role: 'user'; sessionId: string }> {
    return this.inTurn(async () => {
      const keys = newSessionKeys();
      const r = await this.openSession((link) =>
        link.request('login', { username, password, publicKey: keys.publicKey }),
      );
      const s = await this.adopt(r, keys);
      return { username: s.username, role: 'user', sessionId: s.sessionId };
    });
  }

  /** Enters as a visitor named `name`; refused (a user's name), the current session stays. */
  async visitor(name: string): Promise<{ username: string; role: 'visitor'; sessionId: string }> {
    return this.inTurn(async () => {
      // A visitor entering again under its own name leaves first: while its session lives, its
      // name is held, and the new entry would be refused. Under another name it stays until
      // the new session is open, so that a refusal (a name taken) leaves it signed in.
      const current = this.currentSession;
      if (
        current?.role === 'visitor' &&
        current.username.toLowerCase() === name.trim().toLowerCase()
      )
        await this.endSession();
      const keys = newSessionKeys();
      const r = await this.openSession((link) =>
        link.request('visitor', { name, publicKey: keys.publicKey }),
      );
      const s = await this.adopt(r, keys);
      return { username: s.username, role: 'visitor', sessionId: s.sessionId };
    });
  }

  /** Runs the session changes (log in, visitor entry, log out, resume) one after the other. */
  inTurn<T>(task: () => Promise<T>): Promise<T> {
    const run = this.sessionTurn.then(task, task);
    this.sessionTurn = run.catch(() => undefined);
    return run;
  }

  /**
   * Opens a new session at the server with `open` (a login or a visitor entry), and ends the
   * current one only once that succeeded: a refused attempt changes nothing here. The server
   * carries one session per connection, so while ours carries the current session the new one
   * is opened on a spare connection to the same address; the current session then logs out,
   * and the new one is resumed on our connection. Answers with `resumed` false when the link
   * dropped meanwhile (the next `up` resumes it).
   */
  private async openSession(
    open: (link: ServerLink) => Promise<OpRes<'login'>>,
  ): Promise<OpRes<'login'> & { resumed: boolean }> {
    const link = this.requireLink();
    if (!this.authed) {
      // Our connection carries no session (nobody is logged in, or a resume failed).
      const r = await open(link);
      // One not resumed (refused for now) is still live at the server: its logout is owed.
      const last = this.currentSession;
      if (last) this.oweLogout(last);
      this.setSession(undefined);
      return { ...r, resumed: true };
    }
    const r = await this.onSpareLink(open);
    await this.endSession();
    try {
      const { cert } = await link.request('resume', { token: r.token });
      return { ...r, cert, resumed: true };
    } catch {
      // A connection that still carries the last session (its logout went unanswered) is left:
      // the next one resumes the new session.
      if (link.connected) link.moveOn();
      return { ...r, resumed: false };
    }
  }

  /** Runs `task` on a connection of its own to the server address the link uses now. */
  async onSpareLink<T>(task: (link: ServerLink) => Promise<T>): Promise<T> {
    const spare = new ServerLink({
      ...this.d.link.target,
      trust: this.d.serverTrust,
      log: this.d.log,
      reconnect: false,
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      // Bounded: a server that takes the connection and never says hello must not hold the
      // session turn (every later login, logout and resume waits behind it).
      await Promise.race([
        spare.start(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new HchatError('E_OFFLINE', 'the server did not answer in time')),
            SPARE_START_MS,
          );
        }),
      ]);
      if (!spare.connected) throw this.d.trustError ?? new HchatError('E_OFFLINE');
      return await task(spare);
    } finally {
      clearTimeout(timer);
      spare.stop();
    }
  }

  private async adopt(
    r: Omit<SavedSession, 'key'> & { resumed: boolean },
    keys: SessionKeys,
  ): Promise<SavedSession> {
    const s: SavedSession = {
      username: r.username,
      role: r.role,
      sessionId: r.sessionId,
      token: r.token,
      cert: r.cert,
      key: exportPrivateKey(keys),
    };
    this.setSession(s, keys);
    this.d.log.write('auth', {
      peer: 'server',
      user: s.username,
      role: s.role,
      session: s.sessionId,
    });
    await this.d.sessionChanged();
    if (!r.resumed) return s;
    this.authed = true;
    await this.d.afterAuth().catch((err: unknown) => {
      if (!(err instanceof HchatError)) throw err;
    });
    return s;
  }

  /**
   * Ends the session. Nobody is logged in then, so no status is chosen: a peer its user had
   * taken offline connects again (for the next login, and to log this session out at the
   * server if it did not hear the logout).
   */
  async logout(): Promise<void> {
    await this.inTurn(async () => {
      if (!this.currentSession) return;
      await this.endSession();
      await this.d.sessionChanged();
    });
  }

  /**
   * Logs the current session out at the server (when its link carries it) and here. Unanswered
   * (offline, or the link dropped meanwhile), the logout is owed: carried out once it answers.
   */
  private async endSession(): Promise<void> {
    const s = this.currentSession;
    const answered =
      this.authed &&
      (await this.d.link.request('logout', {}).then(
        () => true,
        () => false,
      ));
    if (s && !answered) this.oweLogout(s);
    else if (s) this.d.log.write('logout', { peer: 'server', session: s.sessionId, result: 'ok' });
    this.setSession(undefined);
  }

  /** `s` ended here unheard by the server: logged out there once it answers (now, if it does). */
  private oweLogout(s: SavedSession): void {
    this.d.owedLogouts.owe(s.token, s.sessionId);
    if (this.d.link.connected) this.d.background(this.d.owedLogouts.pay());
  }
}
