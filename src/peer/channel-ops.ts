/**
 * The channel operations of the local API (SPEC §4, §5): the peers and channels the server
 * lists, creating and joining channels, reading a channel's pages and members, and writing an
 * item of its log, signed here and delivered through the outbox or the primary copy.
 */
import { HchatError } from '../protocol/errors.js';
import { NewMessage, type Channel, type ItemKind, type TrackerEntry } from '../protocol/common.js';
import { describeIssues } from '../protocol/rpc.js';
import { newId } from '../shared/hlc.js';
import { itemRefusal } from '../shared/item-rules.js';
import { messageId, type ItemBody } from '../shared/message-id.js';
import { signMessage } from '../shared/signing.js';
import type { LocalChannel, LocalMessage } from '../store/peer-store.js';
import type { ApiChannel, ApiMessage, LinkVia, Member, MemberStatus } from './api-shapes.js';
import type { Delivery } from './delivery.js';
import type { NodeContext } from './context.js';
import { allMembers } from './list-pages.js';
import type { ChannelPages, Source } from './pages.js';
import type { Replication } from './replication.js';
import type { ServerLink } from './server-link.js';
import type { Sessions } from './sessions.js';

const POST_WAIT_MS = 3000;

/** What the channel operations need from their node beyond its shared parts (NodeContext). */
export interface ChannelOpsDeps {
  readonly replication: Replication;
  readonly pages: ChannelPages;
  readonly delivery: Delivery;
  /** The session, its keys, and what a call needs of it and of the server link. */
  readonly sessions: Sessions;
  /** The logged-in account's name (E_AUTH_REQUIRED when nobody is logged in). */
  readonly account: string;
  /** Why the account cannot read or write the channel here. */
  unreadable(channelId: string): Promise<HchatError>;
  /** The channels the logged-in account reads here. */
  readableChannels(): LocalChannel[];
  /** A visitor's server or host answered that the channel does not exist for it. */
  refusedReading(channelId: string, err: unknown): void;
  /** Announces this peer and what it hosts to the tracker (link-lifecycle.ts). */
  submitInfo(): Promise<void>;
}

/** The channel operations of one peer node. */
export class ChannelOps {
  constructor(
    private readonly ctx: NodeContext,
    private readonly d: ChannelOpsDeps,
  ) {}

  async peers(): Promise<Array<ReturnType<typeof apiPeer>>> {
    return (await this.trackerList(this.d.sessions.requireAuthed())).map(apiPeer);
  }

  /** The tracker list as this session may see it: every page of `get_list`. */
  async trackerList(link: ServerLink): Promise<TrackerEntry[]> {
    const peers = await allPages(async (after) => {
      const page = await link.request('get_list', after === undefined ? {} : { after });
      return { items: page.peers, next: page.next };
    });
    this.ctx.log.write('get_list', { from: 'server', count: peers.length });
    return peers;
  }

  async directory(): Promise<Array<Channel & { joined: boolean }>> {
    const link = this.d.sessions.requireAuthed();
    const channels = await allPages(async (after) => {
      const page = await link.request('directory', after === undefined ? {} : { after });
      return { items: page.channels, next: page.next };
    });
    return channels.map((c) => ({ ...c, joined: this.ctx.isJoined(c.id) }));
  }

  channels(): ApiChannel[] {
    const account = this.d.account;
    return this.d.readableChannels().map((c) => this.apiChannel(account, c));
  }

  async createChannel(name: string, allowVisitors: boolean): Promise<ApiChannel> {
    const s = this.d.sessions.requireUser('create channels');
    const c = await this.d.sessions.requireAuthed().request('channel_create', {
      id: newId(),
      name,
      allowVisitors,
    });
    this.ctx.store.saveChannel(s.username, c);
    // Hosted here from now on: announce it so members find us.
    this.ctx.store.markHosted(c.id);
    this.ctx.store.setMembers(c.id, [s.username]);
    // The account's membership changed: its other pages (tabs, scripts) list the channel now.
    this.ctx.events.emit('channel', { channelId: c.id });
    await this.d.submitInfo();
    return this.apiChannel(s.username, c);
  }

  async join(channelId: string): Promise<ApiChannel> {
    const account = this.d.account;
    const c = await this.d.sessions.requireAuthed().request('channel_join', { channelId });
    const joined = this.ctx.store.channel(account, c.id) !== undefined;
    this.ctx.store.saveChannel(account, c);
    this.ctx.sources.refresh();
    // A membership new here: the account's other pages (tabs, scripts) list the channel at once,
    // as README's `channel` event says, not on their next reload.
    if (!joined) this.ctx.events.emit('channel', { channelId: c.id });
    await this.ctx.sources.settle(c.id);
    if (!this.ctx.sources.linkFor(c.id)) await this.d.replication.catchUp(c.id);
    return this.apiChannel(account, c);
  }

  async messages(
    channelId: string,
    limit: number,
    before?: string,
  ): Promise<{ messages: ApiMessage[]; source: Source; link?: LinkVia; hasMore: boolean }> {
    const account = this.d.account;
    if (!this.ctx.isJoined(channelId)) throw await this.d.unreadable(channelId);
    const beforeMsg = before === undefined ? undefined : this.ctx.store.getMessage(before);
    if (before !== undefined && (!beforeMsg || beforeMsg.channelId !== channelId)) {
      throw new HchatError('E_NOT_FOUND', 'no such message in this channel');
    }
    const remote = await this.d.pages
      .remote(channelId, limit, before, beforeMsg)
      .catch((err: unknown) => {
        this.d.refusedReading(channelId, err);
        throw err;
      });
    const result = remote ?? this.d.pages.local(channelId, limit, beforeMsg);
    if (before === undefined) this.ctx.store.markRead(account, channelId);
    return result;
  }

  /**
   * A channel's members with their presence as this session may know it: online when a visible
   * tracker entry of theirs says so (invisible users appear offline). A visitor sees the entries
   * of the channel's host and streamers only (docs/SECURITY.md "The tracker"): whoever else it
   * does not see is `unknown` to it, not offline.
   */
  async members(channelId: string): Promise<Member[]> {
    if (!this.ctx.isJoined(channelId)) throw new HchatError('E_NOT_MEMBER');
    const link = this.d.sessions.requireAuthed();
    const [members, peers] = await Promise.all([
      allMembers(link, channelId),
      this.trackerList(link),
    ]);
    const online = new Set(
      peers.filter((p) => p.status === 'online').map((p) => p.username.toLowerCase()),
    );
    const unseen: MemberStatus =
      this.d.sessions.currentSession?.role === 'visitor' ? 'unknown' : 'offline';
    const order: Record<MemberStatus, number> = { online: 0, offline: 1, unknown: 2 };
    return members
      .map((username) => ({
        username,
        status: online.has(username.toLowerCase()) ? ('online' as const) : unseen,
      }))
      .sort((a, b) => order[a.status] - order[b.status] || a.username.localeCompare(b.username));
  }

  /** Everything in the channel so far counts as read (the UI shows it). */
  markRead(channelId: string): void {
    const account = this.d.account;
    if (!this.ctx.isJoined(channelId)) throw new HchatError('E_NOT_MEMBER');
    this.ctx.store.markRead(account, channelId);
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
    const s = this.d.sessions.requireUser('write in channels');
    if (!this.ctx.isJoined(channelId)) throw await this.d.unreadable(channelId);
    // Decided before the item is stored: a channel's deletion takes it out of the list at once,
    // yet its host still uploads that last item to the server.
    const hosted = this.ctx.isHostedHere(channelId);
    const target = body.target === undefined ? undefined : this.ctx.store.getMessage(body.target);
    if (body.target !== undefined && (!target || target.channelId !== channelId))
      throw new HchatError('E_NOT_FOUND', 'no such message in this channel');
    const t = this.ctx.clock.tick();
    const content = { channelId, author: s.username, ts: t.ts, lc: t.lc, ...body };
    // The id is derived from the content (shared/message-id.ts): nobody else can claim it.
    const fields = { id: messageId(content), ...content };
    const refused = itemRefusal(fields, this.ctx.store.channelOwner(channelId), target, true);
    if (refused) throw refused;
    // Signed by the author: no host and no server can alter or forge it (SPEC §7).
    const m = { ...fields, sig: signMessage(fields, this.d.sessions.keys!), cert: s.cert };
    // What this peer writes is what every replica takes: the wire's own schema decides.
    const { author: _a, ...wire } = m;
    const shape = NewMessage.safeParse(wire);
    if (!shape.success)
      throw new HchatError('E_BAD_REQUEST', `message: ${describeIssues(shape.error)}`);
    if (hosted) {
      // Into the primary copy at once; pending until the server holds its backup.
      const r = this.ctx.store.hostAccept(m, 'pending');
      if (r instanceof HchatError) throw r;
      // Pushed to its members; a channel item then ends the links that may no longer read it.
      this.ctx.hostService.publish(r.message);
    } else {
      this.ctx.store.addPending(m);
    }
    this.ctx.log.write('queue', { channel: channelId, msg: m.id });
    this.ctx.announce([m]);
    if (this.ctx.authed || this.ctx.sources.linkFor(channelId)) {
      const delivered = this.d.delivery.waitDelivery(m.id, POST_WAIT_MS);
      this.ctx.background(hosted ? this.d.delivery.upload() : this.d.delivery.drain());
      await delivered;
    }
    const state = this.ctx.store.getMessage(m.id)?.state ?? 'pending';
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
      hosted: this.ctx.isHostedHere(c.id),
      unread: this.ctx.store.unread(account, c.id),
      mentions: this.ctx.store.unreadMentions(account, c.id),
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

/** A tracker entry as the local API shows it (GET /api/peers, presence events). */
export function apiPeer(e: TrackerEntry) {
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
