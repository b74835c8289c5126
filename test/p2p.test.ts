import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTestnet, signIn } from './testnet.js';
import { FrameDecoder, encodeFrame } from '../src/protocol/frame.js';
import { parseRecord } from '../src/shared/connlog.js';
import { HostLink } from '../src/peer/host-link.js';

describe('peer_connect', () => {
  it('connects to a peer found in the tracker list; the host checks the token itself', async () => {
    const tn = await createTestnet({ peers: 2 });
    const [a, b] = tn.peers as [any, any];
    await signIn(a, 'alice');
    await signIn(b, 'bob');
    const list = (await a.call('GET', '/api/peers')).body;
    const bobEntry = list.find((e: any) => e.username === 'bob');
    const token = JSON.parse(fs.readFileSync(path.join(a.dataDir, 'session.json'), 'utf8')).token;
    const link = new HostLink(bobEntry, token, a.node.log);
    await link.start();
    expect(link.remoteHello).toMatchObject({
      username: 'bob',
      userRole: 'user',
      sessionId: bobEntry.sessionId,
    });
    link.stop();
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

  it('refuses a token the central server did not sign', async () => {
    const tn = await createTestnet({ peers: 1 });
    const b = tn.peers[0]!;
    await signIn(b, 'bob');
    const { privateKey } = crypto.generateKeyPairSync('ed25519');
    const payload = Buffer.from(
      JSON.stringify({ sid: 'forgedsession1', u: 'alice', r: 'user', iat: Date.now() }),
    ).toString('base64url');
    const forged = `${payload}.${crypto.sign(null, Buffer.from(payload), privateKey).toString('base64url')}`;
    const [host, port] = b.p2p.split(':') as [string, string];
    const answer = await new Promise<Record<string, unknown>[]>((resolve) => {
      const s = net.connect(Number(port), host);
      const d = new FrameDecoder();
      const frames: Record<string, unknown>[] = [];
      s.on('data', (x) => frames.push(...d.push(x)));
      s.on('close', () => resolve(frames));
      s.on('connect', () =>
        s.write(encodeFrame({ t: 'hello', v: 1, role: 'peer', token: forged })),
      );
    });
    expect(answer).toEqual([
      { t: 'error', code: 'E_SESSION_INVALID', message: expect.any(String) },
    ]);
  });
});
