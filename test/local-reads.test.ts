/**
 * What one account reads of a peer's own copy through the local API (src/peer/local-reads.ts,
 * docs/SECURITY.md "Local processes"): several accounts use one peer in turn, and a visitor reads
 * a channel only while it allows visitors (PROTOCOL.md §2.2 _Channel items at each replica_).
 */
import { describe, expect, it } from 'vitest';
import { createTestnet, signIn, waitFor, type TestPeer } from './testnet.js';
import { toStored } from '../src/store/peer-store.js';

const texts = (r: { body: any }): string[] =>
  (r.body?.messages ?? []).map((m: any) => String(m.text));
const found = (r: { body: any }): string[] =>
  (r.body?.results ?? []).map((x: any) => String(x.message?.text ?? ''));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a peer’s local API reads by account', () => {
  it('a visitor’s peer forgets a channel that stops allowing visitors and refuses its pushes; a member on the same peer keeps everything', async () => {
    const net = await createTestnet({ peers: 2 });
    const [owner, shared] = net.peers as [TestPeer, TestPeer];
    await signIn(owner, 'alice');
    await signIn(shared, 'carol');
    const ch = (await owner.call('POST', '/api/channels', { name: 'open', allowVisitors: true }))
      .body.id as string;
    const first = await owner.call('POST', `/api/channels/${ch}/messages`, {
      text: 'condor first',
    });
    expect((await shared.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
    await waitFor(
      async () => texts(await shared.call('GET', `/api/channels/${ch}/messages`)).length === 1,
    );
    expect((await shared.call('POST', '/api/logout')).status).toBe(204);

    expect((await shared.call('POST', '/api/visitor', { name: 'Guest' })).status).toBe(200);
    expect((await shared.call('POST', `/api/channels/${ch}/join`)).status).toBe(200);
    expect(texts(await shared.call('GET', `/api/channels/${ch}/messages`))).toEqual([
      'condor first',
    ]);
    expect(
      (await owner.call('PATCH', `/api/channels/${ch}`, { allowVisitors: false })).status,
    ).toBe(200);
    // The channel item reaches the visitor's peer, which drops the channel from its list.
    await waitFor(
      async () => !JSON.stringify((await shared.call('GET', '/api/channels')).body).includes(ch),
      10_000,
      'the channel leaves the visitor’s list',
    );
    const later = await owner.call('POST', `/api/channels/${ch}/messages`, {
      text: 'condor members only',
    });
    expect(later.status).toBe(201);
    // Whatever the server and the host still push, and a push that arrives regardless (given
    // here as the server's event, numbered as the server numbered it): refused, not stored.
    const held = await waitFor(() => {
      const m = owner.node.store.getMessage(later.body.id);
      return m?.seq != null ? m : undefined;
    });
    const pushed = { ...toStored(held), seq: held.seq! };
    (shared.node as unknown as { onEvent(n: string, b: unknown): void }).onEvent('message', {
      message: pushed,
    });
    await sleep(1000);
    expect(shared.node.store.getMessage(later.body.id)).toBeUndefined();
    const page = await shared.call('GET', `/api/channels/${ch}/messages`);
    const around = await shared.call('GET', `/api/channels/${ch}/messages?around=${first.body.id}`);
    const search = await shared.call('GET', '/api/search?q=condor');
    expect({ page: page.status, around: around.status, search: found(search) }).toEqual({
      page: 403,
      around: 403,
      search: [],
    });

    // carol, a member, logs in again on the same peer: her channel and its messages are there,
    // and what the visitor's peer refused comes from a replica as usual.
    expect((await shared.call('POST', '/api/logout')).status).toBe(204);
    expect(
      (await shared.call('POST', '/api/login', { username: 'carol', password: 'carol-pw' })).status,
    ).toBe(200);
    expect(JSON.stringify((await shared.call('GET', '/api/channels')).body)).toContain(ch);
    const back = await waitFor(
      async () => {
        const r = await shared.call('GET', `/api/channels/${ch}/messages`);
        return texts(r).length === 2 ? r : undefined;
      },
      10_000,
      'carol reads both messages',
    );
    expect(texts(back)).toEqual(['condor first', 'condor members only']);
    const s = await waitFor(
      async () => {
        const r = await shared.call('GET', '/api/search?q=condor');
        return found(r).length === 2 ? r : undefined;
      },
      10_000,
      'carol finds both',
    );
    expect(found(s).sort()).toEqual(['condor first', 'condor members only']);
  });
});
