/**
 * The backup of what this peer's user attaches (docs/PROTOCOL.md §9.4): for each file not yet
 * held by the server, for every channel it was attached to here, `file_put` and the chunks the
 * server asks for (it keeps a file for a channel only once every chunk was uploaded for it),
 * then `file_held`. A refusal for good (quota, size) ends the wait of its messages: peers alone
 * serve it. One run at a time; a file attached meanwhile gets one more round.
 */
import { OneAtATime } from '../shared/one-at-a-time.js';
import { HchatError } from '../protocol/errors.js';
import type { ConnectionLog } from '../shared/connlog.js';
import type { FileStore } from '../store/file-store.js';
import { TRANSIENT } from './delivery.js';
import type { ServerLink } from './server-link.js';

export interface FileBackupDeps {
  files: FileStore;
  log: ConnectionLog;
  username(): string | undefined;
  server(): ServerLink | undefined;
  /** A file of ours reached the server (or was refused for good): messages may go. */
  backedUp(): void;
  /** Tells the UI what is here of a file now. */
  emit(channelId: string, id: string): void;
}

export class FileBackup {
  private readonly rounds = new OneAtATime(() => this.round());

  constructor(private readonly d: FileBackupDeps) {}

  /**
   * Sends the server what it lacks of our own files (once each), then says we hold them; a file
   * attached meanwhile gets one more round.
   */
  async run(): Promise<void> {
    return this.rounds.run();
  }

  private async round(): Promise<void> {
    try {
      const me = this.d.username();
      if (!me) return;
      for (const id of this.d.files.notBackedUp(me)) {
        const server = this.d.server();
        if (!server) return;
        await this.backupOne(server, id);
      }
    } catch (err) {
      // Offline or busy for now: the next connection (or attachment) tries again.
      if (!(err instanceof HchatError)) throw err;
      this.d.log.write('backup', { to: 'server', error: err.code });
    }
  }

  /** Backs one file up for every channel it was attached to here (the server asks each's bytes). */
  private async backupOne(server: ServerLink, id: string): Promise<void> {
    const s = this.d.files.state(id);
    if (!s) return;
    let refused: string | undefined;
    const done = new Set<string>();
    // Until every channel it is in is done: one may be added while the others are sent.
    for (;;) {
      const channelId = this.d.files.channels(id).find((c) => !done.has(c));
      if (channelId === undefined) break;
      done.add(channelId);
      try {
        const { missing } = await server.request('file_put', { channelId, manifest: s.manifest });
        for (const index of missing) {
          const data = this.d.files.readChunk(id, index)!;
          await server.request('file_chunk_put', {
            channelId,
            fileId: id,
            index,
            data: data.toString('base64'),
          });
        }
        this.d.log.write('backup', {
          to: 'server',
          channel: channelId,
          file: id,
          chunks: missing.length,
        });
        await server.request('file_held', { channelId, fileId: id }).catch(() => undefined);
      } catch (err) {
        if (!(err instanceof HchatError) || TRANSIENT.has(err.code)) throw err;
        // Refused for good (quota, size): its messages go anyway, served by peers only.
        this.d.log.write('backup', {
          to: 'server',
          channel: channelId,
          file: id,
          refused: err.code,
        });
        refused = err.code;
      }
    }
    this.d.files.markBackedUp(id, refused === undefined);
    for (const c of done) this.d.emit(c, id);
    this.d.backedUp();
  }
}
