/**
 * What a peer serves of the files it holds, on its P2P port (docs/PROTOCOL.md §9.3): to a
 * connection whose proven user shows the server's grant for the channel (`file_sources`), the
 * chunks it holds of a file of that channel (got for that channel: not merely the same bytes). Uploads can be capped (`uploadLimit`, bytes per
 * second, for the bench's seeders): a chunk waits its turn rather than being refused.
 */
import crypto from 'node:crypto';
import { HchatError } from '../protocol/errors.js';
import { P2P_FILE_OPS } from '../protocol/files.js';
import { describeIssues } from '../protocol/rpc.js';
import type { ConnectionLog } from '../shared/connlog.js';
import { verifyGrant, type GrantClaims } from '../shared/tokens.js';
import type { FileStore } from '../store/file-store.js';
import { readerOf, type MemberConn } from './host-service.js';

export type FileOp = keyof typeof P2P_FILE_OPS;

export interface FileSeederDeps {
  files: FileStore;
  log: ConnectionLog;
  serverKey(): crypto.KeyObject | undefined;
  /** True once the node closed: nothing may touch the store. */
  closed(): boolean;
  /** Bytes per second this peer uploads at most (undefined: no cap). */
  uploadLimit?: number;
  now?: () => number;
}

export class FileSeeder {
  /** When the upload cap lets the next byte go. */
  private nextFree = 0;
  /** Grants whose signature was checked (null: it does not verify). */
  private readonly grants = new Map<string, GrantClaims | null>();

  constructor(private readonly d: FileSeederDeps) {}

  /**
   * Answers a file op. `hostRule` is the host's own read rule for a channel it hosts, applied
   * after the grant (a member removed since its grant was made reads nothing at the host).
   */
  async request(
    conn: MemberConn,
    op: FileOp,
    raw: unknown,
    hostRule?: (channelId: string) => void,
  ): Promise<unknown> {
    const parsed = P2P_FILE_OPS[op].req.safeParse(raw ?? {});
    if (!parsed.success)
      throw new HchatError('E_BAD_REQUEST', `${op}: ${describeIssues(parsed.error)}`);
    const b = parsed.data as { channelId: string; fileId: string; grant: string; index?: number };
    this.checkGrant(conn, b.grant, b.channelId);
    hostRule?.(b.channelId);
    // Only what is held for this channel: the same bytes held for another channel are not
    // this one's (a message of this channel naming them proves nothing: §9.1).
    const bound = this.d.files.inChannel(b.fileId, b.channelId);
    const mine = this.d.files.chunksFor(b.fileId, b.channelId);
    const state = bound || mine.length > 0 ? this.d.files.state(b.fileId) : undefined;
    if (!state) throw new HchatError('E_NOT_FOUND', 'no such file here');
    const all = bound && state.complete;
    switch (op) {
      case 'file_have':
        return { all, chunks: all ? [] : mine };
      case 'file_manifest':
        return { manifest: state.manifest };
      case 'file_chunk': {
        const data = mine.includes(b.index!)
          ? this.d.files.readChunk(b.fileId, b.index!)
          : undefined;
        if (!data) throw new HchatError('E_NOT_FOUND', `chunk ${b.index} is not held here`);
        await this.throttle(data.length);
        if (this.d.closed()) throw new HchatError('E_SHUTTING_DOWN');
        this.d.files.touch(b.fileId);
        this.d.log.read(readerOf(conn), 'serve', { to: conn.name, file: b.fileId, idx: b.index });
        return { data: data.toString('base64') };
      }
    }
  }

  /** The grant must be the server's, for this channel, this very session, and not expired. */
  private checkGrant(conn: MemberConn, grant: string, channelId: string): void {
    // A grant's signature is checked once (a download asks with it for every chunk).
    let c = this.grants.get(grant);
    if (c === undefined) {
      const key = this.d.serverKey();
      c = (key && verifyGrant(grant, key)) || null;
      if (this.grants.size >= 1000) this.grants.clear();
      if (key) this.grants.set(grant, c);
    }
    const now = (this.d.now ?? Date.now)();
    if (
      !c ||
      c.c !== channelId ||
      c.sid !== conn.who.sessionId ||
      c.u.toLowerCase() !== conn.who.username.toLowerCase() ||
      c.r !== conn.who.role ||
      c.exp <= now
    )
      throw new HchatError('E_BAD_GRANT');
  }

  private async throttle(bytes: number): Promise<void> {
    const limit = this.d.uploadLimit;
    if (!limit) return;
    const now = Date.now();
    const start = Math.max(now, this.nextFree);
    this.nextFree = start + (bytes / limit) * 1000;
    const wait = start - now;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}
