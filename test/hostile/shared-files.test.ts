/**
 * Files against hostile parties (issue 14; docs/PROTOCOL.md §9), written from the protocol
 * document: a seeder that sends corrupted chunks is blamed and dropped and the file still
 * arrives whole; someone who may not read the channel gets nothing from the server or from a
 * peer, with no grant, another channel's grant, or a grant taken from someone else; a chunk or
 * a manifest that does not match, or a chunk's bytes in a base64 that is not canonical, is refused
 * by the server.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import { createTestnet, rawHostLink, rawSession, signIn, type TestPeer } from '../testnet.js';
import { announce, hostileHost } from './kit.js';
import { attach, chunkSources, download } from '../file-kit.js';

async function stage() {
  const net = await createTestnet({ peers: 2 });
  const [alice, bob] = net.peers as [TestPeer, TestPeer];
  await signIn(alice, 'alice');
  await signIn(bob, 'bob');
  const ch = (await alice.call('POST', '/api/channels', { name: 'general' })).body.id as string;
  await bob.call('POST', `/api/channels/${ch}/join`);
  const data = crypto.randomBytes(4 * 1024 * 1024);
  const up = await attach(alice, ch, data, 'photo.raw');
  expect(up.status).toBe(201);
  await alice.call('POST', `/api/channels/${ch}/messages`, { files: [up.body.id] });
  // The server holds it once alice's backup is through.
  const last = path.join(net.dir, 'server', 'files', up.body.id, '15');
  for (let i = 0; i < 100 && !fs.existsSync(last); i++)
    await new Promise((r) => setTimeout(r, 100));
  return { net, alice, bob, ch, data, file: up.body };
}

const code = (p: Promise<unknown>) =>
  p.then(
    () => 'OK',
    (e: { code?: string }) => e.code,
  );

describe('files against hostile parties', () => {
  it('a seeder that serves corrupted chunks is blamed and dropped; the file still arrives intact', async () => {
    const { net, alice, ch, data, file } = await stage();
    // mallory joins, announces a P2P port, says it holds the file, and serves garbage.
    const raw = await net.rawLink();
    await raw.request('register', { username: 'mallory', password: 'mallory-pw' });
    const mallory = await rawSession(raw, { username: 'mallory', password: 'mallory-pw' });
    await raw.request('channel_join', { channelId: ch });
    const manifest = (await raw.request('file_manifest', { channelId: ch, fileId: file.id }))
      .manifest;
    const served: number[] = [];
    const seeder = await hostileHost(mallory, (op, body, reply) => {
      if (op === 'file_have') return reply({ all: true, chunks: [] });
      if (op === 'file_manifest') return reply({ manifest });
      if (op === 'file_chunk') {
        served.push(body.index);
        const len = Math.min(manifest.chunkBytes, manifest.size - body.index * manifest.chunkBytes);
        return reply({ data: crypto.randomBytes(len).toString('base64') });
      }
      reply({});
    });
    await announce(raw, seeder.port, []);
    await raw.request('file_held', { channelId: ch, fileId: file.id });
    // alice (the host) goes away: mallory and the server are left.
    await alice.call('PUT', '/api/status', { status: 'offline' });
    const carol = await net.addPeer('carol');
    await signIn(carol, 'carol');
    await carol.call('POST', `/api/channels/${ch}/join`);
    const got = await download(carol, file.url);
    expect(got.status).toBe(200);
    expect(got.data.equals(data)).toBe(true);
    expect(served.length).toBeGreaterThan(0);
    const log = fs.readFileSync(path.join(carol.dataDir, 'connections.log'), 'utf8');
    expect(log).toMatch(/ev=blame peer=peer:mallory .*why=chunk%20hash%20mismatch/);
    // Not one chunk was kept from mallory; she was asked no more after the first bad ones.
    expect(chunkSources(carol, file.id).filter((s) => s.includes('mallory'))).toEqual([]);
    expect(served.length).toBeLessThanOrEqual(4);
  });

  it('someone who may not read the channel gets nothing: not from the server, not from a peer, whatever grant it shows', async () => {
    const { net, alice, ch, file } = await stage();
    const raw = await net.rawLink();
    await raw.request('register', { username: 'eve', password: 'eve-pw-1' });
    const eve = await rawSession(raw, { username: 'eve', password: 'eve-pw-1' });
    const q = { channelId: ch, fileId: file.id };
    for (const op of ['file_sources', 'file_manifest', 'file_held'] as const)
      expect(await code(raw.request(op, q)), op).toBe('E_NOT_MEMBER');
    expect(await code(raw.request('file_chunk', { ...q, index: 0 }))).toBe('E_NOT_MEMBER');
    expect(await code(raw.request('file_chunk_put', { ...q, index: 0, data: 'AAAA' }))).toBe(
      'E_NOT_MEMBER',
    );
    // At alice's P2P port: no grant, a grant for eve's own channel, a forged one.
    const own = (
      await raw.request('channel_create', { id: uuidv7(), name: 'eves', allowVisitors: false })
    ).id;
    const ownGrant = (await raw.request('file_sources', { channelId: own, fileId: file.id })).grant;
    const entry = (await raw.request('get_list', {})).peers.find((e) => e.username === 'alice');
    // eve sees no entry of alice (not a co-member); she dials alice's port anyway.
    expect(entry).toBeUndefined();
    const p2p = rawHostLink(
      {
        username: 'alice',
        role: 'user',
        sessionId: alice.node.session!.sessionId,
        ip: '127.0.0.1',
        port: alice.node['p2p'].advertised.port,
        udpPort: 0,
        status: 'online',
        hosts: [],
        live: [],
      } as any,
      eve,
    );
    await p2p.start();
    const [payload, sig] = ownGrant.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    const forged = `${Buffer.from(JSON.stringify({ ...claims, c: ch })).toString('base64url')}.${sig}`;
    for (const [what, grant] of [
      ['another channel', ownGrant],
      ['forged', forged],
      ['garbage', 'x.y'],
    ] as const) {
      for (const op of ['file_have', 'file_manifest'] as const)
        expect(await code(p2p.request(op, { ...q, grant })), `${what} ${op}`).toBe('E_BAD_GRANT');
      expect(await code(p2p.request('file_chunk', { ...q, grant, index: 0 })), what).toBe(
        'E_BAD_GRANT',
      );
    }
    // bob's real grant does not work for eve either: it names bob's session.
    const bobGrant = await net.peers[1]!.node['link'].request('file_sources', q);
    expect(await code(p2p.request('file_chunk', { ...q, grant: bobGrant.grant, index: 0 }))).toBe(
      'E_BAD_GRANT',
    );
    p2p.stop();
    // Through a peer's local API: a non-member's peer refuses to read the channel's file.
    const dave = await net.addPeer('dave');
    await signIn(dave, 'dave');
    expect((await download(dave, file.url)).status).toBe(403);
  });

  it('the server keeps only chunks that match the manifest, and manifests that describe their size', async () => {
    const { net, ch } = await stage();
    const link = net.peers[1]!.node['link'];
    const data = crypto.randomBytes(1000);
    const hash = crypto.createHash('sha256').update(data).digest('base64url');
    const manifest = {
      name: 'x.bin',
      size: 1000,
      type: 'application/octet-stream',
      chunkBytes: 262144,
      chunks: [hash],
    };
    expect(
      await code(
        link.request('file_put', { channelId: ch, manifest: { ...manifest, size: 300000 } }),
      ),
    ).toBe('E_BAD_REQUEST');
    const { fileId, missing } = await link.request('file_put', { channelId: ch, manifest });
    expect(missing).toEqual([0]);
    const bad = Buffer.from(data);
    bad[0] = bad[0]! ^ 1;
    expect(
      await code(
        link.request('file_chunk_put', {
          channelId: ch,
          fileId,
          index: 0,
          data: bad.toString('base64'),
        }),
      ),
    ).toBe('E_BAD_CHUNK');
    expect(await code(link.request('file_chunk', { channelId: ch, fileId, index: 0 }))).toBe(
      'E_NOT_FOUND',
    );
    // The right bytes, spelled in a base64 a lax decoder would take (§1: canonical only).
    const b64 = data.toString('base64');
    for (const lax of ['!!' + b64, b64.slice(0, 8) + '\n' + b64.slice(8), b64 + '=', '%%%%'])
      expect(
        await code(link.request('file_chunk_put', { channelId: ch, fileId, index: 0, data: lax })),
        JSON.stringify(lax.slice(0, 12)),
      ).toBe('E_BAD_REQUEST');
    expect(await code(link.request('file_chunk', { channelId: ch, fileId, index: 0 }))).toBe(
      'E_NOT_FOUND',
    );
    expect(
      await link.request('file_chunk_put', {
        channelId: ch,
        fileId,
        index: 0,
        data: data.toString('base64'),
      }),
    ).toEqual({ complete: true });
  });
});
