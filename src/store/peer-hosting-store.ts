/**
 * The channels this peer hosts (the owner's peer holds a channel's primary copy): items accepted
 * and numbered by the host seq, served after a member's cursor, uploaded to the server until it
 * acknowledged them, the channel's member list, and a deleted channel purged.
 */
import type { StoredMessage } from '../protocol/common.js';
import { HchatError } from '../protocol/errors.js';
import { PeerItemLog } from './peer-item-log.js';
import {
  hostNumbered,
  sameContent,
  toMessage,
  toStored,
  type Authored,
  type LocalMessage,
} from './peer-store-rows.js';

/** The peer store's hosted channels, over its items (peer-item-log.ts). */
export class PeerHostingStore extends PeerItemLog {
  /** Marks a channel as hosted here. */
  markHosted(channelId: string): void {
    this.q.markHosted.run(channelId);
  }

  hostedIds(): string[] {
    return this.q.hostedIds.all().map((r) => r.channel_id);
  }

  lastHostSeq(channelId: string): number {
    return this.q.lastHostSeq.get(channelId)?.last_host_seq ?? 0;
  }

  /**
   * Accepts a message into a hosted channel's primary copy: idempotent by id, numbered by the
   * next host seq when new. `seq` is the server's number when it came from the server.
   * Returns its host seq and whether it was there already, or an error for a conflicting id.
   */
  hostAccept(
    m: Authored,
    state: 'pending' | 'delivered',
  ): { hostSeq: number; duplicate: boolean; message: StoredMessage } | HchatError {
    return this.db.transaction(() => {
      const existing = this.q.getMessage.get(m.id);
      if (existing) {
        if (!sameContent(existing, m)) return new HchatError('E_MESSAGE_CONFLICT');
        let hostSeq = existing.host_seq;
        const duplicate = hostSeq !== null;
        if (hostSeq === null) {
          hostSeq = this.q.nextHostSeq.get(m.channelId)!.last_host_seq;
          this.q.setHostSeq.run(hostSeq, m.id);
        }
        if (m.seq !== undefined) {
          this.q.setServerSeq.run(m.seq, m.id);
          this.advanceCursor(m.channelId);
        }
        return { hostSeq, duplicate, message: { ...toStored(m), seq: hostSeq } };
      }
      const hostSeq = this.q.nextHostSeq.get(m.channelId)!.last_host_seq;
      this.q.insertHosted.run(...this.row(m), state, m.seq ?? null, hostSeq);
      this.index.written();
      this.applied(m);
      if (m.seq !== undefined) this.advanceCursor(m.channelId);
      return { hostSeq, duplicate: false, message: { ...toStored(m), seq: hostSeq } };
    })();
  }

  /** Messages of a hosted channel after `since` in host order, numbered by host seq. */
  hostSince(channelId: string, since: number, limit: number): StoredMessage[] {
    return this.q.hostSince.all(channelId, since, limit).map((r) => hostNumbered(toMessage(r)));
  }

  /** Messages of hosted channels the server has not acknowledged yet, in host order. */
  toUpload(limit: number): LocalMessage[] {
    return this.q.toUpload.all(limit).map(toMessage);
  }

  /** Records the server's numbers for messages (it has copies); own pending ones are delivered. */
  setServerSeqs(acks: ReadonlyArray<{ id: string; seq: number }>): void {
    this.db.transaction(() => {
      const channels = new Set<string>();
      for (const { id, seq } of acks) {
        this.q.setServerSeq.run(seq, id);
        const m = this.q.getMessage.get(id);
        if (m) channels.add(m.channel_id);
      }
      for (const c of channels) this.advanceCursor(c);
    })();
  }

  /** Replaces the member list of a hosted channel. */
  setMembers(channelId: string, members: readonly string[]): void {
    this.db.transaction(() => {
      this.q.clearMembers.run(channelId);
      for (const u of members) this.q.setMember.run(channelId, u);
    })();
  }

  addMember(channelId: string, username: string): void {
    this.q.setMember.run(channelId, username);
  }

  isMember(channelId: string, username: string): boolean {
    return this.q.isHostedMember.get(channelId, username) !== undefined;
  }

  /** A member left a hosted channel, or was removed. */
  removeMember(channelId: string, username: string): void {
    this.q.dropMember.run(channelId, username);
  }

  /** A hosted channel deleted, once the server holds the deletion: everything of it goes. */
  purgeDeleted(channelId: string): void {
    this.db.transaction(() => {
      this.q.dropMessages.run(channelId);
      this.q.dropHosted.run(channelId);
      this.q.dropHostedMembers.run(channelId);
      this.q.dropChannelRows.run(channelId);
    })();
  }
}
