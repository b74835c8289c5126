/**
 * Files end to end (issue 14) through the local API of real peers: attach, post, and fetch from
 * the host, from the server while the host is away, and from several peers at once; a download
 * cut short resumes without fetching again what it has. Every chunk's source is read back from
 * the fetching peer's connection log.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { authHeaders, createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';

type Net = Awaited<ReturnType<typeof createTestnet>>;

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

async function general(peers = 3): Promise<{ net: Net; ps: TestPeer[]; ch: string }> {
  const net = await createTestnet({ peers });
  const names = ['alice', 'bob', 'carol', 'dave', 'erin'];
  for (let i = 0; i < peers; i++) await signIn(net.peers[i]!, names[i]!);
  const ps = net.peers;
  const ch = (await ps[0]!.call('POST', '/api/channels', { name: 'general' })).body.id as string;
  for (const p of ps.slice(1))
    expect((await p.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
  return { net, ps, ch };
}

describe('files', () => {
  it('attached by a member: the host keeps a copy, a member fetches it from the host, and with the host away from the server', async () => {
    const { net, ps, ch } = await general(3);
    const [alice, bob, carol] = ps as [TestPeer, TestPeer, TestPeer];
    const data = crypto.randomBytes(3 * 1024 * 1024 + 12345);
    // bob attaches it (alice hosts the channel): it is here at once, then backed up.
    const up = await attach(bob, ch, data, 'report.bin');
    expect(up.status, JSON.stringify(up.body)).toBe(201);
    expect(up.body).toMatchObject({ name: 'report.bin', size: data.length, state: 'complete' });
    const posted = await bob.call('POST', `/api/channels/${ch}/messages`, { files: [up.body.id] });
    expect(posted.status, JSON.stringify(posted.body)).toBe(201);
    // The host fetches its copy as the message comes in.
    await waitFor(
      async () => {
        const page = await alice.call('GET', `/api/channels/${ch}/messages`);
        return (
          page.body.messages.find((m: any) => m.id === posted.body.id)?.files?.[0]?.state ===
          'complete'
        );
      },
      15_000,
      'the host holds the file',
    );
    // carol sees the message with its file, not held yet; she reads it: from the host or bob.
    const page = await carol.call('GET', `/api/channels/${ch}/messages`);
    const f = page.body.messages.find((m: any) => m.id === posted.body.id).files[0];
    expect(f).toMatchObject({
      id: up.body.id,
      name: 'report.bin',
      size: data.length,
      state: 'missing',
    });
    const got = await download(carol, f.url);
    expect(got.status).toBe(200);
    expect(got.data.equals(data)).toBe(true);
    expect(got.headers.get('content-disposition')).toMatch(/^attachment; filename="report.bin"/);
    expect(got.headers.get('x-content-type-options')).toBe('nosniff');
    expect(got.headers.get('content-security-policy')).toMatch(/sandbox/);
    const fromCarol = chunkSources(carol, up.body.id);
    expect(fromCarol.length).toBe(13);
    expect(
      fromCarol.every((s) => s === 'host:alice' || s === 'peer:bob'),
      fromCarol.join(),
    ).toBe(true);

    // The server has its one copy once bob's backup is done; with the host and bob away, a
    // new member fetches everything from the server.
    await waitFor(
      () => fs.existsSync(path.join(net.dir, 'server', 'files', up.body.id, '12')),
      10_000,
      'backed up',
    );
    await alice.call('PUT', '/api/status', { status: 'offline' });
    await bob.call('PUT', '/api/status', { status: 'offline' });
    await carol.call('PUT', '/api/status', { status: 'offline' });
    const dave = await net.addPeer('dave');
    await signIn(dave, 'dave');
    expect((await dave.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
    const again = await download(dave, f.url);
    expect(again.data.equals(data)).toBe(true);
    expect(new Set(chunkSources(dave, up.body.id))).toEqual(new Set(['server']));
  });
});
