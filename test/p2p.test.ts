import crypto from 'node:crypto';
import fs from 'node:fs';
import tls from 'node:tls';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTestnet, rawHostLink, rawSession, signIn, waitFor } from './testnet.js';
import { FrameDecoder, encodeFrame } from '../src/protocol/frame.js';
import { parseRecord } from '../src/shared/connlog.js';
import type { HostLink } from '../src/peer/host-link.js';
import { PROTOCOL_VERSION } from '../src/protocol/common.js';
import { publicKeyFromBase64, verifyCert } from '../src/shared/tokens.js';
import { newKeyPair } from '../src/shared/keygen.js';

describe('peer_connect', () => {
  it('connects to a peer found in the tracker list; each side checks the other itself', async () => {
    const tn = await createTestnet({ peers: 2 });
    const [a, b] = tn.peers as [any, any];
    await signIn(a, 'alice');
    await signIn(b, 'bob');
    // The tracker shows alice the entries of users she shares a channel with.
    const ch = (await b.call('POST', '/api/channels', { name: 'p2p', allowVisitors: false })).body;
    await a.call('POST', `/api/channels/${ch.id}/join`);
    const list = (await a.call('GET', '/api/peers')).body;
    const bobEntry = list.find((e: any) => e.username === 'bob');
    const link = (a.node as any).dial(bobEntry) as HostLink;
    await link.start();
    expect(link.connected).toBe(true);
    const key = publicKeyFromBase64(a.node.link.server!.publicKey);
    expect(verifyCert(link.remoteHello!.cert, key)).toMatchObject({
      u: 'bob',
      r: 'user',
      sid: bobEntry.sessionId,
    });
    // The host took our transcript signature: requests are answered.
    expect(await link.request('stream_list', {})).toEqual({ streams: [] });
    link.stop();
    b.node.log.flush();
    // Both logs name the other end.
    const aLog = fs.readFileSync(path.join(a.dataDir, 'connections.log'), 'utf8');
    expect(aLog).toContain(`peer=host:bob@${bobEntry.ip}:${bobEntry.port}`);
    const bLog = fs
      .readFileSync(path.join(b.dataDir, 'connections.log'), 'utf8')
      .trim()
      .split('\n')
      .map(parseRecord);
    expect(bLog).toContainEqual(
      expect.objectContaining({
        ev: 'auth',
        role: 'user',
        peer: expect.stringMatching(/^peer:alice@127\.0\.0\.1:\d+$/),
      }),
    );
  });

  it('closes a link once the certificate it proved expires, as its handshake would be refused then (PROTOCOL.md §4.1)', async () => {
    const tn = await createTestnet({ peers: 1, server: { certTtlMs: 3000 } });
    const b = tn.peers[0]!;
    await signIn(b, 'bob');
    const ch = (await b.call('POST', '/api/channels', { name: 'open', allowVisitors: true })).body;
    // A visitor still in session (its server connection stays up): only the expiry can end it.
    const raw = await tn.rawLink();
    const guest = await rawSession(raw, { name: 'lingerer' });
    await raw.request('channel_join', { channelId: ch.id });
    const entry = (await raw.request('get_list', {})).peers.find((e) => e.username === 'bob')!;
    const link = rawHostLink(entry, guest);
    await link.start();
    expect((await link.request('subscribe', { channelIds: [ch.id] })).channelIds).toEqual([ch.id]);
    const { exp } = verifyCert(guest.cert, guest.serverKey)!;
    expect(exp - Date.now()).toBeGreaterThan(500);
    expect(link.connected).toBe(true);
    // The host's sweep runs every heartbeat (2 s): closed within two of the expiry.
    await waitFor(() => !link.connected, exp - Date.now() + 5000, 'the link closed');
    expect(Date.now()).toBeGreaterThanOrEqual(exp);
  });

  it('refuses a certificate the central server did not sign', async () => {
    const tn = await createTestnet({ peers: 1 });
    const b = tn.peers[0]!;
    await signIn(b, 'bob');
    const { privateKey } = newKeyPair('ed25519');
    const payload = Buffer.from(
      JSON.stringify({
        typ: 'key',
        sid: 'forgedsession1',
        u: 'alice',
        r: 'user',
        pk: 'A'.repeat(43),
        iat: Date.now(),
        exp: Date.now() + 60_000,
      }),
    ).toString('base64url');
    const forged = `${payload}.${crypto.sign(null, Buffer.from(payload), privateKey).toString('base64url')}`;
    const [host, port] = b.p2p.split(':') as [string, string];
    const answer = await new Promise<Record<string, unknown>[]>((resolve) => {
      const s = tls.connect({ port: Number(port), host, rejectUnauthorized: false });
      const d = new FrameDecoder();
      const frames: Record<string, unknown>[] = [];
      s.on('data', (x) => frames.push(...d.push(x)));
      s.on('close', () => resolve(frames));
      s.on('secureConnect', () =>
        s.write(
          encodeFrame({
            t: 'hello',
            v: PROTOCOL_VERSION,
            role: 'peer',
            cert: forged,
            nonce: crypto.randomBytes(32).toString('base64url'),
            dial: crypto.randomBytes(64).toString('base64url'),
          }),
        ),
      );
    });
    expect(answer).toEqual([
      { t: 'error', code: 'E_SESSION_INVALID', message: expect.any(String) },
    ]);
  });
});
