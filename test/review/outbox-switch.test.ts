/**
 * Review proof: an outbox drain that started for one account keeps its `s` across a login as
 * another account; the new settle wait (up to 3 s for a host link being made, then for the next
 * tracker list) spans the switch, and the old account's pending message is then posted on the
 * connection that now carries the new account's session: refused (E_NOT_MEMBER), marked failed.
 */
import net from 'node:net';
import { expect, it } from 'vitest';
import { newSessionKeys } from '../../src/shared/signing.js';
import { createTestnet, signIn, stablePort, waitFor } from '../testnet.js';

it("alice's pending message is not refused because carol logged in on the same peer meanwhile", async () => {
  const tn = await createTestnet({ peers: 2 });
  const [p, q] = tn.peers as [(typeof tn.peers)[0], (typeof tn.peers)[0]];
  const held: net.Socket[] = [];
  const silent = net.createServer((c) => void held.push(c)); // a host that never answers
  const silentPort = await stablePort();
  await new Promise<void>((r) => silent.listen(silentPort, '127.0.0.1', r));
  try {
    await p.call('POST', '/api/register', { username: 'carol', password: 'carol-pw' });
    await signIn(q, 'bob');
    await signIn(p, 'alice');
    const ch = (await q.call('POST', '/api/channels', { name: 'talk', allowVisitors: false })).body;
    expect((await p.call('POST', `/api/channels/${ch.id}/join`)).status).toBe(200);
    await q.close();
    await waitFor(
      async () => !(await p.call('GET', '/api/peers')).body.some((e: any) => e.username === 'bob'),
      5_000,
      'bob gone',
    );
    // bob's host entry, listed online, at an address that never answers.
    const raw = await tn.rawLink();
    const k = newSessionKeys();
    await raw.request('login', { username: 'bob', password: 'bob-pw', publicKey: k.publicKey });
    await raw.request('submit_info', {
      ip: '127.0.0.1',
      port: silentPort,
      udpPort: silentPort,
      status: 'online',
      hosts: [ch.id],
    });
    await waitFor(
      async () => (await p.call('GET', '/api/peers')).body.some((e: any) => e.username === 'bob'),
      5_000,
      'bob listed',
    );
    // alice writes: the drain waits for the host link being made...
    const post = p.call('POST', `/api/channels/${ch.id}/messages`, { text: 'alice was here' });
    await new Promise((r) => setTimeout(r, 200));
    // ...while carol logs in on the same peer.
    const l = await p.call('POST', '/api/login', { username: 'carol', password: 'carol-pw' });
    expect(l.status).toBe(200);
    const id = (await post).body.id as string;
    await new Promise((r) => setTimeout(r, 4_000));
    const m = p.node.store.getMessage(id);
    console.log('alice message state after carol logged in:', m?.state, (m as any)?.error ?? '');
    expect(m?.state).not.toBe('failed');
  } finally {
    for (const s of held) s.destroy();
    silent.close();
  }
}, 60_000);
