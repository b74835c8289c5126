/**
 * The central server (SPEC §1–§4): tracker, accounts, channel directory and message store, with
 * pushes to online members. One TCP port speaks the framed protocol (protocol/server-link.ts);
 * one HTTP port answers operators (ops-http.ts: health, readiness, metrics). This file is the
 * composition root: it makes the services, accepts connections, and holds the table of which
 * service answers which operation. The port and its connections (framed-port.ts), their frames
 * (frame-dispatch.ts), sessions (sessions.ts), the tracker (tracker-service.ts) and bus events
 * (bus-delivery.ts) each live in their own module.
 */
import { DataLock } from '../store/data-lock.js';
import { RefRegistry } from '../shared/compact-refs.js';
import { closeServer, listen } from '../shared/listen.js';
import type http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import { HchatError } from '../protocol/errors.js';
import { encodeFrame, DEFAULT_MAX_FRAME } from '../protocol/frame.js';
import type { OpName, OpReq } from '../protocol/server-link.js';
import { newTrafficStats } from '../shared/framed-socket.js';
import { ConnectionLog } from '../shared/connlog.js';
import { loadOrCreateServerIdentity } from '../shared/tls.js';
import type { ServerStore } from '../store/server-store.js';
import {
  openAvatarStore,
  openDmStore,
  openFileStore,
  openApiTokenStore,
  openServerStore,
} from '../store/open-server-store.js';
import { LocalBus, type EventBus } from './bus.js';
import type { Conn } from './conn.js';
import { ChannelService, type MessageCounts } from './channel-service.js';
import { Revocations } from './revocations.js';
import { TrackerList } from './tracker.js';
import { Presence } from './presence.js';
import { TypingService } from './typing-service.js';
import { SearchService } from './search-service.js';
import { FileService } from './file-service.js';
import type { ServerFileStore } from '../store/server-file-store.js';
import type { AvatarStore } from '../store/avatar-store.js';
import { AvatarService } from './avatar-service.js';
import type { DmStore } from '../store/dm-store.js';
import { DmService } from './dm-service.js';
import { VerifyPool } from './verify-pool.js';
import { TokenSigner } from './accounts.js';
import type { AccountService } from './account-service.js';
import { ServerDoor } from './door.js';
import { MessageVerifier } from '../shared/signing.js';
import {
  ACCOUNT_LIMITS,
  DM_LIMITS,
  FILE_LIMITS,
  MESSAGE_LIMITS,
  NAT_LIMITS,
  RATE_LIMITS,
  SERVER_DOOR_LIMITS,
  TRACKER_LIMITS,
} from '../shared/limits.js';
import { RateLimiter } from '../shared/rate-limit.js';
import type { Logger } from 'pino';
import { ServerMetrics } from './metrics.js';
import { createOpsHttp } from './ops-http.js';
import { guardHttpPort, httpDoorLimits } from './http-door.js';
import { silentLog } from './ops-log.js';
import { newAccountService, type ServerOptions } from './server-options.js';
import { Sessions } from './sessions.js';
import { TrackerService } from './tracker-service.js';
import { BusDelivery } from './bus-delivery.js';
import { FrameDispatch } from './frame-dispatch.js';
import { FramedPort } from './framed-port.js';
import type { ApiTokenStore } from '../store/api-token-store.js';
import { TokenService } from './token-service.js';
import { startApi } from './api/start-api.js';
import { BadTokenThrottle } from './api/bad-tokens.js';
import type { Gateway } from './api/gateway.js';
import { StunResponder } from './stun-responder.js';
import { RelayService } from './relay-service.js';
import { PunchService } from './punch-service.js';

export type { ServerOptions } from './server-options.js';

/** A running central server. */
export class CentralServer {
  readonly log: ConnectionLog;
  /** This process's hold on its data folder (one process per folder). */
  private lock: DataLock | undefined;
  readonly store: ServerStore;
  readonly tracker = new TrackerList();
  /** This instance's entries in `tracker`, and the other instances' (tracker-service.ts). */
  private readonly trackerService: TrackerService;
  private readonly punches: PunchService;
  private readonly sessions: Sessions;
  private readonly delivery: BusDelivery;
  private readonly frames: FrameDispatch;
  /** Bytes and frames over every peer connection since start (`GET /stats`). */
  readonly traffic = newTrafficStats();
  /** Messages stored, by how they arrived, and message events written to connections. */
  readonly counts: MessageCounts = { posted: 0, forwarded: 0, duplicates: 0, pushed: 0 };
  /** Prometheus metrics of this instance (`GET /metrics`). */
  readonly metrics: ServerMetrics;
  /** Failed REST API tokens per address group (api/bad-tokens.ts). */
  private readonly badTokens: BadTokenThrottle;
  /** The operational log (JSON lines), apart from the connection log. */
  readonly opsLog: Logger;
  private readonly bus: EventBus;
  private readonly signer: TokenSigner;
  private readonly channels: ChannelService;
  private readonly revocations: Revocations;
  private readonly verifyPool: VerifyPool | undefined;
  private readonly accounts: AccountService;
  private readonly door: ServerDoor;
  /** The framed-protocol port and its connections. */
  private readonly port: FramedPort;
  /** The STUN port (PROTOCOL.md §3.8), unless the options said none. */
  private stun: StunResponder | undefined;
  /** The relay for P2P links (`--relay-port`), unless turned off. */
  readonly relays: RelayService | undefined;
  /** SHA-256 of the TLS key's SPKI, base64url: what peers pin (`--server host:port#…`). */
  readonly fingerprint: string;
  private readonly http: http.Server;
  private readonly heartbeatMs: number;
  private readonly timeoutMs: number;
  private readonly maxFrame: number;
  private closing = false;
  private drainingSince: number | undefined;
  private readonly drainMs: number;
  private readonly presence: Presence;
  private readonly typing: TypingService;
  private readonly search: SearchService;
  private readonly files: FileService;
  private readonly fileStore: ServerFileStore;
  private readonly avatarStore: AvatarStore;
  private readonly avatars: AvatarService;
  private readonly dmStore: DmStore;
  private readonly dms: DmService;
  private readonly apiTokens: ApiTokenStore;
  private readonly tokens: TokenService;
  /** The REST API's request handler, once built (`start`). */
  private restHandler: http.RequestListener | undefined;
  private gateway: Gateway | undefined;

  private constructor(
    opts: ServerOptions,
    store: ServerStore,
    dmStore: DmStore,
    avatarStore: AvatarStore,
    fileStore: ServerFileStore,
    apiTokens: ApiTokenStore,
    usernames: readonly string[],
  ) {
    fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    // Records of strangers are bounded per address group, grouped as the door groups them.
    this.log = new ConnectionLog(opts.dataDir, undefined, {
      prefixOf: (ip) => this.accounts.prefixOf(ip),
    });
    this.store = store;
    this.bus = opts.bus ?? new LocalBus();
    this.opsLog = opts.opsLog ?? silentLog();
    // Instances of one deployment share one signing key: a session made on one is good on all.
    this.signer = opts.signingKeyFile
      ? TokenSigner.load(opts.signingKeyFile)
      : TokenSigner.loadOrCreate(opts.dataDir);
    this.drainMs = opts.drainMs ?? 10_000;
    this.verifyPool = opts.verifyThreads ? new VerifyPool(opts.verifyThreads) : undefined;
    const refs = new RefRegistry();
    const verifier = new MessageVerifier(() => this.signer.publicKey, {
      maxClockSkewMs: opts.maxClockSkewMs,
    });
    this.revocations = new Revocations({
      store: this.store,
      tokens: apiTokens,
      sessionOf: (cert) => verifier.certClaims(cert)?.sid,
    });
    this.channels = new ChannelService({
      refs,
      store: this.store,
      bus: this.bus,
      log: this.log,
      verifier,
      revocations: this.revocations,
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
      connsOf: (username) => this.sessions.connsOf(username),
      answerError: (conn, id, op, err) => this.frames.answerError(conn, id, op, err),
      itemStored: (m, erased) => this.files.itemStored(m, erased),
      closedToVisitors: (id) => this.presence.closedToVisitors(id),
      bots: {
        ownerOf: async (username) => (await apiTokens.getBot(username))?.owner,
        of: async (owner) => (await apiTokens.botsOf(owner)).map((b) => b.username),
      },
    });
    this.presence = new Presence({
      store: this.store,
      tracker: this.tracker,
      membersOf: (id) => this.channels.cachedMembers(id),
      loadMembers: (id) => this.channels.members(id),
      channel: (id) => this.channels.cachedChannel(id),
      connsOf: (username) => this.sessions.connsOf(username),
      conns: () => this.port.conns,
      entryChanged: (change) => this.gateway?.entryChanged(change),
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
      myChannels: (conn) => this.channels.channelsOfSession(conn),
    });
    this.fileStore = fileStore;
    this.files = new FileService({
      files: this.fileStore,
      log: this.log,
      internalError: (what, err) => this.opsLog.error({ err }, what),
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
      revocations: this.revocations,
      channelsOf: async (username) => {
        const cached = this.presence.channelsOf(username);
        if (cached.size > 0) return cached;
        return (await this.store.channelsOf(username)).map((c) => c.id);
      },
      membersOf: (id) => this.channels.members(id),
      connsOf: (username) => this.sessions.connsOf(username),
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
      connsOf: (username) => this.sessions.connsOf(username),
      internalError: (what, err) => this.opsLog.error({ err }, what),
      maxMailbox: opts.dmMailbox ?? DM_LIMITS.maxMailbox,
    });
    this.heartbeatMs = opts.heartbeatMs ?? 5000;
    this.timeoutMs = opts.timeoutMs ?? 15000;
    this.maxFrame = opts.maxFrame ?? DEFAULT_MAX_FRAME;
    this.accounts = newAccountService(this.store, opts, usernames);
    this.apiTokens = apiTokens;
    this.tokens = new TokenService({
      store: this.store,
      tokens: apiTokens,
      accounts: this.accounts,
      signer: this.signer,
      log: this.log,
      bus: this.bus,
    });
    this.door = new ServerDoor(
      {
        helloTimeoutMs: opts.helloTimeoutMs,
        unauthenticatedPerAddress: opts.maxUnauthenticatedPerAddress,
        unauthenticatedTotal: opts.maxUnauthenticated,
      },
      this.maxFrame,
      (ip) => this.accounts.prefixOf(ip),
    );
    const closing = (): boolean => this.closing;
    const internalError = (what: string, err: unknown): void => this.opsLog.error({ err }, what);
    this.sessions = new Sessions({
      store: this.store,
      bus: this.bus,
      log: this.log,
      signer: this.signer,
      accounts: this.accounts,
      door: this.door,
      channels: this.channels,
      revocations: this.revocations,
      presence: this.presence,
      dms: this.dms,
      dropEntry: (conn) => this.trackerService.dropEntry(conn),
      certTtlMs: opts.certTtlMs ?? MESSAGE_LIMITS.certTtlMs,
      sessionsPerAccount: opts.sessionsPerAccount ?? ACCOUNT_LIMITS.sessionsPerAccount,
      closing,
    });
    // Subscribed before the tracker replica says this instance is up (its answers come back).
    this.delivery = new BusDelivery({
      bus: this.bus,
      channels: this.channels,
      presence: this.presence,
      typing: this.typing,
      avatars: this.avatars,
      dms: this.dms,
      files: this.files,
      sessions: this.sessions,
      // Built after the services (startRestApi): reached through the field.
      gateway: {
        tokenRevoked: (id, at) => {
          // What its keys signed after is refused (keys certified through POST /keys).
          this.revocations.revoked(id, at ?? Date.now());
          this.gateway?.revoked(id);
        },
        memberChanged: (e) => this.gateway?.memberChanged(e),
        channelDeleted: (id, was) => this.gateway?.channelDeleted(id, was),
      },
      tracker: {
        busEvent: (e, from) => this.trackerService.busEvent(e, from),
        control: (e, from) => this.trackerService.control(e, from),
      },
      nat: { deliver: (e) => this.punches.deliver(e) },
      internalError,
      closing,
    });
    this.punches = new PunchService({
      log: this.log,
      bus: this.bus,
      tracker: this.tracker,
      presence: this.presence,
      connsOf: (username) => this.sessions.connsOf(username),
    });
    if (opts.relayPort !== false)
      this.relays = new RelayService({
        log: this.log,
        reachable: (conn, to) => this.punches.reachable(conn, to),
        // Told to a host on another instance, which reaches this relay at this address (a
        // wildcard listens everywhere: the host then tries its own server's address).
        ip: opts.host === '0.0.0.0' || opts.host === '::' ? undefined : opts.host,
        prefixOf: (ip) => this.accounts.prefixOf(ip),
        linksPerAccount: opts.maxRelayLinksPerAccount ?? NAT_LIMITS.relayLinksPerAccount,
        linksPerAddress: opts.maxRelayLinksPerAddress ?? NAT_LIMITS.relayLinksPerAddress,
      });
    this.trackerService = new TrackerService({
      tracker: this.tracker,
      bus: this.bus,
      log: this.log,
      channels: this.channels,
      presence: this.presence,
      prefixOf: (ip) => this.accounts.prefixOf(ip),
      caps: {
        entriesPerAccount: opts.maxTrackerEntriesPerAccount ?? TRACKER_LIMITS.entriesPerAccount,
        entriesPerAddress: opts.maxTrackerEntriesPerAddress ?? TRACKER_LIMITS.entriesPerAddress,
      },
      aliveMs: opts.instanceAliveMs ?? 2000,
      internalError,
      closing,
    });
    const identity = loadOrCreateServerIdentity(opts.dataDir, opts.tls);
    this.fingerprint = identity.fingerprint;
    this.port = new FramedPort({
      identity,
      plaintext: !!opts.benchPlaintext,
      handshakeMs: opts.helloTimeoutMs ?? SERVER_DOOR_LIMITS.helloTimeoutMs,
      log: this.log,
      door: this.door,
      maxFrame: this.maxFrame,
      heartbeatMs: this.heartbeatMs,
      timeoutMs: this.timeoutMs,
      traffic: this.traffic,
      frame: (conn, f) => this.frames.onFrame(conn, f),
      framesOut: (conn, bytes) => this.metrics.framesOut(conn, bytes),
      closed: (conn) => this.sessions.detach(conn),
      closing,
    });
    this.badTokens = new BadTokenThrottle((ip) => this.accounts.prefixOf(ip), {
      badTokenBurst: opts.apiBadTokenBurst,
    });
    this.metrics = new ServerMetrics({
      conns: () => this.port.conns,
      trackerEntries: () => this.tracker.size,
      counts: this.counts,
      queuedPosts: () => this.channels.queuedPosts,
      queuedVerifies: () => this.verifyPool?.pending ?? 0,
      queuedScrypt: () => this.accounts.scrypt.queued,
      relay: () => this.relays && { links: this.relays.links, bytes: this.relays.stats.bytes },
      apiTokens: () => this.badTokens.counts,
    });
    this.frames = new FrameDispatch({
      refs,
      log: this.log,
      opsLog: this.opsLog,
      metrics: this.metrics,
      hello: {
        heartbeatMs: this.heartbeatMs,
        timeoutMs: this.timeoutMs,
        maxFrame: this.maxFrame,
        publicKey: this.signer.publicKeyBase64,
      },
      helloDone: (conn) => this.door.helloDone(conn),
      draining: () => this.draining,
      queuePost: (conn, id, body) => this.channels.queuePost(conn, id, body),
      run: (conn, op, body) => this.run(conn, op, body),
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
      connections: () => this.port.conns.size,
      trackerEntries: () => this.tracker.size,
      traffic: this.traffic,
      counts: this.counts,
      log: this.opsLog,
      api: () => this.restHandler,
    });
    guardHttpPort(this.http, (ip) => this.accounts.prefixOf(ip), {
      ...httpDoorLimits(),
      ...opts.httpDoor,
    });
  }

  /** Builds the REST API v1 on the HTTP port (issue 17). */
  private async startRestApi(opts: ServerOptions): Promise<void> {
    const api = await startApi({
      http: this.http,
      frames: this.frames,
      store: this.store,
      apiTokens: this.apiTokens,
      tokens: this.tokens,
      badTokens: this.badTokens,
      opsLog: this.opsLog,
      finished: (conn) => {
        this.channels.setSubscriptions(conn, []);
        this.presence.forget(conn);
      },
      rate: opts.apiRate,
      burst: opts.apiBurst,
      accountBytes: opts.gatewayAccountBytes,
      instanceBytes: opts.gatewayInstanceBytes,
      attach: (account) => this.presence.loadUser(account),
      memberships: this.presence,
      entriesOf: (username) => this.tracker.entriesOf(username, 'user'),
    });
    this.restHandler = api.handle;
    this.gateway = api.gateway;
  }

  /** Opens the store (migrating it), then starts listening; resolves once both ports are bound. */
  static async start(opts: ServerOptions): Promise<CentralServer> {
    const lock = DataLock.take(opts.dataDir, 'server');
    let store: ServerStore;
    try {
      store = opts.store ?? (await openServerStore(opts.storeUrl, opts.dataDir));
    } catch (err) {
      lock.release();
      throw err;
    }
    let s: CentralServer;
    let dms: DmStore | undefined;
    let avatars: AvatarStore | undefined;
    let files: ServerFileStore | undefined;
    let apiTokens: ApiTokenStore | undefined;
    try {
      fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
      dms = await openDmStore(opts.storeUrl, opts.dataDir);
      avatars = await openAvatarStore(opts.storeUrl, opts.dataDir);
      files = await openFileStore(opts.storeUrl, opts.dataDir);
      apiTokens = await openApiTokenStore(opts.storeUrl, opts.dataDir);
      s = new CentralServer(opts, store, dms, avatars, files, apiTokens, await store.usernames());
    } catch (err) {
      await apiTokens?.close();
      await files?.close();
      await avatars?.close();
      await dms?.close();
      await store.close();
      lock.release();
      throw err;
    }
    s.lock = lock;
    try {
      // The framed port first: building the REST API takes tens of milliseconds, and peers
      // waiting to resume should not wait for it. (A late framed port once exposed a peer's
      // stale channel list undoing a removal it held: node.ts reconcileChannels,
      // test/hostile/convergence.test.ts.) The HTTP port opens once the API is built, so no
      // request meets it half made.
      await listen(s.port.server, opts.port, opts.host);
      if (opts.stunPort !== false) {
        s.stun = new StunResponder(opts.host, (ip) => s.accounts.prefixOf(ip));
        await s.stun.listen(opts.stunPort ?? 0, opts.host);
      }
      await s.relays?.listen(opts.relayPort || 0, opts.host);
      await s.startRestApi(opts);
      await listen(s.http, opts.httpPort, opts.host);
    } catch (err) {
      await s.close();
      throw err;
    }
    s.log.write('listen', {
      tcp: s.tcpAddress,
      http: s.httpUrl,
      ...(s.stun ? { stun: s.stun.port } : {}),
      ...(s.relays ? { relay: s.relays.port } : {}),
      fingerprint: s.fingerprint,
    });
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
    return this.port.address;
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
    this.log.write('drain', { connections: this.port.conns.size });
    this.opsLog.info(
      { connections: this.port.conns.size, drainMs: this.drainMs },
      'draining: /ready answers 503, peers are told to move',
    );
    this.port.server.close();
    // Gateway sessions resume on another instance (docs/REST.md): told at once, with 1001.
    this.gateway?.close();
    const frame = encodeFrame({ t: 'ev', ev: 'draining', body: {} });
    for (const c of this.port.conns) if (c.helloDone && c.fs.isOpen) c.fs.sendEncoded(frame);
    const deadline = this.drainingSince + this.drainMs;
    while (this.port.conns.size > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    this.log.write('drained', {
      ms: Date.now() - this.drainingSince,
      left: this.port.conns.size,
    });
    await this.close();
  }

  /** Closes every connection and port, flushes pending writes, closes the store and the log. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.opsLog.info({ connections: this.port.conns.size }, 'shutting down');
    this.port.stopSweep();
    this.accounts.close();
    this.gateway?.close();
    await this.channels.close();
    await this.verifyPool?.close();
    // Their sessions end now, while the bus is up: the other instances drop their tracker entries
    // at once. After a drain the port no longer listens, so nothing waited for these connections
    // to close, and the entries lingered there until this instance had been silent for 8 s
    // (test/outsider/cluster-attacks.test.ts, the drain). After the connections were failed: the
    // peers still on this instance are told nothing (their hosts did not leave; they come back).
    // Each gets its `close` record now, naming its session, before the log is shut
    // (test/outsider/log-shutdown.test.ts).
    this.port.closeAll(new HchatError('E_SHUTTING_DOWN'));
    await Promise.all([
      closeServer(this.port.server),
      closeServer(this.http),
      this.stun?.close(),
      this.relays?.close(),
    ]);
    this.trackerService.stop();
    this.delivery.stop();
    await this.bus.close();
    await this.store.close();
    await this.files.settled();
    await this.fileStore.close();
    await this.avatarStore.close();
    await this.dmStore.close();
    await this.apiTokens.close();
    this.log.write('shutdown', {});
    this.log.close();
    this.lock?.release();
    this.opsLog.info('server stopped');
  }

  private async run(conn: Conn, op: Exclude<OpName, 'post'>, body: unknown): Promise<unknown> {
    switch (op) {
      case 'register':
        return this.sessions.register(conn, body as OpReq<'register'>);
      case 'login':
        return this.sessions.login(conn, body as OpReq<'login'>);
      case 'visitor':
        return this.sessions.visitor(conn, body as OpReq<'visitor'>);
      case 'resume':
        return this.sessions.resume(conn, body as OpReq<'resume'>);
      case 'logout':
        return this.sessions.logout(conn);
      case 'session_check':
        return this.sessions.check(conn, body as OpReq<'session_check'>);
      case 'reflect': {
        // What the server sees of this connection: the peer's TCP server-reflexive address.
        const { ip, port } = conn.fs.remote;
        return { ip, port, ...(this.stun ? { udpPort: this.stun.port } : {}) };
      }
      case 'punch':
        return this.punches.punch(conn, body as OpReq<'punch'>);
      case 'relay':
        if (!this.relays) throw new HchatError('E_UNKNOWN_TYPE', 'this server runs no relay');
        return this.relays.relay(conn, body as OpReq<'relay'>);
      case 'submit_info':
        this.trackerService.presenceBudget(conn);
        return await this.trackerService.submitInfo(conn, body as OpReq<'submit_info'>);
      case 'set_status':
        this.trackerService.presenceBudget(conn);
        return this.trackerService.setStatus(conn, body as OpReq<'set_status'>);
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
        return this.channels.myChannels(conn, (body as OpReq<'my_channels'>).after);
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
      case 'bot_create':
        return this.tokens.botCreate(conn.session!, body as OpReq<'bot_create'>);
      case 'bots':
        return this.tokens.bots(conn.session!);
      case 'token_create':
        return this.tokens.tokenCreate(conn.session!, body as OpReq<'token_create'>);
      case 'tokens':
        return this.tokens.tokens(conn.session!);
      case 'token_revoke':
        return this.tokens.tokenRevoke(conn.session!, body as OpReq<'token_revoke'>);
    }
  }
}
