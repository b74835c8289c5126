/**
 * What a user does to channels beyond creating and joining them (README "Channels"): leave;
 * as the owner rename, set the topic, allow or refuse visitors, remove a member, delete. The
 * owner's changes are `channel` items of the channel's log, signed and replicated like
 * messages (PeerNode.write); every replica applies them (store/*-store.ts applyChannelChange).
 */
import type { Written as ApiWritten } from './api-shapes.js';
import { HchatError } from '../protocol/errors.js';
import type { ChannelChange, ItemKind } from '../protocol/common.js';
import type { ItemBody } from '../shared/message-id.js';
import type { LocalMessage, PeerStore } from '../store/peer-store.js';
import type { EventHub } from './event-hub.js';

/** What the actions need from their node. */
export interface ChannelActionsNode {
  readonly store: PeerStore;
  readonly events: EventHub;
  readonly accountName: string;
  write(
    channelId: string,
    body: ItemBody & { kind?: ItemKind; target?: string },
  ): Promise<{ id: string; state: LocalMessage['state'] }>;
  /** Asks the server to take this account out of the channel. */
  leaveOnServer(channelId: string): Promise<void>;
  /** The channel's sources changed (it left this peer's list). */
  channelsChanged(): void;
}

type Written = Promise<ApiWritten>;

/** The channel actions of one node. */
export class ChannelActions {
  constructor(private readonly node: ChannelActionsNode) {}

  /** Leaves a channel: the server first (it stops serving us), then this peer's list. */
  async leave(channelId: string): Promise<void> {
    const account = this.node.accountName;
    const c = this.node.store.channel(account, channelId);
    if (!c) throw new HchatError('E_NOT_MEMBER');
    if (c.owner.toLowerCase() === account.toLowerCase())
      throw new HchatError('E_FORBIDDEN', 'the owner cannot leave its channel: delete it instead');
    await this.node.leaveOnServer(channelId);
    this.node.store.dropChannel(account, channelId);
    this.node.channelsChanged();
    this.node.events.emit('channel', { channelId });
  }

  /** The owner changes the channel's name, topic or visitor setting. */
  update(
    channelId: string,
    change: Pick<ChannelChange, 'name' | 'topic' | 'allowVisitors'>,
  ): Written {
    return this.change(channelId, change);
  }

  /** The owner removes a member: it can no longer read, post or join (at host and server). */
  removeMember(channelId: string, username: string): Written {
    const owner = this.node.store.channelOwner(channelId);
    if (owner.toLowerCase() === username.toLowerCase())
      throw new HchatError('E_FORBIDDEN', 'the owner cannot remove itself: delete the channel');
    return this.change(channelId, { remove: username });
  }

  /** The owner deletes the channel: every replica drops it. */
  remove(channelId: string): Written {
    return this.change(channelId, { deleted: true });
  }

  /** Written like a message; the node refreshes its sources when a channel item lands. */
  private change(channelId: string, change: ChannelChange): Written {
    const c = this.node.store.channel(this.node.accountName, channelId);
    if (!c) throw new HchatError('E_NOT_MEMBER');
    if (c.owner.toLowerCase() !== this.node.accountName.toLowerCase())
      throw new HchatError('E_FORBIDDEN', "only the channel's owner changes the channel");
    return this.node.write(channelId, { kind: 'channel', change });
  }
}
