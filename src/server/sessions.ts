/**
 * Sessions on one server instance (SPEC §2, PROTOCOL.md §3.1): register, login, visitor, resume
 * and logout; which connections carry a session of which user; and revocation across instances.
 * A session is made on one instance and good on all (one signing key for the deployment); a
 * revocation acts here at once and on the other instances when its bus event reaches them.
 */
import { checkSigningKey } from '../shared/ed25519.js';
import { HchatError } from '../protocol/errors.js';
import { encodeFrame } from '../protocol/frame.js';
import type { OpReq, OpRes } from '../protocol/server-link.js';
import type { ConnectionLog } from '../shared/connlog.js';
import { verifyToken } from '../shared/tokens.js';
import { dialTranscript, signedBy } from '../shared/handshake.js';
import { newSessionKeys } from '../shared/signing.js';
import type { ServerStore } from '../store/server-store.js';
import type { BusEvent, EventBus } from './bus.js';
import type { Conn, Session } from './conn.js';
import { newSessionId, type TokenSigner } from './accounts.js';
import type { AccountService } from './account-service.js';
import type { ServerDoor } from './door.js';
import type { ChannelService } from './channel-service.js';
import type { Revocations } from './revocations.js';
import type { Presence } from './presence.js';
import type { DmService } from './dm-service.js';

type SessionRevoked = Extract<BusEvent, { kind: 'session_revoked' }>;
/** Why a session was revoked. */
type RevokedWhy = NonNullable<SessionRevoked['why']>;

/**
 * What the connections of a revoked session are told as they close (`error E_SESSION_INVALID`,
 * PROTOCOL.md §3.2): what happened to it, in the words of the one who reads it.
 */
const ENDED: Record<RevokedWhy, string> = {
  logout: 'session ended: logged out from another connection',
  cap: 'session ended: a newer login of this account retired it (too many sessions at once)',
  name_taken: 'session ended: another visitor took this name while this server could not hold it',
};

/** Checked against when a session is unknown (or has no key), so that path verifies too. */
const NO_KEY = newSessionKeys().publicKey;

/** What sessions need from their server. */
export interface SessionsDeps {
  store: ServerStore;
  bus: EventBus;
  log: ConnectionLog;
  signer: TokenSigner;
  accounts: AccountService;
  door: ServerDoor;
  channels: ChannelService;
  /** Which sessions were revoked: learns each revocation here at once. */
  revocations: Revocations;
  presence: Presence;
  dms: DmService;
  /** Removes the connection's tracker entry, if it has one (its session is ending). */
  dropEntry(conn: Conn): void;
  /** Lifetime of key certificates (renewed at each resume). */
  certTtlMs: number;
  /** Live sessions per account; a login past it revokes the oldest. */
  sessionsPerAccount: number;
  /** True once the server is closing. */
  closing(): boolean;
}

/** The sessions of one instance's connections. */
export class Sessions {
  /** User (lower-case) → this instance's connections with a session of that user. */
  private readonly byUser = new Map<string, Set<Conn>>();

  constructor(private readonly d: SessionsDeps) {
    // A visitor session whose peer did not come back within its grace ends for good.
    d.accounts.expire = (sessionId) => {
      if (d.closing()) return;
      d.revocations.revoked(sessionId, Date.now());
      d.store
        .revokeSession(sessionId)
        .catch((err: unknown) => console.error('hchat server: revoking a session failed:', err));
    };
    // A connected visitor whose name another visitor took while the store forgot its lease.
    d.accounts.nameLost = (sessionId, name) => {
      if (d.closing()) return;
      this.revoke(sessionId, name, 'name_taken').catch((err: unknown) =>
        console.error('hchat server: revoking a session failed:', err),
      );
    };
  }

  /** This instance's connections with a session of `username` (lower-case). */
  connsOf(username: string): Iterable<Conn> {
    return this.byUser.get(username) ?? [];
  }

  /** `register`: a new account (throttled per address prefix). */
  async register(conn: Conn, b: OpReq<'register'>): Promise<OpRes<'register'>> {
    await this.d.accounts.register(conn.fs.remote.ip, b.username, b.password);
    this.d.log.write('register', { peer: conn.name, user: b.username });
    return { username: b.username };
  }

  /** `login`: a user session on this connection, its token and key certificate. */
  async login(conn: Conn, b: OpReq<'login'>): Promise<OpRes<'login'>> {
    if (conn.session) throw new HchatError('E_ALREADY_AUTHENTICATED');
    const user = await this.d.accounts.login(conn.fs.remote.ip, b.username, b.password);
    return this.open(conn, user.username, 'user', b.publicKey);
  }

  /** `visitor`: a read-only session under a name no user holds. */
  async visitor(conn: Conn, b: OpReq<'visitor'>): Promise<OpRes<'visitor'>> {
    if (conn.session) throw new HchatError('E_ALREADY_AUTHENTICATED');
    await this.d.accounts.checkVisitor(conn.fs.remote.ip, b.name);
    return this.open(conn, b.name, 'visitor', b.publicKey);
  }

  /**
   * Opens a session on `conn`. What may have changed at an await (a pipelined twin attached a
   * session, another visitor took the name) is checked again in the turn the session attaches;
   * a visitor's name is first taken in the store, where every instance sees it (a look-alike
   * taken on any instance, even at the same instant, refuses it); the session is stored before
   * it is answered, and detached again if storing it failed.
   */
  private async open(
    conn: Conn,
    username: string,
    role: 'user' | 'visitor',
    publicKey: string,
  ): Promise<OpRes<'login'>> {
    checkSigningKey(publicKey);
    await this.d.presence.loadUser(username);
    const sessionId = newSessionId();
    if (role === 'visitor') await this.d.accounts.claimVisitorName(sessionId, username);
    try {
      if (conn.session) throw new HchatError('E_ALREADY_AUTHENTICATED'); // a pipelined twin won
      if (role === 'visitor') this.d.accounts.checkVisitorNow(conn.fs.remote.ip, username);
    } catch (err) {
      this.d.accounts.releaseVisitorName(sessionId);
      throw err;
    }
    const iat = Date.now();
    const session = { sessionId, username, role };
    this.attach(conn, session);
    try {
      await this.d.store.createSession({ sessionId, username, role, createdAt: iat, publicKey });
    } catch (err) {
      this.detach(conn, true);
      throw err;
    }
    // At most sessionsPerAccount live sessions: a new login retires the oldest ones.
    if (role === 'user') {
      const live = await this.d.store.liveSessions(username, role);
      for (const old of live.slice(0, Math.max(0, live.length - this.d.sessionsPerAccount)))
        await this.revoke(old.sessionId, username, 'cap');
    }
    const token = this.d.signer.sign({ typ: 'session', sid: sessionId, u: username, r: role, iat });
    return { ...session, token, cert: this.certify(session, publicKey) };
  }

  /** The session's message key, certified: every node can check this session's messages. */
  private certify(s: Session, publicKey: string): string {
    const iat = Date.now();
    return this.d.signer.sign({
      typ: 'key',
      sid: s.sessionId,
      u: s.username,
      r: s.role,
      pk: publicKey,
      iat,
      exp: iat + this.d.certTtlMs,
    });
  }

  /** `resume`: a session made on any instance, back on this connection, its key renewed. */
  async resume(conn: Conn, b: OpReq<'resume'>): Promise<OpRes<'resume'>> {
    if (conn.session) throw new HchatError('E_ALREADY_AUTHENTICATED');
    const claims = verifyToken(b.token, this.d.signer.publicKey);
    const s = claims && (await this.d.store.getSession(claims.sid));
    if (!claims || !s || s.revoked || s.username !== claims.u || s.role !== claims.r) {
      throw new HchatError('E_SESSION_INVALID');
    }
    if (!s.publicKey) throw new HchatError('E_SESSION_INVALID', 'session predates key renewal');
    await this.d.presence.loadUser(s.username);
    // A visitor takes its name again: it may come from an instance that died or closed. Taken
    // by another visitor meanwhile, the session is over (the peer enters anew, PROTOCOL §3.3).
    if (s.role === 'visitor')
      await this.d.accounts.claimVisitorName(s.sessionId, s.username).catch((err: unknown) => {
        if (!(err instanceof HchatError) || err.code !== 'E_NAME_TAKEN') throw err;
        throw new HchatError('E_SESSION_INVALID', 'another visitor took this name meanwhile');
      });
    try {
      // Checked again after the awaits: a twin may have attached, a logout revoked it meanwhile.
      if (conn.session) throw new HchatError('E_ALREADY_AUTHENTICATED');
      if (this.d.revocations.isRevoked(s.sessionId)) throw new HchatError('E_SESSION_INVALID');
      if (s.role === 'visitor') this.d.accounts.checkVisitorRoom(conn.fs.remote.ip, s.sessionId);
    } catch (err) {
      if (s.role === 'visitor') this.d.accounts.releaseVisitorName(s.sessionId);
      throw err;
    }
    const session = { sessionId: s.sessionId, username: s.username, role: s.role };
    this.attach(conn, session);
    return { ...session, cert: this.certify(session, s.publicKey) };
  }

  /** `logout`: the session ends and is revoked everywhere. */
  async logout(conn: Conn): Promise<OpRes<'logout'>> {
    const s = conn.session!;
    const viewed = [...conn.subs];
    this.detach(conn, true);
    await this.revoke(s.sessionId, s.username, 'logout', viewed);
    return {};
  }

  /**
   * `session_check`: whether a session that is dialling the asker is live. Asked by a host that
   * did not hear of it since it came online (its P2P handshake, PROTOCOL.md §4.1): a revocation
   * it missed while offline or stopped is answered here. The asker shows the dial signature of
   * the session's hello, which names the asker's session: only a session that dialled the asker
   * is answered about. Any other, like an unknown one, is not live, after the same work (one
   * store read, one signature check), so the answer tells nobody else whether a session is
   * around: a session id is in every certificate and tracker entry, and a visitor's session
   * lives exactly while the visitor is there.
   */
  async check(conn: Conn, b: OpReq<'session_check'>): Promise<OpRes<'session_check'>> {
    const s = await this.d.store.getSession(b.sessionId);
    const dial = dialTranscript({
      peerNonce: b.proof.nonce,
      peerSession: b.sessionId,
      hostSession: conn.session!.sessionId,
      binding: Buffer.from(b.proof.binding, 'base64url'),
    });
    const dialled = signedBy(s?.publicKey || NO_KEY, dial, b.proof.sig);
    return {
      live: dialled && !!s && !s.revoked && !this.d.revocations.isRevoked(b.sessionId),
    };
  }

  /**
   * Revokes a session: its token and certificate stop working here, its connections close
   * saying `why`, and the peers that may hold P2P links from it (users sharing a channel with
   * it) are told, so they drop those links and refuse new ones.
   */
  private async revoke(
    sessionId: string,
    username: string,
    why: RevokedWhy,
    viewed?: Iterable<string>,
  ): Promise<void> {
    // Known revoked here at once (a resume or post racing the store's answer is refused).
    this.d.revocations.revoked(sessionId, Date.now());
    await this.d.store.revokeSession(sessionId);
    const revokedAt = (await this.d.store.getSession(sessionId))?.revokedAt ?? Date.now();
    const owned = await this.d.store.channelsOf(username);
    const channels = new Set(viewed ?? []);
    for (const c of owned) channels.add(c.id);
    const e = {
      kind: 'session_revoked' as const,
      sessionId,
      username,
      revokedAt,
      channelIds: [...channels],
      why,
    };
    // This instance acts before answering; the others when the event reaches them.
    await this.revoked(e);
    this.d.bus.publish(e);
  }

  /** Forgets a revoked session here: closes its connections, tells its co-members' (above). */
  async revoked(e: SessionRevoked): Promise<void> {
    const { sessionId, username } = e;
    this.d.revocations.revoked(sessionId, e.revokedAt);
    this.d.accounts.sessionEnded(sessionId);
    const channels = e.channelIds;
    const members = new Map<string, string[]>();
    for (const id of channels) members.set(id, await this.d.store.members(id));
    for (const c of this.byUser.get(username.toLowerCase()) ?? []) {
      if (c.session?.sessionId === sessionId) {
        this.detach(c, true);
        c.fs.fail(new HchatError('E_SESSION_INVALID', e.why ? ENDED[e.why] : 'session revoked'));
      }
    }
    const frame = encodeFrame({ t: 'ev', ev: 'session_revoked', body: { sessionId } });
    const told = new Set<Conn>();
    for (const id of channels) {
      for (const member of members.get(id)!) {
        for (const c of this.byUser.get(member.toLowerCase()) ?? []) {
          if (told.has(c) || c.session?.sessionId === sessionId) continue;
          told.add(c);
          c.fs.sendEncoded(frame);
        }
      }
    }
  }

  private attach(conn: Conn, s: Session): void {
    conn.session = s;
    const key = s.username.toLowerCase();
    let set = this.byUser.get(key);
    if (!set) this.byUser.set(key, (set = new Set()));
    set.add(conn);
    this.d.accounts.sessionOn(conn.fs.remote.ip, s);
    this.d.door.authenticated(conn);
    this.d.log.write('auth', {
      peer: conn.name,
      conn: conn.id,
      role: s.role,
      session: s.sessionId,
    });
  }

  /** Ends the session `conn` carries, if any (it closed, logged out, or was revoked). */
  detach(conn: Conn, loggedOut = false): void {
    const s = conn.session;
    if (!s) return;
    this.d.dropEntry(conn);
    this.d.presence.forget(conn);
    this.d.dms.unbind(conn);
    this.d.channels.setSubscriptions(conn, []);
    const key = s.username.toLowerCase();
    const set = this.byUser.get(key);
    set?.delete(conn);
    if (set?.size === 0) this.byUser.delete(key);
    conn.session = undefined;
    this.d.accounts.sessionOff(conn.fs.remote.ip, s, loggedOut);
    this.d.door.unauthenticated(conn);
  }
}
