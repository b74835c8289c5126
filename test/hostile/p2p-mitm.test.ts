/**
 * A man in the middle of a P2P link (issue 12, docs/PROTOCOL.md §4.1): Mallory terminates TLS
 * toward the member with her own key, opens TLS to the host, and relays every frame unchanged.
 * The handshake signatures cover each TLS connection's channel binding, and she holds two
 * connections: the host refuses the member's hello, whose dial signature covers the member's
 * connection to her, whether the member checks anything itself or not. Played from the protocol document: the lenient member is the outsider
 * client (test/outsider/lib.ts), which signs the transcript as §4.1 says.
 */
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { HchatError } from '../../src/protocol/errors.js';
import { selfSignedIdentity } from '../../src/shared/tls.js';
import { p2pConnect } from '../outsider/lib.js';
import { createTestnet, rawHostLink, rawSession, signIn, waitFor } from '../testnet.js';

/** Relays plaintext between a TLS server of Mallory's own and the real host's TLS port. */
async function mallory(target: number) {
  const id = selfSignedIdentity('mallory');
  let relayed = 0;
  const srv = tls.createServer({ key: id.key, cert: id.cert }, (c) => {
    const up = tls.connect({ port: target, host: '127.0.0.1', rejectUnauthorized: false });
    c.on('data', (b) => ((relayed += b.length), up.write(b)));
    up.on('data', (b) => c.write(b));
    for (const s of [c, up]) s.on('error', () => undefined);
    c.on('close', () => up.end());
    up.on('close', () => c.end());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  onTestFinished(() => void srv.close());
  return { port: (srv.address() as net.AddressInfo).port, relayed: () => relayed };
}

describe('hostile: a man in the middle of a P2P link', () => {
  it('is refused by the host at the member’s hello, and the host logs it', async () => {
    const tn = await createTestnet({ peers: 2 });
    const [alice, bob] = tn.peers as [any, any];
    await signIn(alice, 'alice');
    await signIn(bob, 'bob');
    const ch = (await alice.call('POST', '/api/channels', { name: 'den', allowVisitors: false }))
      .body;
    await bob.call('POST', `/api/channels/${ch.id}/join`);

    // Bob's own session, from a raw client of the server (as a member would have).
    const link = await tn.rawLink();
    const s = await rawSession(link, { username: 'bob', password: 'bob-pw' });
    const entry = (await link.request('get_list', {})).peers.find((e) => e.username === 'alice')!;
    expect(entry).toBeDefined();
    const m = await mallory(entry.port);

    // The member: its hello's dial signature covers its own connection, not Mallory's to the
    // host, so the host refuses it at once, before it shows anything of its own.
    const viaMallory = rawHostLink({ ...entry, port: m.port }, s);
    let reason: HchatError | undefined;
    viaMallory.once('down', (r: HchatError | undefined) => (reason = r));
    await viaMallory.start();
    expect(viaMallory.connected).toBe(false);
    expect(reason?.code).toBe('E_SESSION_INVALID');
    expect(reason?.message).toMatch(/dial signature does not verify/);

    // A member that does not check: the host refuses it the same way (its signatures made over
    // the member ↔ Mallory connection) and logs why. (A real member's own refusal of a host
    // whose signature covers another connection: test/outsider/p2p-binding.test.ts.)
    const lenient = await p2pConnect({ ...entry, port: m.port }, { cert: s.cert, key: s.keys });
    expect(lenient.hello).toMatchObject({ t: 'error', code: 'E_SESSION_INVALID' });
    await waitFor(() => lenient.c.closed, 5000, 'the host closes the relayed link');
    alice.node.log.flush();
    const log = fs.readFileSync(path.join(alice.dataDir, 'connections.log'), 'utf8');
    expect(log).toMatch(/close .*reason=E_SESSION_INVALID/);
    expect(m.relayed()).toBeGreaterThan(0);

    // Control: the same lenient member, straight to the host, is accepted and served.
    const direct = await p2pConnect(entry, { cert: s.cert, key: s.keys });
    const sub = await direct.c.req('subscribe', { channelIds: [ch.id] });
    expect(sub.error).toBeUndefined();
    expect(sub.body.channelIds).toEqual([ch.id]);
    direct.c.close();
  });
});
