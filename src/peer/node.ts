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
import {
  entryKey,
  NewMessage,
  type Candidate,
  type Channel,
  type FileRef,
  type ItemKind,
  type Status,
  type StoredMessage,
  type TrackerEntry,
} from '../protocol/common.js';
import type { EventBody, OpReq, OpRes } from '../protocol/server-link.js';
import { ConnectionLog } from '../shared/connlog.js';
import { OwedLogouts } from './owed-logouts.js';
import { HybridClock, newId } from '../shared/hlc.js';
import { messageId, type ItemBody } from '../shared/message-id.js';
import { itemRefusal } from '../shared/item-rules.js';
import { RateLimiter } from '../shared/rate-limit.js';
import { FILE_LIMITS, RATE_LIMITS } from '../shared/limits.js';
import { PeerStore, type LocalChannel, type LocalMessage } from '../store/peer-store.js';
import { allMembers, allMyChannels } from './list-pages.js';
import { DataLock } from '../store/data-lock.js';
import { ServerLink } from './server-link.js';
import { ServerTrust } from './server-trust.js';
import { EventHub } from './event-hub.js';
import { readSession, writeSession, type SavedSession } from './session-file.js';
import { P2PEndpoint } from './p2p.js';
import { Revocations } from './revocations.js';
import { HostService } from './host-service.js';
import { LiveService } from './live.js';
import { ChannelSources } from './sources.js';
import { hostCandidates, reflexiveCandidates } from './reflexive.js';
import { Puncher } from './punch.js';
import { HostLink } from './host-link.js';
import { DirectMessages } from './dms.js';
import type { LinkCredentials } from '../shared/handshake.js';
import type crypto from 'node:crypto';
import type { NodeContext } from './context.js';
import { Replication } from './replication.js';
import { Delivery, TRANSIENT } from './delivery.js';
import type { ApiChannel, ApiMessage, LinkVia, Me } from './api-shapes.js';
import { announce } from './announce.js';
import { MessageActions } from './message-actions.js';
import { ChannelPages } from './pages.js';
import { ChannelActions } from './channel-actions.js';
import { PeerSearch } from './search.js';
import { Typing } from './typing.js';
import type { TypingEvent } from '../protocol/typing-ops.js';
import {
  MessageVerifier,
  exportPrivateKey,
  loadSessionKeys,
  newSessionKeys,
  signMessage,
  type SessionKeys,
} from '../shared/signing.js';
import { publicKeyFromBase64, type CertClaims } from '../shared/tokens.js';
import { describeIssues } from '../protocol/rpc.js';
import { FileStore } from '../store/file-store.js';
import { FileSeeder } from './file-seeder.js';
import { PeerFiles } from './files.js';
import { PeerAvatars } from './avatars.js';
import { mayRead, refusesReading } from './local-reads.js';

/** Settings of a peer process. */
export interface PeerOptions {
  /** Ends the start early (a signal while the server does not answer yet): `start` rejects. */
  startAbort?: AbortSignal;
  serverHost: string;
  serverPort: number;
  /** The server's TLS key fingerprint to pin; without it the key is trusted on first use. */
  serverFingerprint?: string;
  /**
   * The deployment's other server instances (`--server a,b,c`), tried in turn when the link to
   * one fails, drops or drains; each may pin its own fingerprint.
   */
  otherServers?: readonly { host: string; port: number; fingerprint?: string }[];
  /** Address the P2P and UDP sockets bind to and that the tracker advertises. */
  host: string;
  p2pPort: number;
  udpPort: number;
  dataDir: string;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Fraction of incoming UDP datagrams to drop (loss injection for tests). */
  udpLoss?: number;
  /**
   * How long a hole punch dials before it has failed and the relay takes over (default
   * `NAT_LIMITS.punchDeadlineMs`; tests of punches that must fail shorten it).
   */
  punchDeadlineMs?: number;
  /**
   * How often this host asks the server whether the visitors on its P2P links are still in
   * session (default `VISITOR_CHECK_MS`, p2p.ts; tests of sessions that end shorten it).
   */
  visitorCheckMs?: number;
  /** Viewers the streamer (and each relay) feeds directly (SPEC §8 k). */
  streamFanout?: number;
  /** ε: messages stamped further ahead of this peer's clock are refused (E_CLOCK_SKEW). */
  maxClockSkewMs?: number;
  /** Posts per second per member that this peer's hosted channels take, and the burst. */
  postsPerSecond?: number;
  postBurst?: number;
  /** Bytes per second this peer uploads files at most (`--upload-limit`; default no cap). */
  uploadLimit?: number;
  /** Largest file attached here (FILE_LIMITS.maxFileBytes). */
  maxFileBytes?: number;
  /** Bytes of other people's files kept before the least recently used go. */
  fileCacheBytes?: number;
  /**
   * How long a file fetch that gets nowhere keeps trying (default 20 s, PROTOCOL §9.4; tests of
   * fetches that must fail shorten it).
   */
  filePatienceMs?: number;
  /**
   * bench/ only: media in plain RTP between peers, to measure what SRTP costs. No flag or
   * variable of `hchat` reaches it; bench/plain-peer.ts is the only way in.
   */
  benchPlainMedia?: boolean;
}

/** Where a channel's content comes from right now. */
export type { Source } from './pages.js';
import type { Source } from './pages.js';

/** How long a spare connection (a login while a session is live) may take to say hello. */
const SPARE_START_MS = 10_000;

const POST_WAIT_MS = 3000;

/** A running peer. */
export class PeerNode {
  readonly events = new EventHub();
  readonly log: ConnectionLog;
  readonly store: PeerStore;
  readonly link: ServerLink;
  /** Whose TLS key this peer accepts at each server address (the link's, and a spare's). */
  private readonly serverTrust: ServerTrust;
  /** The last of the session changes (log in, visitor entry, log out, resume), run in turn. */
  private sessionTurn: Promise<unknown> = Promise.resolve();
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
  private currentSession: SavedSession | undefined;
  private keys: SessionKeys | undefined;
  private readonly verifier: MessageVerifier;
  /** The server key's SPKI and key object, as last decoded. */
  private decodedServerKey: { spki: string; key: crypto.KeyObject } | undefined;
  /** Sessions the server said were revoked, or checked live: their P2P links are refused. */
  private readonly revocations: Revocations;
  /** Sessions ended here while the server did not answer: logged out there once it does. */
  private readonly owedLogouts: OwedLogouts;
  /** Why the last connection to the server was refused, when its TLS key was not trusted. */
  private trustError: HchatError | undefined;
  /** True while the current server connection carries our session. */
  private authed = false;
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
  /** A submit_info to send again once the server's presence budget allows it. */
  private announceTimer: NodeJS.Timeout | undefined;
  /** Dials hosts, punching through NATs where it must (punch.ts). */
  private readonly puncher: Puncher;
  /** Where the server saw this peer on its current connection (reflexive.ts), announced with it. */
  private reflexive: Candidate[] = [];
  /** This process's hold on its data folder (one process per folder). */
  private lock: DataLock | undefined;

  private constructor(private readonly opts: PeerOptions) {
    fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    this.log = new ConnectionLog(opts.dataDir);
    this.store = new PeerStore(path.join(opts.dataDir, 'peer.db'));
    this.fileStore = new FileStore(path.join(opts.dataDir, 'files'));
    this.seeder = new FileSeeder({
      files: this.fileStore,
      log: this.log,
      serverKey: () => this.serverKey(),
      closed: () => this.closed,
      uploadLimit: opts.uploadLimit,
    });
    this.currentSession = readSession(opts.dataDir);
    this.keys = this.currentSession && loadSessionKeys(this.currentSession.key);
    this.clock = new HybridClock(Date.now, opts.maxClockSkewMs);
    this.verifier = new MessageVerifier(() => this.serverKey(), {
      maxClockSkewMs: opts.maxClockSkewMs,
    });
    this.link = new ServerLink({
      host: opts.serverHost,
      port: opts.serverPort,
      alternates: opts.otherServers,
      trust: (this.serverTrust = new ServerTrust(
        path.join(opts.dataDir, 'known_servers'),
        serverPins(opts),
      )),
      log: this.log,
      minBackoffMs: opts.minBackoffMs,
      maxBackoffMs: opts.maxBackoffMs,
    });
    this.hostService = new HostService({
      store: this.store,
      log: this.log,
      channel: (id) => this.hostedChannel(id),
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
      username: () =>
        this.currentSession?.role === 'user' ? this.currentSession.username : undefined,
      server: () => (this.authed ? this.link : undefined),
      entryOf: (username) =>
        this.sources
          .list()
          .find((e) => e.role === 'user' && e.username.toLowerCase() === username.toLowerCase()),
      dial: (entry) => this.dial(entry),
      ownerOf: (id) => this.store.channelOwner(id) || undefined,
      refsOf: (channelId, fileId) =>
        this.fileStore
          .messagesNaming(fileId, channelId)
          .flatMap((id) => this.store.getMessage(id)?.files?.filter((f) => f.id === fileId) ?? []),
      isMember: (id) => this.readsChannel(id),
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
      server: () => (this.authed ? this.link : undefined),
      serverKey: () => this.serverKey(),
      me: () => {
        const s = this.currentSession;
        return s?.role === 'user' && this.keys
          ? { username: s.username, keys: this.keys, cert: s.cert }
          : undefined;
      },
    });
    this.dms = new DirectMessages({
      dataDir: opts.dataDir,
      log: this.log,
      events: this.events,
      account: () =>
        this.currentSession?.role === 'user' ? this.currentSession.username : undefined,
      isVisitor: () => this.currentSession?.role === 'visitor',
      server: () => (this.authed ? this.link : undefined),
      dial: (entry) => this.dial(entry),
      background: (task) => this.background(task),
      closed: () => this.closed,
    });
    this.revocations = new Revocations({
      store: this.store,
      server: () => (this.authed ? this.link : undefined),
    });
    this.owedLogouts = new OwedLogouts({
      store: this.store,
      log: this.log,
      onSpareLink: (task) => this.onSpareLink(task),
    });
    this.p2p = new P2PEndpoint({
      host: opts.host,
      log: this.log,
      service: this.hostService,
      serverKey: () => this.serverKey(),
      credentials: () => this.credentials(),
      isRevoked: (sid, visitor) => this.revocations.isRevoked(sid, visitor),
      visitorCheckMs: opts.visitorCheckMs,
      udpLoss: opts.udpLoss,
      benchPlainMedia: opts.benchPlainMedia,
    });
    this.puncher = new Puncher({
      link: this.link,
      host: opts.host,
      log: this.log,
      ownReflexive: () => this.reflexive,
      serving: () => this.authed && this.p2p.serving,
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
        const s = this.currentSession;
        return s && { username: s.username, sessionId: s.sessionId, role: s.role };
      },
      dial: (entry) => this.dial(entry),
      advertised: () => this.p2p.advertised,
      channel: (id) => this.readableChannel(id),
      hostedMember: (id, username) =>
        this.isHostedHere(id) ? this.store.isMember(id, username) : undefined,
      removed: (id, username) => this.store.isRemoved(id, username),
      members: async (id) => allMembers(this.requireAuthed(), id),
      entries: () => this.sources.list(),
      announce: () => this.background(this.submitInfo()),
      hidden: () => this.status !== 'online',
      candidates: () => [...hostCandidates(this.p2p.advertised), ...this.reflexive],
      mediaRelay: (parent, streamId, name) => this.puncher.relayMedia(parent, streamId, name),
    });
    this.sources = new ChannelSources({
      log: this.log,
      dial: (entry) => this.dial(entry),
      loggedIn: () => this.currentSession !== undefined,
      ownSession: () => this.currentSession?.sessionId,
      channels: () => this.readableChannels().filter((c) => !this.isHostedHere(c.id)),
      linkUp: (link, channelIds) => this.background(this.onHostUp(link, channelIds)),
      linkDown: (channelIds) => this.background(this.onHostDown(channelIds)),
      message: (link, m) =>
        this.replication.receiveFromHost(
          [m],
          link,
          'push',
          (id) => this.sources.serves(link, id) && this.readsChannel(id),
        ),
      typing: (link, e) => this.typing.fromHost(link, e),
    });
    this.typing = new Typing({
      events: this.events,
      hostService: this.hostService,
      session: () => this.currentSession,
      status: () => this.status,
      isJoined: (id) => this.readsChannel(id),
      isHostedHere: (id) => this.isHostedHere(id),
      hostLink: (id) => this.sources.linkFor(id),
      serves: (link, id) => this.sources.serves(link, id),
      server: () => (this.authed ? this.link : undefined),
      entries: () => this.sources.list(),
    });
    const node = this;
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
        return node.authed;
      },
      get closed() {
        return node.closed;
      },
      isHostedHere: (id) => this.isHostedHere(id),
      isJoined: (id) => this.readsChannel(id),
      background: (task) => this.background(task),
      resolveDelivery: (id) => this.delivery.resolveDelivery(id),
      filesBackedUp: (m) => !m.files || m.files.every((f) => this.files.backedUp(f.id)),
      announce: (items) => this.announceItems(items),
    };
    this.replication = new Replication(ctx);
    this.pages = new ChannelPages(ctx, this.replication, () => this.account);
    this.delivery = new Delivery(ctx);
    this.link.on('up', () => this.background(this.onUp()));
    this.link.on('down', (reason: HchatError | undefined, wasUp: boolean) => {
      // A server key this peer does not trust is the answer to every call until it is fixed.
      const before = this.trustError?.message;
      this.trustError = reason?.code === 'E_SERVER_KEY_MISMATCH' ? reason : undefined;
      this.onDown(wasUp);
      // The UI learns of it (GET /api/me says why) even when no connection was up to lose.
      if (this.trustError && this.trustError.message !== before && !wasUp)
        this.events.emit('connection', { state: 'connecting' });
    });
    this.link.on('event', (name: string, body: unknown) => this.onEvent(name, body));
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

  /** Flushes and closes everything. Pending outbox messages stay on disk for the next start. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.announceTimer);
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
    return this.currentSession;
  }

  /** The status the user chose (kept across restarts). */
  get status(): Status {
    const s = this.store.get('status');
    return s === 'invisible' || s === 'offline' ? s : 'online';
  }

  /** `connected` (session live on the server), `connecting`, or `offline` (user's choice). */
  get connection(): 'connected' | 'connecting' | 'offline' {
    if (this.status === 'offline') return 'offline';
    // With a session, connected means the session is live on the server, not just the socket.
    return this.link.connected && (this.authed || !this.currentSession)
      ? 'connected'
      : 'connecting';
  }

  /** Tells the UI what these items show now (announce.ts). */
  announceItems(
    items: ReadonlyArray<{ id: string; channelId: string; kind?: string; target?: string }>,
  ): void {
    if (!this.currentSession || this.closed) return;
    announce(this.store, this.verifier, this.events, this.currentSession.username, items);
    for (const i of items) {
      // Only messages (their files) and deletes (the files they take away) concern files.
      const kind = i.kind ?? 'message';
      if (kind !== 'message' && kind !== 'delete') continue;
      const m = this.store.getMessage(i.id);
      if (m) this.files.itemStored(m, (id) => this.store.getMessage(id));
      // A host keeps a copy of every file of its channels, fetched as their messages come in.
      if (m?.files && (m.kind ?? 'message') === 'message' && this.isHostedHere(m.channelId))
        this.files.keep(m.channelId, m.author, m.files);
    }
    const changed = new Set(items.filter((i) => i.kind === 'channel').map((i) => i.channelId));
    if (changed.size === 0) return;
    this.channelsChanged();
    // A streamer that does not host the channel learns of the owner's changes here (a host
    // applies them as it publishes, host-service.ts): viewers that may no longer read it leave.
    for (const id of changed)
      if (!this.isHostedHere(id))
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
    await this.requireAuthed().request('channel_leave', { channelId });
  }

  /** Channels joined or hosted changed: sources and server subscriptions follow. */
  channelsChanged(): void {
    this.forgetUnreadable();
    this.sources.refresh();
    this.background(this.updateServerSubscriptions());
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

  /**
   * True when the logged-in account reads the channel (joined, hosts, or views it while it
   * allows visitors): the one rule of every local read (local-reads.ts).
   */
  readsChannel(channelId: string): boolean {
    return this.readableChannel(channelId) !== undefined;
  }

  /** The channel as the logged-in account holds it here, if it reads it (local-reads.ts). */
  private readableChannel(channelId: string): LocalChannel | undefined {
    const s = this.currentSession;
    const c = s && this.store.channel(s.username, channelId);
    return s && mayRead(s.role, c) ? c : undefined;
  }

  /** The channels the logged-in account reads here (none when nobody is logged in). */
  readableChannels(): LocalChannel[] {
    const s = this.currentSession;
    return s ? this.store.channels(s.username).filter((c) => mayRead(s.role, c)) : [];
  }

  /**
   * A channel the logged-in account holds but may no longer read (a visitor's, once the channel
   * stops allowing visitors: its channel item says so) leaves its list here: nothing more of it
   * is shown, searched or stored for this account. The messages stay while another account here
   * holds the channel (a member keeps everything), else they go with it.
   */
  private forgetUnreadable(): void {
    const s = this.currentSession;
    if (!s || this.closed) return;
    for (const c of this.store.channels(s.username))
      if (!mayRead(s.role, c)) this.forgetChannel(s.username, c.id);
  }

  /** The account no longer reads the channel: it leaves its list, and the UI is told. */
  private forgetChannel(account: string, channelId: string): void {
    this.store.dropChannel(account, channelId);
    this.log.write('channel_gone', { channel: channelId });
    this.events.emit('channel', { channelId });
  }

  /**
   * A visitor's server or host answered that the channel does not exist for it (it stopped
   * allowing visitors, or was deleted): forgotten here as its channel item would have it.
   */
  private refusedReading(channelId: string, err: unknown): void {
    const s = this.currentSession;
    if (s?.role !== 'visitor' || !refusesReading(err)) return;
    if (!this.store.channel(s.username, channelId)) return;
    this.forgetChannel(s.username, channelId);
    this.sources.refresh();
  }

  /** The reference of a file attached here to the channel (message-actions.ts). */
  fileRef(channelId: string, id: string): FileRef {
    return this.files.refFor(channelId, id);
  }

  async memberNames(channelId: string): Promise<string[]> {
    return allMembers(this.requireAuthed(), channelId);
  }

  private get account(): string {
    if (!this.currentSession) throw new HchatError('E_AUTH_REQUIRED');
    return this.currentSession.username;
  }

  /** The central server's key (it signs every certificate), once known. */
  private serverKey(): crypto.KeyObject | undefined {
    const spki = this.link.server?.publicKey ?? this.store.get('serverPublicKey');
    if (!spki) return undefined;
    if (this.decodedServerKey?.spki !== spki)
      this.decodedServerKey = { spki, key: publicKeyFromBase64(spki) };
    return this.decodedServerKey.key;
  }

  /** What this peer proves itself with on P2P links, while logged in. */
  private credentials(): LinkCredentials | undefined {
    const s = this.currentSession;
    return s && this.keys ? { cert: s.cert, keys: this.keys, sessionId: s.sessionId } : undefined;
  }

  /** A P2P link to another peer's entry, made with this session's credentials. */
  private dial(entry: TrackerEntry): HostLink | undefined {
    const creds = this.credentials();
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

  /** True when this peer holds the primary copy of the channel for its logged-in owner. */
  private isHostedHere(channelId: string): boolean {
    return this.hostedChannel(channelId) !== undefined;
  }

  private hostedChannel(channelId: string): Channel | undefined {
    const s = this.currentSession;
    if (!s || s.role !== 'user' || !this.store.isHosted(channelId)) return undefined;
    const c = this.store.channel(s.username, channelId);
    return c && c.owner.toLowerCase() === s.username.toLowerCase() ? c : undefined;
  }

  /** Where a channel is read from now. */
  sourceOf(channelId: string): Source {
    if (this.isHostedHere(channelId)) return 'host';
    if (this.sources.linkFor(channelId)) return 'host';
    return this.authed ? 'server' : 'local';
  }

  /** The user's bots and REST API tokens at the server (issue 17; docs/REST.md). */
  async tokenOp<K extends 'bot_create' | 'bots' | 'token_create' | 'tokens' | 'token_revoke'>(
    op: K,
    body: OpReq<K>,
  ): Promise<OpRes<K>> {
    this.requireUser('make bots or API tokens');
    return (await this.requireAuthed().request(op, body as never)) as OpRes<K>;
  }

  private requireUser(what: string): SavedSession {
    const s = this.currentSession;
    if (!s) throw new HchatError('E_AUTH_REQUIRED');
    if (s.role !== 'user') throw new HchatError('E_VISITOR_READ_ONLY', `visitors cannot ${what}`);
    return s;
  }

  /** Why the server link was last refused, when the server's TLS key is not trusted. */
  get serverKeyError(): HchatError | undefined {
    return this.trustError;
  }

  private requireLink(): ServerLink {
    if (!this.link.connected) throw this.trustError ?? this.offlineError();
    return this.link;
  }

  /** Not connected: where and why, when the server could not be reached (not when offline). */
  private offlineError(): HchatError {
    const f = this.link.lastFailure;
    if (this.status === 'offline' || !f) return new HchatError('E_OFFLINE');
    return new HchatError(
      'E_OFFLINE',
      `not connected: the central server at ${f.addr} cannot be reached (${f.reason}); retrying`,
    );
  }

  /**
   * Why the account cannot read or write `channelId` here: `E_CHANNEL_NOT_FOUND` when the server
   * says there is no such channel, else `E_NOT_MEMBER` (join it first; also while offline, when
   * nobody can tell).
   */
  async unreadable(channelId: string): Promise<HchatError> {
    try {
      await this.requireAuthed().request('members', { channelId });
    } catch (err) {
      if (err instanceof HchatError && err.code === 'E_CHANNEL_NOT_FOUND') return err;
    }
    return new HchatError('E_NOT_MEMBER');
  }

  private requireAuthed(): ServerLink {
    const link = this.requireLink();
    if (!this.currentSession) throw new HchatError('E_AUTH_REQUIRED');
    if (!this.authed) throw new HchatError('E_OFFLINE', 'reconnecting to the central server');
    return link;
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

  // ---- server link lifecycle ----------------------------------------------------------------

  private async onUp(): Promise<void> {
    const info = this.link.server;
    const known = this.store.get('serverPublicKey');
    if (info && known && info.publicKey !== known && this.opts.otherServers?.length) {
      // Instances of one deployment sign with one key: one that shows another is not part of
      // it (or someone in the middle of a first use). Never believed; the next address is tried.
      this.trustError = new HchatError(
        'E_SERVER_KEY_MISMATCH',
        `the server at ${this.link.address} signs with another key than this deployment's`,
      );
      this.log.write('server_refused', { addr: this.link.address, reason: 'signing_key' });
      this.link.moveOn();
      return;
    }
    if (info) this.store.set('serverPublicKey', info.publicKey);
    // Sessions ended here while this server was away are revoked there now.
    this.background(this.owedLogouts.pay());
    // In turn with logins and logouts: a resume never races a session change on this link.
    const resumed = await this.inTurn(async () => {
      const s = this.currentSession;
      // A login or visitor entry that ran meanwhile opened its session on this connection.
      if (this.authed || !this.link.connected) return false;
      if (!s) {
        this.events.emit('connection', { state: 'connected' });
        return false;
      }
      try {
        const r = await this.link.request('resume', { token: s.token });
        // The server renews the key certificate at each resume (same key, later expiry).
        if (r.cert !== s.cert) this.setSession({ ...s, cert: r.cert }, this.keys);
      } catch (err) {
        if (err instanceof HchatError && err.code === 'E_SESSION_INVALID') {
          // The server no longer knows this session (revoked, or its data was reset): log in again.
          this.setSession(undefined);
          this.events.emit('status', { session: 'invalid' });
        }
        return false;
      }
      // Marked before the turn ends: the next login sees that this connection carries it.
      this.authed = true;
      return true;
    });
    if (resumed) await this.afterAuth();
  }

  private onDown(wasUp: boolean): void {
    this.authed = false;
    this.revocations.connectionChanged();
    this.dms.offline();
    if (wasUp)
      this.events.emit('connection', {
        state: this.status === 'offline' ? 'offline' : 'connecting',
      });
  }

  /** Announces this peer and what it hosts (hosts are hidden while invisible). */
  private async submitInfo(): Promise<void> {
    const s = this.currentSession;
    if (!s || !this.authed) return;
    const status = this.status === 'invisible' ? 'invisible' : 'online';
    const hosts =
      status === 'online' ? this.store.hostedIds().filter((id) => this.isHostedHere(id)) : [];
    const live = status === 'online' ? this.live.announced() : [];
    try {
      const own = this.p2p.advertised;
      const candidates = [...hostCandidates(own), ...this.reflexive]; // as live.ts gives them
      await this.link.request('submit_info', { ...own, status, hosts, live, candidates });
    } catch (err) {
      // Too many changes at once (many channels made in a row): announce the latest state a
      // moment later; the entry the server holds meanwhile is only a little behind.
      if (!(err instanceof HchatError) || err.code !== 'E_RATE_LIMITED') throw err;
      if (!this.announceTimer) {
        this.announceTimer = setTimeout(() => {
          this.announceTimer = undefined;
          if (!this.closed) this.background(this.submitInfo());
        }, err.retryAfterMs ?? 1000);
        this.announceTimer.unref();
      }
    }
  }

  /** Everything a fresh session does: announce, refresh channels, find hosts, sync, drain. */
  private async afterAuth(): Promise<void> {
    try {
      await this.afterAuthSteps();
    } finally {
      // Whatever failed before the list came, nothing waits for it on this connection.
      this.sources.noListComing();
    }
  }

  private async afterAuthSteps(): Promise<void> {
    const s = this.currentSession;
    if (!s) return;
    this.authed = true;
    this.revocations.connectionChanged();
    this.events.emit('connection', { state: 'connected' });
    // Learnt again on each connection: the NAT's mapping (or the network) may have changed.
    this.reflexive = await reflexiveCandidates(this.link, this.p2p.media, this.p2p.advertised);
    await this.submitInfo();
    this.background(this.files.backup());
    if (s.role === 'user') this.background(this.dms.online());
    if (s.role === 'user') {
      await this.reconcileChannels(s.username);
      for (const id of this.store.hostedIds()) {
        if (!this.isHostedHere(id)) continue;
        this.store.setMembers(id, await allMembers(this.link, id));
      }
    } else {
      this.forgetUnreadable();
      await this.rejoinViews(this.readableChannels().map((c) => c.id));
    }
    this.sources.setTracker(await this.trackerList(this.link));
    await this.updateServerSubscriptions();
    this.background(this.delivery.drain());
    // Upload first: catching up a hosted channel meanwhile would fetch our own uploads back.
    await this.delivery.upload();
    for (const c of this.readableChannels()) {
      await this.sources.settle(c.id);
      // Every channel catches up from where it is read, the host's too: a host link that came up
      // while the server link was failing lost its catch-up with it (schedule 760), and this
      // resume is the retry. Both are cheap when nothing is missing (one empty page).
      const host = this.sources.linkFor(c.id);
      if (host) this.background(this.replication.catchUpHost(host, c.id));
      else await this.replication.catchUp(c.id);
    }
  }

  /**
   * A visitor's views start again on each connection (`channel_join`); a channel that stopped
   * allowing visitors (or was deleted) meanwhile answers E_CHANNEL_NOT_FOUND: forgotten here.
   */
  private async rejoinViews(channelIds: readonly string[]): Promise<void> {
    for (const id of channelIds) {
      try {
        await this.link.request('channel_join', { channelId: id });
      } catch (err) {
        if (!refusesReading(err)) throw err;
        this.refusedReading(id, err);
      }
    }
  }

  /**
   * The account's channels as the server lists them: saved, and those it no longer lists (left
   * elsewhere, removed by the owner or deleted while this peer was away) gone here too.
   */
  private async reconcileChannels(username: string): Promise<void> {
    const channels = await allMyChannels(this.link);
    // Another account logged in meanwhile: this list is its own, not `username`'s to keep.
    const now = this.currentSession;
    if (now?.role !== 'user' || now.username !== username) return;
    // A list read before the server stored a removal this peer already holds (from the host,
    // while the list was on its way) would bring the channel back: the owner's signed item wins.
    for (const c of channels)
      if (!this.store.isRemoved(c.id, username, c.owner)) this.store.saveChannel(username, c);
    const listed = new Set(channels.map((c) => c.id));
    for (const c of this.store.channels(username)) {
      if (listed.has(c.id) || this.isHostedHere(c.id)) continue;
      this.store.dropChannel(username, c.id);
      this.log.write('channel_gone', { channel: c.id });
      this.events.emit('channel', { channelId: c.id });
    }
  }

  /** Asks the server to push only the channels it serves us: all but those read from a host. */
  private async updateServerSubscriptions(): Promise<void> {
    const s = this.currentSession;
    if (!s || !this.authed) return;
    const channelIds = this.readableChannels()
      .map((c) => c.id)
      .filter((id) => !this.sources.linkFor(id));
    const granted = new Set((await this.link.request('subscribe', { channelIds })).channelIds);
    // A visitor's channel the server no longer shows it: asked once more, forgotten if so.
    if (s.role === 'visitor') await this.rejoinViews(channelIds.filter((id) => !granted.has(id)));
    // A channel the server no longer lets this account read was left, removed or deleted
    // between the channel list read at login and now: its push (the removal) went before this
    // subscription, so only the list tells. Read it again.
    if (s.role === 'user' && channelIds.some((id) => !granted.has(id)))
      await this.reconcileChannels(s.username);
  }

  private onEvent(name: string, body: unknown): void {
    if (name === 'message') {
      const { message } = body as EventBody<'message'>;
      this.replication.receive([message], 'push');
      // A hole before this seq means a push was missed: fetch what lies between.
      if (this.store.cursor(message.channelId) < message.seq)
        this.background(this.replication.catchUp(message.channelId));
    } else if (name === 'punch') {
      this.puncher.onEvent(body as EventBody<'punch'>);
    } else if (name === 'relay') {
      this.puncher.onRelay(body as EventBody<'relay'>);
    } else if (name === 'peer_joined' || name === 'peer_left') {
      const { entry } = body as EventBody<'peer_joined'>;
      const before = this.sources.get(entryKey(entry));
      if (name === 'peer_joined') this.sources.upsert(entry);
      else this.sources.remove(entry);
      this.live.trackerChanged(before, name === 'peer_joined' ? entry : undefined);
      // A peer that left is offline now, whatever its last entry said.
      this.events.emit('presence', {
        kind: name === 'peer_joined' ? 'joined' : 'left',
        peer: name === 'peer_joined' ? apiPeer(entry) : { ...apiPeer(entry), status: 'offline' },
      });
    } else if (name === 'typing') {
      this.typing.fromServer(body as TypingEvent);
    } else if (name === 'dm') {
      this.dms.mailboxChanged();
    } else if (name === 'avatar') {
      this.avatars.changed(body as EventBody<'avatar'>);
    } else if (name === 'draining') {
      // This instance is going away: resume on the next one now, not when it closes on us.
      this.log.write('server_draining', { server: this.link.address });
      this.link.moveOn();
    } else if (name === 'session_revoked') {
      const { sessionId } = body as EventBody<'session_revoked'>;
      this.revocations.revoked(sessionId);
      this.p2p.dropSession(sessionId);
    } else if (name === 'member_joined') {
      const { channelId, username } = body as EventBody<'member_joined'>;
      if (this.isHostedHere(channelId)) this.store.addMember(channelId, username);
      // The UI's member list asks again now, not on the next presence change (issue 13 §8).
      this.events.emit('members', { channelId, username });
      if (this.isMe(username)) this.background(this.membershipElsewhere());
    } else if (name === 'member_left') {
      const { channelId, username } = body as EventBody<'member_left'>;
      if (this.isHostedHere(channelId)) {
        this.store.removeMember(channelId, username);
        this.hostService.memberLeft(channelId, username);
      }
      this.events.emit('members', { channelId, username });
      if (this.isMe(username)) this.background(this.membershipElsewhere());
    }
  }

  /** Whether `username` is the logged-in user (not a visitor) of this peer. */
  private isMe(username: string): boolean {
    const s = this.currentSession;
    return s?.role === 'user' && s.username.toLowerCase() === username.toLowerCase();
  }

  /**
   * The account joined, created or left a channel on another of its devices (the server tells
   * `member_joined`/`member_left` of its own name to its other sessions): the list is read
   * again, and a channel new here is read as one joined here (README: `channel` event).
   */
  private async membershipElsewhere(): Promise<void> {
    const s = this.currentSession;
    if (s?.role !== 'user' || !this.authed) return;
    const before = new Set(this.store.channels(s.username).map((c) => c.id));
    await this.reconcileChannels(s.username);
    if (this.currentSession !== s) return;
    const added = this.store.channels(s.username).filter((c) => !before.has(c.id));
    this.channelsChanged();
    for (const c of added) {
      this.events.emit('channel', { channelId: c.id });
      await this.sources.settle(c.id);
      if (!this.sources.linkFor(c.id)) await this.replication.catchUp(c.id);
    }
  }

  // ---- hosts coming and going ---------------------------------------------------------------

  private async onHostUp(link: HostLink, channelIds: string[]): Promise<void> {
    await link.request('subscribe', { channelIds });
    // Only of channels still read here: one just left (the link went with it) has no view.
    for (const id of channelIds.filter((c) => this.readsChannel(c)))
      this.events.emit('sync', { channelId: id, source: 'host', phase: 'switch' });
    // Not chained after a server request: when the server link failed first, the catch-up from
    // the host was lost with it and the member stayed without what it missed (schedule 760).
    this.background(this.updateServerSubscriptions());
    this.background(this.delivery.drain());
    for (const id of channelIds) await this.replication.catchUpHost(link, id);
  }

  private async onHostDown(channelIds: string[]): Promise<void> {
    for (const id of channelIds.filter((c) => this.readsChannel(c)))
      this.events.emit('sync', { channelId: id, source: this.sourceOf(id), phase: 'switch' });
    await this.updateServerSubscriptions();
    this.background(this.delivery.drain());
    for (const id of channelIds) await this.replication.catchUp(id);
  }

  private setSession(s: SavedSession | undefined, keys?: SessionKeys): void {
    // The next account on this peer replays none of the last one's events (local-reads.ts).
    if (this.currentSession?.sessionId !== s?.sessionId) this.events.forget();
    this.currentSession = s;
    this.keys = keys;
    writeSession(this.opts.dataDir, s);
    if (!s) {
      this.dms.offline();
      this.background(this.live.closeAll());
      this.authed = false;
      this.revocations.connectionChanged();
      this.sources.forget();
    }
  }

  // ---- what the local API calls ---------------------------------------------------------------

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
      // A visitor entering again (under its own name, say) leaves first: while its session
      // lives, its name is held, and the new entry would be refused.
      if (this.currentSession?.role === 'visitor') await this.endSession();
      const keys = newSessionKeys();
      const r = await this.openSession((link) =>
        link.request('visitor', { name, publicKey: keys.publicKey }),
      );
      const s = await this.adopt(r, keys);
      return { username: s.username, role: 'visitor', sessionId: s.sessionId };
    });
  }

  /** Runs the session changes (log in, visitor entry, log out, resume) one after the other. */
  private inTurn<T>(task: () => Promise<T>): Promise<T> {
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
  private async onSpareLink<T>(task: (link: ServerLink) => Promise<T>): Promise<T> {
    const spare = new ServerLink({
      ...this.link.target,
      trust: this.serverTrust,
      log: this.log,
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
      if (!spare.connected) throw this.trustError ?? new HchatError('E_OFFLINE');
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
    this.log.write('auth', {
      peer: 'server',
      user: s.username,
      role: s.role,
      session: s.sessionId,
    });
    if (!r.resumed) return s;
    this.authed = true;
    await this.afterAuth().catch((err: unknown) => {
      if (!(err instanceof HchatError)) throw err;
    });
    return s;
  }

  async logout(): Promise<void> {
    await this.inTurn(async () => {
      if (this.currentSession) await this.endSession();
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
      (await this.link.request('logout', {}).then(
        () => true,
        () => false,
      ));
    if (s && !answered) this.oweLogout(s);
    else if (s) this.log.write('logout', { peer: 'server', session: s.sessionId, result: 'ok' });
    this.setSession(undefined);
  }

  /** `s` ended here unheard by the server: logged out there once it answers (now, if it does). */
  private oweLogout(s: SavedSession): void {
    this.owedLogouts.owe(s.token, s.sessionId);
    if (this.link.connected) this.background(this.owedLogouts.pay());
  }

  me(): Me {
    const s = this.currentSession;
    if (!s) throw new HchatError('E_AUTH_REQUIRED');
    return {
      username: s.username,
      role: s.role,
      status: this.status,
      sessionId: s.sessionId,
      connection: this.connection,
      pending: this.store.pendingCount(s.username),
      // Why it is not connecting, when the server's TLS key is not the trusted one.
      ...(this.trustError && !this.link.connected
        ? { serverKeyError: this.trustError.message }
        : {}),
    };
  }

  async setStatus(status: Status): Promise<{ status: Status }> {
    if (!this.currentSession) throw new HchatError('E_AUTH_REQUIRED');
    const before = this.status;
    this.store.set('status', status);
    this.log.write('status', { status });
    if (status === 'offline') {
      // No connection to anything: the server, the hosts we read from, the members we serve.
      this.link.stop();
      this.authed = false;
      this.revocations.connectionChanged();
      await this.p2p.setServing(false);
      this.sources.forget();
      await this.live.closeAll();
      this.events.emit('connection', { state: 'offline' });
    } else {
      // Invisible: unobservable on the P2P port too (it is closed); online: open again.
      await this.p2p.setServing(status === 'online');
      if (before === 'offline' || !this.link.connected) await this.link.start();
      else if (this.authed) {
        // The choice is stored above and every resume announces it (onUp → afterAuth →
        // submitInfo): a server that went away meanwhile (its link may not know yet) sees it as
        // soon as it is back, so the change is not refused, and never shows us online after it.
        await this.submitInfo().catch((err: unknown) => {
          if (!(err instanceof HchatError) || !TRANSIENT.has(err.code)) throw err;
        });
      }
    }
    this.events.emit('status', { status });
    return { status };
  }

  async peers(): Promise<Array<ReturnType<typeof apiPeer>>> {
    return (await this.trackerList(this.requireAuthed())).map(apiPeer);
  }

  /** The tracker list as this session may see it: every page of `get_list`. */
  private async trackerList(link: ServerLink): Promise<TrackerEntry[]> {
    const peers = await allPages(async (after) => {
      const page = await link.request('get_list', after === undefined ? {} : { after });
      return { items: page.peers, next: page.next };
    });
    this.log.write('get_list', { from: 'server', count: peers.length });
    return peers;
  }

  async directory(): Promise<Array<Channel & { joined: boolean }>> {
    const link = this.requireAuthed();
    const channels = await allPages(async (after) => {
      const page = await link.request('directory', after === undefined ? {} : { after });
      return { items: page.channels, next: page.next };
    });
    return channels.map((c) => ({ ...c, joined: this.readsChannel(c.id) }));
  }

  channels(): ApiChannel[] {
    const account = this.account;
    return this.readableChannels().map((c) => this.apiChannel(account, c));
  }

  async createChannel(name: string, allowVisitors: boolean): Promise<ApiChannel> {
    const s = this.requireUser('create channels');
    const c = await this.requireAuthed().request('channel_create', {
      id: newId(),
      name,
      allowVisitors,
    });
    this.store.saveChannel(s.username, c);
    // Hosted here from now on: announce it so members find us.
    this.store.markHosted(c.id);
    this.store.setMembers(c.id, [s.username]);
    await this.submitInfo();
    return this.apiChannel(s.username, c);
  }

  async join(channelId: string): Promise<ApiChannel> {
    const account = this.account;
    const c = await this.requireAuthed().request('channel_join', { channelId });
    this.store.saveChannel(account, c);
    this.sources.refresh();
    await this.sources.settle(c.id);
    if (!this.sources.linkFor(c.id)) await this.replication.catchUp(c.id);
    return this.apiChannel(account, c);
  }

  async messages(
    channelId: string,
    limit: number,
    before?: string,
  ): Promise<{ messages: ApiMessage[]; source: Source; link?: LinkVia; hasMore: boolean }> {
    const account = this.account;
    if (!this.readsChannel(channelId)) throw await this.unreadable(channelId);
    const beforeMsg = before === undefined ? undefined : this.store.getMessage(before);
    if (before !== undefined && (!beforeMsg || beforeMsg.channelId !== channelId)) {
      throw new HchatError('E_NOT_FOUND', 'no such message in this channel');
    }
    const remote = await this.pages
      .remote(channelId, limit, before, beforeMsg)
      .catch((err: unknown) => {
        this.refusedReading(channelId, err);
        throw err;
      });
    const result = remote ?? this.pages.local(channelId, limit, beforeMsg);
    if (before === undefined) this.store.markRead(account, channelId);
    return result;
  }

  /**
   * A channel's members with their presence as this user may see it: online when a visible
   * tracker entry of theirs exists (invisible users appear offline).
   */
  async members(
    channelId: string,
  ): Promise<Array<{ username: string; status: 'online' | 'offline' }>> {
    if (!this.readsChannel(channelId)) throw new HchatError('E_NOT_MEMBER');
    const link = this.requireAuthed();
    const [members, peers] = await Promise.all([
      allMembers(link, channelId),
      this.trackerList(link),
    ]);
    const online = new Set(
      peers.filter((p) => p.status === 'online').map((p) => p.username.toLowerCase()),
    );
    return members
      .map((username) => ({
        username,
        status: online.has(username.toLowerCase()) ? ('online' as const) : ('offline' as const),
      }))
      .sort((a, b) =>
        a.status === b.status
          ? a.username.localeCompare(b.username)
          : a.status === 'online'
            ? -1
            : 1,
      );
  }

  /** Everything in the channel so far counts as read (the UI shows it). */
  markRead(channelId: string): void {
    const account = this.account;
    if (!this.readsChannel(channelId)) throw new HchatError('E_NOT_MEMBER');
    this.store.markRead(account, channelId);
  }

  async post(
    channelId: string,
    text: string,
    extra: { replyTo?: string; mentions?: string[] } = {},
  ): Promise<{ id: string; state: LocalMessage['state'] }> {
    return this.write(channelId, { text, ...extra });
  }

  /**
   * Writes one item of a channel's log as this user: a message, or an edit, delete, reaction or
   * channel change (shared/item-rules.ts decides, here as at every replica, whether it may).
   * Signed, queued in the durable outbox (or taken into the primary copy when hosted here),
   * then sent; answers once a replica holds it or after POST_WAIT_MS.
   */
  async write(
    channelId: string,
    body: ItemBody & { kind?: ItemKind; target?: string },
  ): Promise<{ id: string; state: LocalMessage['state'] }> {
    const s = this.requireUser('write in channels');
    if (!this.readsChannel(channelId)) throw await this.unreadable(channelId);
    // Decided before the item is stored: a channel's deletion takes it out of the list at once,
    // yet its host still uploads that last item to the server.
    const hosted = this.isHostedHere(channelId);
    const target = body.target === undefined ? undefined : this.store.getMessage(body.target);
    if (body.target !== undefined && (!target || target.channelId !== channelId))
      throw new HchatError('E_NOT_FOUND', 'no such message in this channel');
    const t = this.clock.tick();
    const content = { channelId, author: s.username, ts: t.ts, lc: t.lc, ...body };
    // The id is derived from the content (shared/message-id.ts): nobody else can claim it.
    const fields = { id: messageId(content), ...content };
    const refused = itemRefusal(fields, this.store.channelOwner(channelId), target, true);
    if (refused) throw refused;
    // Signed by the author: no host and no server can alter or forge it (SPEC §7).
    const m = { ...fields, sig: signMessage(fields, this.keys!), cert: s.cert };
    // What this peer writes is what every replica takes: the wire's own schema decides.
    const { author: _a, ...wire } = m;
    const shape = NewMessage.safeParse(wire);
    if (!shape.success)
      throw new HchatError('E_BAD_REQUEST', `message: ${describeIssues(shape.error)}`);
    if (hosted) {
      // Into the primary copy at once; pending until the server holds its backup.
      const r = this.store.hostAccept(m, 'pending');
      if (r instanceof HchatError) throw r;
      // Pushed to its members; a channel item then ends the links that may no longer read it.
      this.hostService.publish(r.message);
    } else {
      this.store.addPending(m);
    }
    this.log.write('queue', { channel: channelId, msg: m.id });
    this.announceItems([m]);
    if (this.authed || this.sources.linkFor(channelId)) {
      const delivered = this.delivery.waitDelivery(m.id, POST_WAIT_MS);
      this.background(hosted ? this.delivery.upload() : this.delivery.drain());
      await delivered;
    }
    const state = this.store.getMessage(m.id)?.state ?? 'pending';
    return { id: m.id, state };
  }

  private apiChannel(account: string, c: Channel): ApiChannel {
    return {
      id: c.id,
      name: c.name,
      owner: c.owner,
      allowVisitors: c.allowVisitors,
      createdAt: c.createdAt,
      ...(c.topic ? { topic: c.topic } : {}),
      hosted: this.isHostedHere(c.id),
      unread: this.store.unread(account, c.id),
      mentions: this.store.unreadMentions(account, c.id),
    };
  }
}

/** Every item of a paged answer (`get_list`, `directory`): pages are fetched until no `next`. */
async function allPages<T>(
  page: (after: string | undefined) => Promise<{ items: T[]; next?: string }>,
): Promise<T[]> {
  const items: T[] = [];
  let after: string | undefined;
  do {
    const p = await page(after);
    items.push(...p.items);
    after = p.next;
  } while (after !== undefined);
  return items;
}

function apiPeer(e: TrackerEntry) {
  return {
    username: e.username,
    role: e.role,
    ip: e.ip,
    port: e.port,
    udpPort: e.udpPort,
    sessionId: e.sessionId,
    status: e.status,
    hosts: e.hosts,
    candidates: e.candidates ?? [],
  };
}

/** The fingerprints pinned for the server's instances (`--server host:port#fingerprint,…`). */
function serverPins(o: PeerOptions): Map<string, string> | undefined {
  const all = [
    { host: o.serverHost, port: o.serverPort, fingerprint: o.serverFingerprint },
    ...(o.otherServers ?? []),
  ];
  const pins = new Map<string, string>();
  for (const a of all) if (a.fingerprint) pins.set(`${a.host}:${a.port}`, a.fingerprint);
  return pins.size > 0 ? pins : undefined;
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
