/**
 * The central server (SPEC §1–§4): tracker, accounts, channel directory and message store, with
 * pushes to online members. One TCP port speaks the framed protocol (protocol/server-link.ts);
 * one HTTP port answers operators (ops-http.ts: health, readiness, metrics).
 */
import type http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import fs from 'node:fs';
import type { z } from 'zod';
import { HchatError } from '../protocol/errors.js';
import { encodeFrame, DEFAULT_MAX_FRAME } from '../protocol/frame.js';
import { PROTOCOL_VERSION, type TrackerEntry } from '../protocol/common.js';
import {
  ClientHello,
  OPS,
  Request,
  describeIssues,
  isOpName,
  type OpName,
  type OpReq,
  type OpRes,
} from '../protocol/server-link.js';
import { FramedSocket, newTrafficStats } from '../shared/framed-socket.js';
import { ConnectionLog } from '../shared/connlog.js';
import { createTlsServer, loadOrCreateServerIdentity } from '../shared/tls.js';
import type { ServerStore } from '../store/server-store.js';
import { openAvatarStore, openDmStore, openServerStore } from '../store/open-server-store.js';
import { LocalBus, type BusEvent, type EventBus } from './bus.js';
import { TrackerReplica } from './tracker-replica.js';
import { OneAtATime } from '../shared/one-at-a-time.js';
import { Conn, type Session } from './conn.js';
import { ChannelService, type MessageCounts } from './channel-service.js';
import { TrackerList, entryKey, sameUser, type EntryChange } from './tracker.js';
import { Presence } from './presence.js';
import { TypingService } from './typing-service.js';
import { SearchService } from './search-service.js';
import { FileService } from './file-service.js';
import { FileStore } from '../store/file-store.js';
import type { AvatarStore } from '../store/avatar-store.js';
import { AvatarService } from './avatar-service.js';
import type { DmStore } from '../store/dm-store.js';
import { DmService } from './dm-service.js';
import { VerifyPool } from './verify-pool.js';
import { TokenSigner, newSessionId } from './accounts.js';
import { AccountService } from './account-service.js';
import { ServerDoor } from './door.js';
import type { LoginGuardLimits } from './login-guard.js';
import type { ScryptQueueLimits } from './scrypt-queue.js';
import { verifyToken } from '../shared/tokens.js';
import { MessageVerifier } from '../shared/signing.js';
import {
  ACCOUNT_LIMITS,
  DM_LIMITS,
  FILE_LIMITS,
  ADDRESS_LIMITS,
  FRAME_LIMITS,
  MESSAGE_LIMITS,
  RATE_LIMITS,
  SERVER_DOOR_LIMITS,
  TRACKER_LIMITS,
} from '../shared/limits.js';
import { RateLimiter } from '../shared/rate-limit.js';
import type { Logger } from 'pino';
import { ServerMetrics } from './metrics.js';
import { createOpsHttp, type ReadinessCheck } from './ops-http.js';
import { silentLog } from './ops-log.js';

const MAX_IN_FLIGHT = FRAME_LIMITS.maxInFlight;
/** Operations that hash a password (seconds under load): they do not hold a connection's turn. */
const HASHING_OPS: ReadonlySet<string> = new Set(['register', 'login']);
const NOTHING = (): void => undefined;

/** Settings of a server process (validated by the CLI before they get here). */
export interface ServerOptions {
  host: string;
  port: number;
  httpPort: number;
  dataDir: string;
  /**
   * The operator's TLS certificate and key (PEM files, from a CA). Without them the server
   * makes a self-signed pair in its data folder on first start; peers pin its fingerprint.
   */
  tls?: { certFile: string; keyFile: string };
  /**
   * The deployment's signing key (Ed25519, PKCS#8 PEM), the same file for every instance; without
   * it the instance makes its own, `<data>/server-key.pem`, on first start.
   */
  signingKeyFile?: string;
  /** How often this instance tells the others it is alive; 4 × silent is dead (default 2000). */
  instanceAliveMs?: number;
  /** Users presence keeps loaded besides those connected here (presence.ts USER_CACHE_MAX). */
  presenceUsersCached?: number;
  /** How long a drain (SIGTERM) waits for peers to move before closing (default 10 s). */
  drainMs?: number;
  /**
   * bench/ only: the framed port without TLS, so that `npm run bench` can show what TLS costs
   * in the same run. No flag or environment variable of `hchat` reaches it.
   */
  benchPlaintext?: boolean;
  /** Largest file the server backs up (FILE_LIMITS.maxFileBytes). */
  maxFileBytes?: number;
  /** Bytes of files each user may have backed up here (FILE_LIMITS.quotaBytes). */
  fileQuotaBytes?: number;
  /** How often peers must send a frame. */
  heartbeatMs?: number;
  /** A connection silent this long is dropped and its tracker entry removed. */
  timeoutMs?: number;
  maxFrame?: number;
  /** An opened store (tests); else the one `storeUrl` names (store/open-server-store.ts). */
  store?: ServerStore;
  /** `--store`: a postgres:// URL, or undefined for SQLite in the data folder. */
  storeUrl?: string;
  bus?: EventBus;
  /** Failed logins of one account from one address prefix before it locks (5). */
  loginMaxFailures?: number;
  /** First lock of a login budget, doubled by each further failure (60 s). */
  loginWindowMs?: number;
  /** Every login throttle setting (shared/limits.ts LOGIN_LIMITS); wins over the two above. */
  login?: Partial<LoginGuardLimits>;
  /** Password hashing queue (shared/limits.ts SCRYPT_LIMITS). */
  scrypt?: Partial<ScryptQueueLimits>;
  /** Registrations per address prefix per hour (10). */
  maxRegistrationsPerAddress?: number;
  /** Live visitor sessions per address prefix (20). */
  maxVisitorsPerAddress?: number;
  /** Connections without a session per address prefix (64). */
  maxUnauthenticatedPerAddress?: number;
  /** Connections without a session in total (1024). */
  maxUnauthenticated?: number;
  /** Time a new connection has to send its hello (5 s). */
  helloTimeoutMs?: number;
  /** Leading bits of an IPv4 / IPv6 address that make one address budget (24 / 64). */
  ipv4PrefixBits?: number;
  ipv6PrefixBits?: number;
  /**
   * Threads that check posts' signatures off the event loop (default 0: on it). On the 2-core
   * machines here the bench showed no gain (bench/README.md); it is for bigger machines.
   */
  verifyThreads?: number;
  /** ε: messages stamped further ahead of this server's clock are refused (E_CLOCK_SKEW). */
  maxClockSkewMs?: number;
  /** Lifetime of key certificates (renewed at each resume). */
  certTtlMs?: number;
  /** Live sessions per account; a login past it revokes the oldest. */
  sessionsPerAccount?: number;
  /** Channels one user may own. */
  channelsPerAccount?: number;
  /** Channels one user may join. */
  membershipsPerAccount?: number;
  /** Posts per second per user, sustained, and the burst allowed above it. */
  postsPerSecond?: number;
  postBurst?: number;
  /** Envelopes one device's mailbox holds (shared/limits.ts DM_LIMITS.maxMailbox). */
  dmMailbox?: number;
  /** Tracker entries per account at once (shared/limits.ts TRACKER_LIMITS: 10). */
  maxTrackerEntriesPerAccount?: number;
  /** Tracker entries per address prefix at once (256). */
  maxTrackerEntriesPerAddress?: number;
  /** The operational log (ops-log.ts); silent when absent. */
  opsLog?: Logger;
  /** Readiness checks beyond the store's and the bus's (`GET /ready`). */
  readiness?: ReadinessCheck[];
}

/** A running central server. */
export class CentralServer {
  readonly log: ConnectionLog;
  readonly store: ServerStore;
  readonly tracker = new TrackerList();
  /** The other instances' entries in `tracker` (one instance: nothing to keep). */
  private readonly replica: TrackerReplica;
  private readonly offBusReconnect: () => void;
  /** Catch-up after events were missed (this instance's bus link, or another's, was down). */
  private readonly resync: OneAtATime;
  /** Changes from other instances, told to this instance's sessions in order (presence loads). */
  private remoteTracker: Promise<void> = Promise.resolve();
  /** Bytes and frames over every peer connection since start (`GET /stats`). */
  readonly traffic = newTrafficStats();
  /** Messages stored, by how they arrived, and message events written to connections. */
  readonly counts: MessageCounts = { posted: 0, forwarded: 0, duplicates: 0, pushed: 0 };
  /** Prometheus metrics of this instance (`GET /metrics`). */
  readonly metrics: ServerMetrics;
  /** The operational log (JSON lines), apart from the connection log. */
  readonly opsLog: Logger;
  private readonly bus: EventBus;
  private readonly signer: TokenSigner;
  private readonly channels: ChannelService;
  private readonly verifyPool: VerifyPool | undefined;
  private readonly accounts: AccountService;
  private readonly door: ServerDoor;
  private readonly tcp: net.Server;
  /** SHA-256 of the TLS key's SPKI, base64url: what peers pin (`--server host:port#…`). */
  readonly fingerprint: string;
  private readonly http: http.Server;
  private readonly conns = new Set<Conn>();
  private readonly byUser = new Map<string, Set<Conn>>();
  private readonly heartbeatMs: number;
  private readonly timeoutMs: number;
  private readonly maxFrame: number;
  private readonly helloFrame: Buffer;
  private readonly unsubscribe: () => void;
  private readonly sweeper: NodeJS.Timeout;
  private nextConnId = 1;
  private closing = false;
  private drainingSince: number | undefined;
  private readonly drainMs: number;
  private readonly certTtlMs: number;
  private readonly presenceLimiter = new RateLimiter(
    RATE_LIMITS.presencePerSecond,
    RATE_LIMITS.presenceBurst,
  );
  private readonly sessionsPerAccount: number;
  private readonly presence: Presence;
  private readonly typing: TypingService;
  private readonly search: SearchService;
  private readonly files: FileService;
  private readonly fileStore: FileStore;
  private readonly avatarStore: AvatarStore;
  private readonly avatars: AvatarService;
  private readonly dmStore: DmStore;
  private readonly dms: DmService;
  private readonly trackerCaps: { entriesPerAccount: number; entriesPerAddress: number };

  private constructor(
    opts: ServerOptions,
    store: ServerStore,
    dmStore: DmStore,
    avatarStore: AvatarStore,
    usernames: readonly string[],
  ) {
    fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    this.log = new ConnectionLog(opts.dataDir);
    this.store = store;
    this.bus = opts.bus ?? new LocalBus();
    this.opsLog = opts.opsLog ?? silentLog();
    // Instances of one deployment share one signing key: a session made on one is good on all.
    this.signer = opts.signingKeyFile
      ? TokenSigner.load(opts.signingKeyFile)
      : TokenSigner.loadOrCreate(opts.dataDir);
    this.drainMs = opts.drainMs ?? 10_000;
    this.verifyPool = opts.verifyThreads ? new VerifyPool(opts.verifyThreads) : undefined;
    this.certTtlMs = opts.certTtlMs ?? MESSAGE_LIMITS.certTtlMs;
    this.sessionsPerAccount = opts.sessionsPerAccount ?? ACCOUNT_LIMITS.sessionsPerAccount;
    this.channels = new ChannelService({
      store: this.store,
      bus: this.bus,
      log: this.log,
      verifier: new MessageVerifier(() => this.signer.publicKey, {
        maxClockSkewMs: opts.maxClockSkewMs,
      }),
      channelsPerAccount: opts.channelsPerAccount ?? ACCOUNT_LIMITS.channelsPerAccount,
      membershipsPerAccount: opts.membershipsPerAccount ?? ACCOUNT_LIMITS.membershipsPerAccount,
      pageChannels: TRACKER_LIMITS.pageChannels,
      postLimiter: new RateLimiter(
        opts.postsPerSecond ?? RATE_LIMITS.postsPerSecond,
        opts.postBurst ?? RATE_LIMITS.postBurst,
      ),
      verifyPool: this.verifyPool,
      counts: this.counts,
      ops: {
        batchStored: (seconds) => this.metrics.batchStored(seconds),
        internalError: (what, err) => this.opsLog.error({ err }, what),
      },
      connsOf: (username) => this.byUser.get(username) ?? [],
      answerError: (conn, id, op, err) => this.answerError(conn, id, op, err),
      itemStored: (m, erased) => this.files.itemStored(m, erased),
    });
    this.presence = new Presence({
      store: this.store,
      tracker: this.tracker,
      membersOf: (id) => this.channels.cachedMembers(id),
      loadMembers: (id) => this.channels.members(id),
      channel: (id) => this.channels.cachedChannel(id),
      connsOf: (username) => this.byUser.get(username) ?? [],
      conns: () => this.conns,
      pageEntries: TRACKER_LIMITS.pageEntries,
      usersCached: opts.presenceUsersCached,
    });
    this.typing = new TypingService({
      bus: this.bus,
      channel: (id) => this.channels.channel(id),
      membersOf: (id) => this.channels.members(id),
      subscribersOf: (id) => this.channels.subscribersOf(id),
      entryOf: (conn) => (conn.entryKey ? this.tracker.get(conn.entryKey) : undefined),
    });
    this.search = new SearchService({
      store: this.store,
      log: this.log,
      readable: (s, id) => this.channels.readable(s, id),
      myChannels: (conn) => this.channels.myChannels(conn),
    });
    this.fileStore = new FileStore(path.join(opts.dataDir, 'files'));
    this.files = new FileService({
      files: this.fileStore,
      log: this.log,
      readable: (s, id) => this.channels.readable(s, id),
      members: (id) => this.channels.members(id),
      // Public only: an invisible user is never named (PROTOCOL.md §4.3).
      reachable: (username) =>
        this.tracker.entriesOf(username, 'user').some((e) => e.status === 'online'),
      signGrant: (claims) => this.signer.sign(claims),
      maxFileBytes: opts.maxFileBytes ?? FILE_LIMITS.maxFileBytes,
      quotaBytes: opts.fileQuotaBytes ?? FILE_LIMITS.quotaBytes,
      grantTtlMs: FILE_LIMITS.grantTtlMs,
    });
    this.avatarStore = avatarStore;
    this.avatars = new AvatarService({
      avatars: this.avatarStore,
      bus: this.bus,
      log: this.log,
      serverKey: () => this.signer.publicKey,
      channelsOf: async (username) => {
        const cached = this.presence.channelsOf(username);
        if (cached.size > 0) return cached;
        return (await this.store.channelsOf(username)).map((c) => c.id);
      },
      membersOf: (id) => this.channels.members(id),
      connsOf: (username) => this.byUser.get(username) ?? [],
      viewersOf: (id) => [...this.channels.subscribersOf(id), ...this.presence.viewersOf(id)],
      internalError: (what, err) => this.opsLog.error({ err }, what),
    });
    this.dmStore = dmStore;
    this.dms = new DmService({
      dms: this.dmStore,
      bus: this.bus,
      log: this.log,
      registered: async (username) => (await this.store.getUser(username))?.username,
      memberships: this.presence,
      entriesOf: (username) => this.tracker.entriesOf(username, 'user'),
      internalError: (what, err) => this.opsLog.error({ err }, what),
      maxMailbox: opts.dmMailbox ?? DM_LIMITS.maxMailbox,
    });
    this.trackerCaps = {
      entriesPerAccount: opts.maxTrackerEntriesPerAccount ?? TRACKER_LIMITS.entriesPerAccount,
      entriesPerAddress: opts.maxTrackerEntriesPerAddress ?? TRACKER_LIMITS.entriesPerAddress,
    };
    this.heartbeatMs = opts.heartbeatMs ?? 5000;
    this.timeoutMs = opts.timeoutMs ?? 15000;
    this.maxFrame = opts.maxFrame ?? DEFAULT_MAX_FRAME;
    this.accounts = newAccountService(this.store, opts, usernames);
    // A visitor session whose peer did not come back within its grace ends for good.
    this.accounts.expire = (sessionId) => {
      if (this.closing) return;
      this.channels.sessionRevoked(sessionId, Date.now());
      this.store
        .revokeSession(sessionId)
        .catch((err: unknown) => console.error('hchat server: revoking a session failed:', err));
    };
    this.door = new ServerDoor(
      {
        helloTimeoutMs: opts.helloTimeoutMs,
        unauthenticatedPerAddress: opts.maxUnauthenticatedPerAddress,
        unauthenticatedTotal: opts.maxUnauthenticated,
      },
      this.maxFrame,
      (ip) => this.accounts.prefixOf(ip),
    );
    this.helloFrame = encodeFrame({
      t: 'hello',
      v: PROTOCOL_VERSION,
      role: 'server',
      heartbeatMs: this.heartbeatMs,
      timeoutMs: this.timeoutMs,
      maxFrame: this.maxFrame,
      publicKey: this.signer.publicKeyBase64,
    });
    this.unsubscribe = this.bus.subscribe((e, from) => this.deliver(e, from));
    this.resync = new OneAtATime(
      async () => {
        await this.channels.busReconnected();
        await this.presence.reloadUsers();
      },
      () => this.closing,
    );
    this.offBusReconnect = this.bus.onReconnect(() => this.resyncAfterOutage());
    this.replica = new TrackerReplica({
      tracker: this.tracker,
      bus: this.bus,
      changed: (change) => this.remoteTrackerChanged(change),
      aliveMs: opts.instanceAliveMs ?? 2000,
      deadAfterMs: (opts.instanceAliveMs ?? 2000) * 4,
    });
    const identity = loadOrCreateServerIdentity(opts.dataDir, opts.tls);
    this.fingerprint = identity.fingerprint;
    this.tcp = opts.benchPlaintext
      ? net.createServer((socket) => this.accept(socket))
      : // A connection that does not finish its TLS handshake is dropped like one without hello.
        createTlsServer(
          identity,
          opts.helloTimeoutMs ?? SERVER_DOOR_LIMITS.helloTimeoutMs,
          this.log,
          (socket) => this.accept(socket),
        );
    // TLS handshakes count against the door's caps from the first TCP byte (door.ts).
    this.tcp.on('connection', (socket: net.Socket) => {
      if (this.closing) socket.destroy();
      else if (!opts.benchPlaintext) this.door.admitTcp(socket);
    });
    this.metrics = new ServerMetrics({
      conns: () => this.conns,
      trackerEntries: () => this.tracker.size,
      counts: this.counts,
      queuedPosts: () => this.channels.queuedPosts,
      queuedVerifies: () => this.verifyPool?.pending ?? 0,
      queuedScrypt: () => this.accounts.scrypt.queued,
    });
    this.http = createOpsHttp({
      metrics: this.metrics,
      checks: [
        // A trivial query, awaited: the same line holds when the store's answers are promises.
        {
          name: 'store',
          check: async () => {
            await this.store.ping();
          },
        },
        // LocalBus lives in this process: ready while the process is.
        {
          name: 'bus',
          check: () => {
            if (!this.bus.ready()) throw new Error('the event bus is not connected');
          },
        },
        ...(opts.readiness ?? []),
      ],
      draining: () => this.draining || this.closing,
      connections: () => this.conns.size,
      trackerEntries: () => this.tracker.size,
      traffic: this.traffic,
      counts: this.counts,
      log: this.opsLog,
    });
    this.sweeper = setInterval(
      () => this.sweep(),
      Math.max(50, Math.min(this.heartbeatMs, this.timeoutMs / 4)),
    );
    this.sweeper.unref();
  }

  /** Opens the store (migrating it), then starts listening; resolves once both ports are bound. */
  static async start(opts: ServerOptions): Promise<CentralServer> {
    const store = opts.store ?? (await openServerStore(opts.storeUrl, opts.dataDir));
    let s: CentralServer;
    let dms: DmStore | undefined;
    let avatars: AvatarStore | undefined;
    try {
      fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
      dms = await openDmStore(opts.storeUrl, opts.dataDir);
      avatars = await openAvatarStore(opts.storeUrl, opts.dataDir);
      s = new CentralServer(opts, store, dms, avatars, await store.usernames());
    } catch (err) {
      await avatars?.close();
      await dms?.close();
      await store.close();
      throw err;
    }
    try {
      await listen(s.tcp, opts.port, opts.host);
      await listen(s.http, opts.httpPort, opts.host);
    } catch (err) {
      await s.close();
      throw err;
    }
    s.log.write('listen', { tcp: s.tcpAddress, http: s.httpUrl, fingerprint: s.fingerprint });
    s.opsLog.info(
      {
        tcp: s.tcpAddress,
        http: s.httpUrl,
        store: s.store.constructor.name,
        bus: s.bus.constructor.name,
        verifyThreads: opts.verifyThreads ?? 0,
      },
      'server started',
    );
    return s;
  }

  /** `ip:port` of the framed-protocol port. */
  get tcpAddress(): string {
    const a = this.tcp.address() as net.AddressInfo;
    return `${a.address}:${a.port}`;
  }

  /** Base URL of the HTTP port. */
  get httpUrl(): string {
    const a = this.http.address() as net.AddressInfo;
    return `http://${a.address}:${a.port}/`;
  }

  /** True from the start of a drain (SIGTERM) until the process ends. */
  get draining(): boolean {
    return this.drainingSince !== undefined;
  }

  /**
   * Leaves the deployment gracefully (SIGTERM): stops taking connections, tells every peer to
   * move to another instance (`draining`), and closes once they have gone or `drainMs` passed.
   */
  async drain(): Promise<void> {
    if (this.closing || this.drainingSince !== undefined) return;
    this.drainingSince = Date.now();
    this.log.write('drain', { connections: this.conns.size });
    this.opsLog.info(
      { connections: this.conns.size, drainMs: this.drainMs },
      'draining: /ready answers 503, peers are told to move',
    );
    this.tcp.close();
    const frame = encodeFrame({ t: 'ev', ev: 'draining', body: {} });
    for (const c of this.conns) if (c.helloDone && c.fs.isOpen) c.fs.sendEncoded(frame);
    const deadline = this.drainingSince + this.drainMs;
    while (this.conns.size > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    this.log.write('drained', {
      ms: Date.now() - this.drainingSince,
      left: this.conns.size,
    });
    await this.close();
  }

  /** Closes every connection and port, flushes pending writes, closes the store and the log. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.opsLog.info({ connections: this.conns.size }, 'shutting down');
    clearInterval(this.sweeper);
    this.accounts.close();
    await this.channels.close();
    await this.verifyPool?.close();
    for (const c of this.conns) c.fs.fail(new HchatError('E_SHUTTING_DOWN'));
    await Promise.all([closeServer(this.tcp), closeServer(this.http)]);
    this.replica.stop();
    this.offBusReconnect();
    this.unsubscribe();
    await this.bus.close();
    await this.store.close();
    this.fileStore.close();
    await this.avatarStore.close();
    await this.dmStore.close();
    this.log.write('shutdown', {});
    this.log.close();
    this.opsLog.info('server stopped');
  }

  // ---- connections ------------------------------------------------------------------------

  private accept(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.door.handshakeDone(socket);
    if (!this.door.admit(socket)) return;
    const id = this.nextConnId++;
    const conn: Conn = new Conn(
      id,
      new FramedSocket(
        socket,
        {
          frame: (f) => this.onFrame(conn, f),
          close: (reason) => this.onClose(conn, reason),
        },
        this.maxFrame,
        this.traffic,
        (bytes) => this.metrics.framesOut(conn, bytes),
      ),
    );
    conn.fs.pausesReading = true; // the serving end: see FramedSocket
    this.conns.add(conn);
    this.door.opened(conn);
    this.log.write('open', { peer: conn.name, conn: id });
  }

  private onClose(conn: Conn, reason: HchatError | undefined): void {
    this.conns.delete(conn);
    const name = conn.name; // before the session is detached: the line names who left
    this.detachSession(conn);
    this.door.closed(conn);
    this.log.write('close', { peer: name, conn: conn.id, reason: reason?.code ?? 'eof' });
  }

  private onFrame(conn: Conn, f: Record<string, unknown>): void {
    this.metrics.frameIn(conn, f);
    if (f.t === 'error') {
      // The other end is closing with a fatal error: never answered (PROTOCOL.md §1).
      conn.fs.close(peerError(f));
      return;
    }
    if (!conn.helloDone) {
      if (f.t !== 'hello') throw new HchatError('E_HELLO_REQUIRED');
      const hello = ClientHello.safeParse(f);
      if (!hello.success)
        throw new HchatError('E_BAD_FRAME', `hello: ${describeIssues(hello.error)}`);
      if (hello.data.v !== PROTOCOL_VERSION) {
        throw new HchatError(
          'E_VERSION_MISMATCH',
          `protocol version ${hello.data.v} not supported; this server speaks ${PROTOCOL_VERSION}`,
        );
      }
      conn.helloDone = true;
      if (hello.data.maxFrame) conn.fs.peerMaxFrame = hello.data.maxFrame;
      this.door.helloDone(conn);
      conn.fs.sendEncoded(this.helloFrame);
      // A connection that finished its TLS handshake as the drain began hears it too.
      if (this.draining) conn.fs.send({ t: 'ev', ev: 'draining', body: {} });
      return;
    }
    switch (f.t) {
      case 'ping':
        conn.fs.send({ t: 'pong' });
        return;
      case 'pong':
        return;
      case 'req': {
        const req = Request.safeParse(f);
        if (!req.success) throw new HchatError('E_BAD_FRAME', `req: ${describeIssues(req.error)}`);
        const { id, op, body } = req.data;
        // Forward compatible (PROTOCOL.md §1): an unknown operation is refused, the link stays.
        if (!isOpName(op))
          return this.answerError(
            conn,
            id,
            op,
            new HchatError('E_UNKNOWN_TYPE', `unknown operation "${op}"`),
          );
        // At most MAX_IN_FLIGHT requests of one connection are worked on at once: past it the
        // connection's next frames wait (a pipelining client cannot queue unbounded work).
        if (++conn.inFlight >= MAX_IN_FLIGHT) conn.fs.hold();
        const done = () => {
          if (--conn.inFlight < MAX_IN_FLIGHT) conn.fs.release();
        };
        const work = (): Promise<void> => this.handle(conn, id, op, body);
        const task = HASHING_OPS.has(op) ? work() : conn.turn.then(work);
        if (!HASHING_OPS.has(op)) conn.turn = task.then(NOTHING, NOTHING);
        task.then(done, (err: unknown) => {
          done();
          this.answerError(conn, id, op, err);
        });
        return;
      }
      case 'hello':
        throw new HchatError('E_BAD_FRAME', 'hello sent twice');
      default:
        throw new HchatError(
          'E_UNKNOWN_TYPE',
          `unknown frame type ${JSON.stringify(f.t)?.slice(0, 40)}`,
        );
    }
  }

  private answerError(conn: Conn, id: number, op: string, err: unknown): void {
    if (!(err instanceof HchatError)) {
      // A bug here must not take every other peer down with it; log it and answer E_INTERNAL.
      this.opsLog.error({ err, op }, 'request failed');
      err = new HchatError('E_INTERNAL');
    }
    const e = err as HchatError;
    this.metrics.error(e.code);
    this.log.write('refuse', { peer: conn.name, op, code: e.code });
    conn.fs.send({ t: 'res', id, error: e.toWire() });
  }

  private async handle(conn: Conn, id: number, op: OpName, rawBody: unknown): Promise<void> {
    const spec = OPS[op];
    const parsed = (spec.req as z.ZodType).safeParse(rawBody ?? {});
    if (!parsed.success) {
      throw new HchatError('E_BAD_REQUEST', `${op}: ${describeIssues(parsed.error)}`);
    }
    if (spec.access !== 'anyone') {
      if (!conn.session) throw new HchatError('E_AUTH_REQUIRED');
      if (spec.access === 'user' && conn.session.role !== 'user') {
        throw new HchatError('E_VISITOR_READ_ONLY', `visitors cannot ${op.replace('_', ' ')}`);
      }
    }
    if (op === 'post') {
      // Posts are group-committed: answered after the batch's transaction.
      this.channels.queuePost(conn, id, parsed.data as OpReq<'post'>);
      return;
    }
    const result = await this.run(conn, op, parsed.data);
    if (conn.fs.isOpen) conn.fs.answer(id, result);
  }

  private async run(conn: Conn, op: Exclude<OpName, 'post'>, body: unknown): Promise<unknown> {
    switch (op) {
      case 'register':
        return this.register(conn, body as OpReq<'register'>);
      case 'login':
        return this.login(conn, body as OpReq<'login'>);
      case 'visitor':
        return this.visitor(conn, body as OpReq<'visitor'>);
      case 'resume':
        return this.resume(conn, body as OpReq<'resume'>);
      case 'logout':
        return this.logout(conn);
      case 'submit_info':
        this.presenceBudget(conn);
        return await this.submitInfo(conn, body as OpReq<'submit_info'>);
      case 'set_status':
        this.presenceBudget(conn);
        return this.setStatus(conn, body as OpReq<'set_status'>);
      case 'get_list':
        return this.presence.page(conn, (body as OpReq<'get_list'>).after);
      case 'channel_create': {
        const c = await this.channels.createChannel(conn, body as OpReq<'channel_create'>);
        this.presence.channelCreated(c.id, c.owner);
        return c;
      }
      case 'directory':
        return this.channels.directory(conn, (body as OpReq<'directory'>).after);
      case 'my_channels':
        return { channels: await this.channels.myChannels(conn) };
      case 'channel_join': {
        const c = await this.channels.join(conn, (body as OpReq<'channel_join'>).channelId);
        this.presence.view(conn, [c.id]); // a visitor now sees the channel's host and streamers
        return c;
      }
      case 'history':
        return this.channels.history(conn, body as OpReq<'history'>);
      case 'sync':
        return this.channels.sync(conn, body as OpReq<'sync'>);
      case 'subscribe': {
        const r = await this.channels.subscribe(conn, body as OpReq<'subscribe'>);
        this.presence.view(conn, r.channelIds);
        return r;
      }
      case 'forward':
        return this.channels.forward(conn, body as OpReq<'forward'>);
      case 'members':
        return this.channels.channelMembers(conn, body as OpReq<'members'>);
      case 'channel_leave':
        await this.channels.leave(conn, (body as OpReq<'channel_leave'>).channelId);
        return {};
      case 'typing':
        return this.typing.typing(conn, body as OpReq<'typing'>);
      case 'search':
        return this.search.search(conn, body as OpReq<'search'>);
      case 'file_put':
        return this.files.put(conn, body as OpReq<'file_put'>);
      case 'file_chunk_put':
        return this.files.putChunk(conn, body as OpReq<'file_chunk_put'>);
      case 'file_manifest':
        return this.files.manifest(conn, body as OpReq<'file_manifest'>);
      case 'file_chunk':
        return this.files.chunk(conn, body as OpReq<'file_chunk'>);
      case 'file_held':
        return this.files.held(conn, body as OpReq<'file_held'>);
      case 'file_sources':
        return this.files.sources(conn, body as OpReq<'file_sources'>);
      case 'avatar_set':
        return this.avatars.set(conn, body as OpReq<'avatar_set'>);
      case 'avatars':
        return this.avatars.list(body as OpReq<'avatars'>);
      case 'avatar_get':
        return this.avatars.get(body as OpReq<'avatar_get'>);
      case 'dm_publish':
        return this.dms.publish(conn, body as OpReq<'dm_publish'>);
      case 'dm_devices':
        return this.dms.devices(conn, body as OpReq<'dm_devices'>);
      case 'dm_bundles':
        return this.dms.bundles(conn, body as OpReq<'dm_bundles'>);
      case 'dm_send':
        return this.dms.send(conn, body as OpReq<'dm_send'>);
      case 'dm_fetch':
        return this.dms.fetch(conn, body as OpReq<'dm_fetch'>);
      case 'dm_ack':
        return this.dms.ack(conn, body as OpReq<'dm_ack'>);
      case 'dm_block':
        return this.dms.block(conn, body as OpReq<'dm_block'>);
      case 'dm_blocks':
        return this.dms.blocks(conn);
    }
  }

  // ---- accounts -----------------------------------------------------------------------------

  private async register(conn: Conn, b: OpReq<'register'>): Promise<OpRes<'register'>> {
    await this.accounts.register(conn.fs.remote.ip, b.username, b.password);
    this.log.write('register', { peer: conn.name, user: b.username });
    return { username: b.username };
  }

  private async login(conn: Conn, b: OpReq<'login'>): Promise<OpRes<'login'>> {
    if (conn.session) throw new HchatError('E_ALREADY_AUTHENTICATED');
    const user = await this.accounts.login(conn.fs.remote.ip, b.username, b.password);
    return this.openSession(conn, user.username, 'user', b.publicKey);
  }

  private async visitor(conn: Conn, b: OpReq<'visitor'>): Promise<OpRes<'visitor'>> {
    if (conn.session) throw new HchatError('E_ALREADY_AUTHENTICATED');
    await this.accounts.checkVisitor(conn.fs.remote.ip, b.name);
    return this.openSession(conn, b.name, 'visitor', b.publicKey);
  }

  /**
   * Opens a session on `conn`. What may have changed at an await (a pipelined twin attached a
   * session, another visitor took the name) is checked again in the turn the session attaches;
   * the session is stored before it is answered, and detached again if storing it failed.
   */
  private async openSession(
    conn: Conn,
    username: string,
    role: 'user' | 'visitor',
    publicKey: string,
  ): Promise<OpRes<'login'>> {
    await this.presence.loadUser(username);
    if (conn.session) throw new HchatError('E_ALREADY_AUTHENTICATED'); // a pipelined twin won
    if (role === 'visitor') this.accounts.checkVisitorNow(conn.fs.remote.ip, username);
    const sessionId = newSessionId();
    const iat = Date.now();
    const session = { sessionId, username, role };
    this.attachSession(conn, session);
    try {
      await this.store.createSession({ sessionId, username, role, createdAt: iat, publicKey });
    } catch (err) {
      this.detachSession(conn, true);
      throw err;
    }
    // At most sessionsPerAccount live sessions: a new login retires the oldest ones.
    if (role === 'user') {
      const live = await this.store.liveSessions(username, role);
      for (const old of live.slice(0, Math.max(0, live.length - this.sessionsPerAccount)))
        await this.revoke(old.sessionId, username);
    }
    const token = this.signer.sign({ typ: 'session', sid: sessionId, u: username, r: role, iat });
    return { ...session, token, cert: this.certify(session, publicKey) };
  }

  /** The session's message key, certified: every node can check this session's messages. */
  private certify(s: Session, publicKey: string): string {
    const iat = Date.now();
    return this.signer.sign({
      typ: 'key',
      sid: s.sessionId,
      u: s.username,
      r: s.role,
      pk: publicKey,
      iat,
      exp: iat + this.certTtlMs,
    });
  }

  private async resume(conn: Conn, b: OpReq<'resume'>): Promise<OpRes<'resume'>> {
    if (conn.session) throw new HchatError('E_ALREADY_AUTHENTICATED');
    const claims = verifyToken(b.token, this.signer.publicKey);
    const s = claims && (await this.store.getSession(claims.sid));
    if (!claims || !s || s.revoked || s.username !== claims.u || s.role !== claims.r) {
      throw new HchatError('E_SESSION_INVALID');
    }
    if (!s.publicKey) throw new HchatError('E_SESSION_INVALID', 'session predates key renewal');
    await this.presence.loadUser(s.username);
    // Checked again after the awaits: a twin may have attached, a logout revoked it meanwhile.
    if (conn.session) throw new HchatError('E_ALREADY_AUTHENTICATED');
    if (this.channels.revokedNow(s.sessionId)) throw new HchatError('E_SESSION_INVALID');
    if (s.role === 'visitor') this.accounts.checkVisitorRoom(conn.fs.remote.ip, s.sessionId);
    const session = { sessionId: s.sessionId, username: s.username, role: s.role };
    this.attachSession(conn, session);
    return { ...session, cert: this.certify(session, s.publicKey) };
  }

  private async logout(conn: Conn): Promise<OpRes<'logout'>> {
    const s = conn.session!;
    const viewed = [...conn.subs];
    this.detachSession(conn, true);
    await this.revoke(s.sessionId, s.username, viewed);
    return {};
  }

  /**
   * Revokes a session: its token and certificate stop working here, its connections close, and
   * the peers that may hold P2P links from it (users sharing a channel with it) are told, so they
   * drop those links and refuse new ones.
   */
  private async revoke(
    sessionId: string,
    username: string,
    viewed?: Iterable<string>,
  ): Promise<void> {
    // Known revoked here at once (a resume or post racing the store's answer is refused).
    this.channels.sessionRevoked(sessionId, Date.now());
    await this.store.revokeSession(sessionId);
    const revokedAt = (await this.store.getSession(sessionId))?.revokedAt ?? Date.now();
    const owned = await this.store.channelsOf(username);
    const channels = new Set(viewed ?? []);
    for (const c of owned) channels.add(c.id);
    const e = {
      kind: 'session_revoked' as const,
      sessionId,
      username,
      revokedAt,
      channelIds: [...channels],
    };
    // This instance acts before answering; the others when the event reaches them.
    await this.sessionRevoked(e);
    this.bus.publish(e);
  }

  /** Forgets a revoked session here: closes its connections, tells its co-members' (above). */
  private async sessionRevoked(e: Extract<BusEvent, { kind: 'session_revoked' }>): Promise<void> {
    const { sessionId, username } = e;
    this.channels.sessionRevoked(sessionId, e.revokedAt);
    const channels = e.channelIds;
    const members = new Map<string, string[]>();
    for (const id of channels) members.set(id, await this.store.members(id));
    for (const c of this.byUser.get(username.toLowerCase()) ?? []) {
      if (c.session?.sessionId === sessionId) {
        this.detachSession(c, true);
        c.fs.fail(new HchatError('E_SESSION_INVALID', 'session revoked (logged in elsewhere)'));
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

  private attachSession(conn: Conn, s: Session): void {
    conn.session = s;
    const key = s.username.toLowerCase();
    let set = this.byUser.get(key);
    if (!set) this.byUser.set(key, (set = new Set()));
    set.add(conn);
    this.accounts.sessionOn(conn.fs.remote.ip, s);
    this.door.authenticated(conn);
    this.log.write('auth', { peer: conn.name, conn: conn.id, role: s.role, session: s.sessionId });
  }

  private detachSession(conn: Conn, loggedOut = false): void {
    const s = conn.session;
    if (!s) return;
    if (conn.entryKey) {
      const change = this.tracker.remove(conn.entryKey);
      conn.entryKey = undefined;
      this.publishTracker(change);
    }
    this.presence.forget(conn);
    this.dms.unbind(conn);
    this.channels.setSubscriptions(conn, []);
    const key = s.username.toLowerCase();
    const set = this.byUser.get(key);
    set?.delete(conn);
    if (set?.size === 0) this.byUser.delete(key);
    conn.session = undefined;
    this.accounts.sessionOff(conn.fs.remote.ip, s, loggedOut);
    this.door.unauthenticated(conn);
  }

  // ---- tracker ------------------------------------------------------------------------------

  private async submitInfo(conn: Conn, b: OpReq<'submit_info'>): Promise<OpRes<'submit_info'>> {
    const s = conn.session!;
    // What the entry may claim is read first; the entry then changes in one turn.
    const hosts: string[] = [];
    for (const id of b.hosts)
      if ((await this.channels.channel(id))?.owner === s.username) hosts.push(id);
    const live: typeof b.live = [];
    if (s.role === 'user')
      for (const l of b.live) if (await this.belongs(l.channelId, s.username)) live.push(l);
    if (conn.session !== s) throw new HchatError('E_AUTH_REQUIRED'); // logged out meanwhile
    const entry: TrackerEntry = {
      username: s.username,
      role: s.role,
      ip: b.ip,
      port: b.port,
      udpPort: b.udpPort,
      sessionId: s.sessionId,
      status: b.status,
      // A peer may host only channels its user owns.
      hosts,
      // A peer may announce streams only in channels its user belongs to.
      live,
    };
    const key = entryKey(entry);
    // Caps on entries: per account, and per address group of the connection (not of `ip`).
    const group = this.accounts.prefixOf(conn.fs.remote.ip);
    const over = this.tracker.overCap(entry, group, this.trackerCaps, conn.entryKey);
    if (over) {
      const n =
        over === 'account'
          ? `${this.trackerCaps.entriesPerAccount} tracker entries per account`
          : `${this.trackerCaps.entriesPerAddress} tracker entries per address group`;
      throw HchatError.rateLimited(`at most ${n} at once; close another session first`, 60_000);
    }
    if (conn.entryKey && conn.entryKey !== key) {
      const change = this.tracker.remove(conn.entryKey);
      this.publishTracker(change);
    }
    conn.entryKey = key;
    const change = this.tracker.upsert(entry, group);
    this.log.write('add_list', { peer: conn.name, p2p: `${b.ip}:${b.port}`, status: b.status });
    this.publishTracker(change);
    return { entry };
  }

  /**
   * Every presence change goes out to the session's co-members: a session may make a few a
   * second (RATE_LIMITS.presencePerSecond, burst presenceBurst), never a flood of them.
   */
  private presenceBudget(conn: Conn): void {
    const wait = this.presenceLimiter.take(conn.session!.sessionId);
    if (wait > 0) throw HchatError.rateLimited('too many presence changes', wait);
  }

  private async belongs(channelId: string, username: string): Promise<boolean> {
    const c = await this.channels.channel(channelId);
    return (
      !!c &&
      (sameUser(c.owner, username) ||
        (await this.channels.members(c.id)).has(username.toLowerCase()))
    );
  }

  private setStatus(conn: Conn, b: OpReq<'set_status'>): OpRes<'set_status'> {
    const entry = conn.entryKey ? this.tracker.get(conn.entryKey) : undefined;
    if (entry) {
      const change = this.tracker.upsert({ ...entry, status: b.status });
      this.publishTracker(change);
    }
    this.log.write('status', { peer: conn.name, status: b.status });
    return { status: b.status };
  }

  // ---- delivery of bus events to this instance's connections --------------------------------

  private deliver(e: BusEvent, from?: string): void {
    switch (e.kind) {
      case 'session_revoked':
        if (from !== undefined)
          this.sessionRevoked(e).catch((err: unknown) =>
            this.opsLog.error({ err }, 'applying a session revoked on another instance failed'),
          );
        return;
      case 'instance_up':
      case 'instance_alive':
      case 'tracker_sync':
        if (from === undefined) return;
        // An instance back from an outage: what it did meanwhile never reached this one.
        if (e.kind === 'instance_up') this.resyncAfterOutage();
        this.replica.control(e, from);
        return;
      case 'message':
        this.channels.deliverMessage(e);
        return;
      case 'typing':
        this.typing.deliver(e);
        return;
      case 'avatar':
        this.avatars.deliver(e);
        return;
      case 'dm':
        this.dms.deliver(e);
        return;
      case 'member_joined':
        this.channels.memberJoined(e);
        this.presence.memberJoined(e.channelId, e.username);
        return;
      case 'member_left':
        this.channels.memberLeft(e);
        return;
      case 'channel_changed':
        this.channels.channelChanged(e);
        if (e.deleted) this.files.channelDeleted(e.channelId);
        return;
      case 'tracker': {
        // Another instance's entry changes this instance's copy of the list first.
        if (from === undefined) this.trackerChanged(this.replica.local(e));
        else {
          const change = this.replica.remote(e, from);
          if (change) this.remoteTrackerChanged(change);
        }
        return;
      }
    }
  }

  /** Tells every instance (this one too) of a change of this instance's own entries. */
  private publishTracker(change: EntryChange): void {
    if (change.before || change.after) this.bus.publish({ kind: 'tracker', ...change });
  }

  private resyncAfterOutage(): void {
    this.resync
      .run()
      .catch((err: unknown) => this.opsLog.error({ err }, 'catching up after a bus outage failed'));
  }

  /**
   * A change of another instance's entry: its user's channels are loaded here first (a user with
   * no session on this instance is not yet), so that its co-members here hear of it; in order.
   */
  private remoteTrackerChanged(change: EntryChange): void {
    const e = (change.after ?? change.before)!;
    this.remoteTracker = this.remoteTracker
      .then(async () => {
        if (e.role === 'user') await this.presence.loadUser(e.username);
        if (!this.closing) this.trackerChanged(change);
      })
      .catch((err: unknown) => this.opsLog.error({ err }, 'telling a tracker change failed'));
  }

  /** The list changed: only the sessions the entry concerns hear of it, each as it may see it. */
  private trackerChanged(change: EntryChange): void {
    this.presence.entryChanged(change);
    const was = change.before?.status === 'online';
    const is = change.after?.status === 'online';
    const entry = (change.after ?? change.before)!;
    if (was === is) return;
    this.log.write(is ? 'tracker_join' : 'tracker_leave', {
      user: entry.username,
      p2p: `${entry.ip}:${entry.port}`,
      session: entry.sessionId,
    });
  }

  // ---- heartbeats ----------------------------------------------------------------

  private sweep(): void {
    const deadline = Date.now() - this.timeoutMs;
    for (const c of this.conns) {
      if (c.fs.lastSeen < deadline) {
        c.fs.fail(new HchatError('E_HEARTBEAT_TIMEOUT'));
        c.fs.destroy();
      }
    }
  }
}

/** The account limits a server's options ask for. */
function newAccountService(
  store: ServerStore,
  o: ServerOptions,
  usernames: readonly string[],
): AccountService {
  return new AccountService(
    store,
    {
      prefixBits: {
        ipv4PrefixBits: o.ipv4PrefixBits ?? ADDRESS_LIMITS.ipv4PrefixBits,
        ipv6PrefixBits: o.ipv6PrefixBits ?? ADDRESS_LIMITS.ipv6PrefixBits,
      },
      login: {
        ...(o.loginMaxFailures !== undefined && { failuresPerAccountAddress: o.loginMaxFailures }),
        ...(o.loginWindowMs !== undefined && { backoffBaseMs: o.loginWindowMs }),
        ...o.login,
      },
      scrypt: o.scrypt,
      registrationsPerAddress: o.maxRegistrationsPerAddress,
      visitorsPerAddress: o.maxVisitorsPerAddress,
    },
    usernames,
  );
}

/** The error a peer's `error` frame carries, for the close log line. */
function peerError(f: Record<string, unknown>): HchatError {
  return HchatError.fromWire({
    code: typeof f.code === 'string' ? f.code : 'E_INTERNAL',
    message: typeof f.message === 'string' ? f.message.slice(0, 200) : '',
  });
}

function listen(server: net.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    if ('closeAllConnections' in server) (server as http.Server).closeAllConnections();
  });
}
