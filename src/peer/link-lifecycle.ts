/**
 * The server link's lifecycle on a peer (SPEC §3, §4): on each connection the saved session is
 * resumed and everything a fresh session does follows (announce, channels reconciled, hosts
 * found, subscriptions, outbox drained, hosted channels uploaded, catch-up); a connection that
 * goes ends what it carried; the server's pushes are dispatched; hosts coming and going switch
 * where channels are read from; and the user's status turns the link off and on.
 */
import { HchatError } from '../protocol/errors.js';
import { entryKey, type Status, type TrackerEntry } from '../protocol/common.js';
import type { EventBody } from '../protocol/server-link.js';
import type { TypingEvent } from '../protocol/typing-ops.js';
import type { ConnectionLog } from '../shared/connlog.js';
import type { Candidate } from '../protocol/common.js';
import type { LocalChannel, PeerStore } from '../store/peer-store.js';
import type { PeerAvatars } from './avatars.js';
import { apiPeer } from './channel-ops.js';
import { TRANSIENT, type Delivery } from './delivery.js';
import type { DirectMessages } from './dms.js';
import type { EventHub } from './event-hub.js';
import type { PeerFiles } from './files.js';
import type { HostLink } from './host-link.js';
import type { HostService } from './host-service.js';
import { allMembers, allMyChannels } from './list-pages.js';
import type { LiveService } from './live.js';
import type { OwedLogouts } from './owed-logouts.js';
import type { P2PEndpoint } from './p2p.js';
import type { Source } from './pages.js';
import type { Puncher } from './punch.js';
import { hostCandidates, reflexiveCandidates } from './reflexive.js';
import type { Replication } from './replication.js';
import type { Revocations } from './revocations.js';
import type { ServerLink } from './server-link.js';
import type { Sessions } from './sessions.js';
import type { StatusChoices } from './status-choice.js';
import type { ChannelSources } from './sources.js';
import type { Typing } from './typing.js';
import { refusesReading } from './local-reads.js';

/** What the link lifecycle drives on its node: nearly every part, as the node wires them. */
export interface LinkLifecycleDeps {
  readonly link: ServerLink;
  /** The deployment's other server instances (one key signs for them all). */
  readonly otherServers: readonly unknown[] | undefined;
  readonly store: PeerStore;
  readonly log: ConnectionLog;
  readonly events: EventHub;
  readonly sessions: Sessions;
  readonly owedLogouts: OwedLogouts;
  readonly revocations: Revocations;
  readonly dms: DirectMessages;
  readonly p2p: P2PEndpoint;
  readonly files: PeerFiles;
  readonly avatars: PeerAvatars;
  readonly sources: ChannelSources;
  readonly live: LiveService;
  readonly delivery: Delivery;
  readonly replication: Replication;
  readonly puncher: Puncher;
  readonly typing: Typing;
  readonly hostService: HostService;
  /** The status each account chose here (status-choice.ts). */
  readonly statuses: StatusChoices;
  /** True once the node closed. */
  readonly closed: boolean;
  /** True when this peer holds the primary copy of the channel for its logged-in owner. */
  isHostedHere(channelId: string): boolean;
  /** True when the logged-in account reads the channel (local-reads.ts). */
  readsChannel(channelId: string): boolean;
  /** The channels the logged-in account reads here. */
  readableChannels(): LocalChannel[];
  /** Channels the logged-in account may no longer read leave its list. */
  forgetUnreadable(): void;
  /** A visitor's server or host answered that the channel does not exist for it. */
  refusedReading(channelId: string, err: unknown): void;
  /** Where a channel is read from now. */
  sourceOf(channelId: string): Source;
  /** The tracker list as this session may see it (channel-ops.ts). */
  trackerList(link: ServerLink): Promise<TrackerEntry[]>;
  /** Runs a task nobody awaits (see PeerNode). */
  background(task: Promise<void>): void;
  /** Channels joined or hosted changed: sources and server subscriptions follow (PeerNode). */
  channelsChanged(): void;
}

/** How many times a host is asked again for channels it refused (0.5, 1, 2, 4, 8, 8… s apart). */
const HOST_RESUBSCRIBE_TRIES = 8;

/** The server link's lifecycle of one peer node. */
export class LinkLifecycle {
  /** Why the last connection to the server was refused, when its TLS key was not trusted. */
  trustError: HchatError | undefined;
  /** Where the server saw this peer on its current connection (reflexive.ts), announced with it. */
  reflexive: Candidate[] = [];
  /** A submit_info to send again once the server's presence budget allows it. */
  private announceTimer: NodeJS.Timeout | undefined;
  /** Why the server closed the last link with our session on it (E_SESSION_INVALID), if it did. */
  private endedBy: HchatError | undefined;

  /** Follows the link's `up`, `down` and `event` from now on. */
  constructor(private readonly d: LinkLifecycleDeps) {
    this.d.link.on('up', () => this.d.background(this.onUp()));
    this.d.link.on('down', (reason: HchatError | undefined, wasUp: boolean) => {
      // A server key this peer does not trust is the answer to every call until it is fixed.
      const before = this.trustError?.message;
      this.trustError = reason?.code === 'E_SERVER_KEY_MISMATCH' ? reason : undefined;
      // The server ended the session on this link, and said why: told to the user once the
      // resume on the next link is refused.
      if (reason?.code === 'E_SESSION_INVALID' && wasUp) this.endedBy = reason;
      this.onDown(wasUp);
      // The UI learns of it (GET /api/me says why) even when no connection was up to lose.
      if (this.trustError && this.trustError.message !== before && !wasUp)
        this.d.events.emit('connection', { state: 'connecting' });
    });
    this.d.link.on('event', (name: string, body: unknown) => this.onEvent(name, body));
  }

  /** The node closes: no announce is sent again. */
  stop(): void {
    clearTimeout(this.announceTimer);
  }

  private async onUp(): Promise<void> {
    const info = this.d.link.server;
    const known = this.d.store.get('serverPublicKey');
    if (info && known && info.publicKey !== known && this.d.otherServers?.length) {
      // Instances of one deployment sign with one key: one that shows another is not part of
      // it (or someone in the middle of a first use). Never believed; the next address is tried.
      this.trustError = new HchatError(
        'E_SERVER_KEY_MISMATCH',
        `the server at ${this.d.link.address} signs with another key than this deployment's`,
      );
      this.d.log.write('server_refused', { addr: this.d.link.address, reason: 'signing_key' });
      this.d.link.moveOn();
      return;
    }
    if (info) this.d.store.set('serverPublicKey', info.publicKey);
    // Sessions ended here while this server was away are revoked there now.
    this.d.background(this.d.owedLogouts.pay());
    // In turn with logins and logouts: a resume never races a session change on this link.
    const resumed = await this.d.sessions.inTurn(async () => {
      const s = this.d.sessions.currentSession;
      // A login or visitor entry that ran meanwhile opened its session on this connection.
      if (this.d.sessions.authed || !this.d.link.connected) return false;
      if (!s) {
        this.d.events.emit('connection', { state: 'connected' });
        return false;
      }
      try {
        const r = await this.d.link.request('resume', { token: s.token });
        // The server renews the key certificate at each resume (same key, later expiry).
        if (r.cert !== s.cert)
          this.d.sessions.setSession({ ...s, cert: r.cert }, this.d.sessions.keys);
        this.endedBy = undefined;
      } catch (err) {
        if (err instanceof HchatError && err.code === 'E_SESSION_INVALID') {
          // The server no longer knows this session (revoked, or its data was reset): log in again.
          // Why, as the server said when it closed the last link, else as the resume's refusal.
          const why = this.endedBy ?? err;
          this.endedBy = undefined;
          this.d.sessions.setSession(undefined);
          // Shown on the login page as text: a few lines at most, whatever the server sent.
          this.d.sessions.endedBy = { code: why.code, message: why.message.slice(0, 300) };
          await this.sessionChanged();
          this.d.events.emit('status', { session: 'invalid' });
        }
        return false;
      }
      // Marked before the turn ends: the next login sees that this connection carries it.
      this.d.sessions.authed = true;
      return true;
    });
    if (resumed) await this.afterAuth();
  }

  private onDown(wasUp: boolean): void {
    this.d.sessions.authed = false;
    this.d.revocations.connectionChanged();
    this.d.dms.offline();
    if (wasUp)
      this.d.events.emit('connection', {
        state: this.d.statuses.current === 'offline' ? 'offline' : 'connecting',
      });
  }

  /** Announces this peer and what it hosts (hosts are hidden while invisible). */
  async submitInfo(): Promise<void> {
    const s = this.d.sessions.currentSession;
    if (!s || !this.d.sessions.authed) return;
    const status = this.d.statuses.current === 'invisible' ? 'invisible' : 'online';
    const hosts =
      status === 'online' ? this.d.store.hostedIds().filter((id) => this.d.isHostedHere(id)) : [];
    const live = status === 'online' ? this.d.live.announced() : [];
    try {
      const own = this.d.p2p.advertised;
      const candidates = [...hostCandidates(own), ...this.reflexive]; // as live.ts gives them
      await this.d.link.request('submit_info', { ...own, status, hosts, live, candidates });
    } catch (err) {
      // Too many changes at once (many channels made in a row): announce the latest state a
      // moment later; the entry the server holds meanwhile is only a little behind.
      if (!(err instanceof HchatError) || err.code !== 'E_RATE_LIMITED') throw err;
      if (!this.announceTimer) {
        this.announceTimer = setTimeout(() => {
          this.announceTimer = undefined;
          if (!this.d.closed) this.d.background(this.submitInfo());
        }, err.retryAfterMs ?? 1000);
        this.announceTimer.unref();
      }
    }
  }

  /** Everything a fresh session does: announce, refresh channels, find hosts, sync, drain. */
  async afterAuth(): Promise<void> {
    try {
      await this.afterAuthSteps();
    } finally {
      // Whatever failed before the list came, nothing waits for it on this connection.
      this.d.sources.noListComing();
    }
  }

  private async afterAuthSteps(): Promise<void> {
    const s = this.d.sessions.currentSession;
    if (!s) return;
    this.d.sessions.authed = true;
    this.d.revocations.connectionChanged();
    this.d.events.emit('connection', { state: 'connected' });
    // Learnt again on each connection: the NAT's mapping (or the network) may have changed.
    this.reflexive = await reflexiveCandidates(
      this.d.link,
      this.d.p2p.media,
      this.d.p2p.advertised,
    );
    await this.submitInfo();
    this.d.background(this.d.files.backup());
    if (s.role === 'user') this.d.background(this.d.dms.online());
    if (s.role === 'user') {
      await this.reconcileChannels(s.username);
      for (const id of this.d.store.hostedIds()) {
        if (!this.d.isHostedHere(id)) continue;
        this.d.store.setMembers(id, await allMembers(this.d.link, id));
      }
    } else {
      this.d.forgetUnreadable();
      await this.rejoinViews(this.d.readableChannels().map((c) => c.id));
    }
    this.d.sources.setTracker(await this.d.trackerList(this.d.link));
    await this.updateServerSubscriptions();
    this.d.background(this.d.delivery.drain());
    // Upload first: catching up a hosted channel meanwhile would fetch our own uploads back.
    await this.d.delivery.upload();
    for (const c of this.d.readableChannels()) {
      await this.d.sources.settle(c.id);
      // Every channel catches up from where it is read, the host's too: a host link that came up
      // while the server link was failing lost its catch-up with it (schedule 760), and this
      // resume is the retry. Both are cheap when nothing is missing (one empty page).
      const host = this.d.sources.linkFor(c.id);
      if (host) this.d.background(this.d.replication.catchUpHost(host, c.id));
      else await this.d.replication.catchUp(c.id);
    }
  }

  /**
   * A visitor's views start again on each connection (`channel_join`); a channel that stopped
   * allowing visitors (or was deleted) meanwhile answers E_CHANNEL_NOT_FOUND: forgotten here.
   */
  private async rejoinViews(channelIds: readonly string[]): Promise<void> {
    for (const id of channelIds) {
      try {
        await this.d.link.request('channel_join', { channelId: id });
      } catch (err) {
        if (!refusesReading(err)) throw err;
        this.d.refusedReading(id, err);
      }
    }
  }

  /**
   * The account's channels as the server lists them: saved, and those it no longer lists (left
   * elsewhere, removed by the owner or deleted while this peer was away) gone here too.
   */
  private async reconcileChannels(username: string): Promise<void> {
    const channels = await allMyChannels(this.d.link);
    // Another account logged in meanwhile: this list is its own, not `username`'s to keep.
    const now = this.d.sessions.currentSession;
    if (now?.role !== 'user' || now.username !== username) return;
    // A list read before the server stored a removal this peer already holds (from the host,
    // while the list was on its way) would bring the channel back: the owner's signed item wins.
    for (const c of channels)
      if (!this.d.store.isRemoved(c.id, username, c.owner)) this.d.store.saveChannel(username, c);
    const listed = new Set(channels.map((c) => c.id));
    for (const c of this.d.store.channels(username)) {
      if (listed.has(c.id) || this.d.isHostedHere(c.id)) continue;
      this.d.store.dropChannel(username, c.id);
      this.d.log.write('channel_gone', { channel: c.id });
      this.d.events.emit('channel', { channelId: c.id });
    }
  }

  /** Asks the server to push only the channels it serves us: all but those read from a host. */
  async updateServerSubscriptions(): Promise<void> {
    const s = this.d.sessions.currentSession;
    if (!s || !this.d.sessions.authed) return;
    const channelIds = this.d
      .readableChannels()
      .map((c) => c.id)
      .filter((id) => !this.d.sources.linkFor(id));
    const granted = new Set((await this.d.link.request('subscribe', { channelIds })).channelIds);
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
      this.d.replication.receive([message], 'push');
      // A hole before this seq means a push was missed: fetch what lies between.
      if (this.d.store.cursor(message.channelId) < message.seq)
        this.d.background(this.d.replication.catchUp(message.channelId));
    } else if (name === 'punch') {
      this.d.puncher.onEvent(body as EventBody<'punch'>);
    } else if (name === 'relay') {
      this.d.puncher.onRelay(body as EventBody<'relay'>);
    } else if (name === 'peer_joined' || name === 'peer_left') {
      const { entry } = body as EventBody<'peer_joined'>;
      const before = this.d.sources.get(entryKey(entry));
      if (name === 'peer_joined') this.d.sources.upsert(entry);
      else this.d.sources.remove(entry);
      this.d.live.trackerChanged(before, name === 'peer_joined' ? entry : undefined);
      // A peer that left is offline now, whatever its last entry said.
      this.d.events.emit('presence', {
        kind: name === 'peer_joined' ? 'joined' : 'left',
        peer: name === 'peer_joined' ? apiPeer(entry) : { ...apiPeer(entry), status: 'offline' },
      });
    } else if (name === 'typing') {
      this.d.typing.fromServer(body as TypingEvent);
    } else if (name === 'dm') {
      this.d.dms.mailboxChanged();
    } else if (name === 'dm_blocks') {
      this.d.dms.blocksChanged((body as EventBody<'dm_blocks'>).blocked);
    } else if (name === 'avatar') {
      this.d.avatars.changed(body as EventBody<'avatar'>);
    } else if (name === 'draining') {
      // This instance is going away: resume on the next one now, not when it closes on us.
      this.d.log.write('server_draining', { server: this.d.link.address });
      this.d.link.moveOn();
    } else if (name === 'session_revoked') {
      const { sessionId } = body as EventBody<'session_revoked'>;
      this.d.revocations.revoked(sessionId);
      this.d.p2p.dropSession(sessionId);
    } else if (name === 'member_joined') {
      const { channelId, username } = body as EventBody<'member_joined'>;
      if (this.d.isHostedHere(channelId)) {
        this.d.store.addMember(channelId, username);
        // A member again: a logout made while it shared no channel with this peer came as no
        // event, so what the server said of its sessions is asked again (PROTOCOL.md §4.1).
        this.d.revocations.forgetUser(username);
        this.d.background(this.d.p2p.recheckUser(username));
      }
      // The UI's member list asks again now, not on the next presence change (issue 13 §8).
      this.d.events.emit('members', { channelId, username });
      if (this.isMe(username)) this.d.background(this.membershipElsewhere());
    } else if (name === 'member_left') {
      const { channelId, username } = body as EventBody<'member_left'>;
      if (this.d.isHostedHere(channelId)) {
        this.d.store.removeMember(channelId, username);
        this.d.hostService.memberLeft(channelId, username);
      }
      this.d.events.emit('members', { channelId, username });
      if (this.isMe(username)) this.d.background(this.membershipElsewhere());
    }
  }

  /** Whether `username` is the logged-in user (not a visitor) of this peer. */
  private isMe(username: string): boolean {
    const s = this.d.sessions.currentSession;
    return s?.role === 'user' && s.username.toLowerCase() === username.toLowerCase();
  }

  /**
   * The account joined, created or left a channel on another of its devices (the server tells
   * `member_joined`/`member_left` of its own name to its other sessions): the list is read
   * again, and a channel new here is read as one joined here (README: `channel` event).
   */
  private async membershipElsewhere(): Promise<void> {
    const s = this.d.sessions.currentSession;
    if (s?.role !== 'user' || !this.d.sessions.authed) return;
    const before = new Set(this.d.store.channels(s.username).map((c) => c.id));
    await this.reconcileChannels(s.username);
    if (this.d.sessions.currentSession !== s) return;
    const added = this.d.store.channels(s.username).filter((c) => !before.has(c.id));
    this.d.channelsChanged();
    for (const c of added) {
      this.d.events.emit('channel', { channelId: c.id });
      await this.d.sources.settle(c.id);
      if (!this.d.sources.linkFor(c.id)) await this.d.replication.catchUp(c.id);
    }
  }

  // ---- hosts coming and going ---------------------------------------------------------------

  async onHostUp(link: HostLink, channelIds: string[], attempt = 0): Promise<void> {
    const granted = new Set((await link.request('subscribe', { channelIds })).channelIds);
    // Only of channels still read here: one just left (the link went with it) has no view.
    for (const id of channelIds.filter((c) => this.d.readsChannel(c)))
      this.d.events.emit('sync', { channelId: id, source: 'host', phase: 'switch' });
    // Not chained after a server request: when the server link failed first, the catch-up from
    // the host was lost with it and the member stayed without what it missed (schedule 760).
    this.d.background(this.updateServerSubscriptions());
    this.d.background(this.d.delivery.drain());
    for (const id of channelIds)
      if (granted.has(id)) await this.d.replication.catchUpHost(link, id);
    // A channel the host did not grant although this account reads it: the host has not heard
    // of the membership yet (the server tells it of a join while this peer, told at once, already
    // asks). Asked again, with everything this link serves now (a subscription replaces the last),
    // until it is granted or the link serves it no more: else nothing of it would reach us.
    const refused = channelIds.filter((id) => !granted.has(id) && this.d.readsChannel(id));
    if (refused.length === 0 || attempt >= HOST_RESUBSCRIBE_TRIES) return;
    this.d.log.write('subscribe_refused', { peer: link.name, count: refused.length, attempt });
    await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** attempt, 8000)).unref());
    if (this.d.closed) return;
    const serving = this.d
      .readableChannels()
      .map((c) => c.id)
      .filter((id) => this.d.sources.serves(link, id));
    if (!refused.some((id) => serving.includes(id))) return;
    await this.onHostUp(link, serving, attempt + 1);
  }

  async onHostDown(channelIds: string[]): Promise<void> {
    for (const id of channelIds.filter((c) => this.d.readsChannel(c)))
      this.d.events.emit('sync', { channelId: id, source: this.d.sourceOf(id), phase: 'switch' });
    await this.updateServerSubscriptions();
    this.d.background(this.d.delivery.drain());
    for (const id of channelIds) await this.d.replication.catchUp(id);
  }

  /**
   * A session started or ended here. Logging in is choosing to be reachable: an `offline` the
   * account chose here is over. The P2P port and the server link then follow the status of
   * whoever is logged in now (nobody: `online`, so that someone can log in, and a logout the
   * server did not hear goes out).
   */
  async sessionChanged(): Promise<void> {
    if (this.d.sessions.currentSession) this.d.statuses.loggedIn();
    const status = this.d.statuses.current;
    await this.d.p2p.setServing(status === 'online');
    // Not connected because the last account chose offline: connects (at once when running).
    if (status !== 'offline') await this.d.link.start();
  }

  /** The user chose a status: offline ends every connection, invisible hides the P2P port. */
  async setStatus(status: Status): Promise<{ status: Status }> {
    const before = this.d.statuses.current;
    if (!this.d.statuses.choose(status)) throw new HchatError('E_AUTH_REQUIRED');
    this.d.log.write('status', { status });
    if (status === 'offline') {
      // No connection to anything: the server, the hosts we read from, the members we serve.
      this.d.link.stop();
      this.d.sessions.authed = false;
      this.d.revocations.connectionChanged();
      await this.d.p2p.setServing(false);
      this.d.sources.forget();
      await this.d.live.closeAll();
      this.d.events.emit('connection', { state: 'offline' });
    } else {
      // Invisible: unobservable on the P2P port too (it is closed); online: open again.
      await this.d.p2p.setServing(status === 'online');
      if (before === 'offline' || !this.d.link.connected) await this.d.link.start();
      else if (this.d.sessions.authed) {
        // The choice is stored above and every resume announces it (onUp → afterAuth →
        // submitInfo): a server that went away meanwhile (its link may not know yet) sees it as
        // soon as it is back, so the change is not refused, and never shows us online after it.
        await this.submitInfo().catch((err: unknown) => {
          if (!(err instanceof HchatError) || !TRANSIENT.has(err.code)) throw err;
        });
      }
    }
    this.d.events.emit('status', { status });
    return { status };
  }
}
