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
import { attach, chunkSources, download, loggedChunkSources } from './file-kit.js';

type Net = Awaited<ReturnType<typeof createTestnet>>;

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
    const fromCarol = await loggedChunkSources(carol, up.body.id, 13);
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
    expect(new Set(await loggedChunkSources(dave, up.body.id, 13))).toEqual(new Set(['server']));
  });
});

describe('a user on two devices', () => {
  it("a file the host attached comes from the host, not from the owner's other device that lacks it, nor from the server (outside new user 3)", async () => {
    const net = await createTestnet({ peers: 3 });
    const [first, alice2, bob] = net.peers as [TestPeer, TestPeer, TestPeer];
    await signIn(first, 'alice');
    await signIn(bob, 'bob');
    const ch = (await first.call('POST', '/api/channels', { name: 'general' })).body.id as string;
    expect((await bob.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
    // alice's second device is online too, and holds none of the file; her host peer restarts,
    // so that bob heard of its entry last.
    expect(
      (await alice2.call('POST', '/api/login', { username: 'alice', password: 'alice-pw' })).status,
    ).toBe(200);
    const alice = await net.restartPeer(first);
    await waitFor(
      async () =>
        ((await bob.call('GET', '/api/peers')).body as any[]).filter((e) => e.username === 'alice')
          .length === 2,
      10_000,
      "bob sees both of alice's devices",
    );
    const data = crypto.randomBytes(2 * 1024 * 1024 + 777);
    const up = await attach(alice, ch, data, 'plan.bin');
    expect(up.status, JSON.stringify(up.body)).toBe(201);
    const posted = await alice.call('POST', `/api/channels/${ch}/messages`, {
      files: [up.body.id],
    });
    expect(posted.status).toBe(201);
    const f = await waitFor(
      async () =>
        ((await bob.call('GET', `/api/channels/${ch}/messages`)).body.messages as any[]).find(
          (m) => m.id === posted.body.id,
        )?.files?.[0],
      10_000,
      'the message at bob',
    );
    const got = await download(bob, f.url);
    expect(got.data.equals(data)).toBe(true);
    const sources = await loggedChunkSources(bob, up.body.id, 9);
    expect(new Set(sources), sources.join()).toEqual(new Set(['host:alice']));
  });
});

describe('files from several peers', () => {
  it('with the host and two members holding it, a newcomer pulls chunks from at least three of them, and only those', async () => {
    const { net, ps, ch } = await general(3);
    const [alice, bob, carol] = ps as [TestPeer, TestPeer, TestPeer];
    const data = crypto.randomBytes(20 * 1024 * 1024);
    const up = await attach(alice, ch, data, 'big.bin');
    expect(up.status, JSON.stringify(up.body)).toBe(201);
    await alice.call('POST', `/api/channels/${ch}/messages`, {
      text: 'the dump',
      files: [up.body.id],
    });
    for (const p of [bob, carol])
      expect((await download(p, up.body.url)).data.equals(data)).toBe(true);
    const dave = await net.addPeer('dave');
    await signIn(dave, 'dave');
    expect((await dave.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
    const got = await download(dave, up.body.url);
    expect(got.data.equals(data)).toBe(true);
    const sources = await loggedChunkSources(dave, up.body.id, 80);
    expect(sources.length).toBe(80);
    const counts = Object.fromEntries(
      [...new Set(sources)].map((s) => [s, sources.filter((x) => x === s).length]),
    );
    expect(Object.keys(counts).sort(), JSON.stringify(counts)).toEqual([
      'host:alice',
      'peer:bob',
      'peer:carol',
    ]);
    // The channel deleted by its owner: the server's copy goes with it.
    const copy = path.join(net.dir, 'server', 'files', up.body.id);
    expect(fs.existsSync(copy)).toBe(true);
    expect((await alice.call('DELETE', `/api/channels/${ch}`)).status).toBe(200);
    await waitFor(() => !fs.existsSync(copy), 10_000, "the server drops the channel's files");
  });

  it('a download cut short resumes without fetching again what it has', async () => {
    const { net, ps, ch } = await general(2);
    const [alice] = ps as [TestPeer, TestPeer];
    const data = crypto.randomBytes(8 * 1024 * 1024);
    const up = await attach(alice, ch, data, 'slow.bin');
    await alice.call('POST', `/api/channels/${ch}/messages`, { files: [up.body.id] });
    // alice serves slowly (2 MiB/s): bob's download is cut by his peer stopping.
    await net.restartPeer(alice, { uploadLimit: 2 * 1024 * 1024 });
    let bob = net.peers[1]!;
    const first = download(bob, up.body.url).catch(() => undefined);
    await waitFor(() => chunkSources(bob, up.body.id).length >= 6, 15_000, 'some chunks');
    bob = await net.restartPeer(bob);
    await first;
    const before = chunkSources(bob, up.body.id).length;
    expect(before).toBeGreaterThanOrEqual(6);
    expect(before).toBeLessThan(32);
    const got = await download(bob, up.body.url);
    expect(got.data.equals(data)).toBe(true);
    // Each chunk came once: what was held before the cut was not asked again.
    const log = fs.readFileSync(path.join(bob.dataDir, 'connections.log'), 'utf8');
    const idx = log
      .split('\n')
      .filter((l) => /ev=chunk /.test(l) && l.includes(up.body.id))
      .map((l) => /idx=(\d+)/.exec(l)![1]);
    expect(idx.length).toBe(32);
    expect(new Set(idx).size).toBe(32);
  });
});

describe('what a peer keeps', () => {
  it("other people's files are evicted least recently used first past the cache size; the host's and one's own never", async () => {
    const net = await createTestnet({ peers: 1 });
    const alice = net.peers[0]!;
    await signIn(alice, 'alice');
    const ch = (await alice.call('POST', '/api/channels', { name: 'general' })).body.id as string;
    // bob keeps at most 5 MiB of other people's files.
    const bob = await net.addPeer('bob', { fileCacheBytes: 5 * 1024 * 1024 });
    await signIn(bob, 'bob');
    await bob.call('POST', `/api/channels/${ch}/join`);
    const files = [];
    for (const name of ['one.bin', 'two.bin']) {
      const data = crypto.randomBytes(3 * 1024 * 1024);
      const up = await attach(alice, ch, data, name);
      await alice.call('POST', `/api/channels/${ch}/messages`, { files: [up.body.id] });
      files.push({ data, up: up.body });
    }
    const mine = await attach(bob, ch, crypto.randomBytes(3 * 1024 * 1024), 'mine.bin');
    await bob.call('POST', `/api/channels/${ch}/messages`, { files: [mine.body.id] });
    const state = async (p: TestPeer, id: string) =>
      (await p.call('GET', `/api/channels/${ch}/files/${id}/status`)).body.state;
    expect((await download(bob, files[0]!.up.url)).data.equals(files[0]!.data)).toBe(true);
    expect(await state(bob, files[0]!.up.id)).toBe('complete');
    expect((await download(bob, files[1]!.up.url)).data.equals(files[1]!.data)).toBe(true);
    // 6 MiB of alice's files do not fit 5: the older one went; bob's own stays.
    expect(await state(bob, files[1]!.up.id)).toBe('complete');
    expect(await state(bob, files[0]!.up.id)).toBe('missing');
    expect(await state(bob, mine.body.id)).toBe('complete');
    // The host (alice) keeps every file of its channel, bob's included.
    await waitFor(
      async () => (await state(alice, mine.body.id)) === 'complete',
      10_000,
      'the host copy',
    );
    for (const f of files) expect(await state(alice, f.up.id)).toBe('complete');
    // Read again, it comes back.
    expect((await download(bob, files[0]!.up.url)).data.equals(files[0]!.data)).toBe(true);
  });

  it('the server charges a file once against its quota, and refuses past it', async () => {
    const net = await createTestnet({ peers: 1, server: { fileQuotaBytes: 5 * 1024 * 1024 } });
    const alice = net.peers[0]!;
    await signIn(alice, 'alice');
    const ch = (await alice.call('POST', '/api/channels', { name: 'general' })).body.id as string;
    const link = alice.node['link'];
    const manifest = async (size: number) => {
      const data = crypto.randomBytes(size);
      const chunks = [];
      for (let at = 0; at < size; at += 262144)
        chunks.push(
          crypto
            .createHash('sha256')
            .update(data.subarray(at, at + 262144))
            .digest('base64url'),
        );
      return {
        name: 'q.bin',
        size,
        type: 'application/octet-stream',
        chunkBytes: 262144 as const,
        chunks,
      };
    };
    const three = await manifest(3 * 1024 * 1024);
    expect(
      (await link.request('file_put', { channelId: ch, manifest: three })).missing.length,
    ).toBe(12);
    // The same file again is not charged again.
    expect(
      (await link.request('file_put', { channelId: ch, manifest: three })).missing.length,
    ).toBe(12);
    await expect(
      link.request('file_put', { channelId: ch, manifest: await manifest(3 * 1024 * 1024) }),
    ).rejects.toMatchObject({
      code: 'E_QUOTA_EXCEEDED',
    });
    // bob (not the host) attaches past his quota: the server refuses the backup, and his
    // outbox sends the message anyway (its file served by peers only) rather than holding it.
    const bob = await net.addPeer('bob');
    await signIn(bob, 'bob');
    await bob.call('POST', `/api/channels/${ch}/join`);
    const up = await attach(bob, ch, crypto.randomBytes(6 * 1024 * 1024), 'over.bin');
    expect(up.status).toBe(201);
    const posted = await bob.call('POST', `/api/channels/${ch}/messages`, {
      files: [up.body.id],
    });
    expect(posted.status).toBe(201);
    await waitFor(
      async () => (await bob.call('GET', '/api/me')).body.pending === 0,
      10_000,
      'nothing pending',
    );
    const log = fs.readFileSync(path.join(bob.dataDir, 'connections.log'), 'utf8');
    expect(log).toMatch(
      new RegExp(`ev=backup to=server channel=\\S+ file=${up.body.id} refused=E_QUOTA_EXCEEDED`),
    );
  });
});

describe('deleting', () => {
  it("a deleted message's files leave every replica: the server, the host, the author and whoever fetched them", async () => {
    const { net, ps, ch } = await general(3);
    const [alice, bob, carol] = ps as [TestPeer, TestPeer, TestPeer];
    const data = crypto.randomBytes(600 * 1024);
    const up = await attach(bob, ch, data, 'oops.bin');
    const other = await attach(bob, ch, crypto.randomBytes(1000), 'keep.bin');
    const posted = await bob.call('POST', `/api/channels/${ch}/messages`, { files: [up.body.id] });
    // Another message names keep.bin only: it stays.
    await bob.call('POST', `/api/channels/${ch}/messages`, { files: [other.body.id] });
    expect((await download(carol, up.body.url)).data.equals(data)).toBe(true);
    const dirs = [
      path.join(net.dir, 'server', 'files'),
      ...[alice, bob, carol].map((p) => path.join(p.dataDir, 'files')),
    ];
    await waitFor(
      () => dirs.every((d) => fs.existsSync(path.join(d, up.body.id))),
      10_000,
      'every replica holds it',
    );
    expect(
      (await bob.call('DELETE', `/api/channels/${ch}/messages/${posted.body.id}`)).status,
    ).toBe(200);
    for (const d of dirs)
      await waitFor(() => !fs.existsSync(path.join(d, up.body.id)), 10_000, `gone from ${d}`);
    expect(fs.existsSync(path.join(net.dir, 'server', 'files', other.body.id))).toBe(true);
    expect(fs.existsSync(path.join(bob.dataDir, 'files', other.body.id))).toBe(true);
  });
});

describe('offline and visitors', () => {
  it('attached and posted offline: sent with its file once back online; a visitor of an open channel reads it too', async () => {
    const net = await createTestnet({ peers: 2 });
    const [alice, bob] = net.peers as [TestPeer, TestPeer];
    await signIn(alice, 'alice');
    await signIn(bob, 'bob');
    const ch = (await alice.call('POST', '/api/channels', { name: 'open', allowVisitors: true }))
      .body.id as string;
    await bob.call('POST', `/api/channels/${ch}/join`);
    await bob.call('PUT', '/api/status', { status: 'offline' });
    const data = crypto.randomBytes(700 * 1024);
    const up = await attach(bob, ch, data, 'offline.bin');
    expect(up.status, JSON.stringify(up.body)).toBe(201);
    const posted = await bob.call('POST', `/api/channels/${ch}/messages`, {
      text: 'written on the train',
      files: [up.body.id],
    });
    expect(posted.body.state).toBe('pending');
    await bob.call('PUT', '/api/status', { status: 'online' });
    await waitFor(
      async () => (await bob.call('GET', '/api/me')).body.pending === 0,
      10_000,
      'delivered',
    );
    const visitor = await net.addPeer('visitor');
    expect((await visitor.call('POST', '/api/visitor', { name: 'guest' })).status).toBe(200);
    expect((await visitor.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
    const page = await visitor.call('GET', `/api/channels/${ch}/messages`);
    const f = page.body.messages.find((m: any) => m.id === posted.body.id).files[0];
    const got = await download(visitor, f.url);
    expect(got.status).toBe(200);
    expect(got.data.equals(data)).toBe(true);
    expect((await loggedChunkSources(visitor, up.body.id, 3)).length).toBe(3);
    // A visitor attaches nothing.
    expect((await attach(visitor, ch, Buffer.from('x'), 'x.txt')).status).toBe(403);
  });
});

describe('one file, two channels', () => {
  it('attached again to another channel, it is backed up for that one too: its readers get it from the server', async () => {
    const net = await createTestnet({ peers: 3 });
    const [alice, bob, carol] = net.peers as [TestPeer, TestPeer, TestPeer];
    for (const [p, n] of [
      [alice, 'alice'],
      [bob, 'bob'],
      [carol, 'carol'],
    ] as const)
      await signIn(p, n);
    const one = (await alice.call('POST', '/api/channels', { name: 'one' })).body.id as string;
    const two = (await bob.call('POST', '/api/channels', { name: 'two' })).body.id as string;
    await alice.call('POST', `/api/channels/${two}/join`);
    await carol.call('POST', `/api/channels/${two}/join`);
    const data = crypto.randomBytes(600 * 1024);
    const first = await attach(alice, one, data, 'same.bin');
    await alice.call('POST', `/api/channels/${one}/messages`, { files: [first.body.id] });
    const again = await attach(alice, two, data, 'same.bin');
    expect(again.body.id).toBe(first.body.id);
    await alice.call('POST', `/api/channels/${two}/messages`, { files: [again.body.id] });
    await waitFor(
      async () => (await alice.call('GET', '/api/me')).body.pending === 0,
      10_000,
      'delivered to two',
    );
    // The author and the host of "two" away: carol reads it from the server.
    await alice.call('PUT', '/api/status', { status: 'offline' });
    await bob.call('PUT', '/api/status', { status: 'offline' });
    const got = await download(carol, again.body.url);
    expect(got.status).toBe(200);
    expect(got.data.equals(data)).toBe(true);
    expect(new Set(await loggedChunkSources(carol, again.body.id, 3))).toEqual(new Set(['server']));
  });
});

describe('reading while fetching', () => {
  it('a download starts before the file is all here: the first bytes come while the rest is fetched', async () => {
    const { net, ps, ch } = await general(2);
    const [alice] = ps as [TestPeer, TestPeer];
    const data = crypto.randomBytes(3 * 1024 * 1024);
    const up = await attach(alice, ch, data, 'slow.bin');
    await alice.call('POST', `/api/channels/${ch}/messages`, { files: [up.body.id] });
    // The host (alone holding it besides the server) serves 1 MiB/s; the server is away.
    await waitFor(
      () => fs.existsSync(path.join(net.dir, 'server', 'files', up.body.id, '11')),
      10_000,
      'backed up',
    );
    await net.restartPeer(alice, { uploadLimit: 1024 * 1024 });
    const bob = net.peers[1]!;
    await waitFor(
      async () =>
        ((await bob.call('GET', '/api/peers')).body as any[]).some((e) => e.username === 'alice'),
      10_000,
      'alice back',
    );
    const res = await fetch(new URL(up.body.url, bob.uiUrl), { headers: authHeaders(bob.uiUrl) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(data.length));
    const reader = res.body!.getReader();
    const parts: Buffer[] = [];
    const first = await reader.read();
    parts.push(Buffer.from(first.value!));
    // Bytes are here while bob's peer holds only part of the file.
    const status = (await bob.call('GET', `/api/channels/${ch}/files/${up.body.id}/status`)).body;
    expect(status.state).toBe('partial');
    expect(status.have).toBeLessThan(data.length);
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      parts.push(Buffer.from(r.value));
    }
    expect(Buffer.concat(parts).equals(data)).toBe(true);
  });
});
