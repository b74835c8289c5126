/**
 * A peer node (SPEC §1, §3–§6): one user's application instance. It keeps its link to the
 * central server up (or down, when the user chose `offline`), resumes its saved session,
 * announces itself to the tracker, and drains its durable outbox exactly once.
 *
 * Channel hosting (SPEC §5): a channel created here is hosted here. Its primary copy is this
 * peer's store; members reach it over P2P (HostService), and each new message is forwarded to the
 * server once (upload). For a channel hosted elsewhere, the node reads and posts through the
 * host while it is reachable (ChannelSources) and through the server otherwise.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HchatError } from '../protocol/errors.js';
import type { FileRef, Status, StoredMessage, TrackerEntry } from '../protocol/common.js';
import type { OpReq, OpRes } from '../protocol/server-link.js';
import { ConnectionLog } from '../shared/connlog.js';
import { OwedLogouts } from './owed-logouts.js';
import { StatusChoices } from './status-choice.js';
import { HybridClock } from '../shared/hlc.js';
import { itemRefusal } from '../shared/item-rules.js';
import { RateLimiter } from '../shared/rate-limit.js';
import { FILE_LIMITS, RATE_LIMITS } from '../shared/limits.js';
import { PeerStore } from '../store/peer-store.js';
import { allMembers } from './list-pages.js';
import { DataLock } from '../store/data-lock.js';
import { ServerLink } from './server-link.js';
import { ServerTrust } from './server-trust.js';
import { EventHub } from './event-hub.js';
import type { SavedSession } from './session-file.js';
import { P2PEndpoint } from './p2p.js';
import { Revocations } from './revocations.js';
import { HostService } from './host-service.js';
import { LiveService } from './live.js';
import { ChannelSources } from './sources.js';
import { hostCandidates } from './reflexive.js';
import { Puncher } from './punch.js';
import { HostLink } from './host-link.js';
import { DirectMessages } from './dms.js';
import type { LinkCredentials } from '../shared/handshake.js';
import type crypto from 'node:crypto';
import type { NodeContext } from './context.js';
import { Replication } from './replication.js';
import { Delivery } from './delivery.js';
import type { Me } from './api-shapes.js';
import { announce } from './announce.js';
import { MessageActions } from './message-actions.js';
import { ChannelPages } from './pages.js';
import { ChannelActions } from './channel-actions.js';
import { PeerSearch } from './search.js';
import { Typing } from './typing.js';
import { MessageVerifier } from '../shared/signing.js';
import { publicKeyFromBase64, type CertClaims } from '../shared/tokens.js';
import { FileStore } from '../store/file-store.js';
import { FileSeeder } from './file-seeder.js';
import { PeerFiles } from './files.js';
import { PeerAvatars } from './avatars.js';
import { ChannelReads } from './channel-reads.js';
import { Sessions } from './sessions.js';
import { LinkLifecycle } from './link-lifecycle.js';
import { ChannelOps } from './channel-ops.js';

export type { PeerOptions } from './options.js';
import { serverPins, type PeerOptions } from './options.js';

/** Where a channel's content comes from right now. */
export type { Source } from './pages.js';
import type { Source } from './pages.js';

/** A running peer. */
export class PeerNode {
  readonly events = new EventHub();
  readonly log: ConnectionLog;
  readonly store: PeerStore;
  readonly link: ServerLink;
  /** Which channels the logged-in account reads and hosts here (channel-reads.ts). */
  private readonly reads: ChannelReads;
  /** Who is logged in, and the session changes (sessions.ts). */
  private readonly sessions: Sessions;
  /** The status each account chose here (status-choice.ts). */
  private readonly statuses: StatusChoices;
  /** What each server connection brings and ends, and the server's pushes (link-lifecycle.ts). */
  private readonly lifecycle: LinkLifecycle;
  /** The local API's channel operations (channel-ops.ts). */
  private readonly ops: ChannelOps;
  readonly p2p: P2PEndpoint;
  readonly hostService: HostService;
  readonly live: LiveService;
  /** Posting with replies and mentions, edits, deletes, reactions (message-actions.ts). */
  readonly actions: MessageActions = new MessageActions(this);
  /** Leave; the owner's rename, topic, visitors, member removal, delete (channel-actions.ts). */
  readonly channelActions: ChannelActions = new ChannelActions(this);
  /** Full-text search over this peer's copy and the server's (peer/search.ts). */
  readonly search: PeerSearch = new PeerSearch(this);
  /** Typing indicators: sent, passed on as host, shown (peer/typing.ts). */
  readonly typing: Typing;
  private readonly sources: ChannelSources;
  private readonly clock: HybridClock;
  private readonly verifier: MessageVerifier;
  /** The server key's SPKI and key object, as last decoded. */
  private decodedServerKey: { spki: string; key: crypto.KeyObject } | undefined;
  /** Sessions the server said were revoked, or checked live: their P2P links are refused. */
  private readonly revocations: Revocations;
  /** Sessions ended here while the server did not answer: logged out there once it does. */
  private readonly owedLogouts: OwedLogouts;
  private readonly replication: Replication;
  /** Pages of a channel from its host, the server or this peer's copy (pages.ts). */
  private readonly pages: ChannelPages;
  private readonly delivery: Delivery;
  private readonly fileStore: FileStore;
  private readonly seeder: FileSeeder;
  /** Attached and fetched files (peer/files.ts). */
  readonly files: PeerFiles;
  /** Users' pictures (peer/avatars.ts). */
  readonly avatars: PeerAvatars;
  /** Direct messages (dms.ts). */
  readonly dms: DirectMessages;
  /** Largest file attached here. */
  readonly maxFileBytes: number;
  private closed = false;
  /** Dials hosts, punching through NATs where it must (punch.ts). */
  private readonly puncher: Puncher;
  /** This process's hold on its data folder (one process per folder). */
  private lock: DataLock | undefined;

  private constructor(opts: PeerOptions) {
    fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    this.log = new ConnectionLog(opts.dataDir);
    this.store = new PeerStore(path.join(opts.dataDir, 'peer.db'));
    this.fileStore = new FileStore(path.join(opts.dataDir, 'files'));
    const node = this;
    this.seeder = new FileSeeder({
      files: this.fileStore,
      log: this.log,
      serverKey: () => this.serverKey(),
      closed: () => this.closed,
      uploadLimit: opts.uploadLimit,
    });
    this.clock = new HybridClock(Date.now, opts.maxClockSkewMs);
    this.verifier = new MessageVerifier(() => this.serverKey(), {
      maxClockSkewMs: opts.maxClockSkewMs,
    });
    const serverTrust = new ServerTrust(path.join(opts.dataDir, 'known_servers'), serverPins(opts));
    this.link = new ServerLink({
      host: opts.serverHost,
      port: opts.serverPort,
      alternates: opts.otherServers,
      trust: serverTrust,
      log: this.log,
      minBackoffMs: opts.minBackoffMs,
      maxBackoffMs: opts.maxBackoffMs,
    });
    this.owedLogouts = new OwedLogouts({
      store: this.store,
      log: this.log,
      onSpareLink: (task) => this.sessions.onSpareLink(task),
    });
    this.sessions = new Sessions({
      dataDir: opts.dataDir,
      link: this.link,
      serverTrust,
      log: this.log,
      events: this.events,
      owedLogouts: this.owedLogouts,
      get trustError() {
        return node.lifecycle.trustError;
      },
      get status() {
        return node.status;
      },
      afterAuth: () => this.lifecycle.afterAuth(),
      sessionChanged: () => this.lifecycle.sessionChanged(),
      ended: () => {
        this.dms.offline();
        this.background(this.live.closeAll());
        this.revocations.connectionChanged();
        this.sources.forget();
      },
      background: (task) => this.background(task),
    });
    this.statuses = new StatusChoices(this.store, () => this.session);
    this.hostService = new HostService({
      store: this.store,
      log: this.log,
      channel: (id) => this.reads.hostedChannel(id),
      verify: (m) => this.verifier.check(m),
      accepted: (m) => {
        this.announceItems([m]);
        this.background(this.delivery.upload());
      },
      streams: () => this.live,
      files: () => this.seeder,
      dms: () => this.dms,
      postLimiter: new RateLimiter(
        opts.postsPerSecond ?? RATE_LIMITS.postsPerSecond,
        opts.postBurst ?? RATE_LIMITS.postBurst,
      ),
      typing: (who, channelId) => this.typing.fromMember(who, channelId),
    });
    this.files = new PeerFiles({
      files: this.fileStore,
      log: this.log,
      events: this.events,
      username: () => (this.session?.role === 'user' ? this.session.username : undefined),
      server: () => (this.sessions.authed ? this.link : undefined),
      entriesOf: (username, channelId) =>
        this.sources
          .list()
          .filter(
            (e) =>
              e.role === 'user' &&
              e.status === 'online' &&
              e.sessionId !== this.session?.sessionId &&
              e.username.toLowerCase() === username.toLowerCase(),
          )
          .sort(
            (x, y) => Number(y.hosts.includes(channelId)) - Number(x.hosts.includes(channelId)),
          ),
      dial: (entry) => this.dial(entry),
      ownerOf: (id) => this.store.channelOwner(id) || undefined,
      refsOf: (channelId, fileId) =>
        this.fileStore
          .messagesNaming(fileId, channelId)
          .flatMap((id) => this.store.getMessage(id)?.files?.filter((f) => f.id === fileId) ?? []),
      isMember: (id) => this.reads.readsChannel(id),
      background: (task) => this.background(task),
      closed: () => this.closed,
      backedUp: () => this.background(this.delivery.drain()),
      maxFileBytes: (this.maxFileBytes = opts.maxFileBytes ?? FILE_LIMITS.maxFileBytes),
      cacheBytes: opts.fileCacheBytes ?? FILE_LIMITS.cacheBytes,
      patienceMs: opts.filePatienceMs,
    });
    this.store.fileView = (channelId, ref) => this.files.view(channelId, ref);
    this.avatars = new PeerAvatars({
      dir: path.join(opts.dataDir, 'avatars'),
      log: this.log,
      events: this.events,
      server: () => (this.sessions.authed ? this.link : undefined),
      serverKey: () => this.serverKey(),
      me: () => {
        const s = this.session;
        return s?.role === 'user' && this.sessions.keys
          ? { username: s.username, keys: this.sessions.keys, cert: s.cert }
          : undefined;
      },
    });
    this.dms = new DirectMessages({
      dataDir: opts.dataDir,
      log: this.log,
      events: this.events,
      account: () => (this.session?.role === 'user' ? this.session.username : undefined),
      isVisitor: () => this.session?.role === 'visitor',
      server: () => (this.sessions.authed ? this.link : undefined),
      dial: (entry) => this.dial(entry),
      background: (task) => this.background(task),
      closed: () => this.closed,
      offline: () => this.status === 'offline',
    });
    this.revocations = new Revocations({
      store: this.store,
      server: () => (this.sessions.authed ? this.link : undefined),
    });
    this.p2p = new P2PEndpoint({
      host: opts.host,
      log: this.log,
      service: this.hostService,
      serverKey: () => this.serverKey(),
      credentials: () => this.credentials(),
      isRevoked: (sid, user, visitor, proof) =>
        this.revocations.isRevoked(sid, user, visitor, proof),
      knownRevoked: (sid) => this.revocations.knownRevoked(sid),
      visitorCheckMs: opts.visitorCheckMs,
      udpLoss: opts.udpLoss,
      benchPlainMedia: opts.benchPlainMedia,
    });
    this.puncher = new Puncher({
      link: this.link,
      host: opts.host,
      log: this.log,
      ownReflexive: () => this.lifecycle.reflexive,
      serving: () => this.sessions.authed && this.p2p.serving,
      adopt: (socket) => this.p2p.adopt(socket),
      mediaTunnel: (from, streamId, socket) => this.live.acceptTunnel(from, streamId, socket),
      punchDeadlineMs: opts.punchDeadlineMs,
    });
    this.live = new LiveService({
      log: this.log,
      events: this.events,
      socket: this.p2p.media,
      ingestHost: '127.0.0.1',
      fanout: opts.streamFanout ?? 4,
      me: () => {
        const s = this.session;
        return s && { username: s.username, sessionId: s.sessionId, role: s.role };
      },
      dial: (entry) => this.dial(entry),
      advertised: () => this.p2p.advertised,
      channel: (id) => this.reads.readableChannel(id),
      hostedMember: (id, username) =>
        this.reads.isHostedHere(id) ? this.store.isMember(id, username) : undefined,
      removed: (id, username) => this.store.isRemoved(id, username),
      members: async (id) => allMembers(this.sessions.requireAuthed(), id),
      entries: () => this.sources.list(),
      announce: () => this.background(this.lifecycle.submitInfo()),
      hidden: () => this.status !== 'online',
      candidates: () => [...hostCandidates(this.p2p.advertised), ...this.lifecycle.reflexive],
      mediaRelay: (parent, streamId, name) => this.puncher.relayMedia(parent, streamId, name),
    });
    this.sources = new ChannelSources({
      log: this.log,
      dial: (entry) => this.dial(entry),
      loggedIn: () => this.session !== undefined,
      ownSession: () => this.session?.sessionId,
      channels: () => this.reads.readableChannels().filter((c) => !this.reads.isHostedHere(c.id)),
      linkUp: (link, channelIds) => this.background(this.lifecycle.onHostUp(link, channelIds)),
      linkDown: (channelIds) => this.background(this.lifecycle.onHostDown(channelIds)),
      message: (link, m) =>
        this.replication.receiveFromHost(
          [m],
          link,
          'push',
          (id) => this.sources.serves(link, id) && this.reads.readsChannel(id),
        ),
      typing: (link, e) => this.typing.fromHost(link, e),
    });
    this.typing = new Typing({
      events: this.events,
      hostService: this.hostService,
      session: () => this.session,
      status: () => this.status,
      isJoined: (id) => this.reads.readsChannel(id),
      isHostedHere: (id) => this.reads.isHostedHere(id),
      hostLink: (id) => this.sources.linkFor(id),
      serves: (link, id) => this.sources.serves(link, id),
      server: () => (this.sessions.authed ? this.link : undefined),
      entries: () => this.sources.list(),
    });
    const ctx: NodeContext = {
      store: this.store,
      log: this.log,
      events: this.events,
      link: this.link,
      sources: this.sources,
      hostService: this.hostService,
      verifier: this.verifier,
      clock: this.clock,
      get session() {
        return node.session;
      },
      get authed() {
        return node.sessions.authed;
      },
      get closed() {
        return node.closed;
      },
      isHostedHere: (id) => this.reads.isHostedHere(id),
      isJoined: (id) => this.reads.readsChannel(id),
      background: (task) => this.background(task),
      resolveDelivery: (id) => this.delivery.resolveDelivery(id),
      filesBackedUp: (m) => !m.files || m.files.every((f) => this.files.backedUp(f.id)),
      announce: (items) => this.announceItems(items),
    };
    this.reads = new ChannelReads(ctx);
    this.replication = new Replication(ctx);
    this.pages = new ChannelPages(ctx, this.replication, () => this.account);
    this.delivery = new Delivery(ctx);
    this.ops = new ChannelOps(ctx, {
      replication: this.replication,
      pages: this.pages,
      delivery: this.delivery,
      sessions: this.sessions,
      get account() {
        return node.account;
      },
      unreadable: (id) => this.unreadable(id),
      readableChannels: () => this.reads.readableChannels(),
      refusedReading: (id, err) => this.reads.refusedReading(id, err),
      submitInfo: () => this.lifecycle.submitInfo(),
    });
    this.lifecycle = new LinkLifecycle({
      link: this.link,
      otherServers: opts.otherServers,
      store: this.store,
      log: this.log,
      events: this.events,
      sessions: this.sessions,
      owedLogouts: this.owedLogouts,
      revocations: this.revocations,
      dms: this.dms,
      p2p: this.p2p,
      files: this.files,
      avatars: this.avatars,
      sources: this.sources,
      live: this.live,
      delivery: this.delivery,
      replication: this.replication,
      puncher: this.puncher,
      typing: this.typing,
      hostService: this.hostService,
      statuses: this.statuses,
      get closed() {
        return node.closed;
      },
      isHostedHere: (id) => this.reads.isHostedHere(id),
      readsChannel: (id) => this.reads.readsChannel(id),
      readableChannels: () => this.reads.readableChannels(),
      forgetUnreadable: () => this.reads.forgetUnreadable(),
      refusedReading: (id, err) => this.reads.refusedReading(id, err),
      sourceOf: (id) => this.sourceOf(id),
      trackerList: (link) => this.ops.trackerList(link),
      background: (task) => this.background(task),
      channelsChanged: () => this.channelsChanged(),
    });
  }

  /** Opens the store, binds the P2P and UDP ports, and connects unless the user chose offline. */
  static async start(opts: PeerOptions): Promise<PeerNode> {
    const lock = DataLock.take(opts.dataDir, 'peer');
    let node: PeerNode;
    try {
      node = new PeerNode(opts);
    } catch (err) {
      lock.release();
      throw err;
    }
    node.lock = lock;
    try {
      await node.p2p.listen(opts.p2pPort, opts.udpPort);
      await node.p2p.setServing(node.status === 'online');
      if (node.status !== 'offline') await untilAborted(node.link.start(), opts.startAbort);
    } catch (err) {
      await node.close();
      throw err;
    }
    return node;
  }

  /** True once `close` began: the stores are closed or closing. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Flushes and closes everything. Pending outbox messages stay on disk for the next start. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.lifecycle.stop();
    // The sockets' close events come later; nothing may touch the store after this.
    this.link.removeAllListeners();
    // Its `close` record is written before the log closes (a clean stop is no crash to read).
    await Promise.race([this.link.stop(), new Promise((r) => setTimeout(r, 1000).unref())]);
    this.sources.close();
    await this.live.closeAll();
    await this.p2p.close();
    this.delivery.releaseAll();
    this.dms.close();
    this.store.close();
    this.fileStore.close();
    this.log.close();
    this.lock?.release();
  }

  // ---- state ------------------------------------------------------------------------------

  /** The logged-in session, if any. */
  get session(): SavedSession | undefined {
    return this.sessions.currentSession;
  }

  /** Why the server ended the last session, until a session starts again (sessions.ts). */
  get sessionEnded(): { code: string; message: string } | undefined {
    return this.sessions.endedBy;
  }

  /** The status the logged-in account chose here (kept across restarts; nobody: `online`). */
  get status(): Status {
    return this.statuses.current;
  }

  /** `connected` (session live on the server), `connecting`, or `offline` (user's choice). */
  get connection(): 'connected' | 'connecting' | 'offline' {
    if (this.status === 'offline') return 'offline';
    // With a session, connected means the session is live on the server, not just the socket.
    return this.link.connected && (this.sessions.authed || !this.session)
      ? 'connected'
      : 'connecting';
  }

  /** Tells the UI what these items show now (announce.ts). */
  announceItems(
    items: ReadonlyArray<{ id: string; channelId: string; kind?: string; target?: string }>,
  ): void {
    if (!this.session || this.closed) return;
    announce(this.store, this.verifier, this.events, this.session.username, items);
    for (const i of items) {
      // Only messages (their files) and deletes (the files they take away) concern files.
      const kind = i.kind ?? 'message';
      if (kind !== 'message' && kind !== 'delete') continue;
      const m = this.store.getMessage(i.id);
      if (m) this.files.itemStored(m, (id) => this.store.getMessage(id));
      // A host keeps a copy of every file of its channels, fetched as their messages come in.
      if (m?.files && (m.kind ?? 'message') === 'message' && this.reads.isHostedHere(m.channelId))
        this.files.keep(m.channelId, m.author, m.files);
    }
    const changed = new Set(items.filter((i) => i.kind === 'channel').map((i) => i.channelId));
    if (changed.size === 0) return;
    this.channelsChanged();
    // A streamer that does not host the channel learns of the owner's changes here (a host
    // applies them as it publishes, host-service.ts): viewers that may no longer read it leave.
    for (const id of changed)
      if (!this.reads.isHostedHere(id))
        this.live
          .keepWatchers(id)
          .catch((err: unknown) => console.error('hchat peer: ending viewers failed:', err));
  }

  /** The logged-in account's name (E_AUTH_REQUIRED when nobody is logged in). */
  get accountName(): string {
    return this.account;
  }

  /** Asks the server to take this account out of a channel (channel-actions.ts). */
  async leaveOnServer(channelId: string): Promise<void> {
    await this.sessions.requireAuthed().request('channel_leave', { channelId });
  }

  /** Channels joined or hosted changed: sources and server subscriptions follow. */
  channelsChanged(): void {
    this.reads.forgetUnreadable();
    this.sources.refresh();
    this.background(this.lifecycle.updateServerSubscriptions());
  }

  /** Why an item from a replica may not be shown: its signature, certificate or the rules. */
  refusal(m: StoredMessage): HchatError | undefined {
    const target = m.target === undefined ? undefined : this.store.getMessage(m.target);
    return (
      this.verifier.check(m) ?? itemRefusal(m, this.store.channelOwner(m.channelId), target, false)
    );
  }

  /** The claims of a certificate the server signed (remembered by the verifier), or undefined. */
  certClaims(cert: string): CertClaims | undefined {
    return this.verifier.certClaims(cert);
  }

  /** The reference of a file attached here to the channel (message-actions.ts). */
  fileRef(channelId: string, id: string): FileRef {
    return this.files.refFor(channelId, id);
  }

  async memberNames(channelId: string): Promise<string[]> {
    return allMembers(this.sessions.requireAuthed(), channelId);
  }

  private get account(): string {
    if (!this.session) throw new HchatError('E_AUTH_REQUIRED');
    return this.session.username;
  }

  /** The central server's key (it signs every certificate), once known. */
  private serverKey(): crypto.KeyObject | undefined {
    // Closed, the store is gone: a P2P link still shaking hands then cannot check its other end
    // and fails as such (it threw the store's TypeError: livestream relay dials in a clean-clone
    // run's stderr, after their peer closed).
    if (this.closed) return undefined;
    const spki = this.link.server?.publicKey ?? this.store.get('serverPublicKey');
    if (!spki) return undefined;
    if (this.decodedServerKey?.spki !== spki)
      this.decodedServerKey = { spki, key: publicKeyFromBase64(spki) };
    return this.decodedServerKey.key;
  }

  /** What this peer proves itself with on P2P links, while logged in. */
  private credentials(): LinkCredentials | undefined {
    const s = this.session;
    return s && this.sessions.keys
      ? { cert: s.cert, keys: this.sessions.keys, sessionId: s.sessionId }
      : undefined;
  }

  /** A P2P link to another peer's entry, made with this session's credentials. */
  private dial(entry: TrackerEntry): HostLink | undefined {
    const creds = this.closed ? undefined : this.credentials();
    return (
      creds &&
      new HostLink(
        entry,
        creds,
        () => this.serverKey(),
        this.log,
        () => this.puncher.connect(entry),
      )
    );
  }

  /** Where a channel is read from now. */
  sourceOf(channelId: string): Source {
    if (this.reads.isHostedHere(channelId)) return 'host';
    if (this.sources.linkFor(channelId)) return 'host';
    return this.sessions.authed ? 'server' : 'local';
  }

  /** The user's bots and REST API tokens at the server (issue 17; docs/REST.md). */
  async tokenOp<K extends 'bot_create' | 'bots' | 'token_create' | 'tokens' | 'token_revoke'>(
    op: K,
    body: OpReq<K>,
  ): Promise<OpRes<K>> {
    this.sessions.requireUser('make bots or API tokens');
    return (await this.sessions.requireAuthed().request(op, body as never)) as OpRes<K>;
  }

  /** Why the server link was last refused, when the server's TLS key is not trusted. */
  get serverKeyError(): HchatError | undefined {
    return this.lifecycle.trustError;
  }

  /**
   * Why the account cannot read or write `channelId` here: `E_CHANNEL_NOT_FOUND` when the server
   * says there is no such channel, else `E_NOT_MEMBER` (join it first; also while offline, when
   * nobody can tell).
   */
  async unreadable(channelId: string): Promise<HchatError> {
    try {
      await this.sessions.requireAuthed().request('members', { channelId });
    } catch (err) {
      if (err instanceof HchatError && err.code === 'E_CHANNEL_NOT_FOUND') return err;
    }
    return new HchatError('E_NOT_MEMBER');
  }

  /**
   * Runs a task nobody awaits. Protocol errors were handled inside it; anything else is a bug,
   * reported on stderr, unless the node closed meanwhile (its store is gone, which is expected).
   */
  private background(task: Promise<void>): void {
    task.catch((err: unknown) => {
      if (this.closed) return;
      if (err instanceof HchatError) return; // a link dropped mid-task: the next 'up' resumes
      console.error('hchat peer: background task failed:', err);
    });
  }

  // ---- what the local API calls ----------------------------------------------------------------

  /** What the logged-in session is, and how it is connected (GET /api/me). */
  me(): Me {
    const s = this.session;
    if (!s) throw new HchatError('E_AUTH_REQUIRED');
    return {
      username: s.username,
      role: s.role,
      status: this.status,
      sessionId: s.sessionId,
      connection: this.connection,
      pending: this.store.pendingCount(s.username),
      // Why it is not connecting, when the server's TLS key is not the trusted one.
      ...(this.lifecycle.trustError && !this.link.connected
        ? { serverKeyError: this.lifecycle.trustError.message }
        : {}),
    };
  }

  // Answered by the sessions (sessions.ts), the link (link-lifecycle.ts) and channel-ops.ts.
  readonly register: Sessions['register'] = (...a) => this.sessions.register(...a);
  readonly login: Sessions['login'] = (...a) => this.sessions.login(...a);
  readonly visitor: Sessions['visitor'] = (...a) => this.sessions.visitor(...a);
  readonly logout: Sessions['logout'] = () => this.sessions.logout();
  readonly setStatus: LinkLifecycle['setStatus'] = (...a) => this.lifecycle.setStatus(...a);
  readonly peers: ChannelOps['peers'] = () => this.ops.peers();
  readonly directory: ChannelOps['directory'] = () => this.ops.directory();
  readonly channels: ChannelOps['channels'] = () => this.ops.channels();
  readonly createChannel: ChannelOps['createChannel'] = (...a) => this.ops.createChannel(...a);
  readonly join: ChannelOps['join'] = (...a) => this.ops.join(...a);
  readonly messages: ChannelOps['messages'] = (...a) => this.ops.messages(...a);
  readonly members: ChannelOps['members'] = (...a) => this.ops.members(...a);
  readonly markRead: ChannelOps['markRead'] = (...a) => this.ops.markRead(...a);
  readonly post: ChannelOps['post'] = (...a) => this.ops.post(...a);
  readonly write: ChannelOps['write'] = (...a) => this.ops.write(...a);

  /** True when the logged-in account reads the channel (channel-reads.ts, local-reads.ts). */
  readonly readsChannel: ChannelReads['readsChannel'] = (id) => this.reads.readsChannel(id);
  /** The channels the logged-in account reads here (none when nobody is logged in). */
  readonly readableChannels: ChannelReads['readableChannels'] = () => this.reads.readableChannels();
}

/** `work`, or a rejection as soon as `signal` aborts (the work goes on, unawaited). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(new HchatError('E_SHUTTING_DOWN', 'stopped'));
  return new Promise<T>((resolve, reject) => {
    const stop = () => reject(new HchatError('E_SHUTTING_DOWN', 'stopped while starting'));
    signal.addEventListener('abort', stop, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', stop));
  });
}
