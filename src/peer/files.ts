/**
 * A peer's files (issue 14; docs/PROTOCOL.md §9): what the user attaches is cut into chunks and
 * kept here at once (pinned), then backed up to the server once (`file_put`, the missing
 * chunks), after which the server lists this peer as a holder. Files of other people's messages
 * are fetched when asked for (peer/file-fetch.ts) and kept in a cache of FILE_LIMITS.cacheBytes,
 * least recently used first out; a channel's host fetches every file of its channel as the
 * messages come in, and never evicts them.
 */
import { HchatError } from '../protocol/errors.js';
import type { FileRef, TrackerEntry } from '../protocol/common.js';
import { Manifest as ManifestSchema, type Manifest } from '../protocol/files.js';
import { describeIssues } from '../protocol/rpc.js';
import type { ConnectionLog } from '../shared/connlog.js';
import { chunkHash, humanBytes, refOf, sameRef } from '../shared/file-id.js';
import { FILE_LIMITS } from '../shared/limits.js';
import type { FileStore } from '../store/file-store.js';
import type { ApiFile } from './api-shapes.js';
import type { EventHub } from './event-hub.js';
import { FILE_LIES, fetchFile } from './file-fetch.js';
import { FileBackup } from './file-backup.js';
import type { HostLink } from './host-link.js';
import type { ServerLink } from './server-link.js';

/** How long a fetch that gets nowhere keeps trying. */
const PATIENCE_MS = 20_000;
/** Failures worth another try: nobody could serve it just now. */
const RETRY: ReadonlySet<string> = new Set([
  'E_NOT_FOUND',
  'E_OFFLINE',
  'E_TIMEOUT',
  'E_CONNECTION_CLOSED',
  'E_RATE_LIMITED',
]);

export interface PeerFilesDeps {
  files: FileStore;
  log: ConnectionLog;
  events: EventHub;
  /** The logged-in user, if any. */
  username(): string | undefined;
  /** The server link while it carries our session. */
  server(): ServerLink | undefined;
  /** The entries of a user's online devices, the one hosting the channel first. */
  entriesOf(username: string, channelId: string): TrackerEntry[];
  dial(entry: TrackerEntry): HostLink | undefined;
  ownerOf(channelId: string): string | undefined;
  /** What the messages of a channel held here say of a file (their references to it). */
  refsOf(channelId: string, fileId: string): FileRef[];
  /** True when the logged-in user is a member of the channel (may attach files to it). */
  isMember(channelId: string): boolean;
  background(task: Promise<void>): void;
  /** True once the node closed: nothing may touch the store. */
  closed(): boolean;
  /** A file of ours reached the server: messages waiting for it may go. */
  backedUp(): void;
  maxFileBytes: number;
  cacheBytes: number;
  /** How long a fetch that gets nowhere keeps trying (default PATIENCE_MS). */
  patienceMs?: number;
}

/** What the uploader says of a file beyond its bytes. */
export interface UploadMeta {
  name: string;
  type: string;
  image?: { width: number; height: number; preview?: string };
}

export class PeerFiles {
  private readonly fetching = new Map<string, Promise<void>>();
  private readonly backups: FileBackup;
  private readonly lastProgress = new Map<string, number>();
  /** Readers waiting for the next chunk of a file (open). */
  private readonly arrivals = new Map<string, Set<() => void>>();

  constructor(private readonly d: PeerFilesDeps) {
    this.backups = new FileBackup({ ...d, emit: (c, id) => this.emit(c, id) });
  }

  /** Keeps an attached file here (pinned) and starts its backup to the server. */
  upload(channelId: string, data: Buffer, meta: UploadMeta): ApiFile {
    const me = this.d.username();
    if (!me || !this.d.isMember(channelId)) throw new HchatError('E_NOT_MEMBER');
    if (data.length === 0) throw new HchatError('E_BAD_REQUEST', 'file: empty');
    if (data.length > this.d.maxFileBytes)
      throw new HchatError(
        'E_FILE_TOO_LARGE',
        `files are at most ${humanBytes(this.d.maxFileBytes)}`,
      );
    const chunks: string[] = [];
    for (let at = 0; at < data.length; at += FILE_LIMITS.chunkBytes)
      chunks.push(chunkHash(data.subarray(at, at + FILE_LIMITS.chunkBytes)));
    const manifest: Manifest = {
      name: meta.name,
      size: data.length,
      type: meta.type,
      ...(meta.image ? { image: meta.image } : {}),
      chunkBytes: FILE_LIMITS.chunkBytes,
      chunks,
    };
    // What every replica will check of it (name, type, image, preview), checked here first.
    const shape = ManifestSchema.safeParse(manifest);
    if (!shape.success)
      throw new HchatError('E_BAD_REQUEST', `file: ${describeIssues(shape.error)}`);
    const id = this.d.files.add(manifest, channelId, { owner: me, pinned: true });
    // Attached again (to another channel, or after fetching it): backed up for it too.
    this.d.files.needsBackup(id, me);
    chunks.forEach((_, i) =>
      this.d.files.putChunk(
        id,
        i,
        data.subarray(i * FILE_LIMITS.chunkBytes, (i + 1) * FILE_LIMITS.chunkBytes),
      ),
    );
    this.d.log.write('file', { channel: channelId, file: id, size: data.length, attached: true });
    this.d.background(this.backup());
    return this.view(channelId, refOf(manifest));
  }

  /** False while a file this user attached is not backed up at the server yet. */
  backedUp(id: string): boolean {
    const s = this.d.files.state(id);
    return !s || s.backedUp || s.owner !== this.d.username();
  }

  /** The reference a message carries of a file attached here to this channel. */
  refFor(channelId: string, id: string): FileRef {
    const s = this.d.files.state(id);
    if (!s || !s.complete || !this.d.files.inChannel(id, channelId))
      throw new HchatError('E_BAD_REQUEST', `files: ${id} was not attached to this channel here`);
    return refOf(s.manifest);
  }

  /** Sends the server what it lacks of our own files (peer/file-backup.ts). */
  backup(): Promise<void> {
    return this.backups.run();
  }

  /** Fetches a file of a channel unless it is here whole; one fetch per file at a time. */
  fetch(
    channelId: string,
    id: string,
    opts: { ref?: FileRef; pinned?: boolean; author?: string } = {},
  ): Promise<void> {
    const s = this.d.files.state(id);
    const refs = [...(opts.ref ? [opts.ref] : []), ...this.d.refsOf(channelId, id)];
    // The bytes are served as what their messages say they are, or not at all (§9.1).
    if (s && refs.some((r) => !sameRef(r, s.manifest))) {
      this.d.log.write('blame', {
        file: id,
        channel: channelId,
        why: 'manifest differs from its message',
      });
      return Promise.reject(FILE_LIES());
    }
    if (s?.complete && this.d.files.inChannel(id, channelId)) {
      if (opts.pinned && !s.pinned) this.d.files.add(s.manifest, channelId, { pinned: true });
      this.d.files.touch(id);
      return Promise.resolve();
    }
    // Held for another channel, which this copy may hold for another account here: the same
    // bytes are this channel's only when one of its messages here names them, and then only
    // once this channel's sources vouch for them (fetchFile): anyone may name a file.
    if (s && !this.d.files.inChannel(id, channelId) && refs.length === 0)
      return Promise.reject(
        new HchatError('E_NOT_FOUND', 'no message of this channel here names this file'),
      );
    // One fetch per file and channel at a time (a file is each channel's on its own proof).
    const key = `${channelId} ${id}`;
    let p = this.fetching.get(key);
    if (!p) {
      p = this.fetchPatiently(
        {
          files: this.d.files,
          log: this.d.log,
          server: this.d.server,
          entriesOf: this.d.entriesOf,
          dial: this.d.dial,
          ownerOf: this.d.ownerOf,
          me: () => this.d.username() ?? '',
          closed: this.d.closed,
          progress: () => this.progress(channelId, id),
        },
        channelId,
        id,
        { ...opts, refs },
      ).finally(() => {
        this.fetching.delete(key);
        this.arrived(id);
        if (this.d.closed()) return;
        this.emit(channelId, id);
        this.d.files.evict(this.d.cacheBytes);
      });
      this.fetching.set(key, p);
    }
    return p;
  }

  /**
   * fetchFile, again while it gets nowhere for a short while: right after a post the author's
   * backup may still be on its way, and a holder that just restarted is not listed yet.
   */
  private async fetchPatiently(...args: Parameters<typeof fetchFile>): Promise<void> {
    const [, , id] = args;
    let wait = 250;
    let held = this.d.files.state(id)?.heldBytes ?? 0;
    const patience = this.d.patienceMs ?? PATIENCE_MS;
    for (let deadline = Date.now() + patience; ;) {
      try {
        return await fetchFile(...args);
      } catch (err) {
        if (!(err instanceof HchatError) || !RETRY.has(err.code)) throw err;
        const now = this.d.files.state(id)?.heldBytes ?? 0;
        if (now > held) deadline = Date.now() + patience; // progress: more patience
        held = now;
        if (Date.now() + wait > deadline || !this.d.username() || this.d.closed()) throw err;
        this.d.log.write('file', { file: id, retry: wait, code: err.code });
        await new Promise((r) => setTimeout(r, wait));
        wait = Math.min(wait * 2, 4000);
      }
    }
  }

  /**
   * An item reached the store: a message's files are named by it; a delete that took its
   * message away takes the files no other message of the channel names, from this peer too.
   */
  itemStored(
    m: { id: string; channelId: string; kind?: string; target?: string; files?: FileRef[] },
    getMessage: (id: string) => { digest?: string } | undefined,
  ): void {
    const erased = m.kind === 'delete' && getMessage(m.target ?? '')?.digest !== undefined;
    for (const id of this.d.files.itemStored(m, erased))
      this.d.log.write('file', { channel: m.channelId, file: id, deleted: true });
  }

  /** Starts fetching a file in the background (a host's copy of its channel's files). */
  keep(channelId: string, author: string, refs: readonly FileRef[]): void {
    for (const ref of refs) {
      this.d.background(
        this.fetch(channelId, ref.id, { ref, pinned: true, author }).catch((err: unknown) => {
          if (!(err instanceof HchatError)) throw err;
          this.d.log.write('file', { channel: channelId, file: ref.id, error: err.code });
        }),
      );
    }
  }

  /** A file as the local API shows it: the message's reference and what is held here. */
  view(channelId: string, ref: FileRef): ApiFile {
    const s = this.d.files.inChannel(ref.id, channelId) ? this.d.files.state(ref.id) : undefined;
    return {
      ...ref,
      channelId,
      url: `/api/channels/${channelId}/files/${ref.id}`,
      state: !s || s.heldBytes === 0 ? 'missing' : s.complete ? 'complete' : 'partial',
      have: s?.heldBytes ?? 0,
    };
  }

  /**
   * Opens a file of a channel for reading while it is fetched: answers once its manifest is
   * here, with its chunks in order, each given as soon as it arrives (and checked again as it is
   * read). Fails as the fetch fails; a fetch that fails midway ends the chunks with its error.
   */
  async open(
    channelId: string,
    id: string,
  ): Promise<{ manifest: Manifest; chunks: AsyncGenerator<Buffer> }> {
    const fetched = this.fetch(channelId, id);
    let settled = false;
    let failure: unknown;
    const over = fetched.then(
      () => void (settled = true),
      (err: unknown) => void ((settled = true), (failure = err)),
    );
    while (!this.localRef(channelId, id) && !settled) await Promise.race([this.arrival(id), over]);
    if (failure !== undefined) throw failure;
    const manifest = this.d.files.manifest(id)!;
    const files = this.d.files;
    const arrival = (): Promise<unknown> => Promise.race([this.arrival(id), over]);
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let i = 0; i < manifest.chunks.length; i++) {
        for (;;) {
          const data = files.hasChunk(id, i) ? files.readChunk(id, i) : undefined;
          if (data) {
            yield data;
            break;
          }
          if (settled)
            throw failure ?? new HchatError('E_INTERNAL', `chunk ${i} of ${id} is damaged here`);
          await arrival();
        }
      }
      files.touch(id);
    }
    return { manifest, chunks: chunks() };
  }

  /** Resolves when the next chunk of a file arrives here (or its fetch ends). */
  private arrival(id: string): Promise<void> {
    return new Promise((resolve) => {
      const waiting = this.arrivals.get(id) ?? new Set<() => void>();
      waiting.add(resolve);
      this.arrivals.set(id, waiting);
    });
  }

  private arrived(id: string): void {
    const waiting = this.arrivals.get(id);
    this.arrivals.delete(id);
    waiting?.forEach((w) => w());
  }

  /** The file's reference, when a manifest of it is here for this channel. */
  localRef(channelId: string, id: string): FileRef | undefined {
    const m = this.d.files.inChannel(id, channelId) ? this.d.files.manifest(id) : undefined;
    return m && refOf(m);
  }

  /** At most about ten progress events a second per file. */
  private progress(channelId: string, id: string): void {
    this.arrived(id);
    const now = Date.now();
    if (now - (this.lastProgress.get(id) ?? 0) < 100) return;
    this.lastProgress.set(id, now);
    this.emit(channelId, id);
  }

  private emit(channelId: string, id: string): void {
    const ref = this.localRef(channelId, id);
    if (!ref) return;
    const v = this.view(channelId, ref);
    this.d.events.emit('file', {
      channelId,
      fileId: id,
      state: v.state,
      have: v.have,
      size: v.size,
    });
  }
}
