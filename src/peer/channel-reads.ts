/**
 * Which channels the logged-in account reads and hosts on this peer: the rule of local-reads.ts
 * applied to the current session, and the channels it may no longer read forgotten here.
 */
import type { Channel } from '../protocol/common.js';
import type { LocalChannel } from '../store/peer-store.js';
import type { NodeContext } from './context.js';
import { mayRead, refusesReading } from './local-reads.js';

/** The channels one node's logged-in account reads and hosts. */
export class ChannelReads {
  constructor(private readonly ctx: NodeContext) {}

  /**
   * True when the logged-in account reads the channel (joined, hosts, or views it while it
   * allows visitors): the one rule of every local read (local-reads.ts).
   */
  readsChannel(channelId: string): boolean {
    return this.readableChannel(channelId) !== undefined;
  }

  /** The channel as the logged-in account holds it here, if it reads it (local-reads.ts). */
  readableChannel(channelId: string): LocalChannel | undefined {
    const s = this.ctx.session;
    const c = s && this.ctx.store.channel(s.username, channelId);
    return s && mayRead(s.role, c) ? c : undefined;
  }

  /** The channels the logged-in account reads here (none when nobody is logged in). */
  readableChannels(): LocalChannel[] {
    const s = this.ctx.session;
    return s ? this.ctx.store.channels(s.username).filter((c) => mayRead(s.role, c)) : [];
  }

  /**
   * A channel the logged-in account holds but may no longer read (a visitor's, once the channel
   * stops allowing visitors: its channel item says so) leaves its list here: nothing more of it
   * is shown, searched or stored for this account. The messages stay while another account here
   * holds the channel (a member keeps everything), else they go with it.
   */
  forgetUnreadable(): void {
    const s = this.ctx.session;
    if (!s || this.ctx.closed) return;
    for (const c of this.ctx.store.channels(s.username))
      if (!mayRead(s.role, c)) this.forgetChannel(s.username, c.id);
  }

  /** The account no longer reads the channel: it leaves its list, and the UI is told. */
  private forgetChannel(account: string, channelId: string): void {
    this.ctx.store.dropChannel(account, channelId);
    this.ctx.log.write('channel_gone', { channel: channelId });
    this.ctx.events.emit('channel', { channelId });
  }

  /**
   * A visitor's server or host answered that the channel does not exist for it (it stopped
   * allowing visitors, or was deleted): forgotten here as its channel item would have it.
   */
  refusedReading(channelId: string, err: unknown): void {
    const s = this.ctx.session;
    if (s?.role !== 'visitor' || !refusesReading(err)) return;
    if (!this.ctx.store.channel(s.username, channelId)) return;
    this.forgetChannel(s.username, channelId);
    this.ctx.sources.refresh();
  }

  /** True when this peer holds the primary copy of the channel for its logged-in owner. */
  isHostedHere(channelId: string): boolean {
    return this.hostedChannel(channelId) !== undefined;
  }

  /** The channel hosted here for its logged-in owner, if it is. */
  hostedChannel(channelId: string): Channel | undefined {
    const s = this.ctx.session;
    if (!s || s.role !== 'user' || !this.ctx.store.isHosted(channelId)) return undefined;
    const c = this.ctx.store.channel(s.username, channelId);
    return c && c.owner.toLowerCase() === s.username.toLowerCase() ? c : undefined;
  }
}
