/**
 * What the parts of a peer node share: its stores, links and logs, and live views of its session
 * state. PeerNode builds one and hands it to ChannelReads, Replication, Delivery, ChannelPages and ChannelOps.
 */
import type { PeerStore } from '../store/peer-store.js';
import type { ConnectionLog } from '../shared/connlog.js';
import type { HybridClock } from '../shared/hlc.js';
import type { MessageVerifier } from '../shared/signing.js';
import type { ServerLink } from './server-link.js';
import type { ChannelSources } from './sources.js';
import type { HostService } from './host-service.js';
import type { EventHub } from './event-hub.js';
import type { SavedSession } from './session-file.js';

/** The shared parts of one peer node. */
export interface NodeContext {
  readonly store: PeerStore;
  readonly log: ConnectionLog;
  readonly events: EventHub;
  readonly link: ServerLink;
  readonly sources: ChannelSources;
  readonly hostService: HostService;
  readonly verifier: MessageVerifier;
  readonly clock: HybridClock;
  /** The logged-in session, if any. */
  readonly session: SavedSession | undefined;
  /** True while the server connection carries our session. */
  readonly authed: boolean;
  /** True once the node closed: nothing may touch the store. */
  readonly closed: boolean;
  /** True when this peer holds the primary copy of the channel for its logged-in owner. */
  isHostedHere(channelId: string): boolean;
  /** True when the logged-in account joined (or hosts, or views) the channel. */
  isJoined(channelId: string): boolean;
  /** False while a message's files are not all backed up at the server yet. */
  filesBackedUp(m: { files?: ReadonlyArray<{ id: string }> }): boolean;
  /** Runs a task nobody awaits (see PeerNode). */
  background(task: Promise<void>): void;
  /** A message reached a replica: wake whoever waits for it. */
  resolveDelivery(id: string): void;
  /** Items reached the store or changed state: tell the UI what they show (announce.ts). */
  announce(
    items: ReadonlyArray<{ id: string; channelId: string; kind?: string; target?: string }>,
  ): void;
}
