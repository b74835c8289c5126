/**
 * What this instance does with the events on the bus (bus-events.ts): each goes to the service
 * that tells this instance's connections of it; and after an outage (this instance's bus link, or
 * another instance's, was down) the events missed meanwhile are caught up from the store.
 */
import { OneAtATime } from '../shared/one-at-a-time.js';
import type { BusEvent, EventBus } from './bus.js';
import type { ChannelService } from './channel-service.js';
import type { Presence } from './presence.js';
import type { TypingService } from './typing-service.js';
import type { AvatarService } from './avatar-service.js';
import type { DmService } from './dm-service.js';
import type { FileService } from './file-service.js';
import type { Sessions } from './sessions.js';
import type { TrackerService } from './tracker-service.js';

/** The services bus events reach, each by what it does with them. */
export interface BusDeliveryDeps {
  bus: EventBus;
  channels: Pick<
    ChannelService,
    'deliverMessage' | 'memberJoined' | 'memberLeft' | 'channelChanged' | 'busReconnected'
  >;
  presence: Pick<Presence, 'memberJoined' | 'memberLeft' | 'channelDeleted' | 'reloadUsers'>;
  typing: Pick<TypingService, 'deliver'>;
  avatars: Pick<AvatarService, 'deliver'>;
  dms: Pick<DmService, 'deliver' | 'blocksChanged'>;
  files: Pick<FileService, 'channelDeleted'>;
  sessions: Pick<Sessions, 'revoked'>;
  /** The REST API's gateway (api/gateway.ts): revocations end its sessions, members are news. */
  gateway: {
    tokenRevoked(tokenId: string, revokedAt?: number): void;
    memberChanged(e: Extract<BusEvent, { kind: 'member_joined' | 'member_left' }>): void;
    /** A channel was deleted; `was` its members loaded here. */
    channelDeleted(channelId: string, was: ReadonlySet<string>): void;
  };
  tracker: Pick<TrackerService, 'busEvent' | 'control'>;
  /** NAT signals for this instance's sessions (punch-service.ts). */
  nat: { deliver(e: Extract<BusEvent, { kind: 'nat_signal' }>): void };
  internalError(what: string, err: unknown): void;
  /** True once the server is closing. */
  closing(): boolean;
}

/** This instance's subscription to the bus. */
export class BusDelivery {
  private readonly unsubscribe: () => void;
  private readonly offBusReconnect: () => void;
  /** Catch-up after events were missed (this instance's bus link, or another's, was down). */
  private readonly resync: OneAtATime;

  constructor(private readonly d: BusDeliveryDeps) {
    this.unsubscribe = d.bus.subscribe((e, from) => this.deliver(e, from));
    this.resync = new OneAtATime(async () => {
      await d.channels.busReconnected();
      await d.presence.reloadUsers();
    }, d.closing);
    this.offBusReconnect = d.bus.onReconnect(() => this.resyncAfterOutage());
  }

  /** Stops listening (the bus itself is closed by its owner). */
  stop(): void {
    this.offBusReconnect();
    this.unsubscribe();
  }

  private deliver(e: BusEvent, from?: string): void {
    const d = this.d;
    switch (e.kind) {
      case 'session_revoked':
        if (from !== undefined)
          d.sessions
            .revoked(e)
            .catch((err: unknown) =>
              d.internalError('applying a session revoked on another instance failed', err),
            );
        return;
      case 'instance_up':
      case 'instance_alive':
      case 'tracker_sync':
        if (from === undefined) return;
        // An instance back from an outage: what it did meanwhile never reached this one.
        if (e.kind === 'instance_up') this.resyncAfterOutage();
        d.tracker.control(e, from);
        return;
      case 'message':
        d.channels.deliverMessage(e);
        return;
      case 'typing':
        d.typing.deliver(e);
        return;
      case 'avatar':
        d.avatars.deliver(e);
        return;
      case 'dm':
        d.dms.deliver(e);
        return;
      case 'dm_blocks':
        d.dms.blocksChanged(e);
        return;
      case 'member_joined':
        d.channels.memberJoined(e);
        d.presence.memberJoined(e.channelId, e.username);
        d.gateway.memberChanged(e);
        return;
      case 'member_left':
        d.channels.memberLeft(e);
        d.presence.memberLeft(e.channelId, e.username);
        d.gateway.memberChanged(e);
        return;
      case 'token_revoked':
        d.gateway.tokenRevoked(e.tokenId, e.revokedAt);
        return;
      case 'nat_signal':
        // Ours went to our own connections directly; another instance's may be for one here.
        if (from !== undefined) d.nat.deliver(e);
        return;
      case 'channel_changed':
        d.channels.channelChanged(e);
        if (e.deleted)
          d.gateway.channelDeleted(e.channelId, d.presence.channelDeleted(e.channelId));
        // Once, by the instance that stored the deletion: the files may be every instance's.
        if (e.deleted && from === undefined) d.files.channelDeleted(e.channelId);
        return;
      case 'tracker':
        // Another instance's entry changes this instance's copy of the list first.
        d.tracker.busEvent(e, from);
        return;
    }
  }

  private resyncAfterOutage(): void {
    this.resync
      .run()
      .catch((err: unknown) => this.d.internalError('catching up after a bus outage failed', err));
  }
}
