/**
 * The server's files (issue 14; docs/PROTOCOL.md §9): one backup copy of each file, put by its
 * author's peer (`file_put`, `file_chunk_put`: a member of the channel, within the per-user
 * quota), served to readers of the channel only when no peer can (`file_manifest`,
 * `file_chunk`), and the tracker's part: who holds a file whole (`file_held`), and the grant
 * that opens a channel's files at those peers (`file_sources`).
 */
import { HchatError } from '../protocol/errors.js';
import type { Channel, StoredMessage } from '../protocol/common.js';
import type { OpReq, OpRes } from '../protocol/server-link.js';
import type { ConnectionLog } from '../shared/connlog.js';
import { fileId, humanBytes, manifestError } from '../shared/file-id.js';
import type { GrantClaims } from '../shared/tokens.js';
import type { ServerFileStore } from '../store/server-file-store.js';
import type { Conn, Session } from './conn.js';

export interface FileServiceDeps {
  /** The backups: this process's data folder, or the store every instance shares. */
  files: ServerFileStore;
  log: ConnectionLog;
  /** A file effect of a stored item that failed (the store was unreachable). */
  internalError(what: string, err: unknown): void;
  /** The channel, if this session may read it (else throws as `history` does). */
  readable(s: Session, channelId: string): Promise<Channel>;
  /** Lower-cased usernames of the channel's members. */
  members(channelId: string): Promise<ReadonlySet<string>>;
  /** True while the user has a tracker entry (a P2P endpoint others can reach). */
  reachable(username: string): boolean;
  signGrant(claims: GrantClaims): string;
  maxFileBytes: number;
  quotaBytes: number;
  grantTtlMs: number;
}

export class FileService {
  /**
   * The file effects of stored items, applied one after the other in the order the items were
   * stored (a message's files are named before its delete can take them away).
   */
  private effects: Promise<void> = Promise.resolve();

  constructor(private readonly d: FileServiceDeps) {}

  async put(conn: Conn, b: OpReq<'file_put'>): Promise<OpRes<'file_put'>> {
    const s = conn.session!;
    await this.member(s, b.channelId);
    const m = b.manifest;
    const bad = manifestError(m);
    if (bad) throw new HchatError('E_BAD_REQUEST', bad);
    if (m.size > this.d.maxFileBytes)
      throw new HchatError(
        'E_FILE_TOO_LARGE',
        `files are at most ${humanBytes(this.d.maxFileBytes)} here`,
      );
    const id = fileId(m);
    // A file held already counts against whoever put it first; a new one against this user,
    // checked in the store every instance shares.
    if (!(await this.d.files.addManifest(m, b.channelId, s.username, this.d.quotaBytes)))
      throw new HchatError('E_QUOTA_EXCEEDED');
    // The file joins the channel once every chunk was uploaded for it: knowing a manifest opens
    // nothing, and the answer says nothing of another channel's copy.
    const done = new Set(
      (await this.d.files.inChannel(id, b.channelId))
        ? m.chunks.map((_, i) => i)
        : await this.d.files.proven(id, b.channelId),
    );
    const missing = m.chunks.flatMap((_, i) => (done.has(i) ? [] : [i]));
    this.d.log.write('file', {
      peer: conn.name,
      channel: b.channelId,
      file: id,
      missing: missing.length,
    });
    return { fileId: id, missing };
  }

  async putChunk(conn: Conn, b: OpReq<'file_chunk_put'>): Promise<OpRes<'file_chunk_put'>> {
    await this.member(conn.session!, b.channelId);
    if (!(await this.d.files.isPut(b.fileId, b.channelId)))
      throw new HchatError('E_NOT_FOUND', 'no such file in this channel: file_put it first');
    if (!(await this.d.files.putChunk(b.fileId, b.index, Buffer.from(b.data, 'base64'))))
      throw new HchatError('E_BAD_CHUNK', `chunk ${b.index} does not match the manifest`);
    const complete = await this.d.files.prove(b.fileId, b.channelId, b.index);
    this.d.log.write('chunk', {
      from: conn.name,
      file: b.fileId,
      idx: b.index,
      complete: complete || undefined,
    });
    return { complete };
  }

  async manifest(conn: Conn, b: OpReq<'file_manifest'>): Promise<OpRes<'file_manifest'>> {
    await this.d.readable(conn.session!, b.channelId);
    await this.inChannel(b.fileId, b.channelId);
    const manifest = await this.d.files.manifest(b.fileId);
    if (!manifest) throw new HchatError('E_NOT_FOUND', 'no such file in this channel');
    return { manifest };
  }

  async chunk(conn: Conn, b: OpReq<'file_chunk'>): Promise<OpRes<'file_chunk'>> {
    await this.d.readable(conn.session!, b.channelId);
    await this.inChannel(b.fileId, b.channelId);
    const data = await this.d.files.readChunk(b.fileId, b.index);
    if (!data) throw new HchatError('E_NOT_FOUND', `chunk ${b.index} is not held here`);
    await this.d.files.touch(b.fileId);
    this.d.log.read(conn.reader, 'serve', { to: conn.name, file: b.fileId, idx: b.index });
    return { data: data.toString('base64') };
  }

  async held(conn: Conn, b: OpReq<'file_held'>): Promise<OpRes<'file_held'>> {
    const s = conn.session!;
    await this.d.readable(s, b.channelId);
    // Put for the channel is enough (its author's backup may still be on its way): a holder
    // only ever serves against a grant, and every chunk is checked by who receives it.
    if (!(await this.d.files.isPut(b.fileId, b.channelId)))
      throw new HchatError('E_NOT_FOUND', 'no such file in this channel');
    // Only users serve files (a visitor's peer has no P2P port others reach).
    if (s.role === 'user') await this.d.files.addHolder(b.fileId, b.channelId, s.username);
    return {};
  }

  async sources(conn: Conn, b: OpReq<'file_sources'>): Promise<OpRes<'file_sources'>> {
    const s = conn.session!;
    // Not yet put here is fine (its author's backup may still be on its way): the grant opens
    // the channel's files at its host and at the author's peer.
    const c = await this.d.readable(s, b.channelId);
    const members = await this.d.members(c.id);
    const me = s.username.toLowerCase();
    // A visitor learns no more than the tracker shows it (§3.5): the channel's host only.
    const holders = (await this.d.files.holders(b.fileId, b.channelId)).filter(
      (u) =>
        u.toLowerCase() !== me &&
        members.has(u.toLowerCase()) &&
        (s.role === 'user' || u.toLowerCase() === c.owner.toLowerCase()) &&
        this.d.reachable(u),
    );
    // The host first: it holds every file of its channel.
    holders.sort((a, b2) => Number(b2 === c.owner) - Number(a === c.owner));
    const grant = this.d.signGrant({
      typ: 'file',
      sid: s.sessionId,
      u: s.username,
      r: s.role,
      c: c.id,
      exp: Date.now() + this.d.grantTtlMs,
    });
    return {
      holders: holders.slice(0, 100),
      server:
        (await this.d.files.inChannel(b.fileId, b.channelId)) &&
        (await this.d.files.complete(b.fileId)),
      grant,
    };
  }

  /**
   * An item was stored: a message's files are named by it; a delete that took its message away
   * takes the files no other message of the channel names (the bytes, not only the reference).
   */
  itemStored(m: StoredMessage, erased: boolean): void {
    if (!m.files && !(m.kind === 'delete' && erased)) return;
    this.effect('applying a stored item to files failed', async () => {
      for (const id of await this.d.files.itemStored(m, erased))
        this.d.log.write('file', { channel: m.channelId, file: id, deleted: true });
    });
  }

  /**
   * A channel was deleted: its files go. Called by the instance that stored the deletion only:
   * the store may be every instance's.
   */
  channelDeleted(channelId: string): void {
    this.effect('dropping the files of a deleted channel failed', () =>
      this.d.files.dropChannel(channelId),
    );
  }

  /** Resolves once the effects queued so far are applied (before the store closes). */
  settled(): Promise<void> {
    return this.effects;
  }

  private effect(what: string, work: () => Promise<void>): void {
    this.effects = this.effects.then(work).catch((err: unknown) => this.d.internalError(what, err));
  }

  private async member(s: Session, channelId: string): Promise<void> {
    await this.d.readable(s, channelId);
    if (!(await this.d.members(channelId)).has(s.username.toLowerCase()))
      throw new HchatError('E_NOT_MEMBER');
  }

  private async inChannel(fileId: string, channelId: string): Promise<void> {
    if (!(await this.d.files.inChannel(fileId, channelId)))
      throw new HchatError('E_NOT_FOUND', 'no such file in this channel');
  }
}
