/**
 * Attack 7: a file reference pointing at another channel's file (SECURITY.md "Knowing a file's
 * id or manifest opens nothing"; PROTOCOL.md §9.1). Mallory knows the reference of a file alice
 * attached in a channel mallory may not read (she was a member once, or knows the file); she
 * puts that reference in a message of a channel alice hosts and mallory reads. alice's peer,
 * which holds the file for the other channel, must serve nothing of it under the channel
 * mallory reads: not to her, and so not to anyone that channel lets in.
 */
import { describe, expect, it } from 'vitest';
import { authHeaders, createTestnet, rawSession, signIn, waitFor } from '../testnet.js';
import { p2pConnect, sleep } from './lib.js';
import { manifestOf, refOf, signFilesMessage } from './files-lib.js';

describe('attack7: a file of one channel is not opened through another', () => {
  it('a reference to a private channel’s file, posted in a channel the same peer hosts, opens nothing of it there', async () => {
    const net = await createTestnet({ peers: 1 });
    const [alice] = net.peers as [any];
    await signIn(alice, 'alice');
    const lobby = (
      await alice.call('POST', '/api/channels', { name: 'lobby', allowVisitors: false })
    ).body.id as string;
    const vault = (
      await alice.call('POST', '/api/channels', { name: 'vault', allowVisitors: false })
    ).body.id as string;
    const bytes = Buffer.from('launch codes: 0000\n'.repeat(100));
    const up = await fetch(new URL(`/api/channels/${vault}/files?name=plan.txt`, alice.uiUrl), {
      method: 'POST',
      headers: { ...authHeaders(alice.uiUrl), 'content-type': 'text/plain' },
      body: bytes,
    });
    expect(up.status).toBe(201);
    const { manifest, id } = manifestOf(bytes, 'plan.txt', 'text/plain');
    expect((await up.json()).id).toBe(id);
    const inVault = await alice.call('POST', `/api/channels/${vault}/messages`, { files: [id] });
    expect(inVault.status).toBe(201);

    const raw = await net.rawLink();
    await raw.request('register', { username: 'mallory', password: 'mallory-pw' });
    const mallory = await rawSession(raw, { username: 'mallory', password: 'mallory-pw' });
    await raw.request('channel_join', { channelId: lobby });
    // The reference (name, size, type, id) is all she has; the item is hers and well formed,
    // so the server stores it (§2.1: it checks no file's channel) and alice's host gets it.
    const msg = signFilesMessage(
      { key: mallory.keys, cert: mallory.cert, username: 'mallory' },
      lobby,
      [refOf(manifest, id)],
      'look',
    ) as any;
    await raw.request('post', { message: msg });
    await waitFor(
      async () =>
        ((await alice.call('GET', `/api/channels/${lobby}/messages`)).body.messages ?? []).some(
          (m: any) => m.id === msg.id,
        ),
      10000,
      'alice has mallory’s message',
    );
    // A host fetches every file of its channel as its messages arrive (§9.4): let it try.
    await sleep(1500);
    const src = await raw.request('file_sources', { channelId: lobby, fileId: id });
    expect(src.server, 'the server holds nothing of it for the lobby').toBe(false);
    const entry = (await raw.request('get_list', {})).peers.find(
      (e: any) => e.username === 'alice',
    )!;
    const { c, ok } = await p2pConnect(entry, { cert: mallory.cert, key: mallory.keys });
    expect(ok).toBe(true);
    const ask = (op: string, more: object = {}) =>
      c.req(op, { channelId: lobby, fileId: id, grant: src.grant, ...more });
    const have = await ask('file_have');
    expect(have.body?.all ?? false, 'file_have: holds nothing of it for the lobby').toBe(false);
    expect(have.body?.chunks ?? []).toEqual([]);
    const man = await ask('file_manifest');
    expect(man.body?.manifest, 'file_manifest: no manifest (its chunk hashes)').toBeUndefined();
    expect(man.error?.code).toBe('E_NOT_FOUND');
    const chunk = await ask('file_chunk', { index: 0 });
    expect(chunk.body?.data, 'file_chunk: no byte').toBeUndefined();
    expect(chunk.error?.code).toBe('E_NOT_FOUND');
    c.close();
    // alice herself still has her file in her channel, and only there.
    const own = await fetch(new URL(`/api/channels/${vault}/files/${id}`, alice.uiUrl), {
      headers: authHeaders(alice.uiUrl),
    });
    expect(Buffer.from(await own.arrayBuffer()).equals(bytes)).toBe(true);
  }, 60000);
});
