/** Helpers of the file tests (issue 14): attach and read through a peer's local API, and where each chunk came from. */
import fs from 'node:fs';
import path from 'node:path';
import { authHeaders, waitFor, type TestPeer } from './testnet.js';

/** Uploads bytes to a channel through the local API. */
export async function attach(
  p: TestPeer,
  ch: string,
  data: Buffer,
  name: string,
  type = 'application/octet-stream',
  extra: Record<string, string> = {},
): Promise<{ status: number; body: any }> {
  const res = await fetch(
    new URL(`/api/channels/${ch}/files?name=${encodeURIComponent(name)}`, p.uiUrl),
    {
      method: 'POST',
      headers: { ...authHeaders(p.uiUrl), 'content-type': type, ...extra },
      body: new Uint8Array(data),
    },
  );
  return { status: res.status, body: await res.json() };
}

/** GETs a file's bytes through a peer's local API. */
export async function download(
  p: TestPeer,
  url: string,
): Promise<{ status: number; data: Buffer; headers: Headers }> {
  const res = await fetch(new URL(url, p.uiUrl), { headers: authHeaders(p.uiUrl) });
  return { status: res.status, data: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

/** The sources of each chunk of `fileId` a peer fetched, from its connection log. */
export function chunkSources(p: TestPeer, fileId: string): string[] {
  const log = fs.readFileSync(path.join(p.dataDir, 'connections.log'), 'utf8');
  return log
    .split('\n')
    .filter((l) => /\bchunk\b/.test(l) && l.includes(fileId) && /\bfrom=/.test(l))
    .map((l) => /from=(\S+)/.exec(l)![1]!);
}

/**
 * The sources of a download's `count` chunks: a peer writes its log once per turn
 * (src/shared/connlog.ts), so the last chunks' lines may land just after the download answered.
 */
export async function loggedChunkSources(
  p: TestPeer,
  fileId: string,
  count: number,
): Promise<string[]> {
  await waitFor(() => chunkSources(p, fileId).length >= count, 5_000, `${count} chunks logged`);
  return chunkSources(p, fileId);
}
