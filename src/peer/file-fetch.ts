/**
 * One file's download from several sources at once (docs/PROTOCOL.md §9.4), like BitTorrent:
 * the server names the online peers that hold the file and grants this session access to the
 * channel's files; each peer says which chunks it holds, and each takes the next chunk nobody is
 * fetching yet, a few in flight at a time. Every chunk is checked against the manifest before it
 * is kept: a peer that sends a bad one is blamed (logged) and dropped, and the chunk is asked of
 * another source. The server serves only what no peer could. Chunks already held are never
 * fetched again, so a download cut short resumes where it stopped. Each chunk's source is logged
 * (`host:…`, `peer:…`, `server`).
 */
import { HchatError } from '../protocol/errors.js';
import type { Manifest } from '../protocol/files.js';
import type { FileRef, TrackerEntry } from '../protocol/common.js';
import type { ConnectionLog } from '../shared/connlog.js';
import { fileId, manifestError, sameRef } from '../shared/file-id.js';
import { FILE_LIMITS } from '../shared/limits.js';
import type { FileStore } from '../store/file-store.js';
import type { HostLink } from './host-link.js';
import type { ServerLink } from './server-link.js';

export interface FetchDeps {
  files: FileStore;
  log: ConnectionLog;
  /** The server link while it carries our session. */
  server(): ServerLink | undefined;
  /**
   * The tracker entries of a user's online sessions (its devices), the one that hosts the
   * channel first.
   */
  entriesOf(username: string, channelId: string): TrackerEntry[];
  /** A P2P link to a peer (not started). */
  dial(entry: TrackerEntry): HostLink | undefined;
  /** The channel's owner (its host). */
  ownerOf(channelId: string): string | undefined;
  /** This peer's user. */
  me(): string;
  /** Called as chunks arrive. */
  progress(): void;
  /** True once the node closed: nothing may touch the store. */
  closed(): boolean;
  /** Most peers asked at once. */
  maxPeers?: number;
}

/** One chunk source: a peer over P2P, or the server. */
interface Source {
  label: string;
  /** Asked only for what no peer holds, or what peers have been fetching for STALL_MS. */
  reserve?: boolean;
  has(index: number): boolean;
  chunk(index: number): Promise<string>;
  close(): void;
}

const CHUNK_TIMEOUT_MS = 20_000;
/** How long the peers fetching a chunk may take before the server in reserve asks for it too. */
const STALL_MS = 5000;
/** How long a peer may take to say what it holds, or to give the manifest: a silent one is skipped. */
const ASK_TIMEOUT_MS = 3000;

/** A file whose manifest is not what its message says (§9.1): never served. */
export const FILE_LIES = () =>
  new HchatError(
    'E_BAD_SIGNATURE',
    'file: not what its message says (its name, size, type or picture differ): not served',
  );

/** Fetches what is missing of one file of one channel; resolves when it is whole here. */
export async function fetchFile(
  d: FetchDeps,
  channelId: string,
  id: string,
  opts: { refs?: FileRef[]; pinned?: boolean; author?: string } = {},
): Promise<void> {
  const server = d.server();
  if (!server) throw new HchatError('E_OFFLINE');
  const {
    holders,
    server: serverHolds,
    grant,
  } = await server.request('file_sources', {
    channelId,
    fileId: id,
  });
  // The host and the author hold the file from the start; others once they fetched it.
  const owner = d.ownerOf(channelId);
  const candidates = new Map<string, string>();
  for (const u of [owner, opts.author, ...holders])
    if (u && u.toLowerCase() !== d.me().toLowerCase()) candidates.set(u.toLowerCase(), u);
  const peers: Source[] = [];
  await Promise.all(
    [...candidates.values()].slice(0, d.maxPeers ?? 6).map(async (u) => {
      const isHost = u.toLowerCase() === owner?.toLowerCase();
      const s = await peerSource(d, u, isHost, channelId, id, grant);
      if (s) peers.push(s);
    }),
  );
  const bound = () => d.files.inChannel(id, channelId);
  try {
    if (!d.files.state(id))
      await getManifest(d, [...peers, serverSource(d, channelId, id)], channelId, id, opts);
    else if (bound()) {
      if (opts.pinned) d.files.add(d.files.manifest(id)!, channelId, { pinned: true });
    } else d.files.offer(d.files.manifest(id)!, channelId, { pinned: opts.pinned });
    const m = d.files.manifest(id)!;
    // The server holds it whole for this channel: its uploader proved every chunk for it, so
    // the bytes are this channel's, whatever channel brought them here. Otherwise each chunk
    // must come again from a source of this channel (pull): that a message here names a file
    // held for another channel proves nothing (§9.1, SECURITY.md "Knowing a file's id…").
    if (serverHolds && !bound()) d.files.add(m, channelId, { pinned: opts.pinned });
    if (!serverHolds && peers.length === 0)
      throw new HchatError('E_NOT_FOUND', 'no peer or server holds this file now');
    // The server in reserve: it gives what no peer holds, or what a peer is too slow to give.
    await pull(d, channelId, id, m, [
      ...peers,
      { ...serverSource(d, channelId, id), reserve: true },
    ]);
    if (!bound() || !d.files.state(id)!.complete)
      throw new HchatError('E_NOT_FOUND', 'no source could give every chunk of this file');
    d.log.write('file', { file: id, channel: channelId, complete: true });
    await d
      .server()
      ?.request('file_held', { channelId, fileId: id })
      .catch(() => undefined);
  } finally {
    for (const p of peers) p.close();
  }
}

async function getManifest(
  d: FetchDeps,
  sources: Source[],
  channelId: string,
  id: string,
  opts: { refs?: FileRef[]; pinned?: boolean; author?: string },
): Promise<void> {
  for (const s of sources) {
    const m = await (s as Source & { manifest(): Promise<Manifest> })
      .manifest()
      .catch(() => undefined);
    if (!m) continue;
    const bad = fileId(m) !== id ? 'its hash is not the file id' : manifestError(m);
    if (bad) {
      d.log.write('blame', { peer: s.label, file: id, why: `manifest: ${bad}` });
      continue;
    }
    // The one manifest with this id says something else than the message: the author lied,
    // and no source can change that.
    if (opts.refs?.some((r) => !sameRef(r, m))) {
      d.log.write('blame', {
        file: id,
        channel: channelId,
        why: 'manifest differs from its message',
      });
      throw FILE_LIES();
    }
    // The file becomes this channel's once its chunks came for it (pull), or the server
    // says it holds it for this channel.
    d.files.offer(m, channelId, { pinned: opts.pinned });
    return;
  }
  throw new HchatError('E_NOT_FOUND', "no source gave this file's manifest");
}

/**
 * Fetches the missing chunks the sources hold, several at a time, each checked. At the end
 * (every missing chunk asked already) an idle source asks again for a chunk another is still
 * fetching, and the first good answer wins: one stalled source costs no more than a fast one
 * (BitTorrent's end game). Answers once nothing is missing, or no source can give more.
 */
async function pull(
  d: FetchDeps,
  channelId: string,
  id: string,
  m: Manifest,
  sources: Source[],
): Promise<void> {
  // What this channel's sources gave (or all, once the file is the channel's): a chunk held
  // for another channel is asked again here, and proves the file this channel's.
  const held = new Set(d.files.chunksFor(id, channelId));
  const missing = new Set(m.chunks.map((_, i) => i).filter((i) => !held.has(i)));
  /** Which sources are fetching each chunk, since when. */
  const asking = new Map<number, Map<Source, number>>();
  const dead = new Set<Source>();
  let whole: () => void = () => undefined;
  const done = new Promise<void>((r) => (whole = r));
  const peerHas = (i: number) => sources.some((p) => !p.reserve && !dead.has(p) && p.has(i));
  const pick = (s: Source): number | undefined => {
    let again: number | undefined;
    const now = Date.now();
    for (const i of missing) {
      if (!s.has(i)) continue;
      const who = asking.get(i);
      const idle = !who || who.size === 0;
      if (s.reserve) {
        // Nobody else has it, or every peer asking has been at it for STALL_MS.
        if (idle && !peerHas(i)) return i;
        if (!idle && !who.has(s) && [...who.values()].every((t) => now - t > STALL_MS)) return i;
        continue;
      }
      if (idle) return i;
      if (again === undefined && !who.has(s)) again = i;
    }
    return again;
  };
  const lane = async (s: Source): Promise<void> => {
    while (!dead.has(s) && missing.size > 0) {
      const next = pick(s);
      if (next === undefined) {
        // The reserve waits while peers still work on what is missing.
        if (!s.reserve || !sources.some((p) => !p.reserve && !dead.has(p))) return;
        await Promise.race([new Promise((r) => setTimeout(r, STALL_MS / 5)), done]);
        continue;
      }
      const who = asking.get(next) ?? new Map<Source, number>();
      asking.set(next, who.set(s, Date.now()));
      try {
        const data = Buffer.from(await s.chunk(next), 'base64');
        if (d.closed()) throw new HchatError('E_SHUTTING_DOWN');
        if (!missing.has(next)) continue; // another source's answer came first
        if (d.files.putChunk(id, next, data)) {
          d.files.prove(id, channelId, next);
          missing.delete(next);
          d.log.write('chunk', { from: s.label, file: id, idx: next });
          d.progress();
          if (missing.size === 0) whole();
        } else {
          d.log.write('blame', { peer: s.label, file: id, idx: next, why: 'chunk hash mismatch' });
          dead.add(s);
        }
      } catch (err) {
        if (d.closed()) throw new HchatError('E_SHUTTING_DOWN');
        if (!missing.has(next)) continue;
        d.log.write('drop', { peer: s.label, file: id, idx: next, code: (err as HchatError).code });
        dead.add(s);
      } finally {
        asking.get(next)?.delete(s);
      }
    }
  };
  // Rounds: when a source dies, what it held may be asked of the others.
  while (missing.size > 0) {
    const alive = sources.filter((s) => !dead.has(s) && [...missing].some((i) => s.has(i)));
    if (alive.length === 0) return;
    const lanes = alive.flatMap((s) =>
      Array.from({ length: FILE_LIMITS.inFlightPerSource }, () => lane(s)),
    );
    // Stragglers still waiting when the file is whole are left to end by themselves.
    await Promise.race([Promise.all(lanes), done]);
    if (missing.size === 0) lanes.forEach((l) => l.catch(() => undefined));
  }
}

async function peerSource(
  d: FetchDeps,
  username: string,
  isHost: boolean,
  channelId: string,
  id: string,
  grant: string,
): Promise<(Source & { manifest(): Promise<Manifest> }) | undefined> {
  // Each device of the user in turn (the channel's host first), until one holds some of it: a
  // user's other device may hold nothing of a file its host or its author's device holds.
  for (const entry of d.entriesOf(username, channelId)) {
    const s = await deviceSource(d, entry, isHost, channelId, id, grant);
    if (s) return s;
  }
  return undefined;
}

async function deviceSource(
  d: FetchDeps,
  entry: TrackerEntry,
  isHost: boolean,
  channelId: string,
  id: string,
  grant: string,
): Promise<(Source & { manifest(): Promise<Manifest> }) | undefined> {
  const link = d.dial(entry);
  if (!link) return undefined;
  const label = `${isHost ? 'host' : 'peer'}:${entry.username}`;
  try {
    await link.start();
    if (!link.connected) throw new HchatError('E_CONNECTION_CLOSED');
    const have = await link.request('file_have', { channelId, fileId: id, grant }, ASK_TIMEOUT_MS);
    const chunks = new Set(have.chunks);
    if (!have.all && chunks.size === 0) throw new HchatError('E_NOT_FOUND', 'holds none of it');
    return {
      label,
      has: (i) => have.all || chunks.has(i),
      chunk: async (index) =>
        (
          await link.request(
            'file_chunk',
            { channelId, fileId: id, grant, index },
            CHUNK_TIMEOUT_MS,
          )
        ).data,
      manifest: async () =>
        (await link.request('file_manifest', { channelId, fileId: id, grant }, ASK_TIMEOUT_MS))
          .manifest,
      close: () => link.stop(),
    };
  } catch (err) {
    d.log.write('drop', { peer: label, file: id, code: (err as HchatError).code ?? 'E_INTERNAL' });
    link.stop();
    return undefined;
  }
}

function serverSource(
  d: FetchDeps,
  channelId: string,
  id: string,
): Source & { manifest(): Promise<Manifest> } {
  const link = () => {
    const s = d.server();
    if (!s) throw new HchatError('E_OFFLINE');
    return s;
  };
  return {
    label: 'server',
    has: () => true,
    chunk: async (index) =>
      (await link().request('file_chunk', { channelId, fileId: id, index }, CHUNK_TIMEOUT_MS)).data,
    manifest: async () =>
      (await link().request('file_manifest', { channelId, fileId: id })).manifest,
    close: () => undefined,
  };
}
