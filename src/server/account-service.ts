/**
 * The server's account operations behind their limits: `register` (per address prefix, hashing
 * queued after logins), `login` (throttled before the hash, login-guard.ts) and `visitor` (live
 * sessions per address prefix, look-alike names refused, name-index.ts). The login budgets and
 * the registration budget are counted in the store, shared by every server instance; visitor
 * sessions are counted here, per instance (docs/SECURITY.md "Several server instances"). A
 * present visitor's name is held in the store, so that no instance admits a look-alike of it.
 */
import { randomBytes } from 'node:crypto';
import { HchatError } from '../protocol/errors.js';
import { LIMIT_SWEEP, LOGIN_LIMITS, REGISTRATION_LIMITS } from '../shared/limits.js';
import type { ServerStore, UserRecord } from '../store/server-store.js';
import { hashPassword, verifyPassword } from './accounts.js';
import { addressPrefix, type PrefixBits } from '../shared/address-prefix.js';
import { LoginGuard, type LoginGuardLimits } from './login-guard.js';
import { lookAlikeKeys } from '../shared/look-alike.js';
import { NameIndex } from './name-index.js';
import { ScryptQueue, type ScryptQueueLimits } from './scrypt-queue.js';

/** Visitor sessions no instance holds, taken over per sweep at most (the rest at the next). */
const ADOPT_PER_SWEEP = 1000;

/** The stored "hash" of a bot's account: never a scrypt hash, so no password matches it. */
export const BOT_PASS_HASH = '!bot';

/** Settings of the account limits (each defaults to its constant in shared/limits.ts). */
export interface AccountLimits {
  prefixBits: PrefixBits;
  login?: Partial<LoginGuardLimits>;
  scrypt?: Partial<ScryptQueueLimits>;
  registrationsPerAddress?: number;
  registrationWindowMs?: number;
  visitorsPerAddress?: number;
  visitorNameLeaseMs?: number;
  /** How long a visitor session whose connection closed stays resumable (REGISTRATION_LIMITS). */
  visitorGraceMs?: number;
}

/** A session as far as the limits care. */
interface SessionLike {
  sessionId: string;
  username: string;
  role: 'user' | 'visitor';
}

/** Registration, login and visitor entry with their limits. */
export class AccountService {
  readonly guard: LoginGuard;
  readonly scrypt: ScryptQueue;
  private readonly names: NameIndex;
  /** Per address prefix: live visitor sessions (connected, or closed within their grace). */
  private readonly visitors = new Map<string, number>();
  /** Visitor sessions whose connection closed, still counted until their grace runs out. */
  private readonly graced = new Map<string, { prefix: string; timer: NodeJS.Timeout }>();
  /**
   * Visitor sessions no instance held (their instance died or stopped) whose grace this instance
   * took over: each ends when its timer runs out, unless resumed meanwhile (PROTOCOL.md §3.3).
   */
  private readonly adopted = new Map<string, NodeJS.Timeout>();
  /** Visitor sessions → their connections on this instance. */
  private readonly attached = new Map<string, number>();
  /** This instance, as the holder of visitor names in the store. */
  private readonly instance = randomBytes(9).toString('base64url');
  /**
   * Visitor sessions whose name this instance holds in the store (renewed until released): the
   * name, and its look-alike keys, which a renewal takes again when the store lost them.
   */
  private readonly leased = new Map<string, { name: string; keys: readonly string[] }>();
  private readonly nameLeaseMs: number;
  private readonly renewer: NodeJS.Timeout;
  private readonly registrationsPerAddress: number;
  private readonly registrationWindowMs: number;
  private readonly visitorsPerAddress: number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly store: ServerStore,
    private readonly limits: AccountLimits,
    usernames: Iterable<string>,
  ) {
    this.guard = new LoginGuard(store, limits.login);
    this.scrypt = new ScryptQueue(limits.scrypt);
    this.names = new NameIndex(usernames);
    this.registrationsPerAddress =
      limits.registrationsPerAddress ?? REGISTRATION_LIMITS.registrationsPerAddress;
    this.registrationWindowMs =
      limits.registrationWindowMs ?? REGISTRATION_LIMITS.registrationWindowMs;
    this.visitorsPerAddress = limits.visitorsPerAddress ?? REGISTRATION_LIMITS.visitorsPerAddress;
    this.sweeper = setInterval(() => void this.sweep(), LIMIT_SWEEP.everyMs);
    this.sweeper.unref();
    this.nameLeaseMs = limits.visitorNameLeaseMs ?? REGISTRATION_LIMITS.visitorNameLeaseMs;
    this.renewer = setInterval(
      () => void this.renewNames().then(() => this.adoptUnheld()),
      Math.ceil(this.nameLeaseMs / 3),
    );
    this.renewer.unref();
  }

  /**
   * Extends the store's hold on the names of this instance's visitors (every instance does). A
   * visitor still connected here whose name the store no longer holds for this instance (the
   * store was out of reach longer than a lease, and another instance's renewal swept it) takes
   * it again, so that no instance takes it for a visitor whose instance died and ends it; if
   * another visitor took the name meanwhile, this session is over, as a resume's would be
   * (PROTOCOL.md §3.3): `nameLost`. A visitor within its grace here is only extended.
   */
  async renewNames(now = Date.now()): Promise<void> {
    let short: string[];
    try {
      const held = [...this.leased].map(([sessionId, l]) => ({ sessionId, keys: l.keys }));
      short = await this.store.renewVisitorNames(this.instance, held, now, now + this.nameLeaseMs);
    } catch {
      return; // the store is away; the next renewal tries again (a lease outlives two missed ones)
    }
    for (const sessionId of short) {
      const held = this.leased.get(sessionId);
      if (!held || !this.attached.has(sessionId)) continue;
      const at = Date.now();
      const lease = {
        keys: held.keys,
        sessionId,
        instance: this.instance,
        expiresAt: at + this.nameLeaseMs,
      };
      const taken = await this.store.claimVisitorName(lease, at).then(
        (ok) => !ok,
        () => false, // the store is away again: the next renewal tries again
      );
      if (taken && this.attached.has(sessionId)) this.nameLost?.(sessionId, held.name);
    }
  }

  /**
   * Takes over the grace of the visitor sessions no instance holds any more: their instance
   * died or stopped with them present (its name leases ran out), so no timer there will end
   * them. Each ends `visitorGraceMs` from now unless its peer resumes it meanwhile, as if its
   * connection had closed here. Every instance does this; ending a session twice is harmless,
   * and one resumed on another instance is left to that one (`endUnlessElsewhere`).
   */
  async adoptUnheld(now = Date.now()): Promise<void> {
    let found: string[];
    try {
      found = await this.store.unheldVisitorSessions(now, ADOPT_PER_SWEEP);
    } catch {
      return; // the store is away; the next sweep looks again
    }
    for (const sessionId of found) {
      if (this.attached.has(sessionId) || this.graced.has(sessionId)) continue;
      if (this.adopted.has(sessionId)) continue;
      const timer = setTimeout(() => {
        if (this.adopted.get(sessionId) !== timer) return;
        this.adopted.delete(sessionId);
        void this.endUnlessElsewhere(sessionId);
      }, this.limits.visitorGraceMs ?? REGISTRATION_LIMITS.visitorGraceMs);
      timer.unref();
      this.adopted.set(sessionId, timer);
    }
  }

  /** Deletes expired limit rows from the store (bounded; every instance does, harmlessly). */
  async sweep(now = Date.now()): Promise<number> {
    try {
      return await this.store.sweepLimits(now, {
        forgetAfterMs: this.limits.login?.forgetAfterMs ?? LOGIN_LIMITS.forgetAfterMs,
        registrationWindowMs: this.registrationWindowMs,
        max: LIMIT_SWEEP.maxRows,
      });
    } catch {
      return 0; // the store is away; the next sweep tries again
    }
  }

  /** The budget key of a remote address. */
  prefixOf(ip: string): string {
    return addressPrefix(ip, this.limits.prefixBits);
  }

  /** Creates an account; the name must not look like an existing one. */
  async register(ip: string, username: string, password: string): Promise<void> {
    if (await this.store.getUser(username)) throw new HchatError('E_USERNAME_TAKEN');
    this.names.checkNewUser(username);
    const release = await this.reserveRegistration(this.prefixOf(ip));
    let passHash: string;
    try {
      passHash = await this.scrypt.run('register', () => hashPassword(password));
    } catch (err) {
      await release(); // never hashed: the attempt costs the address nothing
      throw err;
    }
    this.names.checkNewUser(username); // another registration may have won meanwhile
    // Indexed before the insert's await, so that a look-alike registering meanwhile is refused.
    // A name whose insert fails stays indexed until restart (refused as taken, never doubled).
    this.names.addUser(username);
    await this.store.createUser({ username, passHash });
  }

  /**
   * Creates a bot's account (issue 17): a user name like any other, without a password (its
   * stored hash is no scrypt hash, so no login ever matches it); its owner's bot cap instead of
   * the address's registration budget.
   */
  async createBot(username: string): Promise<void> {
    if (await this.store.getUser(username)) throw new HchatError('E_USERNAME_TAKEN');
    this.names.checkNewUser(username);
    this.names.addUser(username);
    await this.store.createUser({ username, passHash: BOT_PASS_HASH });
  }

  /** Checks a password, throttled (counted before the hash); the user on success. */
  async login(ip: string, username: string, password: string): Promise<UserRecord> {
    const attempt = await this.guard.begin(username, this.prefixOf(ip));
    let ok: boolean;
    let user: UserRecord | undefined;
    try {
      user = await this.store.getUser(username);
      // A bot's account has no password: it takes the unknown user's path, dummy hash and all.
      const hash = user?.passHash === BOT_PASS_HASH ? undefined : user?.passHash;
      ok = await this.scrypt.run('login', () => verifyPassword(password, hash));
    } catch (err) {
      this.guard.cancel(attempt);
      throw err;
    }
    // An unknown user and a wrong password take the same path: the same hash, the same write.
    if (!ok || !user) {
      await this.guard.fail(attempt);
      throw new HchatError('E_BAD_CREDENTIALS');
    }
    await this.guard.succeed(attempt);
    return user;
  }

  /**
   * Throws unless a visitor named `name` may enter from `ip` now. The caller checks again with
   * `checkVisitorNow` in the turn it attaches the session: another may have entered meanwhile.
   */
  async checkVisitor(ip: string, name: string): Promise<void> {
    this.checkVisitorNow(ip, name);
    if (await this.store.getUser(name)) throw new HchatError('E_NAME_TAKEN');
    this.checkVisitorNow(ip, name);
  }

  /**
   * Takes visitor session `sessionId`'s name in the store, for every instance to see: throws
   * E_NAME_TAKEN when a visitor present on any instance holds it or a look-alike. Atomic across
   * instances (server-store.ts `claimVisitorName`); a session takes its own name again at resume.
   * Held until the visitor leaves (`sessionOff`), or for `visitorNameLeaseMs` past this
   * instance's last renewal. Whoever claims and then does not attach calls `releaseVisitorName`.
   */
  async claimVisitorName(sessionId: string, name: string, now = Date.now()): Promise<void> {
    const lease = {
      keys: lookAlikeKeys(name),
      sessionId,
      instance: this.instance,
      expiresAt: now + this.nameLeaseMs,
    };
    if (!(await this.store.claimVisitorName(lease, now)))
      throw new HchatError(
        'E_NAME_TAKEN',
        'that name is or looks like an account or a visitor present now',
      );
    this.leased.set(sessionId, { name, keys: lease.keys });
  }

  /** Frees `sessionId`'s name in the store unless the session is still present here. */
  releaseVisitorName(sessionId: string): void {
    if (this.attached.has(sessionId) || this.graced.has(sessionId)) return;
    if (!this.leased.delete(sessionId)) return;
    this.store.releaseVisitorName(sessionId, this.instance).catch(() => undefined); // the lease runs out by itself: it is no longer renewed
  }

  /**
   * The checks of `checkVisitor` that need no store: room from `ip`, and no look-alike of a
   * registered user (a present visitor's name is taken in the store: `claimVisitorName`).
   */
  checkVisitorNow(ip: string, name: string): void {
    this.checkVisitorRoom(ip);
    this.names.checkVisitor(name);
  }

  /**
   * Throws E_RATE_LIMITED when `ip`'s prefix has as many live visitor sessions as it may. A
   * session resumed within its grace already holds its place.
   */
  checkVisitorRoom(ip: string, resuming?: string): void {
    if (resuming !== undefined && this.graced.has(resuming)) return;
    if ((this.visitors.get(this.prefixOf(ip)) ?? 0) >= this.visitorsPerAddress)
      throw new HchatError(
        'E_RATE_LIMITED',
        `at most ${this.visitorsPerAddress} visitor sessions from one address at once; close one, or try again in 60 s`,
        { retryAfterMs: 60_000 },
      );
  }

  /** A session was attached to a connection from `ip`. */
  sessionOn(ip: string, s: SessionLike): void {
    if (s.role !== 'visitor') return;
    this.unadopt(s.sessionId);
    const graced = this.graced.get(s.sessionId);
    if (graced) {
      // Back within its grace (a restarted peer resuming): it was still counted, where it was.
      clearTimeout(graced.timer);
      this.graced.delete(s.sessionId);
      this.uncount(graced.prefix);
    }
    const p = this.prefixOf(ip);
    this.visitors.set(p, (this.visitors.get(p) ?? 0) + 1);
    this.attached.set(s.sessionId, (this.attached.get(s.sessionId) ?? 0) + 1);
  }

  /**
   * A session was detached from its connection. A visitor's that logged out frees its place at
   * once; one whose connection closed keeps its place for VISITOR_GRACE_MS, so that its peer may
   * resume it, and is then ended (`expire`): visitor sessions do not outlive their peer.
   */
  sessionOff(ip: string, s: SessionLike, loggedOut = false): void {
    if (s.role !== 'visitor') return;
    const prefix = this.prefixOf(ip);
    const n = (this.attached.get(s.sessionId) ?? 0) - 1;
    if (n > 0) this.attached.set(s.sessionId, n);
    else this.attached.delete(s.sessionId);
    if (loggedOut) {
      this.uncount(prefix);
      return this.releaseVisitorName(s.sessionId);
    }
    const timer = setTimeout(() => {
      if (this.graced.get(s.sessionId)?.timer !== timer) return;
      this.graced.delete(s.sessionId);
      this.uncount(prefix);
      void this.endUnlessElsewhere(s.sessionId);
    }, this.limits.visitorGraceMs ?? REGISTRATION_LIMITS.visitorGraceMs);
    timer.unref();
    this.graced.set(s.sessionId, { prefix, timer });
  }

  /**
   * A visitor's grace here ran out: the session ends, unless its peer resumed it on another
   * instance meanwhile (that instance holds its name now, and ends it in its turn). Without an
   * answer from the store, it ends.
   */
  private async endUnlessElsewhere(sessionId: string): Promise<void> {
    const holder = await this.store.visitorNameHolder(sessionId, Date.now()).catch(() => undefined);
    // Back here while the store answered: present again, nothing ends.
    if (this.attached.has(sessionId) || this.graced.has(sessionId)) return;
    this.releaseVisitorName(sessionId);
    if (holder !== undefined && holder !== this.instance) return;
    this.expire?.(sessionId);
  }

  /** A session was revoked (through any instance): a visitor's grace here ends now. */
  sessionEnded(sessionId: string): void {
    this.unadopt(sessionId);
    const g = this.graced.get(sessionId);
    if (!g) return;
    clearTimeout(g.timer);
    this.graced.delete(sessionId);
    this.uncount(g.prefix);
    this.releaseVisitorName(sessionId);
  }

  /** Called when a visitor session's grace ran out: the server revokes it. */
  expire: ((sessionId: string) => void) | undefined;

  /**
   * Called when a visitor connected here lost its name to another visitor (it took the name
   * while the store had forgotten this one's lease): the server revokes the session, closing its
   * connection; its peer's resume is refused and it enters again.
   */
  nameLost: ((sessionId: string, name: string) => void) | undefined;

  /** Stops every grace timer (the server is closing). */
  close(): void {
    clearInterval(this.sweeper);
    clearInterval(this.renewer);
    for (const g of this.graced.values()) clearTimeout(g.timer);
    this.graced.clear();
    for (const timer of this.adopted.values()) clearTimeout(timer);
    this.adopted.clear();
  }

  /** A grace taken over here is over: its session is back, or ended. */
  private unadopt(sessionId: string): void {
    const timer = this.adopted.get(sessionId);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.adopted.delete(sessionId);
  }

  private uncount(prefix: string): void {
    const n = (this.visitors.get(prefix) ?? 0) - 1;
    if (n > 0) this.visitors.set(prefix, n);
    else this.visitors.delete(prefix);
  }

  /** Takes one registration of `prefix`'s budget (in the store); the function gives it back. */
  private async reserveRegistration(
    prefix: string,
    now = Date.now(),
  ): Promise<() => Promise<void>> {
    const t = await this.store.takeRegistration(
      prefix,
      now,
      this.registrationsPerAddress,
      this.registrationWindowMs,
    );
    if ('retryAfterMs' in t)
      throw new HchatError(
        'E_RATE_LIMITED',
        `too many registrations from your address; try again in ${Math.ceil(t.retryAfterMs / 1000)} s`,
        { retryAfterMs: t.retryAfterMs },
      );
    return () => this.store.releaseRegistration(t.id).catch(() => undefined);
  }
}
