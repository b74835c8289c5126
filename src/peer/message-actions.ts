/**
 * What a user does to messages through the local API (README "Messages"): post with a reply
 * and mentions, edit, delete, react, and read a page around one message. Each change is an
 * item of the channel's log, written by `PeerNode.write` (signed, queued, replicated).
 */
import { HchatError } from '../protocol/errors.js';
import type { FileRef, ItemKind } from '../protocol/common.js';
import type { ItemBody } from '../shared/message-id.js';
import type { LocalMessage, PeerStore } from '../store/peer-store.js';
import type { ApiMessage, Written as ApiWritten } from './api-shapes.js';
import { apiMessages, type CertReader } from './message-view.js';
import { resolveMentions } from './mentions.js';

/** What the actions need from their node. */
export interface ActionsNode extends CertReader {
  readonly store: PeerStore;
  /** The logged-in account (throws when none). */
  readonly accountName: string;
  /** True when the logged-in account reads the channel (local-reads.ts). */
  readsChannel(channelId: string): boolean;
  write(
    channelId: string,
    body: ItemBody & { kind?: ItemKind; target?: string },
  ): Promise<{ id: string; state: LocalMessage['state'] }>;
  /** The channel's members, from the server (throws when it cannot be asked). */
  memberNames(channelId: string): Promise<string[]>;
  /** The reference of a file attached here to the channel (throws when there is none). */
  fileRef(channelId: string, id: string): FileRef;
}

type Written = Promise<ApiWritten>;

/** The message actions of one node. */
export class MessageActions {
  constructor(private readonly node: ActionsNode) {}

  /**
   * Posts a message; `@name` of members and `@here` become its signed mentions. `files` are
   * ids of files attached here to this channel (their references are signed with the text).
   */
  async post(channelId: string, text?: string, replyTo?: string, files?: string[]): Written {
    if (replyTo !== undefined) this.messageIn(channelId, replyTo);
    const body: ItemBody = {};
    if (text !== undefined) {
      body.text = text;
      const mentions = resolveMentions(text, await this.members(channelId));
      if (mentions.length > 0) body.mentions = mentions;
    }
    if (replyTo !== undefined) body.replyTo = replyTo;
    if (files && files.length > 0) body.files = files.map((id) => this.node.fileRef(channelId, id));
    if (body.text === undefined && body.files === undefined)
      throw new HchatError('E_BAD_REQUEST', 'message: text or files, at least one');
    return this.node.write(channelId, body);
  }

  async edit(channelId: string, id: string, text: string): Written {
    const m = this.messageIn(channelId, id);
    if (m.author.toLowerCase() !== this.node.accountName.toLowerCase())
      throw new HchatError('E_FORBIDDEN', 'only its author edits a message');
    const mentions = resolveMentions(text, await this.members(channelId));
    const body: ItemBody & { kind: ItemKind; target: string } = { kind: 'edit', target: id, text };
    if (mentions.length > 0) body.mentions = mentions;
    return this.node.write(channelId, body);
  }

  async remove(channelId: string, id: string): Written {
    this.messageIn(channelId, id);
    return this.node.write(channelId, { kind: 'delete', target: id });
  }

  async react(channelId: string, id: string, emoji: string, on: boolean): Written {
    this.messageIn(channelId, id);
    return this.node.write(channelId, { kind: on ? 'react' : 'unreact', target: id, emoji });
  }

  /**
   * Messages around `id` from this peer's copy (replies jump there), for an account that reads
   * the channel, as the plain page (`E_NOT_MEMBER` otherwise: this copy may hold the channel for
   * another account of this peer).
   */
  around(
    channelId: string,
    id: string,
    limit: number,
  ): { messages: ApiMessage[]; source: 'local'; hasMore: boolean; hasNewer: boolean } {
    const m = this.messageIn(channelId, id);
    const page = this.node.store.around(m, Math.floor(limit / 2));
    return {
      messages: apiMessages(this.node.store, page.messages, this.node.accountName, this.node),
      source: 'local',
      hasMore: page.hasMore,
      hasNewer: page.hasNewer,
    };
  }

  /**
   * A message (not a change to one) of a channel this account reads, held here. The channel is
   * checked first, so that nobody learns which messages this copy holds of a channel it does not
   * read.
   */
  private messageIn(channelId: string, id: string): LocalMessage {
    if (!this.node.readsChannel(channelId)) throw new HchatError('E_NOT_MEMBER');
    const m = this.node.store.getMessage(id);
    if (!m || m.channelId !== channelId || (m.kind ?? 'message') !== 'message')
      throw new HchatError('E_NOT_FOUND', 'no such message in this channel');
    return m;
  }

  /** Members as the server lists them; offline, those this peer's copy knows of. */
  private async members(channelId: string): Promise<string[]> {
    try {
      return await this.node.memberNames(channelId);
    } catch {
      return [this.node.store.channelOwner(channelId), ...this.node.store.authors(channelId)];
    }
  }
}
