/**
 * A local API request that a peer's shutdown overtakes (its stores closed under it) is answered
 * `503 E_SHUTTING_DOWN` (README "Local API"), not `500 E_INTERNAL` with the store's TypeError on
 * stderr (a clean-clone run printed one from test/files, a download's request meeting its peer's
 * close).
 */
import { describe, expect, it } from 'vitest';
import { createTestnet, signIn, type TestPeer } from './testnet.js';

describe('the local API while its peer stops', () => {
  it('answers a request that meets the closed stores 503 E_SHUTTING_DOWN', async () => {
    const net = await createTestnet({ peers: 1 });
    const [pa] = net.peers as [TestPeer];
    await signIn(pa, 'alice');
    const c = await pa.call('POST', '/api/channels', { name: 'general', allowVisitors: false });
    expect(c.status).toBe(201);
    // The peer stops; its API, closed after it, still takes this request meanwhile.
    await pa.node.close();
    const r = await pa.call('GET', `/api/channels/${c.body.id}/messages`);
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('E_SHUTTING_DOWN');
  });
});
